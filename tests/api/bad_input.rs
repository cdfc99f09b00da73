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
    assert_eq!(problem.detail, "Le champ « postmark_date » a un type incorrect (attendu : une date AAAA-MM-JJ).");

    let today = days_from_today(0);
    let problem = app.post_json(&path, Caller::Staff, json!({ "postmark_date": today })).await.problem(422);
    assert_eq!(problem.detail, "Le champ « arrival_date » est obligatoire.");

    let problem = app.post_json(
        &path,
        Caller::Staff,
        json!({ "postmark_date": today, "arrival_date": today, "incident": "pluie" }),
    );
    assert_eq!(
        problem.await.problem(422).detail,
        "La valeur du champ « incident » n'est pas reconnue ; valeurs possibles : insufficient_postage, \
         damaged_or_lost ou strike_or_delay."
    );

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

/// Every kind of serde error reaches the client as a French sentence naming the field: no
/// English word of serde's, no « . » for the whole body.
pub async fn json_errors_are_translated_into_french(app: &TestApp) {
    let (_, dossier) = pre_registered(app).await;
    let session = app.session_until(days_from_today(30)).await;
    let send = |path: String, caller: Caller, body: &str| {
        app.send(
            app.request(Method::POST, &path, caller).header(CONTENT_TYPE, "application/json").body(body.to_owned()),
        )
    };
    let postal = format!("/api/dossiers/{dossier}/postal-receipts");
    let reviews = format!("/api/dossiers/{dossier}/piece-reviews");
    let paper = format!("/api/dossiers/{dossier}/missing-piece-receipts");
    let extension = format!("/api/sessions/{session}/deadline-extensions");
    let cases = [
        (
            postal.clone(),
            Caller::Staff,
            r#"{"postmark_date": "2026-01-02", "arrival_date": "2026-01-02", "postmark_date": "2026-01-03"}"#,
            "Le champ « postmark_date » est présent deux fois.",
        ),
        (postal.clone(), Caller::Staff, "[]", "Le corps de la requête a un type incorrect (attendu : un objet JSON)."),
        (
            postal,
            Caller::Staff,
            r#""2026-01-02""#,
            "Le corps de la requête a un type incorrect (attendu : un objet JSON).",
        ),
        (
            reviews.clone(),
            Caller::Staff,
            r#"{"piece": 3, "outcome": "accepted"}"#,
            "Le champ « piece » a un type incorrect (attendu : une chaîne de caractères).",
        ),
        (
            reviews.clone(),
            Caller::Staff,
            r#"{"piece": "etat-services", "outcome": "ok"}"#,
            "La valeur du champ « outcome » n'est pas reconnue ; valeurs possibles : accepted, refused ou missing.",
        ),
        (
            reviews,
            Caller::Staff,
            r#"{"piece": "etat-services", "outcome": true}"#,
            "Le champ « outcome » a un type incorrect.",
        ),
        (
            paper.clone(),
            Caller::Staff,
            r#"{"channel": "fax", "piece": "etat-services"}"#,
            "La valeur du champ « channel » n'est pas reconnue ; valeurs possibles : post ou counter.",
        ),
        (paper, Caller::Staff, r#"{"piece": "etat-services"}"#, "Le champ « channel » est obligatoire."),
        (
            extension.clone(),
            Caller::Admin,
            r#"{"new_deadline": true, "reason": "grève"}"#,
            "Le champ « new_deadline » a un type incorrect (attendu : une date AAAA-MM-JJ).",
        ),
        (
            extension,
            Caller::Admin,
            r#"{"new_deadline": "2030-01-01", "reason": ["grève"]}"#,
            "Le champ « reason » a un type incorrect (attendu : une chaîne de caractères).",
        ),
    ];
    for (path, caller, body, expected) in cases {
        assert_eq!(send(path, caller, body).await.problem(422).detail, expected, "{body}");
    }

    // A session's configuration: nested paths, unsigned integers, booleans and weekdays.
    let config = serde_json::to_value(crate::harness::session_until(days_from_today(30))).expect("config");
    let with = |pointer: &str, value: serde_json::Value| {
        let mut config = config.clone();
        *config.pointer_mut(pointer).expect("a field of the configuration") = value;
        config
    };
    let cases = [
        (
            with("/convocation_lead_days", json!(-15)),
            "La valeur du champ « convocation_lead_days » est invalide (attendu : un nombre entier positif).",
        ),
        (
            with("/convocation_lead_days", json!("15")),
            "Le champ « convocation_lead_days » a un type incorrect (attendu : un nombre entier positif).",
        ),
        (
            with("/counter_hours/0/weekday", json!("lundi")),
            "Le champ « counter_hours[0].weekday » n'est pas un jour de la semaine valide (valeurs possibles : Mon, \
             Tue, Wed, Thu, Fri, Sat ou Sun).",
        ),
        (with("/pieces", json!({})), "Le champ « pieces » a un type incorrect (attendu : une liste)."),
        (
            with("/pieces/0/code", json!("Pièce 1")),
            "Le champ « pieces[0].code » est invalide : la valeur « Pièce 1 » n'est pas un code de pièce valide.",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(app.post_json("/api/sessions", Caller::Admin, body).await.problem(422).detail, expected);
    }
    assert_eq!(app.status(dossier).await.version, 1, "nothing was appended");
}

pub async fn a_queue_page_out_of_range_is_refused_in_french(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let queue = |query: String| async move {
        app.get(&format!("/api/sessions/{session}/queues/complete?{query}"), Caller::Staff).await
    };
    for page in ["9223372036854775807", "0", "-1", "1000001"] {
        let problem = queue(format!("page={page}")).await.problem(400);
        assert_eq!(problem.detail, "La page doit être un nombre entre 1 et 1 000 000.", "page={page}");
    }
    for per_page in ["0", "201", "9223372036854775807", "-9223372036854775808"] {
        let problem = queue(format!("per_page={per_page}")).await.problem(400);
        assert_eq!(
            problem.detail, "Le nombre de dossiers par page (per_page) doit être un nombre entre 1 et 200.",
            "per_page={per_page}"
        );
    }
    let last: serde_json::Value = queue("page=1000000&per_page=200".to_owned()).await.ok();
    assert_eq!(
        (last["page"].as_i64(), last["per_page"].as_i64(), last["total"].as_i64()),
        (Some(1_000_000), Some(200), Some(0))
    );
    assert_eq!(last["items"], json!([]));
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
    // Two days ahead: tomorrow would become today if Paris midnight passed before the server decides.
    let future = days_from_today(2);
    let problem = app.record_postal_receipt(dossier, future, future).await.problem(422);
    assert_eq!(
        problem.detail,
        format!("La date du cachet de la poste ({}) ne peut pas être dans le futur.", future.format("%d/%m/%Y"))
    );
    let today = days_from_today(0);
    let yesterday = today.pred_opt().expect("date in range");
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
    json_errors_are_translated_into_french,
    a_queue_page_out_of_range_is_refused_in_french,
    a_json_body_over_64_kio_is_refused_and_appends_nothing,
    a_postmark_in_the_future_is_refused,
    unknown_or_malformed_ids_and_routes_are_not_found,
    a_renamed_executable_is_refused_by_its_content,
    an_empty_file_is_refused,
    an_oversized_file_is_refused,
    a_hostile_filename_is_stored_sanitised,
    an_unknown_piece_is_refused,
);
