//! Pre-registration, the online deposit and its closure, the transfer and the review, as the
//! candidate reads them in the espace sécurisé.

use cachet_domain::time::{format_date, paris_date};
use chrono::Utc;

use crate::harness::{candidate, days_from_today, TestApp, PDF};

const RECEIVED: &str = "Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction.";

pub async fn pre_registration_shows_the_awaiting_message_at_its_paris_time(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let before = Utc::now();
    let dossier = app.pre_register(session, candidate()).await;
    let after = Utc::now();

    let view = app.status(dossier).await;
    assert_eq!((view.dossier_id, view.session_id), (dossier, session));
    assert_eq!(view.user_code.len(), 8);
    assert!(before <= view.registered_at && view.registered_at <= after);
    assert_eq!((view.status.as_str(), view.status_label.as_str()), ("pre_registered", "en attente de dépôt"));
    assert_eq!(view.message, view.awaiting_message());
    assert!(view.message.starts_with("Votre préinscription a été enregistrée le "));
    assert!(view.message.ends_with(", le Centre de Gestion est en attente de votre dossier."));
    assert_eq!((view.missing.len(), view.deposit.is_none(), view.rejection.is_none()), (0, true, true));
    assert_eq!(view.version, 1);
}

pub async fn closure_is_refused_until_the_registration_form_is_attached(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;

    let problem = app.close(candidate, dossier).await.problem(409);
    assert_eq!(
        problem.detail,
        "Vous ne pouvez pas clôturer votre inscription tant que votre « Dossier de pré-inscription daté et signé » n'est pas joint."
    );
    // Another piece is not enough: the red dot is the registration form itself.
    app.upload(candidate, dossier, "etat-services", PDF).await.done();
    let problem = app.close(candidate, dossier).await.problem(409);
    assert!(problem.detail.contains("« Dossier de pré-inscription daté et signé »"));
    assert_eq!(app.status(dossier).await.status, "pre_registered");
}

pub async fn a_closed_registration_awaits_transfer_then_shows_it_is_under_review(app: &TestApp) {
    let deadline = days_from_today(30);
    let session = app.session_until(deadline).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;

    app.upload(candidate, dossier, "dossier-preinscription", PDF).await.done();
    let pieces = app.pieces(dossier).await;
    let form = pieces.iter().find(|p| p.code == "dossier-preinscription").expect("the form");
    assert!(form.red_dot);
    assert_eq!(form.state, "deposited");

    let before = Utc::now();
    app.close(candidate, dossier).await.done();
    let after = Utc::now();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "deposited");
    assert_eq!(view.message, view.awaiting_message(), "deposited but not transferred: still « en attente »");
    let deposit = view.deposit.expect("the deposit");
    assert_eq!((deposit.channel.as_str(), deposit.on_time), ("online", true));
    // The closure's Paris date is that of `before` or, if midnight passed during the call, of `after`.
    let closed_on = |at| format!("Inscription clôturée en ligne le {}", format_date(paris_date(at)));
    assert!(
        deposit.explanation.starts_with(&closed_on(before)) || deposit.explanation.starts_with(&closed_on(after)),
        "{}",
        deposit.explanation
    );
    assert!(deposit
        .explanation
        .ends_with(&format!(", dans les délais (date limite : {}, avant minuit)", format_date(deadline))));

    app.transfer(dossier).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "under_review");
    assert_eq!(view.message, RECEIVED);
}

pub async fn an_incomplete_dossier_lists_its_missing_pieces_until_they_arrive_online_and_by_post(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    app.transfer(dossier).await.done();

    app.accept_piece(dossier, "dossier-preinscription").await.done();
    app.mark_piece_missing(dossier, "etat-services").await.done();
    app.refuse_piece(dossier, "arrete-situation", "document illisible").await.done();
    app.conclude_review(dossier).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "incomplete");
    assert_eq!(view.message, "Votre dossier est incomplet");
    assert_eq!(
        view.missing,
        [
            "État des services établi par l'employeur",
            "Dernier arrêté de situation administrative (pièce refusée : document illisible)"
        ]
    );

    // The candidate sends one piece online: one remains missing.
    app.upload_missing(candidate, dossier, "etat-services", PDF).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "incomplete");
    // The exam office receives the other on paper: the review resumes.
    let today = days_from_today(0);
    app.receive_missing_piece_by_post(dossier, "arrete-situation", today, today).await.done();
    let view = app.status(dossier).await;
    assert_eq!((view.status.as_str(), view.message.as_str()), ("under_review", RECEIVED));

    // A piece received must be examined before concluding.
    let problem = app.conclude_review(dossier).await.problem(409);
    assert!(problem.detail.contains("a été reçue mais n'a pas encore été examinée"), "{}", problem.detail);
    app.accept_piece(dossier, "etat-services").await.done();
    app.accept_piece(dossier, "arrete-situation").await.done();
    app.conclude_review(dossier).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "complete");
    assert_eq!(view.message, "Votre dossier est complet");
    assert!(view.missing.is_empty());
}

pub async fn a_piece_missing_from_the_online_deposit_can_be_sent_later_online(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    app.transfer(dossier).await.done();
    app.accept_piece(dossier, "dossier-preinscription").await.done();
    app.accept_piece(dossier, "arrete-situation").await.done();
    app.conclude_review(dossier).await.done();
    assert_eq!(app.status(dossier).await.missing, ["État des services établi par l'employeur"]);

    // A piece not listed missing is refused.
    let problem = app.upload_missing(candidate, dossier, "arrete-situation", PDF).await.problem(409);
    assert_eq!(
        problem.detail,
        "La pièce « Dernier arrêté de situation administrative » ne figure pas parmi les pièces manquantes de ce dossier."
    );
    app.upload_missing(candidate, dossier, "etat-services", PDF).await.done();
    let view = app.status(dossier).await;
    assert_eq!((view.status.as_str(), view.message.as_str()), ("under_review", RECEIVED));
    app.accept_piece(dossier, "etat-services").await.done();
    app.conclude_review(dossier).await.done();
    assert_eq!(app.status(dossier).await.message, "Votre dossier est complet");
}

crate::api_tests!(
    pre_registration_shows_the_awaiting_message_at_its_paris_time,
    closure_is_refused_until_the_registration_form_is_attached,
    a_closed_registration_awaits_transfer_then_shows_it_is_under_review,
    an_incomplete_dossier_lists_its_missing_pieces_until_they_arrive_online_and_by_post,
    a_piece_missing_from_the_online_deposit_can_be_sent_later_online,
);
