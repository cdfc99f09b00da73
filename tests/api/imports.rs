//! The bulk import of a day's postal mail from CSV: a dry run that appends nothing and says what
//! each line would do, with French errors and line numbers; an apply that decides exactly as
//! `POST /api/dossiers/{id}/postal-receipts` does; a second import of the same file that changes
//! nothing.

use cachet_domain::time::format_date;
use chrono::NaiveDate;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{candidate, days_from_today, paris, Caller, Reply, TestApp};

fn path(session: Uuid, mode: &str) -> String {
    format!("/api/sessions/{session}/postal-imports?mode={mode}")
}

async fn import_as(app: &TestApp, caller: Caller, session: Uuid, mode: &str, csv: impl Into<Vec<u8>>) -> Reply {
    let builder =
        app.request(Method::POST, &path(session, mode), caller).header(CONTENT_TYPE, "text/csv").body(csv.into());
    app.send(builder).await
}

async fn import(app: &TestApp, session: Uuid, mode: &str, csv: &str) -> Value {
    import_as(app, Caller::Staff, session, mode, csv).await.ok()
}

async fn head(app: &TestApp) -> i64 {
    app.store().head().await.expect("store head").position
}

fn kinds(report: &Value) -> Vec<(u64, String)> {
    report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| (l["line"].as_u64().expect("line"), l["outcome"]["kind"].as_str().expect("kind").to_owned()))
        .collect()
}

fn line(report: &Value, number: u64) -> &Value {
    report["lines"].as_array().expect("lines").iter().find(|l| l["line"] == number).expect("the line is reported")
}

fn slash(date: NaiveDate) -> String {
    format_date(date)
}

pub async fn a_day_of_postal_mail_is_checked_then_applied_once_with_the_rules_of_the_api(app: &TestApp) {
    let deadline = days_from_today(-3);
    let session = app.session_until(deadline).await;
    let before_deadline = paris(days_from_today(-10), 10, 15);
    let on_time = app.pre_registered_on(session, candidate(), before_deadline).await;
    let late = app.pre_registered_on(session, candidate(), before_deadline).await;
    let incident = app.pre_registered_on(session, candidate(), before_deadline).await;
    let misdated = app.pre_registered_on(session, candidate(), before_deadline).await;
    let witness = app.pre_registered_on(session, candidate(), before_deadline).await;
    let elsewhere = app.session_until(days_from_today(30)).await;
    let stranger = app.pre_register(elsewhere, candidate()).await;
    let code = |view: crate::harness::DossierView| view.user_code;
    let (on_time_code, late_code, incident_code) =
        (code(app.status(on_time).await), code(app.status(late).await), code(app.status(incident).await));
    let (misdated_code, witness_code, stranger_code) =
        (code(app.status(misdated).await), code(app.status(witness).await), code(app.status(stranger).await));

    // The same late postmark, recorded through the API on another dossier.
    let late_postmark = days_from_today(-2);
    let arrival = days_from_today(-1);
    app.record_postal_receipt(witness, late_postmark, arrival).await.done();
    let witness_view = app.status(witness).await;
    assert_eq!(witness_view.status, "rejected");

    let csv = format!(
        "\u{feff}Code utilisateur;Cachet de la poste;Date d'arrivée;Incident\n\
         {on_time_code};{};{};\n\
         {late_code};{late_postmark};{arrival};\n\
         ZZZZ2222;{};{};\n\
         {};{};{};Affranchissement insuffisant\n\
         {misdated_code};32/07/2023;{};\n\
         {};{};{};\n\
         {witness_code};{};{};\n\
         {stranger_code};{};{};\n",
        slash(deadline),
        slash(arrival),
        slash(deadline),
        slash(arrival),
        incident_code.to_lowercase(),
        slash(days_from_today(-4)),
        slash(arrival),
        slash(arrival),
        on_time_code,
        slash(deadline),
        slash(arrival),
        slash(late_postmark),
        slash(arrival),
        slash(deadline),
        slash(arrival),
    );
    let expected_kinds = |first: &str, second: &str, fourth: &str| {
        vec![
            (2, first.to_owned()),
            (3, second.to_owned()),
            (4, "error".to_owned()),
            (5, fourth.to_owned()),
            (6, "error".to_owned()),
            (7, "error".to_owned()),
            (8, "refused".to_owned()),
            (9, "error".to_owned()),
        ]
    };

    // The dry run: every line with its number, nothing appended.
    let start = head(app).await;
    let dry = import(app, session, "dry-run", &csv).await;
    assert_eq!(head(app).await, start, "a dry run appends nothing");
    assert_eq!(dry["mode"], "dry-run");
    assert_eq!(kinds(&dry), expected_kinds("on_time", "late", "incident"));
    let d = slash(deadline);
    assert_eq!(
        line(&dry, 2)["message"],
        format!(
            "Ligne 2 : la réception du dossier {on_time_code} sera enregistrée, dans les délais — Cachet de la poste \
             du {d}, dans les délais (date limite : {d})."
        )
    );
    assert_eq!(line(&dry, 2)["dossier_id"], on_time.to_string());
    assert_eq!(
        line(&dry, 4)["message"],
        "Ligne 4 : le code utilisateur « ZZZZ2222 » ne correspond à aucun dossier de cette session."
    );
    assert_eq!(line(&dry, 5)["user_code"], incident_code, "a code is read as people type it");
    assert_eq!(line(&dry, 5)["outcome"]["incident"], "insufficient_postage");
    assert_eq!(
        line(&dry, 6)["message"],
        "Ligne 6 : la date du cachet de la poste « 32/07/2023 » n'est pas une date valide (JJ/MM/AAAA)."
    );
    assert_eq!(
        line(&dry, 7)["message"],
        format!(
            "Ligne 7 : le code utilisateur « {on_time_code} » figure déjà à la ligne 2 du fichier (une seule \
             réception par dossier)."
        )
    );
    assert_eq!(
        line(&dry, 8)["message"],
        "Ligne 8 : impossible d'enregistrer la réception du dossier : le dossier est rejeté."
    );
    assert_eq!(
        line(&dry, 9)["message"],
        format!("Ligne 9 : le code utilisateur « {stranger_code} » ne correspond à aucun dossier de cette session.")
    );
    // The late line carries exactly the explanation and rejection the API gave the witness.
    let witness_deposit = witness_view.deposit.clone().expect("the witness's deposit");
    assert_eq!(line(&dry, 3)["outcome"]["explanation"], witness_deposit.explanation);
    assert_eq!(line(&dry, 3)["outcome"]["rejection"], witness_view.message);
    let summary = &dry["summary"];
    assert_eq!(
        (summary["lines"].as_u64(), summary["on_time"].as_u64(), summary["late"].as_u64()),
        (Some(8), Some(1), Some(1))
    );
    assert_eq!(
        (summary["incident"].as_u64(), summary["errors"].as_u64(), summary["refused"].as_u64()),
        (Some(1), Some(4), Some(1))
    );
    assert_eq!(summary["recorded"], 0);
    assert_eq!(app.status(on_time).await.status, "pre_registered");

    // The apply records the three accepted lines, through the API's own path.
    let applied = import(app, session, "apply", &csv).await;
    assert_eq!(applied["mode"], "apply");
    assert_eq!(kinds(&applied), expected_kinds("on_time", "late", "incident"));
    assert_eq!(applied["summary"]["recorded"], 3);
    assert!(line(&applied, 2)["message"].as_str().expect("message").contains("est enregistrée, dans les délais"));
    assert_eq!(line(&applied, 3)["recorded"], true);
    assert_eq!(line(&applied, 4)["recorded"], false);

    let view = app.status(on_time).await;
    assert_eq!(view.status, "deposited");
    assert_eq!(
        view.deposit.expect("deposit").explanation,
        format!("Cachet de la poste du {d}, dans les délais (date limite : {d})")
    );
    let late_view = app.status(late).await;
    assert_eq!(late_view.status, witness_view.status);
    assert_eq!(late_view.message, witness_view.message, "a late postmark is rejected the same way by each entry point");
    assert_eq!(late_view.rejection, witness_view.rejection);
    assert_eq!(late_view.deposit.expect("deposit").explanation, witness_deposit.explanation);
    let incident_view = app.status(incident).await;
    assert_eq!(incident_view.status, "rejected");
    assert!(incident_view.message.contains("incident de transmission (affranchissement insuffisant)"));
    assert_eq!(app.status(misdated).await.status, "pre_registered");
    assert_eq!(app.status(stranger).await.status, "pre_registered");

    // The same file again: nothing appended, the receipts already recorded.
    let after = head(app).await;
    let again = import(app, session, "apply", &csv).await;
    assert_eq!(head(app).await, after, "importing the same file again appends nothing");
    assert_eq!(kinds(&again), expected_kinds("already_recorded", "already_recorded", "already_recorded"));
    assert_eq!(again["summary"]["recorded"], 0);
    assert_eq!(again["summary"]["already_recorded"], 3);
    assert_eq!(
        line(&again, 3)["message"],
        format!("Ligne 3 : cette réception du dossier {late_code} est déjà enregistrée ; rien à faire.")
    );
    let dry_again = import(app, session, "dry-run", &csv).await;
    assert_eq!(kinds(&dry_again), expected_kinds("already_recorded", "already_recorded", "already_recorded"));
    assert_eq!(head(app).await, after);
}

pub async fn an_import_with_commas_and_iso_dates_defaults_to_a_dry_run(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let dossier = app.pre_register(session, candidate()).await;
    let code = app.status(dossier).await.user_code;
    let today = days_from_today(0);
    let csv = format!(
        "incident,date d'arrivee,CODE UTILISATEUR,cachet de la poste\ngreve ou retard,{today},{code},{today}\n"
    );
    let start = head(app).await;
    let builder = app
        .request(Method::POST, &format!("/api/sessions/{session}/postal-imports"), Caller::Admin)
        .header(CONTENT_TYPE, "text/csv; charset=utf-8")
        .body(csv);
    let report: Value = app.send(builder).await.ok();
    assert_eq!(head(app).await, start);
    assert_eq!(report["mode"], "dry-run");
    assert_eq!(kinds(&report), vec![(2, "incident".to_owned())]);
    assert_eq!(line(&report, 2)["outcome"]["incident"], "strike_or_delay");
}

pub async fn an_auditor_may_not_import_and_a_broken_file_is_named_in_french(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let header = "code utilisateur;cachet de la poste;date d'arrivée\n";
    let problem = import_as(app, Caller::Auditor, session, "apply", header).await.problem(403);
    assert_eq!(problem.detail, "Les auditeurs ont un accès en lecture seule : cette action leur est interdite.");
    import_as(app, Caller::Auditor, session, "dry-run", header).await.problem(403);
    import_as(app, candidate(), session, "dry-run", header).await.problem(403);
    import_as(app, Caller::Anonymous, session, "dry-run", header).await.problem(401);

    let detail = |reply: Reply| async move { reply.problem(422).detail };
    let staff = |csv: Vec<u8>| import_as(app, Caller::Staff, session, "dry-run", csv);
    assert_eq!(
        detail(staff(b"code utilisateur;date d'arrivee\nABCDEFGH;01/01/2024\n".to_vec()).await).await,
        "L'en-tête du fichier ne contient pas la colonne « cachet de la poste » ; colonnes attendues : code \
         utilisateur ; cachet de la poste ; date d'arrivée ; incident (facultatif)."
    );
    assert_eq!(
        detail(staff(b"ABCDEFGH;01/01/2024;02/01/2024\n".to_vec()).await).await,
        "La première ligne du fichier doit être l'en-tête des colonnes (code utilisateur ; cachet de la poste ; \
         date d'arrivée ; incident (facultatif)) ; elle contient des données."
    );
    let latin1 = b"code utilisateur;cachet de la poste;date d'arriv\xe9e\n".to_vec();
    assert_eq!(
        detail(staff(latin1).await).await,
        "Le fichier n'est pas encodé en UTF-8 (caractère invalide à la ligne 1) : enregistrez-le au format « CSV \
         UTF-8 »."
    );
    assert!(detail(staff(Vec::new()).await).await.starts_with("Le fichier est vide"));
    assert_eq!(
        detail(staff(header.as_bytes().to_vec()).await).await,
        "Le fichier ne contient aucune ligne après l'en-tête."
    );

    let json = app.post_json(&path(session, "dry-run"), Caller::Staff, serde_json::json!({})).await.problem(415);
    assert!(json.detail.contains("text/csv"), "{}", json.detail);
    let mode = import_as(app, Caller::Staff, session, "maybe", header).await.problem(400);
    assert_eq!(mode.detail, "Le paramètre mode doit valoir « dry-run » (par défaut) ou « apply ».");
    import_as(app, Caller::Staff, Uuid::new_v4(), "dry-run", header).await.problem(404);
}

pub async fn the_import_is_documented_with_its_callers_and_problems(app: &TestApp) {
    let document: Value = app.get("/api/openapi.json", Caller::Anonymous).await.ok();
    let operation = &document["paths"]["/api/sessions/{session_id}/postal-imports"]["post"];
    let description = operation["description"].as_str().expect("a description");
    assert!(description.contains("Appelants : service concours, administrateur"), "{description}");
    assert!(operation["requestBody"]["content"]["text/csv"].is_object());
    assert!(operation["responses"]["200"]["content"]["application/json"].is_object());
    for status in ["400", "401", "403", "404", "413", "415", "422"] {
        assert!(operation["responses"][status]["content"]["application/problem+json"].is_object(), "{status}");
    }
    let parameters = operation["parameters"].as_array().expect("parameters");
    for name in ["session_id", "mode", "Idempotency-Key"] {
        assert!(parameters.iter().any(|p| p["name"] == name), "{name}");
    }
    let schemas = &document["components"]["schemas"];
    assert!(schemas["ImportReport"].is_object() && schemas["LineOutcome"].is_object());
}

crate::api_tests!(
    the_import_is_documented_with_its_callers_and_problems,
    a_day_of_postal_mail_is_checked_then_applied_once_with_the_rules_of_the_api,
    an_import_with_commas_and_iso_dates_defaults_to_a_dry_run,
    an_auditor_may_not_import_and_a_broken_file_is_named_in_french,
);
