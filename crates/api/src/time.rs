//! Times on the wire: RFC 3339 UTC out (`2017-05-07T10:56:07Z`), and the ISO-8601 and
//! C-locale `%c` forms Nova's TrustedFilter reads in (`../shared/reference/oat-nova.md`
//! §1.4). All as Unix milliseconds; no calendar crate needed for the proleptic Gregorian
//! calendar.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2017-05-07T10:56:07Z` for Unix milliseconds (sub-second part dropped).
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Now, Unix milliseconds.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fixed-width run of ASCII digits.
fn digits(text: &str, len: usize) -> Option<(i64, &str)> {
    let head = text.get(..len)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, text.get(len..)?))
}

fn expect(text: &str, prefix: char) -> Option<&str> {
    text.strip_prefix(prefix)
}

/// Unix ms of a validated civil date and time, or None when a field is out of range.
fn civil_ms(date: (i64, i64, i64), time: (i64, i64, i64), frac_ms: i64) -> Option<i64> {
    let (year, month, day) = date;
    let (hour, minute, second) = time;
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(secs * 1000 + frac_ms)
}

/// ISO-8601 as oslo's `parse_isotime` accepts it: `YYYY-MM-DD[T| ]HH:MM[:SS[.frac]]` then
/// `Z`, `±HH:MM`, `±HHMM`, `±HH` or nothing (= UTC). Returns Unix ms in UTC.
#[must_use]
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let (year, rest) = digits(text, 4)?;
    let (month, rest) = digits(expect(rest, '-')?, 2)?;
    let (day, rest) = digits(expect(rest, '-')?, 2)?;
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let (hour, rest) = digits(rest, 2)?;
    let (minute, mut rest) = digits(expect(rest, ':')?, 2)?;
    let mut second = 0;
    let mut frac_ms = 0;
    if let Some(after) = rest.strip_prefix(':') {
        let (s, after) = digits(after, 2)?;
        second = s;
        rest = after;
        if let Some(after) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            let frac = after.get(..len)?;
            let ms_text: String = frac.chars().chain("000".chars()).take(3).collect();
            frac_ms = ms_text.parse().ok()?;
            rest = after.get(len..)?;
        }
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            let (hh, zone) = digits(zone, 2)?;
            let mm = match zone {
                "" => 0,
                _ => {
                    digits(zone.strip_prefix(':').unwrap_or(zone), 2)
                        .filter(|(_, tail)| tail.is_empty())?
                        .0
                }
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            sign * (hh * 60 + mm)
        }
    };
    Some(civil_ms((year, month, day), (hour, minute, second), frac_ms)? - offset_min * 60_000)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Python's `strptime(text, "%c")` in the C locale (`Tue Feb 14 09:02:48 2012`), read as
/// UTC: Nova's fallback for Mt. Wilson's `vtime` (bug #1353029). The weekday must be a
/// weekday name; like `strptime`, it is not checked against the date.
#[must_use]
pub fn parse_c_locale(text: &str) -> Option<i64> {
    let mut words = text.split_whitespace();
    let weekday = words.next()?;
    if !WEEKDAYS.iter().any(|w| w.eq_ignore_ascii_case(weekday)) {
        return None;
    }
    let month_name = words.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))?;
    let day: i64 = words.next().filter(|d| d.len() <= 2)?.parse().ok()?;
    let clock = words.next()?;
    let year_text = words.next()?;
    if words.next().is_some() || year_text.len() != 4 {
        return None;
    }
    let (year, _) = digits(year_text, 4)?;
    let (hour, rest) = digits(clock, 2)?;
    let (minute, rest) = digits(expect(rest, ':')?, 2)?;
    let (second, rest) = digits(expect(rest, ':')?, 2)?;
    if !rest.is_empty() {
        return None;
    }
    let month = i64::try_from(month).ok()? + 1;
    civil_ms((year, month, day), (hour, minute, second), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_494_154_567_000), "2017-05-07T10:56:07Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_651_199_999), "2026-11-25T23:59:59Z");
    }

    #[test]
    fn iso8601_in_every_form_attestation_servers_sent() {
        let at = 1_494_154_567_000;
        for text in [
            "2017-05-07T10:56:07Z",
            "2017-05-07T10:56:07",
            "2017-05-07 10:56:07Z",
            "2017-05-07T06:56:07-04:00",
            "2017-05-07T12:56:07+0200",
            "2017-05-07T12:56:07+02",
            "2017-05-07T10:56:07.000Z",
        ] {
            assert_eq!(parse_iso8601(text), Some(at), "{text}");
        }
        assert_eq!(
            parse_iso8601("2016-02-29T22:29:26.365+0000"),
            Some(1_456_784_966_365)
        );
        // Nova's own test: 05:10:40-04:00 is 09:10:40Z.
        assert_eq!(
            parse_iso8601("2012-09-09T05:10:40-04:00"),
            parse_iso8601("2012-09-09T09:10:40Z")
        );
        for bad in [
            "",
            "2017-05-07",
            "2017-13-07T10:56:07Z",
            "2017-02-30T10:56:07Z",
            "2017-05-07T24:00:00Z",
            "2017-05-07T10:56:07Q",
            "2017-05-07T10:56:07+2",
            "11/26/26",
            "2017-05-07T10:56:07.Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn c_locale_percent_c() {
        assert_eq!(
            parse_c_locale("Tue Feb 14 09:02:48 2012"),
            parse_iso8601("2012-02-14T09:02:48Z")
        );
        assert_eq!(
            parse_c_locale("Thu Feb  2 09:02:48 2012"),
            parse_iso8601("2012-02-02T09:02:48Z")
        );
        for bad in [
            "11/26/26",
            "Tue Feb 30 09:02:48 2012",
            "Xyz Feb 14 09:02:48 2012",
            "Tue Feb 14 09:02 2012",
            "Tue Feb 14 09:02:48 12",
            "Tue Feb 14 09:02:48 2012 extra",
        ] {
            assert_eq!(parse_c_locale(bad), None, "{bad}");
        }
    }
}
