//! How a listing of backups is printed, shared by `backups list` and the plugin's `backups`.

use clap::Args;

use crate::backup::list;

/// How a listing of backups is printed (`backups list`, and the plugin's `backups`).
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: ListOutput,
}

/// Output of `backups list`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOutput {
    /// An aligned table for people.
    Table,
    /// A JSON array for scripts.
    Json,
}

impl From<ListOutput> for list::Format {
    fn from(output: ListOutput) -> Self {
        match output {
            ListOutput::Table => list::Format::Table,
            ListOutput::Json => list::Format::Json,
        }
    }
}
