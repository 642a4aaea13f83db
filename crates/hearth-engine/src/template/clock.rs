//! The clock behind the `strftime_now(fmt)` template global.
//!
//! transformers defines `strftime_now(fmt) = datetime.now().strftime(fmt)`
//! (Llama 3.x prints "Today Date: 14 Mar 2025" with it). hearth formats a
//! naive [`CivilDateTime`] with a small C-locale `strftime` covering the
//! usual directives; the clock is injectable so tests can fix "now".

use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar date and wall-clock time without a time zone (Python's naive
/// `datetime`). Fields are not validated beyond what `strftime` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilDateTime {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// A source of "now" for `strftime_now`.
pub type Clock = fn() -> CivilDateTime;

const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl CivilDateTime {
    /// The current time in UTC. (Python uses the process's local zone;
    /// servers here run in UTC, and UTC needs no time-zone database.)
    pub fn now_utc() -> CivilDateTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// The UTC calendar time of a Unix timestamp.
    pub fn from_unix_seconds(secs: i64) -> CivilDateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        CivilDateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// 0 = Sunday .. 6 = Saturday.
    fn weekday(&self) -> usize {
        let days = days_from_civil(self.year, self.month, self.day);
        // 1970-01-01 was a Thursday (4).
        (days + 4).rem_euclid(7) as usize
    }

    /// 1-based day of the year.
    fn ordinal(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) - days_from_civil(self.year, 1, 1) + 1
    }

    fn month_name(&self) -> &'static str {
        MONTH_NAMES[usize::from(self.month.clamp(1, 12) - 1)]
    }

    /// C-locale `strftime`. Unknown directives are copied through, as glibc does.
    pub fn strftime(&self, fmt: &str) -> String {
        let mut out = String::with_capacity(fmt.len() + 16);
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            // glibc's `%-d` flag: no padding.
            let mut spec = chars.next();
            let unpadded = spec == Some('-');
            if unpadded {
                spec = chars.next();
            }
            match spec {
                Some(d) => match self.directive(d) {
                    Some(text) if unpadded => {
                        let trimmed = text.trim_start_matches(['0', ' ']);
                        out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
                    }
                    Some(text) => out.push_str(&text),
                    None => {
                        out.push('%');
                        if unpadded {
                            out.push('-');
                        }
                        out.push(d);
                    }
                },
                None => out.push('%'),
            }
        }
        out
    }

    fn directive(&self, d: char) -> Option<String> {
        let day_name = DAY_NAMES[self.weekday()];
        let hour12 = match self.hour % 12 {
            0 => 12,
            h => h,
        };
        Some(match d {
            'a' => day_name[..3].to_owned(),
            'A' => day_name.to_owned(),
            'b' | 'h' => self.month_name()[..3].to_owned(),
            'B' => self.month_name().to_owned(),
            'c' => self.strftime("%a %b %e %H:%M:%S %Y"),
            'C' => format!("{:02}", self.year.div_euclid(100)),
            'd' => format!("{:02}", self.day),
            'D' | 'x' => self.strftime("%m/%d/%y"),
            'e' => format!("{:>2}", self.day),
            'F' => self.strftime("%Y-%m-%d"),
            'H' => format!("{:02}", self.hour),
            'I' => format!("{hour12:02}"),
            'j' => format!("{:03}", self.ordinal()),
            'm' => format!("{:02}", self.month),
            'M' => format!("{:02}", self.minute),
            'n' => "\n".to_owned(),
            'p' => if self.hour < 12 { "AM" } else { "PM" }.to_owned(),
            'R' => self.strftime("%H:%M"),
            'S' => format!("{:02}", self.second),
            't' => "\t".to_owned(),
            'T' | 'X' => self.strftime("%H:%M:%S"),
            'u' => match self.weekday() {
                0 => "7".to_owned(),
                w => w.to_string(),
            },
            'w' => self.weekday().to_string(),
            'y' => format!("{:02}", self.year.rem_euclid(100)),
            'Y' => self.year.to_string(),
            'z' | 'Z' => String::new(),
            '%' => "%".to_owned(),
            _ => return None,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: CivilDateTime = CivilDateTime {
        year: 2025,
        month: 3,
        day: 14,
        hour: 10,
        minute: 0,
        second: 0,
    };

    #[test]
    fn formats_like_python_c_locale() {
        assert_eq!(FIXED.strftime("%d %b %Y"), "14 Mar 2025");
        assert_eq!(
            FIXED.strftime("%A %B %-d, %y %I%p %j"),
            "Friday March 14, 25 10AM 073"
        );
        assert_eq!(
            FIXED.strftime("%c|%x|%X|%%|%Q"),
            "Fri Mar 14 10:00:00 2025|03/14/25|10:00:00|%|%Q"
        );
    }

    #[test]
    fn unix_seconds_round_trip() {
        // 2025-03-14T10:00:00Z
        assert_eq!(CivilDateTime::from_unix_seconds(1_741_946_400), FIXED);
        assert_eq!(
            CivilDateTime::from_unix_seconds(0).strftime("%Y-%m-%d %H:%M:%S %a"),
            "1970-01-01 00:00:00 Thu"
        );
        assert_eq!(
            CivilDateTime::from_unix_seconds(951_782_400).strftime("%F"),
            "2000-02-29"
        );
    }
}
