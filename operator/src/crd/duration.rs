//! Durations of the recovery targets (`spec.backup.verify.targets`): whole days, hours,
//! minutes and seconds, each unit at most once and in that order (`15m`, `1h`, `1h30m`, `2d`,
//! `90s`). The API server checks them at admission ([`super::formats::duration_rule`]), the
//! drill Job reads them with [`parse`]; [`human`] writes a number of seconds the same way for
//! people (messages, Events, the plugin).

use std::time::Duration;

/// The units in order, with their length in seconds.
const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Most digits of one unit's number (999999 days fit easily in the seconds of a `u64`).
const MAX_DIGITS: usize = 6;

/// The shape of a duration (RE2 and the `regex` crate alike). It also matches the empty string
/// and zero durations, which [`super::formats::duration_rule`] refuses apart.
pub const PATTERN: &str = "^([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?$";

/// Parses a duration such as `15m` or `1h30m`; at least one second.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("{text:?} is not a duration such as 15m, 1h or 1h30m: {why}");
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut seconds = 0u64;
    let mut digits = String::new();
    let mut next_unit = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(position) = UNITS.iter().position(|(unit, _)| *unit == c) else {
            return Err(invalid(&format!("{c:?} is not a unit (d, h, m or s)")));
        };
        if position < next_unit {
            return Err(invalid("the units must come in the order d, h, m, s, each at most once"));
        }
        if digits.is_empty() || digits.len() > MAX_DIGITS {
            return Err(invalid(&format!("each unit needs a number of 1 to {MAX_DIGITS} digits before it")));
        }
        let n: u64 = digits.parse().map_err(|_| invalid("not a number"))?;
        seconds += n * UNITS[position].1;
        digits.clear();
        next_unit = position + 1;
    }
    if !digits.is_empty() {
        return Err(invalid("a number without its unit (d, h, m or s)"));
    }
    if seconds == 0 {
        return Err(invalid("it must be at least 1s"));
    }
    Ok(Duration::from_secs(seconds))
}

/// A number of seconds for people: to the millisecond under a second (`0.017s`), to the tenth
/// under a minute (`12.3s`), else whole days, hours, minutes and seconds without the zero ones
/// (`2h13m`, `17m2s`, `1d1h`). Negative numbers are shown as zero.
pub fn human(seconds: f64) -> String {
    let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
    if seconds < 59.95 {
        let text = if seconds < 0.9995 { format!("{seconds:.3}") } else { format!("{seconds:.1}") };
        return format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    let mut left = seconds.round() as u64;
    let mut text = String::new();
    for (unit, length) in UNITS {
        let n = left / length;
        left %= length;
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations and their seconds; `None`: refused.
    const CASES: &[(&str, Option<u64>)] = &[
        ("15m", Some(900)),
        ("1h", Some(3600)),
        ("1h30m", Some(5400)),
        ("90s", Some(90)),
        ("2d", Some(172_800)),
        ("1d2h3m4s", Some(93_784)),
        ("0h15m", Some(900)),
        ("999999d", Some(999_999 * 86_400)),
        ("0s", None),
        ("0h0m", None),
        ("", None),
        ("15", None),
        ("m", None),
        ("1m1h", None),
        ("1h1h", None),
        ("1w", None),
        ("1.5h", None),
        ("-1h", None),
        (" 1h", None),
        ("1H", None),
        ("1000000d", None),
    ];

    #[test]
    fn parses_durations_and_refuses_the_rest() {
        for (text, seconds) in CASES {
            assert_eq!(parse(text).ok(), seconds.map(Duration::from_secs), "{text:?}");
        }
        let error = parse("1m1h").expect_err("out of order");
        assert!(error.contains("in the order d, h, m, s"), "{error}");
        assert!(parse("0s").expect_err("zero").contains("at least 1s"));
    }

    #[test]
    fn the_admission_pattern_agrees_with_the_parser() {
        let shape = regex::Regex::new(PATTERN).expect("pattern");
        let nonzero = regex::Regex::new("[1-9]").expect("pattern");
        for (text, seconds) in CASES {
            let admitted = shape.is_match(text) && nonzero.is_match(text);
            assert_eq!(admitted, seconds.is_some(), "{text:?}");
        }
    }

    #[test]
    fn writes_seconds_for_people() {
        assert_eq!(human(0.0), "0s");
        assert_eq!(human(0.017), "0.017s");
        assert_eq!(human(0.44), "0.44s");
        assert_eq!(human(0.9996), "1s");
        assert_eq!(human(12.0), "12s");
        assert_eq!(human(10.0), "10s");
        assert_eq!(human(59.4), "59.4s");
        assert_eq!(human(59.96), "1m");
        assert_eq!(human(900.0), "15m");
        assert_eq!(human(1022.4), "17m2s");
        assert_eq!(human(7980.0), "2h13m");
        assert_eq!(human(90_000.0), "1d1h");
        assert_eq!(human(-3.0), "0s");
        // What it writes, it reads back.
        for seconds in [60.0, 900.0, 3600.0, 5400.0, 93_784.0] {
            assert_eq!(parse(&human(seconds)).map(|d| d.as_secs_f64()), Ok(seconds));
        }
    }
}
