//! What the candidate reads in the espace sécurisé, quoted exactly from the source document for
//! the states it words, and plain formal French for rejection, lapse and withdrawal.

use cachet_domain::deadline::{judge_counter, judge_online_closure, judge_postmark};
use cachet_domain::dossier::{
    CandidateMessage, DossierCommand, DossierEvent, DossierState, RefusedForm, RejectionReason, TransmissionIncident,
};

use crate::support::*;

#[track_caller]
fn message(events: &[DossierEvent]) -> CandidateMessage {
    DossierState::fold(events).candidate_message().expect("a message for a registered dossier")
}

#[track_caller]
fn text(events: &[DossierEvent]) -> String {
    let message = message(events);
    assert!(message.missing.is_empty(), "no list of missing pieces outside the incomplete state");
    message.text
}

const AWAITED: &str = "Votre préinscription a été enregistrée le 12/06/2023 à 14h05, le Centre de Gestion est en \
                       attente de votre dossier.";

fn rejected_because(reason: RejectionReason) -> Vec<DossierEvent> {
    let mut events = deposited_online();
    events.push(DossierEvent::Rejected { reason });
    events
}

#[test]
fn there_is_no_message_before_pre_registration() {
    assert_eq!(DossierState::default().candidate_message(), None);
}

#[test]
fn a_pre_registered_candidate_reads_that_the_dossier_is_awaited_with_the_paris_date_and_time() {
    assert_eq!(text(&[pre_registered()]), AWAITED);
}

#[test]
fn the_awaited_message_shows_paris_time_in_winter_too() {
    let winter = DossierEvent::PreRegistered {
        dossier_id: dossier_id(),
        session_id: session_id(),
        candidate_id: candidate_id(),
        user_code: user_code(),
        registered_at: "2023-12-01T08:07:00Z".parse().expect("an RFC 3339 instant"),
    };
    assert_eq!(
        text(&[winter]),
        "Votre préinscription a été enregistrée le 01/12/2023 à 09h07, le Centre de Gestion est en attente de votre \
         dossier."
    );
}

#[test]
fn the_awaited_message_shows_the_paris_date_when_utc_is_still_the_day_before() {
    let late_evening = DossierEvent::PreRegistered {
        dossier_id: dossier_id(),
        session_id: session_id(),
        candidate_id: candidate_id(),
        user_code: user_code(),
        registered_at: "2023-06-30T22:15:00Z".parse().expect("an RFC 3339 instant"),
    };
    assert_eq!(
        text(&[late_evening]),
        "Votre préinscription a été enregistrée le 01/07/2023 à 00h15, le Centre de Gestion est en attente de votre \
         dossier."
    );
}

#[test]
fn uploading_pieces_does_not_change_the_awaited_message() {
    assert_eq!(text(&with_form()), AWAITED);
}

#[test]
fn a_dossier_closed_online_but_not_transferred_still_reads_as_awaited() {
    assert_eq!(text(&deposited_online()), AWAITED);
}

#[test]
fn a_dossier_received_by_post_but_not_transferred_still_reads_as_awaited() {
    let mut events = vec![pre_registered()];
    events.extend(decided(
        &events,
        &DossierCommand::RecordPostalReceipt {
            postmark_date: date(2023, 7, 5),
            arrival_date: date(2023, 7, 7),
            incident: None,
        },
        after_deadline(),
        &staff(),
    ));
    assert_eq!(text(&events), AWAITED);
}

#[test]
fn a_transferred_dossier_reads_as_received_and_under_review() {
    assert_eq!(
        text(&under_review()),
        "Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction."
    );
}

#[test]
fn an_incomplete_dossier_reads_as_incomplete_followed_by_the_missing_pieces() {
    assert_eq!(
        message(&incomplete()),
        CandidateMessage {
            text: "Votre dossier est incomplet".to_owned(),
            missing: vec![
                "Arrêté de nomination dans le grade".to_owned(),
                "Demande d'aménagement des épreuves (pièce refusée : document illisible)".to_owned(),
            ],
        }
    );
}

#[test]
fn a_dossier_whose_last_missing_piece_arrived_reads_as_under_review_again() {
    let mut events = incomplete();
    for code in [appointment(), adaptation()] {
        events.extend(decided(
            &events,
            &DossierCommand::UploadMissingPiece { piece: code, file: file(60) },
            after_deadline(),
            &candidate(),
        ));
    }
    assert_eq!(text(&events), "Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction.");
}

#[test]
fn a_complete_dossier_reads_as_complete() {
    assert_eq!(text(&complete()), "Votre dossier est complet");
}

#[test]
fn a_dossier_postmarked_late_reads_as_rejected_with_the_postmark_and_the_deadline() {
    let verdict = judge_postmark(date(2023, 7, 7), deadline());
    assert_eq!(
        text(&rejected_because(RejectionReason::Late { verdict })),
        "Votre dossier a été rejeté car il a été déposé ou posté hors délai : cachet de la poste du 07/07/2023, \
         postérieur à la date limite du 06/07/2023."
    );
}

#[test]
fn a_dossier_handed_in_late_reads_as_rejected_with_the_moment_and_the_deadline() {
    let verdict = judge_counter(paris(2023, 7, 7, 9, 15, 0), deadline());
    assert_eq!(
        text(&rejected_because(RejectionReason::Late { verdict })),
        "Votre dossier a été rejeté car il a été déposé ou posté hors délai : dépôt à l'accueil le 07/07/2023 à \
         09h15, postérieur à la date limite du 06/07/2023."
    );
}

#[test]
fn a_late_online_closure_would_read_as_rejected_with_the_moment_and_the_deadline() {
    let verdict = judge_online_closure(paris(2023, 7, 7, 0, 0, 1), deadline());
    assert_eq!(
        text(&rejected_because(RejectionReason::Late { verdict })),
        "Votre dossier a été rejeté car il a été déposé ou posté hors délai : clôture en ligne le 07/07/2023 à \
         00h00, postérieure à la date limite du 06/07/2023 (inscription à clôturer avant minuit)."
    );
}

#[test]
fn a_dossier_hit_by_a_transmission_incident_reads_as_rejected_with_the_incident() {
    let cases = [
        (TransmissionIncident::InsufficientPostage, "affranchissement insuffisant"),
        (TransmissionIncident::DamagedOrLost, "dossier endommagé ou perdu"),
        (TransmissionIncident::StrikeOrDelay, "grève ou retard d'acheminement"),
    ];
    for (incident, label) in cases {
        assert_eq!(
            text(&rejected_because(RejectionReason::TransmissionIncident { incident })),
            format!(
                "Votre dossier a été rejeté en raison d'un incident de transmission ({label}) : tout incident de \
                 transmission engage la responsabilité de l'émetteur et entraîne un refus systématique d'admission \
                 à concourir."
            )
        );
    }
}

#[test]
fn a_dossier_in_a_refused_form_reads_as_rejected_with_the_form() {
    let cases = [
        (RefusedForm::Fax, "transmis par télécopie"),
        (RefusedForm::Email, "transmis par messagerie électronique"),
        (RefusedForm::Photocopy, "photocopié"),
        (RefusedForm::Screenshot, "sous forme de capture d'écran"),
        (RefusedForm::ConvertedAndModified, "converti dans un autre format et modifié"),
    ];
    for (form, label) in cases {
        assert_eq!(
            text(&rejected_because(RejectionReason::RefusedForm { form })),
            format!("Votre dossier a été rejeté : aucun dossier {label} ne peut être accepté.")
        );
    }
}

#[test]
fn a_non_conforming_dossier_reads_as_rejected_with_the_detail() {
    let detail = "le dossier de pré-inscription n'est ni daté ni signé.".to_owned();
    assert_eq!(
        text(&rejected_because(RejectionReason::NonConforming { detail })),
        "Votre dossier a été rejeté car il n'est pas conforme : le dossier de pré-inscription n'est ni daté ni signé."
    );
}

#[test]
fn a_lapsed_dossier_reads_as_not_received_before_the_deadline() {
    assert_eq!(
        text(&[pre_registered(), DossierEvent::Lapsed { deadline: deadline() }]),
        "Votre dossier n'est pas parvenu au Centre de Gestion avant la date limite du 06/07/2023 : votre \
         préinscription n'a pas été suivie d'une inscription."
    );
}

#[test]
fn a_withdrawn_dossier_reads_as_withdrawn_with_the_paris_date_and_time() {
    let mut events = under_review();
    events.push(DossierEvent::Withdrawn { at: paris(2023, 7, 10, 9, 30, 0), reason: Some("mutation".to_owned()) });
    assert_eq!(
        text(&events),
        "Votre désistement a été enregistré le 10/07/2023 à 09h30 : votre candidature n'est plus examinée."
    );
}
