//! Cron schedules: checked the way the CronJob controller will read them, and the time between
//! two runs (a backup older than twice that puts the recovery point objective at risk).

use std::str::FromStr;

use croner::Cron;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Parses a five-field cron expression or a macro such as `@hourly`.
pub fn parse(schedule: &str) -> Result<Cron, String> {
    let expanded = match schedule.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    Cron::from_str(expanded).map_err(|e| e.to_string())
}

/// The longest gap between two consecutive runs among the next few, in UTC.
pub fn interval(schedule: &str, now: Timestamp) -> Option<SignedDuration> {
    let cron = parse(schedule).ok()?;
    let start = chrono::DateTime::from_timestamp(now.as_second(), 0)?;
    let runs: Vec<i64> = cron.iter_after(start).take(8).map(|t| t.timestamp()).collect();
    runs.windows(2).map(|w| w[1] - w[0]).max().map(SignedDuration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-25T10:17:00Z".parse().expect("time")
    }

    #[test]
    fn intervals_of_common_schedules() {
        assert_eq!(interval("0 * * * *", now()), Some(SignedDuration::from_hours(1)));
        assert_eq!(interval("@hourly", now()), Some(SignedDuration::from_hours(1)));
        assert_eq!(interval("*/15 * * * *", now()), Some(SignedDuration::from_mins(15)));
        assert_eq!(interval("30 3 * * 0", now()), Some(SignedDuration::from_hours(24 * 7)));
        // Irregular: the longest gap counts.
        assert_eq!(interval("0 9,17 * * *", now()), Some(SignedDuration::from_hours(16)));
    }

    #[test]
    fn refuses_what_the_cronjob_controller_would() {
        assert!(parse("61 * * * *").is_err());
        assert!(parse("* * *").is_err());
        assert!(parse("0 * * * *").is_ok());
    }
}
