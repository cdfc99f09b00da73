//! Rule 2's "Europe/Paris, with its summer/winter time changes": the last second of the deadline
//! day and the first seconds after it, in summer, in winter and on both nights the clocks change,
//! decided through `decide` for an online closure and a counter receipt.

use cachet_domain::deadline::{DeadlineRule, Decisive, Verdict};
use cachet_domain::dossier::{DossierCommand, DossierEvent, RejectionReason};
use cachet_domain::session::{OpeningHours, SessionState};
use cachet_domain::time::format_instant;
use cachet_domain::DomainError;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};

use crate::support::*;

/// Deadlines in summer, in winter, and around both 2024 clock changes (31 March: 02h00 → 03h00;
/// 27 October: 03h00 → 02h00), with the UTC instant of the last second of each deadline day.
fn seasons() -> Vec<(&'static str, NaiveDate, &'static str)> {
    vec![
        ("summer", date(2023, 7, 6), "2023-07-06T21:59:59Z"),
        ("winter", date(2023, 12, 6), "2023-12-06T22:59:59Z"),
        ("eve of the spring change", date(2024, 3, 30), "2024-03-30T22:59:59Z"),
        ("day of the spring change", date(2024, 3, 31), "2024-03-31T21:59:59Z"),
        ("eve of the autumn change", date(2024, 10, 26), "2024-10-26T21:59:59Z"),
        ("day of the autumn change", date(2024, 10, 27), "2024-10-27T22:59:59Z"),
    ]
}

/// The default session with this deadline and a counter open around the clock every day, so that
/// only the deadline decides.
fn session_around_the_clock(deadline: NaiveDate) -> SessionState {
    let mut config = config_with_deadline(deadline);
    let closes = NaiveTime::from_hms_milli_opt(23, 59, 59, 999).expect("a valid time of day");
    config.counter_hours =
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun]
            .into_iter()
            .map(|weekday| OpeningHours { weekday, opens: NaiveTime::MIN, closes })
            .collect();
    session_with(config)
}

fn last_second(deadline: NaiveDate) -> DateTime<Utc> {
    paris(deadline.year(), deadline.month(), deadline.day(), 23, 59, 59)
}

fn first_second_after(deadline: NaiveDate) -> DateTime<Utc> {
    let next = deadline.succ_opt().expect("a next day");
    paris(next.year(), next.month(), next.day(), 0, 0, 1)
}

/// Pre-registered with the form uploaded, early enough for every deadline of [`seasons`].
fn ready_to_close() -> Vec<DossierEvent> {
    with_form()
}

#[test]
fn the_last_second_of_each_deadline_day_is_the_expected_utc_instant() {
    for (season, deadline, utc) in seasons() {
        let expected: DateTime<Utc> = utc.parse().expect("an RFC 3339 instant");
        assert_eq!(last_second(deadline), expected, "{season}");
    }
}

#[test]
fn an_online_closure_at_23_59_59_paris_is_accepted_in_every_season() {
    for (season, deadline, _) in seasons() {
        let now = last_second(deadline);
        let verdict = Verdict {
            rule: DeadlineRule::OnlineBeforeMidnight,
            decisive: Decisive::Instant(now),
            deadline,
            on_time: true,
        };
        given(ready_to_close())
            .labelled(season)
            .in_session(session_around_the_clock(deadline))
            .when(DossierCommand::CloseRegistration, at(now, candidate()))
            .then(vec![DossierEvent::RegistrationClosed { closed_at: now, pieces: vec![form()], verdict }]);
        assert!(format_instant(now).ends_with("à 23h59"), "{season}");
    }
}

#[test]
fn an_online_closure_at_00_00_01_paris_the_next_day_is_refused_in_every_season() {
    for (season, deadline, _) in seasons() {
        let now = first_second_after(deadline);
        let next = deadline.succ_opt().expect("a next day");
        let explanation = format!(
            "clôture en ligne le {} à 00h00, postérieure à la date limite du {} (inscription à clôturer avant minuit)",
            next.format("%d/%m/%Y"),
            deadline.format("%d/%m/%Y")
        );
        given(ready_to_close())
            .labelled(season)
            .in_session(session_around_the_clock(deadline))
            .when(DossierCommand::CloseRegistration, at(now, candidate()))
            .then_error(DomainError::ClosureAfterDeadline { explanation });
    }
}

#[test]
fn a_counter_receipt_at_23_59_59_paris_is_on_time_in_every_season() {
    for (season, deadline, _) in seasons() {
        let received_at = last_second(deadline);
        let verdict = Verdict {
            rule: DeadlineRule::CounterByDeadlineDay,
            decisive: Decisive::Instant(received_at),
            deadline,
            on_time: true,
        };
        given([pre_registered()])
            .labelled(season)
            .in_session(session_around_the_clock(deadline))
            .when(DossierCommand::RecordCounterReceipt { received_at }, at(first_second_after(deadline), staff()))
            .then(vec![DossierEvent::CounterReceiptRecorded { received_at, verdict }]);
    }
}

#[test]
fn a_counter_receipt_at_00_00_01_paris_the_next_day_is_rejected_as_late_in_every_season() {
    for (season, deadline, _) in seasons() {
        let received_at = first_second_after(deadline);
        let verdict = Verdict {
            rule: DeadlineRule::CounterByDeadlineDay,
            decisive: Decisive::Instant(received_at),
            deadline,
            on_time: false,
        };
        given([pre_registered()])
            .labelled(season)
            .in_session(session_around_the_clock(deadline))
            .when(DossierCommand::RecordCounterReceipt { received_at }, at(received_at, staff()))
            .then(vec![
                DossierEvent::CounterReceiptRecorded { received_at, verdict },
                DossierEvent::Rejected { reason: RejectionReason::Late { verdict } },
            ]);
    }
}

#[test]
fn a_closure_at_22h30_utc_is_late_on_the_spring_change_day_but_on_time_on_the_autumn_change_day() {
    let spring: DateTime<Utc> = "2024-03-31T22:30:00Z".parse().expect("an RFC 3339 instant");
    given(ready_to_close())
        .in_session(session_around_the_clock(date(2024, 3, 31)))
        .when(DossierCommand::CloseRegistration, at(spring, candidate()))
        .then_error(DomainError::ClosureAfterDeadline {
            explanation: "clôture en ligne le 01/04/2024 à 00h30, postérieure à la date limite du 31/03/2024 \
                          (inscription à clôturer avant minuit)"
                .to_owned(),
        });

    let autumn: DateTime<Utc> = "2024-10-27T22:30:00Z".parse().expect("an RFC 3339 instant");
    let verdict = Verdict {
        rule: DeadlineRule::OnlineBeforeMidnight,
        decisive: Decisive::Instant(autumn),
        deadline: date(2024, 10, 27),
        on_time: true,
    };
    given(ready_to_close())
        .in_session(session_around_the_clock(date(2024, 10, 27)))
        .when(DossierCommand::CloseRegistration, at(autumn, candidate()))
        .then(vec![DossierEvent::RegistrationClosed { closed_at: autumn, pieces: vec![form()], verdict }]);
}

#[test]
fn a_counter_receipt_in_the_repeated_hour_of_the_autumn_change_is_judged_by_its_paris_date() {
    // 02h30 happens twice on 27 October 2024: at 00h30 and at 01h30 UTC. Both are that Sunday.
    let deadline = date(2024, 10, 27);
    for utc in ["2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z"] {
        let received_at: DateTime<Utc> = utc.parse().expect("an RFC 3339 instant");
        let verdict = Verdict {
            rule: DeadlineRule::CounterByDeadlineDay,
            decisive: Decisive::Instant(received_at),
            deadline,
            on_time: true,
        };
        given([pre_registered()])
            .in_session(session_around_the_clock(deadline))
            .when(DossierCommand::RecordCounterReceipt { received_at }, at(first_second_after(deadline), staff()))
            .then(vec![DossierEvent::CounterReceiptRecorded { received_at, verdict }]);
    }
}
