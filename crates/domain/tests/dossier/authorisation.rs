//! Who may do what: the candidate acts on their own dossier only, the exam office records paper
//! deposits and reviews, the system only declares lapses, and an auditor changes nothing.

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState};
use cachet_domain::event::StaffRole;
use cachet_domain::{Actor, DomainError};

use crate::support::*;

/// For each kind of command: a history in which the entitled actor's command succeeds.
fn history_for(command: &DossierCommand) -> Vec<DossierEvent> {
    match command {
        DossierCommand::PreRegister { .. } => vec![],
        DossierCommand::UploadPiece { .. }
        | DossierCommand::RemovePiece { .. }
        | DossierCommand::CloseRegistration
        | DossierCommand::RecordPostalReceipt { .. }
        | DossierCommand::RecordCounterReceipt { .. }
        | DossierCommand::RecordRefusedIntake { .. }
        | DossierCommand::Lapse
        | DossierCommand::Withdraw { .. } => with_form(),
        DossierCommand::Transfer => deposited_online(),
        DossierCommand::ReviewPiece { .. } | DossierCommand::ConcludeReview | DossierCommand::Reject { .. } => {
            under_review()
        }
        DossierCommand::UploadMissingPiece { .. } | DossierCommand::ReceiveMissingPiece { .. } => incomplete(),
        DossierCommand::PublishConvocation { .. } | DossierCommand::WithholdConvocation { .. } => complete(),
        DossierCommand::DownloadConvocation { .. } => with_convocation_published(),
    }
}

/// When the entitled actor's command succeeds: before the deadline for online deposits, after it
/// for paper records and lapses, well before the tests for convocations.
fn moment_for(command: &DossierCommand) -> chrono::DateTime<chrono::Utc> {
    match command {
        DossierCommand::PreRegister { .. }
        | DossierCommand::UploadPiece { .. }
        | DossierCommand::RemovePiece { .. }
        | DossierCommand::CloseRegistration => before_deadline(),
        _ => after_deadline(),
    }
}

fn decide_as(command: &DossierCommand, actor: &Actor) -> Result<Vec<DossierEvent>, DomainError> {
    let state = DossierState::fold(&history_for(command));
    let session = session();
    decide(&state, command, &Context { now: moment_for(command), actor, session: &session })
}

#[test]
fn every_command_succeeds_for_the_actor_entitled_to_it() {
    for (command, actor) in commands_of_every_kind() {
        let result = decide_as(&command, &actor);
        assert!(result.as_ref().is_ok_and(|events| !events.is_empty()), "{command:?} by {actor:?}: {result:?}");
    }
}

#[test]
fn an_auditor_can_do_nothing() {
    for (command, _) in commands_of_every_kind() {
        let result = decide_as(&command, &auditor());
        assert!(matches!(result, Err(DomainError::NotAllowed { .. })), "{command:?} by an auditor: {result:?}");
    }
}

#[test]
fn an_auditor_cannot_even_repeat_a_lapse_that_changes_nothing() {
    given([pre_registered(), DossierEvent::Lapsed { deadline: deadline() }])
        .when(DossierCommand::Lapse, at(after_deadline(), auditor()))
        .then_error(DomainError::NotAllowed { action: "déclarer un dossier non parvenu" });
}

#[test]
fn a_candidate_cannot_act_on_another_candidates_dossier() {
    for (command, actor) in commands_of_every_kind() {
        if actor != candidate() || matches!(command, DossierCommand::PreRegister { .. }) {
            continue;
        }
        let result = decide_as(&command, &another_candidate());
        assert!(matches!(result, Err(DomainError::NotAllowed { .. })), "{command:?} by another candidate: {result:?}");
    }
}

#[test]
fn a_candidate_cannot_pre_register_someone_else() {
    let command = DossierCommand::PreRegister {
        dossier_id: dossier_id(),
        session_id: session_id(),
        candidate_id: candidate_id(),
        user_code: user_code(),
    };
    given([])
        .when(command, at(before_deadline(), another_candidate()))
        .then_error(DomainError::NotAllowed { action: "vous préinscrire" });
}

#[test]
fn a_candidate_cannot_record_a_postal_receipt_of_their_own_dossier() {
    let command = DossierCommand::RecordPostalReceipt {
        postmark_date: date(2023, 7, 5),
        arrival_date: date(2023, 7, 7),
        incident: None,
    };
    let error = given([pre_registered()])
        .when(command, at(after_deadline(), candidate()))
        .then_error(DomainError::NotAllowed { action: "enregistrer la réception d'un dossier" });
    assert_eq!(error.to_string(), "Vous n'êtes pas autorisé(e) à enregistrer la réception d'un dossier.");
}

#[test]
fn a_candidate_cannot_do_the_exam_offices_work_on_their_own_dossier() {
    for (command, actor) in commands_of_every_kind() {
        if !matches!(actor, Actor::Staff { .. } | Actor::System { .. }) {
            continue;
        }
        let result = decide_as(&command, &candidate());
        assert!(matches!(result, Err(DomainError::NotAllowed { .. })), "{command:?} by the candidate: {result:?}");
    }
}

#[test]
fn the_exam_office_cannot_upload_close_or_download_in_the_candidates_place() {
    for (command, actor) in commands_of_every_kind() {
        let candidate_only = actor == candidate()
            && !matches!(command, DossierCommand::PreRegister { .. } | DossierCommand::Withdraw { .. });
        if !candidate_only {
            continue;
        }
        let result = decide_as(&command, &staff());
        assert!(matches!(result, Err(DomainError::NotAllowed { .. })), "{command:?} by staff: {result:?}");
    }
}

#[test]
fn an_administrator_may_do_what_the_exam_office_does() {
    for (command, actor) in commands_of_every_kind() {
        if !matches!(actor, Actor::Staff { role: StaffRole::Staff, .. }) {
            continue;
        }
        let result = decide_as(&command, &admin());
        assert!(result.is_ok(), "{command:?} by an administrator: {result:?}");
    }
}

#[test]
fn the_system_may_only_declare_lapses() {
    for (command, _) in commands_of_every_kind() {
        let result = decide_as(&command, &system());
        if matches!(command, DossierCommand::Lapse) {
            assert!(result.is_ok(), "{result:?}");
        } else {
            assert!(matches!(result, Err(DomainError::NotAllowed { .. })), "{command:?} by the system: {result:?}");
        }
    }
}
