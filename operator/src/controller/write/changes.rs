//! What a reconcile wrote, remembered for its Events.

use std::sync::Mutex;

/// What a write did to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist.
    Created,
    /// It differed from the spec.
    Updated,
    /// The spec no longer asks for it.
    Deleted,
}

impl Change {
    /// Event reason and verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Updated => "Updated",
            Self::Deleted => "Deleted",
        }
    }
}

/// The writes of one reconcile, in order.
#[derive(Debug, Default)]
pub struct Changes(Mutex<Vec<(Change, String)>>);

impl Changes {
    /// Remembers a write of `object` (`Kind name`).
    pub fn record(&self, change: Change, object: String) {
        if let Ok(mut changes) = self.0.lock() {
            changes.push((change, object));
        }
    }

    /// Every write so far, in order.
    pub fn list(&self) -> Vec<(Change, String)> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}
