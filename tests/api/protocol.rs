//! What every command shares: read-your-writes, `Idempotency-Key`, `If-Match` and `ETag`, and
//! who may do what.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{candidate, days_from_today, Caller, Outcome, PreRegistration, TestApp, PDF};

pub async fn a_read_right_after_each_command_shows_its_effect(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    assert_eq!(app.status(dossier).await.version, 1);

    let steps: [(&str, u16); 6] =
        [("upload", 2), ("close", 3), ("transfer", 4), ("accept", 5), ("accept-etat", 6), ("accept-arrete", 7)];
    for (step, version) in steps {
        let outcome = match step {
            "upload" => app.upload(candidate, dossier, "dossier-preinscription", PDF).await,
            "close" => app.close(candidate, dossier).await,
            "transfer" => app.transfer(dossier).await,
            "accept" => app.accept_piece(dossier, "dossier-preinscription").await,
            "accept-etat" => app.accept_piece(dossier, "etat-services").await,
            _ => app.accept_piece(dossier, "arrete-situation").await,
        }
        .done();
        assert_eq!(outcome.version, i64::from(version), "{step}");
        let view = app.status(dossier).await;
        assert_eq!(view.version, outcome.version, "the read after {step} shows it");
    }
    let outcome = app.conclude_review(dossier).await.done();
    let view = app.status(dossier).await;
    assert_eq!((view.version, view.status.as_str()), (outcome.version, "complete"));
    let (total, ids) = app.queue(session, "complete").await;
    assert_eq!((total, ids), (1, vec![dossier]), "queues show it too");
}

pub async fn a_retried_command_with_the_same_idempotency_key_appends_nothing(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    let events_before = app.stream_length(dossier).await;

    // The retry carries the If-Match of the first attempt: it is answered, not refused as stale.
    let transfer = || {
        app.request(Method::POST, &format!("/api/dossiers/{dossier}/transfer"), Caller::Staff)
            .header("idempotency-key", "transfert-1")
            .header("if-match", "\"3\"")
    };
    let first = app.send(transfer()).await.done();
    let second = app.send(transfer()).await.done();
    assert_eq!((first.id, first.replayed), (dossier, false));
    assert!(first.position.is_some());
    assert!(second.replayed);
    assert_eq!((second.version, second.position), (first.version, first.position));
    assert_eq!(app.stream_length(dossier).await, events_before + 1, "one event");
    assert_eq!(app.status(dossier).await.version, first.version);
}

/// A first attempt may append and lose its answer before the read models show it: the retry then
/// waits for them too, so a read right after it shows the effect.
pub async fn a_retried_command_answers_once_the_read_models_show_it(app: &TestApp) {
    // The projection is held by locking its checkpoint row, as a slow runner would. SQLite has no
    // row locks: its write lock would stop the appends too.
    if !app.on_postgres() {
        return;
    }
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    let events_before = app.stream_length(dossier).await;
    let transfer = || {
        app.request(Method::POST, &format!("/api/dossiers/{dossier}/transfer"), Caller::Staff)
            .header("idempotency-key", "transfert-pendant-un-retard")
    };

    let mut hold = app.read_db().pool.begin().await.expect("a transaction");
    sqlx::query("SELECT position FROM checkpoints WHERE name = 'dossiers' FOR UPDATE")
        .fetch_one(&mut *hold)
        .await
        .expect("lock the checkpoint");
    // The first attempt appends, then waits for the read models (its client gave up, say).
    let first = app.send(transfer());
    tokio::pin!(first);
    while app.stream_length(dossier).await == events_before {
        tokio::select! {
            reply = &mut first => panic!("answered while the read models are held: {}", reply.text()),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    // The retry finds the first outcome, and waits as well.
    let second = app.send(transfer());
    tokio::pin!(second);
    tokio::select! {
        reply = &mut second => panic!("the retry answered before the read models showed it: {}", reply.text()),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    hold.rollback().await.expect("release the checkpoint");

    let (first, second) = (first.await.done(), second.await.done());
    assert!(!first.replayed && second.replayed);
    assert_eq!((second.version, second.position), (first.version, first.position));
    let view = app.status(dossier).await;
    assert_eq!((view.version, view.status.as_str()), (second.version, "under_review"));
}

pub async fn a_retried_pre_registration_gives_the_same_dossier(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let pre_register = || {
        app.request(Method::POST, &format!("/api/sessions/{session}/dossiers"), candidate)
            .header("idempotency-key", "preinscription")
    };
    let first: PreRegistration = app.send(pre_register()).await.ok();
    let second: PreRegistration = app.send(pre_register()).await.ok();
    assert_eq!((first.dossier_id, &first.user_code, first.replayed), (second.dossier_id, &second.user_code, false));
    assert!(second.replayed);
    assert_eq!(second.version, 1);
    assert_eq!(app.stream_length(first.dossier_id).await, 1);
}

pub async fn a_stale_if_match_is_refused_and_the_etag_is_the_version(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    let read = app.get(&format!("/api/dossiers/{dossier}"), Caller::Staff).await;
    assert_eq!(read.header("etag").as_deref(), Some("\"3\""));

    let transfer = |etag: &str| {
        app.request(Method::POST, &format!("/api/dossiers/{dossier}/transfer"), Caller::Staff).header("if-match", etag)
    };
    let problem = app.send(transfer("\"2\"")).await.problem(412);
    assert_eq!(
        problem.detail,
        "Le dossier a changé depuis votre lecture (version 2 attendue, version actuelle 3) : rechargez-le puis recommencez."
    );
    assert_eq!(app.status(dossier).await.status, "deposited", "nothing was appended");
    let problem = app.send(transfer("trois")).await.problem(400);
    assert!(problem.detail.starts_with("L'en-tête If-Match « trois » n'est pas une version de dossier"));
    let reply = app.send(transfer("\"3\"")).await;
    assert_eq!(reply.header("etag").as_deref(), Some("\"4\""));
    assert_eq!(reply.done().version, 4);
}

pub async fn another_candidate_can_neither_see_nor_touch_a_dossier(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let owner = candidate();
    let stranger = candidate();
    let dossier = app.pre_register(session, owner).await;
    app.upload(owner, dossier, "dossier-preinscription", PDF).await.done();
    let sha256 = app.pieces(dossier).await[0].sha256.clone().expect("stored file");
    const NOT_FOUND: &str = "Ce dossier n'existe pas.";

    for path in [format!("/api/dossiers/{dossier}"), format!("/api/dossiers/{dossier}/pieces")] {
        assert_eq!(app.get(&path, stranger).await.problem(404).detail, NOT_FOUND, "{path}");
        app.get(&path, owner).await.ok::<serde_json::Value>();
    }
    let file = format!("/api/dossiers/{dossier}/files/{sha256}");
    assert_eq!(app.get(&file, stranger).await.problem(404).detail, NOT_FOUND);
    assert_eq!(app.get(&file, owner).await.body, PDF);
    assert_eq!(app.upload(stranger, dossier, "etat-services", PDF).await.problem(404).detail, NOT_FOUND);
    let remove =
        app.request(Method::DELETE, &format!("/api/dossiers/{dossier}/pieces/dossier-preinscription"), stranger);
    assert_eq!(app.send(remove).await.problem(404).detail, NOT_FOUND);
    assert_eq!(app.close(stranger, dossier).await.problem(404).detail, NOT_FOUND);
    assert_eq!(app.withdraw(stranger, dossier).await.problem(404).detail, NOT_FOUND);
    assert_eq!(app.status(dossier).await.version, 2, "nothing was appended");
}

pub async fn an_idempotency_key_is_scoped_to_the_caller_who_sent_it(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    let transfer = |caller| {
        app.request(Method::POST, &format!("/api/dossiers/{dossier}/transfer"), caller)
            .header("idempotency-key", "lot-1")
    };
    let first = app.send(transfer(Caller::Staff)).await.done();
    assert!(!first.replayed);
    // Another account with the same key sends another command, decided on its own.
    let problem = app.send(transfer(Caller::Admin)).await.problem(409);
    assert_eq!(problem.detail, "Impossible de transférer le dossier : le dossier est en cours d'instruction.");
}

pub async fn a_withdrawal_needs_no_body(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    let reply = app.send(app.request(Method::POST, &format!("/api/dossiers/{dossier}/withdrawal"), candidate)).await;
    reply.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "withdrawn");
    assert!(view.message.starts_with("Votre désistement a été enregistré le "), "{}", view.message);
}

pub async fn an_idempotency_key_does_not_let_another_candidate_replay_a_command(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let owner = candidate();
    let stranger = candidate();
    let dossier = app.pre_register(session, owner).await;
    let withdraw = |caller| {
        app.request(Method::POST, &format!("/api/dossiers/{dossier}/withdrawal"), caller)
            .header("idempotency-key", "desistement")
            .json(&json!({}))
    };
    let outcome: Outcome = app.send(withdraw(owner)).await.done();
    assert!(!outcome.replayed);
    let problem = app.send(withdraw(stranger)).await.problem(404);
    assert_eq!(problem.detail, "Ce dossier n'existe pas.");
}

pub async fn office_actions_are_refused_to_auditors_and_candidates_and_anonymous_callers(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let owner = candidate();
    let dossier = app.pre_register(session, owner).await;
    app.deposit_online(owner, dossier).await;

    let auditor = app.transfer_as(Caller::Auditor, dossier).await.problem(403);
    assert_eq!(auditor.detail, "Les auditeurs ont un accès en lecture seule : cette action leur est interdite.");
    let candidate = app.transfer_as(owner, dossier).await.problem(403);
    assert_eq!(candidate.detail, "Cette action est réservée au service concours.");
    let anonymous = app.transfer_as(Caller::Anonymous, dossier).await.problem(401);
    assert_eq!(anonymous.detail, "Authentification requise : connectez-vous pour accéder à cette ressource.");
    let garbled = app.send(
        app.request(Method::POST, &format!("/api/dossiers/{dossier}/transfer"), Caller::Anonymous)
            .header("x-cachet-actor", "root"),
    );
    assert!(garbled.await.problem(400).detail.starts_with("L'en-tête X-Cachet-Actor doit valoir"));

    // Auditors read everything; candidates read no queue and open no session.
    app.get(&format!("/api/dossiers/{dossier}"), Caller::Auditor).await.ok::<serde_json::Value>();
    app.get(&format!("/api/sessions/{session}/statistics"), Caller::Auditor).await.ok::<serde_json::Value>();
    let queue = app.get(&format!("/api/sessions/{session}/queues/to_transfer"), owner).await.problem(403);
    assert_eq!(queue.detail, "Cette consultation est réservée au service concours.");
    let config = serde_json::to_value(crate::harness::session_until(days_from_today(30))).expect("config");
    let open = app.post_json("/api/sessions", Caller::Staff, config).await.problem(403);
    assert_eq!(open.detail, "Cette action est réservée aux administrateurs.");
    let pre_register = app.pre_register_reply(session, Caller::Staff).await.problem(403);
    assert_eq!(pre_register.detail, "Cette action est réservée aux candidats.");
    assert_eq!(app.status(dossier).await.status, "deposited");
}

crate::api_tests!(
    a_read_right_after_each_command_shows_its_effect,
    a_retried_command_with_the_same_idempotency_key_appends_nothing,
    a_retried_command_answers_once_the_read_models_show_it,
    a_retried_pre_registration_gives_the_same_dossier,
    a_stale_if_match_is_refused_and_the_etag_is_the_version,
    another_candidate_can_neither_see_nor_touch_a_dossier,
    an_idempotency_key_does_not_let_another_candidate_replay_a_command,
    an_idempotency_key_is_scoped_to_the_caller_who_sent_it,
    a_withdrawal_needs_no_body,
    office_actions_are_refused_to_auditors_and_candidates_and_anonymous_callers,
);
