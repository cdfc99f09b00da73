//! Bad requests and bad files: each a 4xx problem document with a French detail, never a 500.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{candidate, days_from_today, Caller, TestApp, MAX_UPLOAD_BYTES, PDF};

/// A dossier deposited and ready for the exam office, and its owner.
async fn pre_registered(app: &TestApp) -> (Caller, Uuid) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    (candidate, app.pre_register(session, candidate).await)
}

pub async fn malformed_bodies_are_named_in_french(app: &TestApp) {
    let (_, dossier) = pre_registered(app).await;
    let path = format!("/api/dossiers/{dossier}/postal-receipts");
    let raw = |body: &str| {
        app.request(Method::POST, &path, Caller::Staff).header(CONTENT_TYPE, "application/json").body(body.to_owned())
    };

    let problem = app.send(raw(r#"{"postmark_date": "2026-01-02","#)).await.problem(400);
    assert!(problem.detail.starts_with("Le corps de la requête n'est pas un JSON valide (ligne 1, colonne"));

    let problem = app.send(raw(r#"{"postmark_date": "hier", "arrival_date": "2026-01-02"}"#)).await.problem(422);
    assert_eq!(
        problem.detail,
        "Le champ « postmark_date » n'est pas une date ou une heure valide (format attendu : AAAA-MM-JJ, ou \
         AAAA-MM-JJTHH:MM:SS+02:00)."
    );

    let problem =
        app.send(raw(r#"{"postmark_date": "+275760-09-13", "arrival_date": "2026-01-02"}"#)).await.problem(422);
    assert_eq!(
        problem.detail,
        "Le champ « postmark_date » n'est pas une date ou une heure valide (format attendu : AAAA-MM-JJ, ou \
         AAAA-MM-JJTHH:MM:SS+02:00).",
        "an out-of-range date is explained in French too"
    );

    let problem = app.send(raw(r#"{"postmark_date": 20260102, "arrival_date": "2026-01-02"}"#)).await.problem(422);
    assert!(problem.detail.starts_with("Le champ « postmark_date » a un type incorrect"), "{}", problem.detail);

    let today = days_from_today(0);
    let problem = app.post_json(&path, Caller::Staff, json!({ "postmark_date": today })).await.problem(422);
    assert_eq!(problem.detail, "Le champ « arrival_date » est obligatoire.");

    let problem = app.post_json(
        &path,
        Caller::Staff,
        json!({ "postmark_date": today, "arrival_date": today, "incident": "pluie" }),
    );
    assert!(problem.await.problem(422).detail.starts_with("La valeur du champ « incident » n'est pas reconnue"));

    let not_json = app
        .request(Method::POST, &path, Caller::Staff)
        .header(CONTENT_TYPE, "text/plain")
        .body(format!("postmark_date={today}"));
    assert_eq!(
        app.send(not_json).await.problem(415).detail,
        "Le corps de la requête doit être envoyé en JSON (Content-Type: application/json)."
    );
    assert_eq!(app.status(dossier).await.version, 1, "nothing was appended");
}

pub async fn a_json_body_over_64_kio_is_refused_and_appends_nothing(app: &TestApp) {
    let (candidate, dossier) = pre_registered(app).await;
    app.deposit_online(candidate, dossier).await;
    let detail = "non signé ".repeat(7 * 1024);
    let problem = app.reject(dossier, &detail).await.problem(413);
    assert_eq!(problem.detail, "Le corps de la requête dépasse 64 Kio.");
    assert_eq!(app.status(dossier).await.status, "deposited");
}

pub async fn a_postmark_in_the_future_is_refused(app: &TestApp) {
    let (_, dossier) = pre_registered(app).await;
    let tomorrow = days_from_today(1);
    let problem = app.record_postal_receipt(dossier, tomorrow, tomorrow).await.problem(422);
    assert_eq!(
        problem.detail,
        format!("La date du cachet de la poste ({}) ne peut pas être dans le futur.", tomorrow.format("%d/%m/%Y"))
    );
    let today = days_from_today(0);
    let yesterday = days_from_today(-1);
    let problem = app.record_postal_receipt(dossier, today, yesterday).await.problem(422);
    assert!(problem.detail.contains("est antérieure à la date du cachet de la poste"), "{}", problem.detail);
}

pub async fn unknown_or_malformed_ids_and_routes_are_not_found(app: &TestApp) {
    let unknown = Uuid::new_v4();
    let today = days_from_today(0);
    assert_eq!(
        app.get(&format!("/api/dossiers/{unknown}"), Caller::Staff).await.problem(404).detail,
        "Ce dossier n'existe pas."
    );
    assert_eq!(
        app.get("/api/dossiers/pas-un-uuid", Caller::Staff).await.problem(404).detail,
        "Ce dossier n'existe pas."
    );
    let problem = app.record_postal_receipt(unknown, today, today).await.problem(404);
    assert_eq!(problem.detail, "Ce dossier n'existe pas.");
    let problem = app.get(&format!("/api/sessions/{unknown}"), Caller::Staff).await.problem(404);
    assert_eq!(problem.detail, "Cette session d'examen n'existe pas.");
    let problem = app.pre_register_reply(unknown, candidate()).await.problem(404);
    assert_eq!(problem.detail, "Cette session d'examen n'existe pas.");

    let problem = app.get("/api/dossier", Caller::Staff).await.problem(404);
    assert_eq!(problem.detail, "Cette adresse ne correspond à aucune ressource.");
    let problem = app.send(app.request(Method::DELETE, "/api/sessions", Caller::Admin)).await.problem(405);
    assert_eq!(problem.detail, "Cette méthode n'est pas permise sur cette ressource.");

    let session = app.session_until(days_from_today(30)).await;
    let problem = app.get(&format!("/api/sessions/{session}/queues/pile"), Caller::Staff).await.problem(404);
    assert!(problem.detail.starts_with("Cette file de travail n'existe pas ; files possibles : to_transfer,"));
    let problem = app.get(&format!("/api/sessions/{session}/queues/complete?page=deux"), Caller::Staff).await;
    assert_eq!(problem.problem(400).detail, "Les paramètres page et per_page doivent être des nombres entiers.");
}

pub async fn a_renamed_executable_is_refused_by_its_content(app: &TestApp) {
    let (candidate, dossier) = pre_registered(app).await;
    let executable = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00";
    let problem =
        app.upload_named(candidate, dossier, "dossier-preinscription", "x.pdf", executable).await.problem(415);
    assert_eq!(
        problem.detail,
        "Seuls les fichiers PDF, JPEG ou PNG sont acceptés : le contenu de ce fichier n'est ni un PDF ni une image JPEG \
         ou PNG."
    );
    assert!(app.pieces(dossier).await.iter().all(|p| p.state == "missing"));
}

pub async fn an_empty_file_is_refused(app: &TestApp) {
    let (candidate, dossier) = pre_registered(app).await;
    let problem = app.upload(candidate, dossier, "dossier-preinscription", b"").await.problem(422);
    assert_eq!(problem.detail, "Le fichier est vide.");
}

pub async fn an_oversized_file_is_refused(app: &TestApp) {
    let (candidate, dossier) = pre_registered(app).await;
    let mut big = PDF.to_vec();
    big.resize(usize::try_from(MAX_UPLOAD_BYTES).expect("small") + 1, b' ');
    let problem = app.upload(candidate, dossier, "dossier-preinscription", &big).await.problem(413);
    assert_eq!(problem.detail, "Le fichier dépasse la taille maximale de 64 Kio.");
    let mut fits = PDF.to_vec();
    fits.resize(usize::try_from(MAX_UPLOAD_BYTES).expect("small"), b' ');
    app.upload(candidate, dossier, "dossier-preinscription", &fits).await.done();
}

pub async fn a_hostile_filename_is_stored_sanitised(app: &TestApp) {
    let (candidate, dossier) = pre_registered(app).await;
    app.upload_named(candidate, dossier, "dossier-preinscription", "../../etc/passwd", PDF).await.done();
    let pieces = app.pieces(dossier).await;
    let form = pieces.iter().find(|p| p.code == "dossier-preinscription").expect("the form");
    assert_eq!(form.filename.as_deref(), Some("passwd"));
    let sha256 = form.sha256.clone().expect("stored");
    let download = app.get(&format!("/api/dossiers/{dossier}/files/{sha256}"), candidate).await;
    assert_eq!(download.header("content-disposition").as_deref(), Some("attachment; filename=\"passwd\""));
    assert_eq!(download.header("content-type").as_deref(), Some("application/pdf"));
    assert!(!app.dir.path().join("etc").exists());
    let problem = app.get(&format!("/api/dossiers/{dossier}/files/..%2F..%2Fetc%2Fpasswd"), candidate).await;
    assert_eq!(problem.problem(404).detail, "Ce fichier n'existe pas dans ce dossier.");
}

pub async fn an_unknown_piece_is_refused(app: &TestApp) {
    let (candidate, dossier) = pre_registered(app).await;
    let problem = app.upload(candidate, dossier, "photo-identite", PDF).await.problem(422);
    assert_eq!(problem.detail, "La pièce « photo-identite » ne fait pas partie du dossier de cette session.");
}

crate::api_tests!(
    malformed_bodies_are_named_in_french,
    a_json_body_over_64_kio_is_refused_and_appends_nothing,
    a_postmark_in_the_future_is_refused,
    unknown_or_malformed_ids_and_routes_are_not_found,
    a_renamed_executable_is_refused_by_its_content,
    an_empty_file_is_refused,
    an_oversized_file_is_refused,
    a_hostile_filename_is_stored_sanitised,
    an_unknown_piece_is_refused,
);
