//! Rules 2 and 6, online: pieces are uploaded, replaced or removed until the registration is
//! closed; closure needs the red-dot registration form and must happen before midnight, Paris time.

use cachet_domain::deadline::{DeadlineRule, Decisive, Verdict};
use cachet_domain::dossier::{DossierCommand, DossierEvent, Status};
use cachet_domain::DomainError;
use chrono::{DateTime, NaiveDate, Utc};

use crate::support::*;

fn online_verdict(closed_at: DateTime<Utc>, deadline: NaiveDate) -> Verdict {
    Verdict {
        rule: DeadlineRule::OnlineBeforeMidnight,
        decisive: Decisive::Instant(closed_at),
        deadline,
        on_time: true,
    }
}

fn upload(code: cachet_domain::ids::PieceCode, seed: u8) -> DossierCommand {
    DossierCommand::UploadPiece { piece: code, file: file(seed) }
}

#[test]
fn a_candidate_uploads_a_piece_before_the_deadline() {
    given([pre_registered()])
        .when(upload(appointment(), 7), at(before_deadline(), candidate()))
        .then(vec![DossierEvent::PieceUploaded { piece: appointment(), file: file(7), replaced: None }]);
}

#[test]
fn uploading_a_piece_again_replaces_the_previous_file() {
    let state = given(with_form())
        .when(upload(form(), 2), at(before_deadline(), candidate()))
        .then(vec![DossierEvent::PieceUploaded { piece: form(), file: file(2), replaced: Some(file(1).sha256) }]);
    assert_eq!(state.pieces[&form()].file, Some(file(2)));
}

#[test]
fn a_candidate_removes_an_uploaded_piece_before_closure() {
    let state = given(with_form())
        .when(DossierCommand::RemovePiece { piece: form() }, at(before_deadline(), candidate()))
        .then(vec![DossierEvent::PieceRemoved { piece: form(), removed: file(1).sha256 }]);
    assert_eq!(state.pieces[&form()].file, None);
}

#[test]
fn no_piece_can_be_removed_after_midnight_of_the_deadline_day() {
    given(with_form())
        .when(DossierCommand::RemovePiece { piece: form() }, at(paris(2023, 7, 7, 0, 0, 1), candidate()))
        .then_error(DomainError::UploadAfterDeadline { deadline: "06/07/2023".to_owned() });
}

#[test]
fn removing_a_piece_that_has_no_file_is_refused() {
    let error = given([pre_registered()])
        .when(DossierCommand::RemovePiece { piece: appointment() }, at(before_deadline(), candidate()))
        .then_error(DomainError::NoFileForPiece { label: APPOINTMENT_LABEL.to_owned() });
    assert_eq!(error.to_string(), "Aucun fichier n'est déposé pour la pièce « Arrêté de nomination dans le grade ».");
}

#[test]
fn a_piece_outside_the_session_catalogue_cannot_be_uploaded() {
    given([pre_registered()])
        .when(upload(piece("photo-identite"), 3), at(before_deadline(), candidate()))
        .then_error(DomainError::UnknownPiece { piece: "photo-identite".to_owned() });
}

#[test]
fn no_piece_can_be_uploaded_after_midnight_of_the_deadline_day() {
    let error = given([pre_registered()])
        .when(upload(form(), 1), at(paris(2023, 7, 7, 0, 0, 1), candidate()))
        .then_error(DomainError::UploadAfterDeadline { deadline: "06/07/2023".to_owned() });
    assert_eq!(error.to_string(), "Le dépôt en ligne n'est plus possible : la date limite du 06/07/2023 est dépassée.");
}

#[test]
fn no_piece_can_be_uploaded_once_the_registration_is_closed() {
    given(deposited_online()).when(upload(appointment(), 4), at(before_deadline(), candidate())).then_error(
        DomainError::InvalidTransition { action: "déposer une pièce", status: "déposé, en attente de transfert" },
    );
}

#[test]
fn no_piece_can_be_replaced_once_the_registration_is_closed() {
    given(deposited_online()).when(upload(form(), 9), at(before_deadline(), candidate())).then_error(
        DomainError::InvalidTransition { action: "déposer une pièce", status: "déposé, en attente de transfert" },
    );
}

#[test]
fn no_piece_can_be_removed_once_the_registration_is_closed() {
    let error = given(deposited_online())
        .when(DossierCommand::RemovePiece { piece: form() }, at(before_deadline(), candidate()))
        .then_error(DomainError::InvalidTransition {
            action: "retirer une pièce",
            status: "déposé, en attente de transfert",
        });
    assert_eq!(error.to_string(), "Impossible de retirer une pièce : le dossier est déposé, en attente de transfert.");
}

#[test]
fn closure_is_refused_while_the_red_dot_registration_form_is_not_attached() {
    let error = given([pre_registered(), uploaded(appointment(), 5)])
        .when(DossierCommand::CloseRegistration, at(before_deadline(), candidate()))
        .then_error(DomainError::RegistrationFormMissing { label: FORM_LABEL.to_owned() });
    assert_eq!(
        error.to_string(),
        "Vous ne pouvez pas clôturer votre inscription tant que votre « Dossier de pré-inscription » n'est pas joint."
    );
}

#[test]
fn closure_is_refused_when_the_registration_form_was_removed() {
    let mut events = with_form();
    events.push(DossierEvent::PieceRemoved { piece: form(), removed: file(1).sha256 });
    given(events)
        .when(DossierCommand::CloseRegistration, at(before_deadline(), candidate()))
        .then_error(DomainError::RegistrationFormMissing { label: FORM_LABEL.to_owned() });
}

#[test]
fn closure_with_only_the_registration_form_is_accepted_other_pieces_may_follow() {
    let now = before_deadline();
    let state = given(with_form()).when(DossierCommand::CloseRegistration, at(now, candidate())).then(vec![
        DossierEvent::RegistrationClosed {
            closed_at: now,
            pieces: vec![form()],
            verdict: online_verdict(now, deadline()),
        },
    ]);
    assert_eq!(state.status, Status::Deposited);
}

#[test]
fn closure_lists_every_piece_that_has_a_file() {
    let now = before_deadline();
    let mut events = with_form();
    events.push(uploaded(appointment(), 2));
    given(events).when(DossierCommand::CloseRegistration, at(now, candidate())).then(vec![
        DossierEvent::RegistrationClosed {
            closed_at: now,
            pieces: vec![appointment(), form()],
            verdict: online_verdict(now, deadline()),
        },
    ]);
}

#[test]
fn closure_at_23_59_59_paris_on_the_deadline_day_is_accepted() {
    let now = paris(2023, 7, 6, 23, 59, 59);
    given(with_form()).when(DossierCommand::CloseRegistration, at(now, candidate())).then(vec![
        DossierEvent::RegistrationClosed {
            closed_at: now,
            pieces: vec![form()],
            verdict: online_verdict(now, deadline()),
        },
    ]);
}

#[test]
fn closure_at_midnight_paris_after_the_deadline_day_is_refused() {
    let error = given(with_form())
        .when(DossierCommand::CloseRegistration, at(paris(2023, 7, 7, 0, 0, 0), candidate()))
        .then_error(DomainError::ClosureAfterDeadline {
            explanation: "clôture en ligne le 07/07/2023 à 00h00, postérieure à la date limite du 06/07/2023 \
                          (inscription à clôturer avant minuit)"
                .to_owned(),
        });
    assert_eq!(
        error.to_string(),
        "La clôture de l'inscription n'est plus possible : clôture en ligne le 07/07/2023 à 00h00, postérieure à la \
         date limite du 06/07/2023 (inscription à clôturer avant minuit)."
    );
}

#[test]
fn closure_at_22h30_utc_on_a_summer_deadline_day_is_refused_because_paris_is_past_midnight() {
    let now: DateTime<Utc> = "2023-07-06T22:30:00Z".parse().expect("an RFC 3339 instant");
    given(with_form()).when(DossierCommand::CloseRegistration, at(now, candidate())).then_error(
        DomainError::ClosureAfterDeadline {
            explanation: "clôture en ligne le 07/07/2023 à 00h30, postérieure à la date limite du 06/07/2023 \
                          (inscription à clôturer avant minuit)"
                .to_owned(),
        },
    );
}

#[test]
fn a_registration_cannot_be_closed_twice() {
    given(deposited_online()).when(DossierCommand::CloseRegistration, at(before_deadline(), candidate())).then_error(
        DomainError::InvalidTransition {
            action: "clôturer l'inscription", status: "déposé, en attente de transfert"
        },
    );
}

#[test]
fn an_extended_deadline_allows_a_closure_after_the_original_one() {
    let now = after_deadline();
    let new_deadline = date(2023, 7, 20);
    given(with_form())
        .in_session(extended_session(new_deadline))
        .when(DossierCommand::CloseRegistration, at(now, candidate()))
        .then(vec![DossierEvent::RegistrationClosed {
            closed_at: now,
            pieces: vec![form()],
            verdict: online_verdict(now, new_deadline),
        }]);
}
