//! Rule 1: pre-registration is not registration, and it closes with the deadline.

use cachet_domain::dossier::{DossierCommand, DossierEvent, Status};
use cachet_domain::ids::SessionId;
use cachet_domain::session::{SessionEvent, SessionState};
use cachet_domain::DomainError;
use uuid::Uuid;

use crate::support::*;

fn pre_register() -> DossierCommand {
    DossierCommand::PreRegister {
        dossier_id: dossier_id(),
        session_id: session_id(),
        candidate_id: candidate_id(),
        user_code: user_code(),
    }
}

#[test]
fn a_candidate_pre_registers_before_the_deadline_and_is_only_awaited() {
    let state = given([]).when(pre_register(), at(registered_at(), candidate())).then(vec![pre_registered()]);
    assert_eq!(state.status, Status::PreRegistered);
    assert_eq!(state.deposit, None, "a pre-registration is not a registration");
}

#[test]
fn the_exam_office_may_pre_register_a_candidate() {
    given([]).when(pre_register(), at(registered_at(), staff())).then(vec![pre_registered()]);
}

#[test]
fn pre_registration_is_still_open_at_23_59_59_on_the_deadline_day() {
    let now = paris(2023, 7, 6, 23, 59, 59);
    given([]).when(pre_register(), at(now, candidate())).then(vec![DossierEvent::PreRegistered {
        dossier_id: dossier_id(),
        session_id: session_id(),
        candidate_id: candidate_id(),
        user_code: user_code(),
        registered_at: now,
    }]);
}

#[test]
fn pre_registration_is_closed_from_midnight_after_the_deadline_day() {
    let error = given([])
        .when(pre_register(), at(paris(2023, 7, 7, 0, 0, 0), candidate()))
        .then_error(DomainError::PreRegistrationClosed { deadline: "06/07/2023".to_owned() });
    assert_eq!(error.to_string(), "Les préinscriptions sont closes depuis la date limite du 06/07/2023.");
}

#[test]
fn pre_registration_reopens_when_the_deadline_is_extended() {
    let extended = extended_session(date(2023, 7, 20));
    given([]).in_session(extended).when(pre_register(), at(after_deadline(), candidate())).then(vec![
        DossierEvent::PreRegistered {
            dossier_id: dossier_id(),
            session_id: session_id(),
            candidate_id: candidate_id(),
            user_code: user_code(),
            registered_at: after_deadline(),
        },
    ]);
}

#[test]
fn a_dossier_cannot_be_pre_registered_twice() {
    given([pre_registered()])
        .when(pre_register(), at(before_deadline(), candidate()))
        .then_error(DomainError::DossierAlreadyExists);
}

#[test]
fn a_dossier_cannot_be_pre_registered_in_another_session_than_the_one_given() {
    let command = DossierCommand::PreRegister {
        dossier_id: dossier_id(),
        session_id: SessionId::from_uuid(Uuid::from_u128(0x0ff)),
        candidate_id: candidate_id(),
        user_code: user_code(),
    };
    given([]).when(command, at(before_deadline(), candidate())).then_error(DomainError::WrongSession);
}

#[test]
fn nothing_can_be_decided_in_a_session_that_was_never_opened() {
    given([])
        .in_session(Default::default())
        .when(pre_register(), at(before_deadline(), candidate()))
        .then_error(DomainError::SessionNotOpened);
}

#[test]
fn a_command_on_a_dossier_that_does_not_exist_is_refused() {
    given([]).when(DossierCommand::Transfer, at(before_deadline(), staff())).then_error(DomainError::DossierNotFound);
}

#[test]
fn a_dossier_is_only_decided_in_the_session_it_belongs_to() {
    let mut other = config();
    other.title = "Autre examen".to_owned();
    let other_session = SessionState::fold(&[SessionEvent::SessionOpened {
        session_id: SessionId::from_uuid(Uuid::from_u128(0x0ff)),
        config: other,
    }]);
    given(with_form())
        .in_session(other_session)
        .when(DossierCommand::CloseRegistration, at(before_deadline(), candidate()))
        .then_error(DomainError::WrongSession);
}
