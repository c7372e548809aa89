//! Timestamps: milliseconds since the Unix epoch, UTC.
//!
//! On the wire a timestamp is either an RFC 3339 string (`2026-11-23T10:00:00Z`,
//! `2026-11-23T10:00:00.250+01:00`) or a JSON number of seconds since the epoch
//! (fractions allowed). It is written back as an RFC 3339 string in UTC with
//! milliseconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds per second, minute, hour and day.
const MS_PER_SECOND: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;

/// Earliest accepted timestamp: 1970-01-01.
const MIN_MS: i64 = 0;
/// Latest accepted timestamp: 2200-01-01 (anything later is a unit mistake).
const MAX_MS: i64 = 7_258_118_400_000;

/// A point in time in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// One second, in the unit of [`Timestamp`] arithmetic.
    pub const SECOND: i64 = MS_PER_SECOND;
    /// One hour in milliseconds.
    pub const HOUR: i64 = 3_600_000;
    /// One day in milliseconds.
    pub const DAY: i64 = MS_PER_DAY;

    /// Builds a timestamp from milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Builds a timestamp from whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(MS_PER_SECOND))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as i64)
    }

    /// This timestamp moved by `ms` milliseconds (negative moves back).
    pub fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Seconds from `earlier` to `self` as a float (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / MS_PER_SECOND as f64
    }

    /// Parses seconds since the epoch given as a float; `None` if out of range or not finite.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let ms = (secs * MS_PER_SECOND as f64).round();
        if ms < MIN_MS as f64 || ms > MAX_MS as f64 {
            return None;
        }
        Some(Timestamp(ms as i64))
    }

    /// Parses an RFC 3339 date-time, e.g. `2026-11-23T10:00:00Z` or
    /// `2026-11-23 10:00:00.5+01:00`. Returns a reason on failure.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        parse_rfc3339(text.trim())
    }

    /// Formats as RFC 3339 in UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            // Binary formats (bincode: snapshots) keep the milliseconds as they are.
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return i64::deserialize(deserializer).map(Timestamp);
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::String(s) => {
                Timestamp::parse_rfc3339(s).map_err(serde::de::Error::custom)
            }
            serde_json::Value::Number(n) => n
                .as_f64()
                .and_then(Timestamp::from_secs_f64)
                .ok_or_else(|| serde::de::Error::custom("timestamp out of range")),
            _ => Err(serde::de::Error::custom(
                "timestamp must be a string or number",
            )),
        }
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn number(text: &str, range: std::ops::Range<usize>, what: &str) -> Result<i64, String> {
    let part = text
        .get(range)
        .ok_or_else(|| format!("`{text}` is too short to be an RFC 3339 time"))?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` has a bad {what} `{part}`"));
    }
    part.parse::<i64>()
        .map_err(|_| format!("`{text}` has a bad {what}"))
}

fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let bytes = text.as_bytes();
    let expect = |at: usize, what: &[u8]| -> Result<(), String> {
        match bytes.get(at) {
            Some(b) if what.contains(b) => Ok(()),
            _ => Err(format!(
                "`{text}` is not an RFC 3339 time like 2026-11-23T10:00:00Z"
            )),
        }
    };
    expect(4, b"-")?;
    expect(7, b"-")?;
    expect(10, b"Tt ")?;
    expect(13, b":")?;
    expect(16, b":")?;
    let year = number(text, 0..4, "year")?;
    let month = number(text, 5..7, "month")?;
    let day = number(text, 8..10, "day")?;
    let hour = number(text, 11..13, "hour")?;
    let minute = number(text, 14..16, "minute")?;
    let second = number(text, 17..19, "second")?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("`{text}` is not a calendar date"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("`{text}` is not a time of day"));
    }
    let mut at = 19;
    let mut millis = 0i64;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err(format!("`{text}` has an empty fraction of a second"));
        }
        let digits = &text[start..at.min(start + 3)];
        millis = digits.parse::<i64>().unwrap_or(0) * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z') | Some(b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() => {
            expect(at + 3, b":")?;
            let hours = number(text, at + 1..at + 3, "offset hour")?;
            let mins = number(text, at + 4..at + 6, "offset minute")?;
            let total = hours * 60 + mins;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => {
            return Err(format!(
                "`{text}` needs a time zone: `Z` or an offset like `+01:00`"
            ))
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    let ms = secs * MS_PER_SECOND + millis;
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return Err(format!("`{text}` is outside 1970..2200"));
    }
    Ok(Timestamp(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T10:00:00.250Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn known_epoch_values() {
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap().0,
            0
        );
        // 881250949 is the first rating of MovieLens 100K: 1997-12-04T15:55:49Z.
        let t = Timestamp::parse_rfc3339("1997-12-04T15:55:49Z").unwrap();
        assert_eq!(t, Timestamp::from_secs(881_250_949));
        let with_offset = Timestamp::parse_rfc3339("1997-12-04T16:55:49+01:00").unwrap();
        assert_eq!(with_offset, t);
    }

    #[test]
    fn rejects_non_times() {
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T25:00:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(Timestamp::from_secs_f64(f64::NAN).is_none());
        assert!(Timestamp::from_secs_f64(-5.0).is_none());
        assert!(Timestamp::from_secs_f64(1e15).is_none());
    }

    #[test]
    fn civil_conversion_is_inverse_over_centuries() {
        for days in (-1000..100_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
