//! Rules 7 and 8: a deposited dossier is transferred, reviewed piece by piece, found incomplete
//! (with the list of missing pieces) or complete; missing pieces arrive online or on paper.

use cachet_domain::dossier::{
    DossierCommand, DossierEvent, MissingPiece, PaperDelivery, PieceDelivery, PieceReview, Status,
};
use cachet_domain::DomainError;

use crate::support::*;

fn review(code: cachet_domain::ids::PieceCode, review: PieceReview) -> DossierCommand {
    DossierCommand::ReviewPiece { piece: code, review }
}

fn missing_appointment() -> MissingPiece {
    MissingPiece { code: appointment(), label: APPOINTMENT_LABEL.to_owned(), reason: None }
}

fn refused_adaptation() -> MissingPiece {
    MissingPiece { code: adaptation(), label: ADAPTATION_LABEL.to_owned(), reason: Some(ILLEGIBLE.to_owned()) }
}

#[test]
fn the_exam_office_transfers_a_deposited_dossier_into_review() {
    let state = given(deposited_online())
        .when(DossierCommand::Transfer, at(after_deadline(), staff()))
        .then(vec![DossierEvent::Transferred]);
    assert_eq!(state.status, Status::UnderReview);
}

#[test]
fn a_dossier_that_was_not_deposited_cannot_be_transferred() {
    given(with_form()).when(DossierCommand::Transfer, at(after_deadline(), staff())).then_error(
        DomainError::InvalidTransition { action: "transférer le dossier", status: "en attente de dépôt" },
    );
}

#[test]
fn a_dossier_cannot_be_transferred_twice() {
    given(under_review()).when(DossierCommand::Transfer, at(after_deadline(), staff())).then_error(
        DomainError::InvalidTransition { action: "transférer le dossier", status: "en cours d'instruction" },
    );
}

#[test]
fn a_dossier_deposited_by_post_is_transferred_like_one_closed_online() {
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
    given(events).when(DossierCommand::Transfer, at(after_deadline(), staff())).then(vec![DossierEvent::Transferred]);
}

#[test]
fn a_dossier_under_review_is_not_reviewed_before_transfer() {
    given(deposited_online()).when(review(form(), PieceReview::Accepted), at(after_deadline(), staff())).then_error(
        DomainError::InvalidTransition { action: "instruire une pièce", status: "déposé, en attente de transfert" },
    );
}

#[test]
fn each_piece_is_reviewed_on_its_own() {
    let state = given(under_review())
        .when(review(form(), PieceReview::Accepted), at(after_deadline(), staff()))
        .then(vec![DossierEvent::PieceReviewed { piece: form(), review: PieceReview::Accepted }]);
    assert_eq!(state.pieces[&form()].review, Some(PieceReview::Accepted));
    assert_eq!(state.status, Status::UnderReview);
}

#[test]
fn refusing_a_piece_needs_a_reason() {
    given(under_review())
        .when(review(form(), PieceReview::Refused { reason: "  ".to_owned() }), at(after_deadline(), staff()))
        .then_error(DomainError::ReasonRequired);
}

#[test]
fn the_reason_a_piece_is_refused_is_recorded_trimmed() {
    given(under_review())
        .when(review(form(), PieceReview::Refused { reason: "  non signé ".to_owned() }), at(after_deadline(), staff()))
        .then(vec![DossierEvent::PieceReviewed {
            piece: form(),
            review: PieceReview::Refused { reason: "non signé".to_owned() },
        }]);
}

#[test]
fn a_piece_outside_the_catalogue_cannot_be_reviewed() {
    given(under_review())
        .when(review(piece("casier-judiciaire"), PieceReview::Accepted), at(after_deadline(), staff()))
        .then_error(DomainError::UnknownPiece { piece: "casier-judiciaire".to_owned() });
}

#[test]
fn a_review_ends_incomplete_with_the_missing_pieces_their_labels_and_refusal_reasons() {
    let mut events = under_review();
    for (code, finding) in [
        (form(), PieceReview::Accepted),
        (appointment(), PieceReview::Missing),
        (adaptation(), PieceReview::Refused { reason: ILLEGIBLE.to_owned() }),
    ] {
        events.extend(decided(&events, &review(code, finding), after_deadline(), &staff()));
    }
    let state = given(events)
        .when(DossierCommand::ConcludeReview, at(after_deadline(), staff()))
        .then(vec![DossierEvent::MarkedIncomplete { missing: vec![missing_appointment(), refused_adaptation()] }]);
    assert_eq!(state.status, Status::Incomplete);
    assert_eq!(state.missing, vec![missing_appointment(), refused_adaptation()]);
}

#[test]
fn a_required_piece_not_yet_reviewed_counts_as_missing() {
    let mut events = under_review();
    events.extend(decided(&events, &review(form(), PieceReview::Accepted), after_deadline(), &staff()));
    given(events)
        .when(DossierCommand::ConcludeReview, at(after_deadline(), staff()))
        .then(vec![DossierEvent::MarkedIncomplete { missing: vec![missing_appointment()] }]);
}

#[test]
fn a_refused_registration_form_keeps_the_dossier_incomplete() {
    let mut events = under_review();
    for (code, finding) in
        [(form(), PieceReview::Refused { reason: "non signé".to_owned() }), (appointment(), PieceReview::Accepted)]
    {
        events.extend(decided(&events, &review(code, finding), after_deadline(), &staff()));
    }
    given(events).when(DossierCommand::ConcludeReview, at(after_deadline(), staff())).then(vec![
        DossierEvent::MarkedIncomplete {
            missing: vec![MissingPiece {
                code: form(),
                label: FORM_LABEL.to_owned(),
                reason: Some("non signé".to_owned()),
            }],
        },
    ]);
}

#[test]
fn a_review_ends_complete_when_every_required_piece_is_accepted_and_no_conditional_piece_refused() {
    let mut events = under_review();
    for code in [form(), appointment()] {
        events.extend(decided(&events, &review(code, PieceReview::Accepted), after_deadline(), &staff()));
    }
    let state = given(events)
        .when(DossierCommand::ConcludeReview, at(after_deadline(), staff()))
        .then(vec![DossierEvent::MarkedComplete]);
    assert_eq!(state.status, Status::Complete);
    assert!(state.missing.is_empty());
}

#[test]
fn concluding_an_incomplete_review_again_with_nothing_new_changes_nothing() {
    given(incomplete()).when(DossierCommand::ConcludeReview, at(after_deadline(), staff())).then(vec![]);
}

#[test]
fn the_candidate_sends_a_missing_piece_online_and_the_dossier_stays_incomplete_while_others_are_missing() {
    let now = after_deadline();
    let state = given(incomplete())
        .when(DossierCommand::UploadMissingPiece { piece: appointment(), file: file(30) }, at(now, candidate()))
        .then(vec![DossierEvent::MissingPieceReceived {
            piece: appointment(),
            delivery: PieceDelivery::Online { file: file(30), at: now },
        }]);
    assert_eq!(state.status, Status::Incomplete);
    assert_eq!(state.missing, vec![refused_adaptation()]);
    assert_eq!(state.pieces[&appointment()].file, Some(file(30)));
}

#[test]
fn the_last_missing_piece_received_on_paper_resumes_the_review() {
    let mut events = incomplete();
    events.extend(decided(
        &events,
        &DossierCommand::UploadMissingPiece { piece: appointment(), file: file(30) },
        after_deadline(),
        &candidate(),
    ));
    let delivery = PaperDelivery::Post { postmark_date: date(2023, 7, 13), arrival_date: date(2023, 7, 15) };
    let state = given(events)
        .when(DossierCommand::ReceiveMissingPiece { piece: adaptation(), delivery }, at(after_deadline(), staff()))
        .then(vec![
            DossierEvent::MissingPieceReceived {
                piece: adaptation(),
                delivery: PieceDelivery::Post { postmark_date: date(2023, 7, 13), arrival_date: date(2023, 7, 15) },
            },
            DossierEvent::ReviewResumed,
        ]);
    assert_eq!(state.status, Status::UnderReview);
    assert!(state.missing.is_empty());
    assert!(state.pieces[&adaptation()].on_paper);
}

#[test]
fn once_every_missing_piece_is_received_and_accepted_the_dossier_is_complete() {
    let mut events = incomplete();
    events.extend(decided(
        &events,
        &DossierCommand::UploadMissingPiece { piece: appointment(), file: file(30) },
        after_deadline(),
        &candidate(),
    ));
    let counter = PaperDelivery::Counter { received_at: paris(2023, 7, 17, 9, 30, 0) };
    events.extend(decided(
        &events,
        &DossierCommand::ReceiveMissingPiece { piece: adaptation(), delivery: counter },
        after_deadline(),
        &staff(),
    ));
    assert_eq!(events.last(), Some(&DossierEvent::ReviewResumed));

    // Pieces received after being listed missing are examined before the review can conclude,
    // conditional ones too: otherwise a re-sent adaptation request would pass unexamined.
    let error = given(events.clone())
        .when(DossierCommand::ConcludeReview, at(after_deadline(), staff()))
        .then_error(DomainError::PieceAwaitingReview { label: APPOINTMENT_LABEL.to_owned() });
    assert_eq!(
        error.to_string(),
        "La pièce « Arrêté de nomination dans le grade » a été reçue mais n'a pas encore été examinée : \
         examinez-la avant de conclure l'instruction."
    );
    events.extend(decided(&events, &review(appointment(), PieceReview::Accepted), after_deadline(), &staff()));
    let error = given(events.clone())
        .when(DossierCommand::ConcludeReview, at(after_deadline(), staff()))
        .then_error(DomainError::PieceAwaitingReview { label: ADAPTATION_LABEL.to_owned() });
    assert!(matches!(error, DomainError::PieceAwaitingReview { .. }));

    events.extend(decided(&events, &review(adaptation(), PieceReview::Accepted), after_deadline(), &staff()));
    let state = given(events)
        .when(DossierCommand::ConcludeReview, at(after_deadline(), staff()))
        .then(vec![DossierEvent::MarkedComplete]);
    assert_eq!(state.status, Status::Complete);
}

#[test]
fn a_piece_that_is_not_missing_is_not_received_as_missing() {
    let error = given(incomplete())
        .when(DossierCommand::UploadMissingPiece { piece: form(), file: file(31) }, at(after_deadline(), candidate()))
        .then_error(DomainError::PieceNotMissing { label: FORM_LABEL.to_owned() });
    assert_eq!(
        error.to_string(),
        "La pièce « Dossier de pré-inscription » ne figure pas parmi les pièces manquantes de ce dossier."
    );
}

#[test]
fn a_missing_piece_cannot_be_sent_while_the_dossier_is_not_incomplete() {
    given(under_review())
        .when(
            DossierCommand::UploadMissingPiece { piece: appointment(), file: file(31) },
            at(after_deadline(), candidate()),
        )
        .then_error(DomainError::InvalidTransition {
            action: "envoyer une pièce manquante",
            status: "en cours d'instruction",
        });
}

#[test]
fn a_missing_piece_handed_in_outside_opening_hours_is_refused() {
    let delivery = PaperDelivery::Counter { received_at: paris(2023, 7, 15, 10, 0, 0) };
    given(incomplete())
        .when(DossierCommand::ReceiveMissingPiece { piece: appointment(), delivery }, at(after_deadline(), staff()))
        .then_error(DomainError::CounterClosed {
            at: "15/07/2023 à 10h00".to_owned(),
            hours: COUNTER_HOURS.to_owned(),
        });
}

#[test]
fn a_missing_piece_sent_by_post_cannot_arrive_before_its_postmark() {
    let delivery = PaperDelivery::Post { postmark_date: date(2023, 7, 14), arrival_date: date(2023, 7, 13) };
    given(incomplete())
        .when(DossierCommand::ReceiveMissingPiece { piece: appointment(), delivery }, at(after_deadline(), staff()))
        .then_error(DomainError::ArrivalBeforePostmark {
            arrival: "13/07/2023".to_owned(),
            postmark: "14/07/2023".to_owned(),
        });
}
