//! A deadline may be extended by a recorded decision of the session stream; the extension then
//! decides every verdict of the dossiers of that session.

use cachet_domain::deadline::{DeadlineRule, Decisive, Verdict};
use cachet_domain::dossier::{DossierCommand, DossierEvent, RejectionReason};
use cachet_domain::session::{decide_session, SessionCommand, SessionEvent, SessionState};
use cachet_domain::DomainError;

use crate::support::*;

fn opened() -> Vec<SessionEvent> {
    vec![SessionEvent::SessionOpened { session_id: session_id(), config: config() }]
}

fn extend(new_deadline: chrono::NaiveDate, reason: &str) -> SessionCommand {
    SessionCommand::ExtendDeadline { new_deadline, reason: reason.to_owned() }
}

#[test]
fn an_administrator_extends_the_deadline_with_a_reason() {
    let events =
        decide_session(&SessionState::fold(&opened()), &extend(date(2023, 7, 13), " grève postale "), &admin());
    assert_eq!(
        events,
        Ok(vec![SessionEvent::DeadlineExtended {
            previous: deadline(),
            new_deadline: date(2023, 7, 13),
            reason: "grève postale".to_owned(),
        }])
    );
}

#[test]
fn an_extension_needs_a_reason_and_a_later_date() {
    let state = SessionState::fold(&opened());
    assert_eq!(decide_session(&state, &extend(date(2023, 7, 13), "  "), &admin()), Err(DomainError::ReasonRequired));
    let error = decide_session(&state, &extend(date(2023, 7, 6), "grève"), &admin()).expect_err("not later");
    assert_eq!(
        error.to_string(),
        "La nouvelle date limite (06/07/2023) doit être postérieure à la date limite actuelle (06/07/2023)."
    );
}

#[test]
fn only_an_administrator_or_the_system_may_change_a_session() {
    let state = SessionState::fold(&opened());
    for actor in [staff(), auditor(), candidate()] {
        assert_eq!(
            decide_session(&state, &extend(date(2023, 7, 13), "grève"), &actor),
            Err(DomainError::NotAllowed { action: "modifier une session d'examen" }),
            "{actor:?}"
        );
    }
}

#[test]
fn the_same_late_postmark_is_on_time_once_the_deadline_is_extended() {
    let postmark = date(2023, 7, 10);
    let command =
        DossierCommand::RecordPostalReceipt { postmark_date: postmark, arrival_date: postmark, incident: None };
    let verdict = |deadline, on_time| Verdict {
        rule: DeadlineRule::Postmark,
        decisive: Decisive::Date(postmark),
        deadline,
        on_time,
    };

    let late = verdict(deadline(), false);
    given([pre_registered()]).when(command.clone(), at(after_deadline(), staff())).then(vec![
        DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: postmark,
            incident: None,
            verdict: late,
        },
        DossierEvent::Rejected { reason: RejectionReason::Late { verdict: late } },
    ]);

    let mut session_events = opened();
    let extension =
        decide_session(&SessionState::fold(&session_events), &extend(date(2023, 7, 13), "grève postale"), &admin())
            .expect("an extension");
    session_events.extend(extension);
    given([pre_registered()])
        .in_session(SessionState::fold(&session_events))
        .when(command, at(after_deadline(), staff()))
        .then(vec![DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: postmark,
            incident: None,
            verdict: verdict(date(2023, 7, 13), true),
        }]);
}

#[test]
fn a_lapsed_candidate_can_close_online_again_once_the_deadline_is_extended() {
    let mut events = vec![pre_registered(), DossierEvent::Lapsed { deadline: deadline() }];
    let extended = extended_session(date(2023, 7, 13));
    let now = paris(2023, 7, 12, 22, 0, 0);
    given(events.clone())
        .in_session(extended.clone())
        .when(DossierCommand::UploadPiece { piece: form(), file: file(1) }, at(now, candidate()))
        .then(vec![uploaded(form(), 1)]);
    events.push(uploaded(form(), 1));
    let state =
        given(events).in_session(extended).when(DossierCommand::CloseRegistration, at(now, candidate())).then(vec![
            DossierEvent::RegistrationClosed {
                closed_at: now,
                pieces: vec![form()],
                verdict: Verdict {
                    rule: DeadlineRule::OnlineBeforeMidnight,
                    decisive: Decisive::Instant(now),
                    deadline: date(2023, 7, 13),
                    on_time: true,
                },
            },
        ]);
    assert_eq!(state.lapsed_deadline, None);
    assert_eq!(
        state.candidate_message().unwrap().text,
        "Votre préinscription a été enregistrée le 12/06/2023 à 14h05, le Centre de Gestion est en attente de votre dossier."
    );
}

#[test]
fn an_extension_would_make_a_late_postmark_on_time_but_the_decision_stays() {
    use cachet_domain::deadline::judge_postmark;
    use cachet_domain::dossier::{DossierState, ExtensionEffect};
    let verdict = judge_postmark(date(2023, 7, 10), deadline());
    let rejected =
        DossierState::fold(&[pre_registered(), DossierEvent::Rejected { reason: RejectionReason::Late { verdict } }]);
    assert_eq!(rejected.extension_effect(date(2023, 7, 9)), None, "still late on the 9th");
    assert_eq!(
        rejected.extension_effect(date(2023, 7, 10)),
        Some(ExtensionEffect::LateWouldBeOnTime {
            was: verdict,
            would_be: judge_postmark(date(2023, 7, 10), date(2023, 7, 10))
        })
    );
    let lapsed = DossierState::fold(&[pre_registered(), DossierEvent::Lapsed { deadline: deadline() }]);
    assert_eq!(lapsed.extension_effect(date(2023, 7, 13)), Some(ExtensionEffect::LapsedReopens));
    assert_eq!(DossierState::fold(&[pre_registered()]).extension_effect(date(2023, 7, 13)), None);
}
