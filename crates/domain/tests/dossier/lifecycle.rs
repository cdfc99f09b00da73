//! The ends of a dossier's life: lapse (*non parvenu*) after the deadline, rejection of a
//! non-conforming dossier, withdrawal (*désistement*) at any time; terminal states stay put.

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState, RejectionReason, Status};
use cachet_domain::DomainError;

use crate::support::*;

#[test]
fn a_pre_registration_without_deposit_lapses_at_midnight_after_the_deadline_day() {
    let state = given([pre_registered()])
        .when(DossierCommand::Lapse, at(paris(2023, 7, 7, 0, 0, 0), system()))
        .then(vec![DossierEvent::Lapsed { deadline: deadline() }]);
    assert_eq!(state.status, Status::Lapsed);
    assert_eq!(state.lapsed_deadline, Some(deadline()));
}

#[test]
fn the_exam_office_may_declare_a_dossier_not_received() {
    given([pre_registered()])
        .when(DossierCommand::Lapse, at(after_deadline(), staff()))
        .then(vec![DossierEvent::Lapsed { deadline: deadline() }]);
}

#[test]
fn a_dossier_cannot_lapse_on_the_deadline_day() {
    let error = given([pre_registered()])
        .when(DossierCommand::Lapse, at(paris(2023, 7, 6, 23, 59, 59), system()))
        .then_error(DomainError::LapseBeforeDeadline { deadline: "06/07/2023".to_owned() });
    assert_eq!(error.to_string(), "Le dossier ne peut être déclaré non parvenu qu'après la date limite du 06/07/2023.");
}

#[test]
fn a_dossier_cannot_lapse_before_an_extended_deadline() {
    given([pre_registered()])
        .in_session(extended_session(date(2023, 7, 20)))
        .when(DossierCommand::Lapse, at(after_deadline(), system()))
        .then_error(DomainError::LapseBeforeDeadline { deadline: "20/07/2023".to_owned() });
}

#[test]
fn lapsing_twice_records_nothing_the_second_time() {
    let mut events = vec![pre_registered()];
    events.extend(decided(&events, &DossierCommand::Lapse, after_deadline(), &system()));
    given(events).when(DossierCommand::Lapse, at(after_deadline(), system())).then(vec![]);
}

#[test]
fn a_deposited_dossier_cannot_lapse() {
    given(deposited_online()).when(DossierCommand::Lapse, at(after_deadline(), system())).then_error(
        DomainError::InvalidTransition {
            action: "déclarer le dossier non parvenu",
            status: "déposé, en attente de transfert",
        },
    );
}

#[test]
fn the_candidate_withdraws_with_a_reason() {
    let now = paris(2023, 7, 10, 9, 30, 0);
    let state = given(under_review())
        .when(DossierCommand::Withdraw { reason: Some("  mutation  ".to_owned()) }, at(now, candidate()))
        .then(vec![DossierEvent::Withdrawn { at: now, reason: Some("mutation".to_owned()) }]);
    assert_eq!(state.status, Status::Withdrawn);
    assert_eq!(state.withdrawn_at, Some(now));
}

#[test]
fn a_blank_withdrawal_reason_is_recorded_as_none() {
    let now = before_deadline();
    given([pre_registered()])
        .when(DossierCommand::Withdraw { reason: Some("   ".to_owned()) }, at(now, candidate()))
        .then(vec![DossierEvent::Withdrawn { at: now, reason: None }]);
}

#[test]
fn the_exam_office_records_a_withdrawal_at_any_stage_before_the_end() {
    let histories = [vec![pre_registered()], deposited_online(), under_review(), incomplete(), complete()];
    for events in histories {
        let now = after_deadline();
        given(events)
            .when(DossierCommand::Withdraw { reason: None }, at(now, staff()))
            .then(vec![DossierEvent::Withdrawn { at: now, reason: None }]);
    }
}

#[test]
fn a_lapsed_dossier_cannot_be_withdrawn() {
    given([pre_registered(), DossierEvent::Lapsed { deadline: deadline() }])
        .when(DossierCommand::Withdraw { reason: None }, at(after_deadline(), candidate()))
        .then_error(DomainError::InvalidTransition { action: "enregistrer un désistement", status: "non parvenu" });
}

#[test]
fn rejecting_a_non_conforming_dossier_needs_a_reason() {
    let error = given(under_review())
        .when(DossierCommand::Reject { detail: " ".to_owned() }, at(after_deadline(), staff()))
        .then_error(DomainError::ReasonRequired);
    assert_eq!(error.to_string(), "Un motif est obligatoire.");
}

#[test]
fn the_exam_office_rejects_a_non_conforming_dossier_with_its_reason() {
    let state = given(under_review())
        .when(DossierCommand::Reject { detail: " dossier non signé ".to_owned() }, at(after_deadline(), staff()))
        .then(vec![DossierEvent::Rejected {
            reason: RejectionReason::NonConforming { detail: "dossier non signé".to_owned() },
        }]);
    assert_eq!(state.status, Status::Rejected);
}

#[test]
fn a_dossier_that_was_never_deposited_cannot_be_rejected_as_non_conforming() {
    given([pre_registered()])
        .when(DossierCommand::Reject { detail: "non signé".to_owned() }, at(after_deadline(), staff()))
        .then_error(DomainError::InvalidTransition { action: "rejeter le dossier", status: "en attente de dépôt" });
}

/// Every command, each by the actor entitled to it, decided on a dossier in `history`.
fn every_command_is_refused(history: &[DossierEvent]) {
    let state = DossierState::fold(history);
    let session = session();
    for (command, actor) in commands_of_every_kind() {
        let ctx = Context { now: after_deadline(), actor: &actor, session: &session };
        let result = decide(&state, &command, &ctx);
        assert!(result.is_err(), "{command:?} by {actor:?} on a {:?} dossier gave {result:?}", state.status);
    }
}

#[test]
fn a_dossier_rejected_after_its_convocation_was_published_refuses_every_further_command() {
    let mut rejected = with_convocation_published();
    rejected
        .push(DossierEvent::Rejected { reason: RejectionReason::NonConforming { detail: "non signé".to_owned() } });
    every_command_is_refused(&rejected);
}

#[test]
fn a_dossier_rejected_as_late_refuses_every_further_command() {
    let mut events = vec![pre_registered()];
    events.extend(decided(
        &events,
        &DossierCommand::RecordPostalReceipt {
            postmark_date: date(2023, 7, 8),
            arrival_date: date(2023, 7, 10),
            incident: None,
        },
        after_deadline(),
        &staff(),
    ));
    every_command_is_refused(&events);
}

#[test]
fn a_dossier_withdrawn_after_its_convocation_was_published_refuses_every_further_command() {
    let mut withdrawn = with_convocation_published();
    withdrawn.push(DossierEvent::Withdrawn { at: after_deadline(), reason: None });
    every_command_is_refused(&withdrawn);
}
