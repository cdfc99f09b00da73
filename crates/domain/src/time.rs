//! Civil time in Europe/Paris: conversions and the French formats shown to people.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use chrono_tz::Tz;

/// The time zone every deadline, opening hour and displayed time is expressed in.
pub const PARIS: Tz = Paris;

/// The civil date in Paris at an instant.
pub fn paris_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&PARIS).date_naive()
}

/// The civil date and time in Paris at an instant.
pub fn paris_datetime(at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&PARIS).naive_local()
}

/// The first instant of a civil day in Paris (midnight; Paris never skips midnight).
pub fn start_of_paris_day(date: NaiveDate) -> DateTime<Utc> {
    paris_to_utc(date.and_time(NaiveTime::MIN))
}

/// The instant at which a civil day ends in Paris: midnight at the start of the next day.
/// A deadline "before midnight" means strictly before this instant.
pub fn end_of_paris_day(date: NaiveDate) -> DateTime<Utc> {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX);
    start_of_paris_day(next)
}

/// Converts a Paris wall-clock time to an instant. A time that occurs twice (the autumn change)
/// takes its first occurrence; a time that does not exist (the spring gap) is moved forward past
/// the gap, as a clock on the wall would show it.
pub fn paris_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    match PARIS.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // The spring gap lasts one hour in Paris.
            let later = local + chrono::Duration::hours(1);
            match PARIS.from_local_datetime(&later) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                LocalResult::None => Utc.from_utc_datetime(&local),
            }
        }
    }
}

/// `06/07/2023`
pub fn format_date(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

/// `14h05`
pub fn format_time(time: NaiveTime) -> String {
    time.format("%Hh%M").to_string()
}

/// `06/07/2023 à 14h05`, in Paris time.
pub fn format_instant(at: DateTime<Utc>) -> String {
    let local = paris_datetime(at);
    format!("{} à {}", format_date(local.date()), format_time(local.time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_summer_day_ends_at_22h_utc() {
        let d = NaiveDate::from_ymd_opt(2023, 7, 6).unwrap();
        assert_eq!(end_of_paris_day(d), utc("2023-07-06T22:00:00Z"));
    }

    #[test]
    fn a_winter_day_ends_at_23h_utc() {
        let d = NaiveDate::from_ymd_opt(2023, 12, 6).unwrap();
        assert_eq!(end_of_paris_day(d), utc("2023-12-06T23:00:00Z"));
    }

    #[test]
    fn the_days_of_the_clock_changes_last_23_and_25_hours() {
        let spring = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        let autumn = NaiveDate::from_ymd_opt(2024, 10, 27).unwrap();
        assert_eq!((end_of_paris_day(spring) - start_of_paris_day(spring)).num_hours(), 23);
        assert_eq!((end_of_paris_day(autumn) - start_of_paris_day(autumn)).num_hours(), 25);
    }

    #[test]
    fn a_wall_time_in_the_spring_gap_moves_forward() {
        let local = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(paris_to_utc(local), utc("2024-03-31T01:30:00Z"));
    }

    #[test]
    fn instants_are_formatted_in_paris_time() {
        assert_eq!(format_instant(utc("2023-07-06T21:59:59Z")), "06/07/2023 à 23h59");
        assert_eq!(format_instant(utc("2023-12-06T22:59:59Z")), "06/12/2023 à 23h59");
    }
}
