//! What auditors ask: a dossier's history with what the candidate read after each event, the
//! dossier as it stood at each of those instants, and a session's statistics at an instant.

use serde_json::Value;

use crate::harness::{candidate, days_from_today, Caller, TestApp};

pub async fn the_history_lists_every_event_and_the_as_of_answer_matches_what_the_candidate_read(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let owner = candidate();
    let dossier = app.pre_register(session, owner).await;
    app.deposit_online(owner, dossier).await;
    app.transfer(dossier).await.done();
    app.accept_piece(dossier, "dossier-preinscription").await.done();
    app.mark_piece_missing(dossier, "etat-services").await.done();
    app.conclude_review(dossier).await.done();

    let history: Vec<Value> = app.get(&format!("/api/dossiers/{dossier}/history"), Caller::Auditor).await.ok();
    let types: Vec<&str> = history.iter().map(|e| e["event_type"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        types,
        [
            "PreRegistered",
            "PieceUploaded",
            "RegistrationClosed",
            "Transferred",
            "PieceReviewed",
            "PieceReviewed",
            "MarkedIncomplete"
        ]
    );
    assert_eq!(history[0]["actor"], "le candidat");
    assert_eq!(history[3]["actor"], "le service concours (agent.concours)");
    assert_eq!(
        history[3]["description"],
        "Dossier transféré dans le logiciel par le service concours : instruction ouverte."
    );
    assert_eq!(
        history[3]["message"],
        "Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction."
    );
    assert!(history[0]["message"].as_str().unwrap().starts_with("Votre préinscription a été enregistrée le "));
    assert_eq!(history[6]["message"], "Votre dossier est incomplet");
    assert_eq!(history[6]["missing"][0], "État des services établi par l'employeur");

    // At each recorded instant, the dossier as it stood shows what the history says was read.
    for (i, entry) in history.iter().enumerate() {
        let last_at_this_instant = history.get(i + 1).is_none_or(|next| next["recorded_at"] != entry["recorded_at"]);
        if !last_at_this_instant {
            continue;
        }
        let at = entry["recorded_at"].as_str().unwrap();
        let then: Value = app.get(&format!("/api/dossiers/{dossier}/as-of?at={at}"), Caller::Auditor).await.ok();
        assert_eq!((&then["message"], &then["version"]), (&entry["message"], &entry["version"]), "at {at}");
    }
    let problem = app.get(&format!("/api/dossiers/{dossier}/as-of?at=2000-01-01"), Caller::Auditor).await.problem(404);
    assert_eq!(problem.detail, "Ce dossier n'existait pas à cette date.");
    let problem = app.get(&format!("/api/dossiers/{dossier}/as-of?at=hier"), Caller::Auditor).await.problem(400);
    assert_eq!(
        problem.detail,
        "Le paramètre at doit être une date (AAAA-MM-JJ) ou un instant (AAAA-MM-JJTHH:MM:SS+02:00)."
    );
    let problem = app.get(&format!("/api/dossiers/{dossier}/history"), owner).await.problem(403);
    assert_eq!(problem.detail, "Cette consultation est réservée au service concours.");
}

pub async fn the_statistics_of_a_session_can_be_asked_at_a_past_instant(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let before: Value =
        app.get(&format!("/api/sessions/{session}/statistics/as-of?at=2000-01-01"), Caller::Auditor).await.ok();
    assert_eq!(before["total"], 0);
    let owner = candidate();
    let dossier = app.pre_register(session, owner).await;
    app.deposit_online(owner, dossier).await;
    app.pre_register(session, candidate()).await;
    let now: Value = app.get(&format!("/api/sessions/{session}/statistics"), Caller::Auditor).await.ok();
    let today = days_from_today(0);
    let as_of: Value =
        app.get(&format!("/api/sessions/{session}/statistics/as-of?at={today}"), Caller::Auditor).await.ok();
    assert_eq!(as_of, now);
    assert_eq!(as_of["by_status"]["deposited"], 1);
}

crate::api_tests!(
    the_history_lists_every_event_and_the_as_of_answer_matches_what_the_candidate_read,
    the_statistics_of_a_session_can_be_asked_at_a_past_instant,
);
