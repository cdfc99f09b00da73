//! Rules 2 and 3 at the counter (*accueil*): during opening hours, by the deadline day.

use cachet_domain::deadline::{DeadlineRule, Decisive, Verdict};
use cachet_domain::dossier::{DossierCommand, DossierEvent, RejectionReason, Status};
use cachet_domain::DomainError;
use chrono::{DateTime, NaiveDate, Utc};

use crate::support::*;

fn counter_verdict(received_at: DateTime<Utc>, deadline: NaiveDate, on_time: bool) -> Verdict {
    Verdict { rule: DeadlineRule::CounterByDeadlineDay, decisive: Decisive::Instant(received_at), deadline, on_time }
}

fn receipt(received_at: DateTime<Utc>) -> DossierCommand {
    DossierCommand::RecordCounterReceipt { received_at }
}

#[test]
fn a_dossier_handed_in_during_opening_hours_on_the_deadline_day_is_on_time() {
    let received_at = paris(2023, 7, 6, 16, 59, 59);
    let state = given([pre_registered()]).when(receipt(received_at), at(received_at, staff())).then(vec![
        DossierEvent::CounterReceiptRecorded { received_at, verdict: counter_verdict(received_at, deadline(), true) },
    ]);
    assert_eq!(state.status, Status::Deposited);
}

#[test]
fn a_counter_receipt_recorded_days_later_is_judged_by_when_it_was_handed_in() {
    let received_at = paris(2023, 7, 6, 10, 15, 0);
    given([pre_registered()]).when(receipt(received_at), at(after_deadline(), staff())).then(vec![
        DossierEvent::CounterReceiptRecorded { received_at, verdict: counter_verdict(received_at, deadline(), true) },
    ]);
}

#[test]
fn a_counter_receipt_outside_opening_hours_is_refused() {
    let received_at = paris(2023, 7, 6, 12, 30, 0);
    let error = given([pre_registered()]).when(receipt(received_at), at(after_deadline(), staff())).then_error(
        DomainError::CounterClosed { at: "06/07/2023 à 12h30".to_owned(), hours: COUNTER_HOURS.to_owned() },
    );
    assert_eq!(
        error.to_string(),
        format!(
            "L'accueil est fermé le 06/07/2023 à 12h30 : un dépôt à l'accueil ne peut être enregistré qu'aux \
             horaires d'ouverture ({COUNTER_HOURS})."
        )
    );
}

#[test]
fn a_counter_receipt_at_closing_time_is_refused() {
    let received_at = paris(2023, 7, 6, 17, 0, 0);
    given([pre_registered()]).when(receipt(received_at), at(after_deadline(), staff())).then_error(
        DomainError::CounterClosed { at: "06/07/2023 à 17h00".to_owned(), hours: COUNTER_HOURS.to_owned() },
    );
}

#[test]
fn a_counter_receipt_on_a_saturday_is_refused() {
    let received_at = paris(2023, 7, 1, 10, 0, 0);
    given([pre_registered()]).when(receipt(received_at), at(before_deadline(), staff())).then_error(
        DomainError::CounterClosed { at: "01/07/2023 à 10h00".to_owned(), hours: COUNTER_HOURS.to_owned() },
    );
}

#[test]
fn a_dossier_handed_in_the_day_after_the_deadline_is_rejected_as_late() {
    let received_at = paris(2023, 7, 7, 9, 0, 0);
    let verdict = counter_verdict(received_at, deadline(), false);
    let state = given([pre_registered()]).when(receipt(received_at), at(after_deadline(), staff())).then(vec![
        DossierEvent::CounterReceiptRecorded { received_at, verdict },
        DossierEvent::Rejected { reason: RejectionReason::Late { verdict } },
    ]);
    assert_eq!(state.status, Status::Rejected);
    assert_eq!(
        verdict.explanation(),
        "Dépôt à l'accueil le 07/07/2023 à 09h00, postérieur à la date limite du 06/07/2023"
    );
}

#[test]
fn a_counter_receipt_in_the_future_is_refused() {
    let received_at = paris(2023, 7, 4, 10, 0, 0);
    let error = given([pre_registered()])
        .when(receipt(received_at), at(before_deadline(), staff()))
        .then_error(DomainError::CounterReceiptInFuture { at: "04/07/2023 à 10h00".to_owned() });
    assert_eq!(
        error.to_string(),
        "La date et l'heure du dépôt à l'accueil (04/07/2023 à 10h00) ne peuvent pas être dans le futur."
    );
}

#[test]
fn a_counter_receipt_on_the_deadline_day_lifts_the_lapse_of_a_dossier_declared_not_received() {
    let events = vec![pre_registered(), DossierEvent::Lapsed { deadline: deadline() }];
    let received_at = paris(2023, 7, 6, 11, 0, 0);
    let state = given(events).when(receipt(received_at), at(after_deadline(), staff())).then(vec![
        DossierEvent::CounterReceiptRecorded { received_at, verdict: counter_verdict(received_at, deadline(), true) },
    ]);
    assert_eq!(state.status, Status::Deposited);
    assert_eq!(state.lapsed_deadline, None);
}

#[test]
fn a_counter_receipt_within_an_extended_deadline_is_on_time() {
    let new_deadline = date(2023, 7, 13);
    let received_at = paris(2023, 7, 10, 9, 30, 0);
    given([pre_registered()])
        .in_session(extended_session(new_deadline))
        .when(receipt(received_at), at(after_deadline(), staff()))
        .then(vec![DossierEvent::CounterReceiptRecorded {
            received_at,
            verdict: counter_verdict(received_at, new_deadline, true),
        }]);
}
