//! Rules 2, 3 and 5 by post: the postmark decides (*le cachet de la poste faisant foi*), a late
//! postmark means rejection, and any transmission incident is the sender's risk.

use cachet_domain::deadline::{DeadlineRule, Decisive, Verdict};
use cachet_domain::dossier::{DossierCommand, DossierEvent, RejectionReason, Status, TransmissionIncident};
use cachet_domain::DomainError;
use chrono::NaiveDate;

use crate::support::*;

fn postmark_verdict(postmark: NaiveDate, deadline: NaiveDate, on_time: bool) -> Verdict {
    Verdict { rule: DeadlineRule::Postmark, decisive: Decisive::Date(postmark), deadline, on_time }
}

fn receipt(postmark: NaiveDate, arrival: NaiveDate) -> DossierCommand {
    DossierCommand::RecordPostalReceipt { postmark_date: postmark, arrival_date: arrival, incident: None }
}

#[test]
fn a_letter_postmarked_on_the_deadline_and_arriving_late_is_accepted() {
    let (postmark, arrival) = (date(2023, 7, 6), date(2023, 7, 12));
    let state = given([pre_registered()]).when(receipt(postmark, arrival), at(after_deadline(), staff())).then(vec![
        DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: arrival,
            incident: None,
            verdict: postmark_verdict(postmark, deadline(), true),
        },
    ]);
    assert_eq!(state.status, Status::Deposited);
    assert_eq!(state.rejection, None);
}

#[test]
fn a_letter_postmarked_the_day_after_the_deadline_is_rejected_as_late() {
    let (postmark, arrival) = (date(2023, 7, 7), date(2023, 7, 10));
    let verdict = postmark_verdict(postmark, deadline(), false);
    let state = given([pre_registered()]).when(receipt(postmark, arrival), at(after_deadline(), staff())).then(vec![
        DossierEvent::PostalReceiptRecorded { postmark_date: postmark, arrival_date: arrival, incident: None, verdict },
        DossierEvent::Rejected { reason: RejectionReason::Late { verdict } },
    ]);
    assert_eq!(state.status, Status::Rejected);
    assert_eq!(verdict.explanation(), "Cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023");
}

#[test]
fn a_postmark_in_the_future_is_refused() {
    let error = given([pre_registered()])
        .when(receipt(date(2023, 7, 18), date(2023, 7, 18)), at(after_deadline(), staff()))
        .then_error(DomainError::PostmarkInFuture { postmark: "18/07/2023".to_owned() });
    assert_eq!(error.to_string(), "La date du cachet de la poste (18/07/2023) ne peut pas être dans le futur.");
}

#[test]
fn an_arrival_in_the_future_is_refused() {
    given([pre_registered()])
        .when(receipt(date(2023, 7, 5), date(2023, 7, 18)), at(after_deadline(), staff()))
        .then_error(DomainError::ArrivalInFuture { arrival: "18/07/2023".to_owned() });
}

#[test]
fn an_arrival_before_the_postmark_is_refused() {
    let error = given([pre_registered()])
        .when(receipt(date(2023, 7, 6), date(2023, 7, 5)), at(after_deadline(), staff()))
        .then_error(DomainError::ArrivalBeforePostmark {
            arrival: "05/07/2023".to_owned(),
            postmark: "06/07/2023".to_owned(),
        });
    assert_eq!(
        error.to_string(),
        "La date d'arrivée (05/07/2023) est antérieure à la date du cachet de la poste (06/07/2023)."
    );
}

#[test]
fn every_transmission_incident_leads_to_rejection_even_on_time() {
    let (postmark, arrival) = (date(2023, 7, 5), date(2023, 7, 13));
    for incident in [
        TransmissionIncident::InsufficientPostage,
        TransmissionIncident::DamagedOrLost,
        TransmissionIncident::StrikeOrDelay,
    ] {
        let command = DossierCommand::RecordPostalReceipt {
            postmark_date: postmark,
            arrival_date: arrival,
            incident: Some(incident),
        };
        let state = given([pre_registered()]).when(command, at(after_deadline(), staff())).then(vec![
            DossierEvent::PostalReceiptRecorded {
                postmark_date: postmark,
                arrival_date: arrival,
                incident: Some(incident),
                verdict: postmark_verdict(postmark, deadline(), true),
            },
            DossierEvent::Rejected { reason: RejectionReason::TransmissionIncident { incident } },
        ]);
        assert_eq!(state.status, Status::Rejected, "{incident:?}");
    }
}

#[test]
fn a_late_letter_with_an_incident_is_rejected_once_as_late() {
    let (postmark, arrival) = (date(2023, 7, 8), date(2023, 7, 13));
    let verdict = postmark_verdict(postmark, deadline(), false);
    let command = DossierCommand::RecordPostalReceipt {
        postmark_date: postmark,
        arrival_date: arrival,
        incident: Some(TransmissionIncident::StrikeOrDelay),
    };
    given([pre_registered()]).when(command, at(after_deadline(), staff())).then(vec![
        DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: arrival,
            incident: Some(TransmissionIncident::StrikeOrDelay),
            verdict,
        },
        DossierEvent::Rejected { reason: RejectionReason::Late { verdict } },
    ]);
}

#[test]
fn a_letter_postmarked_on_time_lifts_the_lapse_of_a_dossier_declared_not_received() {
    let mut events = vec![pre_registered()];
    events.extend(decided(&events, &DossierCommand::Lapse, paris(2023, 7, 7, 0, 0, 0), &system()));
    assert_eq!(events.last(), Some(&DossierEvent::Lapsed { deadline: deadline() }));

    let (postmark, arrival) = (date(2023, 7, 6), date(2023, 7, 11));
    let state = given(events).when(receipt(postmark, arrival), at(after_deadline(), staff())).then(vec![
        DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: arrival,
            incident: None,
            verdict: postmark_verdict(postmark, deadline(), true),
        },
    ]);
    assert_eq!(state.status, Status::Deposited);
    assert_eq!(state.lapsed_deadline, None);
}

#[test]
fn a_late_letter_for_a_dossier_declared_not_received_is_rejected() {
    let events = vec![pre_registered(), DossierEvent::Lapsed { deadline: deadline() }];
    let (postmark, arrival) = (date(2023, 7, 7), date(2023, 7, 11));
    let verdict = postmark_verdict(postmark, deadline(), false);
    given(events).when(receipt(postmark, arrival), at(after_deadline(), staff())).then(vec![
        DossierEvent::PostalReceiptRecorded { postmark_date: postmark, arrival_date: arrival, incident: None, verdict },
        DossierEvent::Rejected { reason: RejectionReason::Late { verdict } },
    ]);
}

#[test]
fn a_letter_postmarked_within_an_extended_deadline_is_on_time() {
    let new_deadline = date(2023, 7, 13);
    let (postmark, arrival) = (date(2023, 7, 12), date(2023, 7, 15));
    given([pre_registered()])
        .in_session(extended_session(new_deadline))
        .when(receipt(postmark, arrival), at(after_deadline(), staff()))
        .then(vec![DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: arrival,
            incident: None,
            verdict: postmark_verdict(postmark, new_deadline, true),
        }]);
}

#[test]
fn a_second_paper_dossier_cannot_be_recorded_for_a_deposited_dossier() {
    given(deposited_online())
        .when(receipt(date(2023, 7, 5), date(2023, 7, 7)), at(after_deadline(), staff()))
        .then_error(DomainError::InvalidTransition {
            action: "enregistrer la réception du dossier",
            status: "déposé, en attente de transfert",
        });
}
