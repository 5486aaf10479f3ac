//! The objects of `spec.threatFeeds`: the sync CronJob (the machine token it presents is a key
//! of the generated credentials Secret, see `datastore::credentials`).

pub mod cron_job;
