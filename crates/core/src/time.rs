//! Capture timestamps and calendar dates. Time in modtrace is always the packet's time, never
//! the clock's; the one exception is [`Date::today`], for a policy ignore entry's expiry.

use std::fmt;

/// Nanoseconds since the Unix epoch, as recorded in the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

impl Ts {
    pub const fn from_secs_nanos(secs: i64, nanos: u32) -> Ts {
        Ts(secs
            .saturating_mul(1_000_000_000)
            .saturating_add(nanos as i64))
    }
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }
    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(1_000_000_000) as u32
    }
    /// Milliseconds from `self` to `later` (negative if `later` is earlier).
    pub fn millis_until(self, later: Ts) -> f64 {
        (later.0 - self.0) as f64 / 1e6
    }
    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-24T02:42:12.123456Z`.
    pub fn rfc3339(self) -> String {
        let secs = self.secs();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60,
            self.subsec_nanos() / 1000
        )
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// `2026-11-24T02:42:12Z` for seconds since the epoch. Seconds, not [`Ts`]: certificates'
/// validity dates reach year 9999 (RFC 5280 4.1.2.5), beyond what nanoseconds in an i64 hold.
pub fn rfc3339_secs(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
/// Every day count of an i64 of seconds (at most about 1.07e14 days) stays far from i64's
/// limits here.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---------------------------------------------------------------------------------------------
// Calendar dates (a policy ignore entry expires)

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u16> {
            let t = s.get(r)?;
            t.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| t.parse().ok())?
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days).contains(&day).then_some(Date {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    /// Today in UTC, from the system clock (only the policy reads it: an ignore's `until`).
    pub fn today() -> Date {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
        let s = Ts(nanos).rfc3339();
        Date::parse(s.get(..10).unwrap_or("")).unwrap_or(Date {
            year: 1970,
            month: 1,
            day: 1,
        })
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(Ts(0).rfc3339(), "1970-01-01T00:00:00.000000Z");
        // 2026-11-24T02:42:12.5Z
        assert_eq!(
            Ts::from_secs_nanos(1_795_488_132, 500_000_000).rfc3339(),
            "2026-11-24T02:42:12.500000Z"
        );
        assert_eq!(
            Ts::from_secs_nanos(951_782_400, 1_000).rfc3339(),
            "2000-02-29T00:00:00.000001Z"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            Date::parse("2024-02-29").map(|d| d.to_string()).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024-01-00",
            "２０２４-01-01",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert!(Date::today() > Date::parse("2024-01-01").unwrap());
    }
}
