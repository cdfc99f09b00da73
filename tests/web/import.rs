//! The import of a day's postal mail from the desk: the dry run in a real browser, then apply,
//! then the same file again; the file's errors next to its field; an auditor refused; and a late
//! postmark rejected the same way whatever the entry point (dossier page, API, CSV through the
//! API, CSV through the page).

use cachet_domain::dossier::DossierEvent;
use cachet_domain::event::StaffRole;
use cachet_domain::time::format_date;
use cachet_projections::queries;
use chrono::Days;
use uuid::Uuid;

use crate::browser::Browser;
use crate::harness::{days_from_today, today, WebApp, WebClient, PASSWORD};

async fn signed_in(app: &WebApp, account: &str) -> WebClient {
    let client = app.client();
    let form = client.get("/bureau/connexion").await;
    let signed = client.post_form("/bureau/connexion", &form, &[("compte", account), ("mot_de_passe", PASSWORD)]).await;
    assert_eq!(signed.path, "/bureau", "{account} signs in");
    client
}

fn csv_file(lines: &[String]) -> Vec<u8> {
    let mut text = "code utilisateur;cachet de la poste;date d'arrivée;incident\n".to_owned();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text.into_bytes()
}

pub async fn the_office_imports_the_mail_after_a_dry_run(app: &WebApp) {
    let Some(mut browser) = Browser::open("import-courrier").await else { return };
    app.staff_account("agent", StaffRole::Staff).await;
    // One date for the whole test: Paris midnight may pass while it runs.
    let today = today();
    let deadline = today - Days::new(1);
    let session = app.session_until(deadline).await;
    let (on_time, on_time_code) = app.registered_ten_days_ago(session, "Ponctuel").await;
    let (late, late_code) = app.registered_ten_days_ago(session, "Tardif").await;
    let (d, t) = (format_date(deadline), format_date(today));
    let file =
        csv_file(&[format!("{on_time_code};{d};{t};"), format!("{late_code};{t};{t};"), format!("ZZZZ9999;{d};{t};")]);
    let folder = tempfile::tempdir().expect("a folder");
    let path = folder.path().join("courrier-du-jour.csv");
    std::fs::write(&path, &file).expect("write the file");

    browser.visit(&app.url("/bureau/connexion"), "connexion").await;
    browser.fill("compte", "agent").await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser.press("Se connecter", "tableau-de-bord").await;
    browser.visit(&app.url(&format!("/bureau/sessions/{session}")), "session").await;
    browser.follow("Importer le courrier du jour (fichier CSV)", "formulaire-import").await;
    let before = app.state.store.head().await.expect("head").position;
    browser.choose_file("fichier", &path).await;
    browser.press("Vérifier le fichier", "verification").await;
    let text = browser.text().await;
    assert!(
        text.contains(
            "3 ligne(s) lue(s) : 1 dans les délais, 1 hors délai, 0 avec incident d'acheminement, 1 en erreur. \
             Rien n'a encore été enregistré."
        ),
        "{text}"
    );
    assert!(text.contains(&format!("Cachet de la poste du {t}, postérieur à la date limite du {d}")), "{text}");
    assert!(text.contains("Ligne 4"), "the unknown code is reported with its line number: {text}");
    assert!(text.contains("Appliquer l'import enregistre 2 réception(s)"), "{text}");
    assert_eq!(app.state.store.head().await.expect("head").position, before, "a dry run records nothing");

    browser.press("Appliquer l'import", "import-applique").await;
    let text = browser.text().await;
    assert!(text.contains("2 réception(s) enregistrée(s)."), "{text}");
    let wait = |id| async move {
        let head = app.state.store.head().await.expect("head").position;
        assert!(app.state.runner.wait_for(head, std::time::Duration::from_secs(10)).await);
        queries::dossier_status(&app.state.db, id).await.expect("read").expect("a dossier")
    };
    assert_eq!(wait(on_time).await.status, "deposited");
    let rejected = wait(late).await;
    assert_eq!(rejected.status, "rejected");

    // The same file again changes nothing: every line is already recorded.
    browser.visit(&app.url(&format!("/bureau/sessions/{session}/import-courrier")), "second-import").await;
    browser.choose_file("fichier", &path).await;
    browser.press("Vérifier le fichier", "second-verification").await;
    let text = browser.text().await;
    assert!(text.contains("2 déjà enregistrée(s)"), "{text}");
    assert!(text.contains("Aucune ligne à enregistrer dans ce fichier."), "{text}");
    browser.close().await;
}

pub async fn the_import_page_shows_the_file_errors_and_refuses_auditors(app: &WebApp) {
    app.staff_account("agent", StaffRole::Staff).await;
    app.staff_account("audit", StaffRole::Auditor).await;
    let session = app.session_until(days_from_today(-1)).await;
    let path = format!("/bureau/sessions/{session}/import-courrier");
    let agent = signed_in(app, "agent").await;
    let page = agent.get(&path).await;
    assert_eq!(page.status, 200);

    let no_header = agent.post_file(&path, "vide.csv", b"\n\n".to_vec(), &page.csrf()).await;
    assert_eq!(no_header.status, 422);
    assert!(no_header.body.contains("id=\"fichier-erreur\""), "the message sits next to the field");
    assert!(no_header.text().contains("Erreur : Le fichier est vide"), "{}", no_header.text());

    let latin1 =
        agent.post_file(&path, "latin1.csv", b"code utilisateur;cachet\n\xe9t\xe9\n".to_vec(), &page.csrf()).await;
    assert_eq!(latin1.status, 422);
    assert!(latin1.text().contains("n'est pas encodé en UTF-8"), "{}", latin1.text());

    let forged = agent.post_file(&path, "courrier.csv", csv_file(&[]), "pas-le-bon-jeton").await;
    assert_eq!(forged.status, 403);

    let garbled = agent.post_form(&format!("{path}/application"), &page, &[("contenu", "%%% pas du base64 %%%")]).await;
    assert_eq!(garbled.status, 400);
    assert!(garbled.text().contains("Le fichier vérifié n'a pas été transmis"), "{}", garbled.text());

    let auditor = signed_in(app, "audit").await;
    let before = app.state.store.head().await.expect("head").position;
    let refused = auditor.get(&path).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("Les auditeurs ont un accès en lecture seule"));
    let home = auditor.get("/bureau").await;
    let refused =
        auditor.post_form(&format!("{path}/application"), &home, &[("contenu", "Y29kZSB1dGlsaXNhdGV1cgo")]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.state.store.head().await.expect("head").position, before, "nothing recorded");
    let dashboard = auditor.get(&format!("/bureau/sessions/{session}")).await;
    assert!(!dashboard.body.contains("import-courrier"), "no import link for auditors");
}

/// The receipt and rejection events of a dossier, without its pre-registration (which names it).
async fn decided(app: &WebApp, dossier: Uuid) -> Vec<DossierEvent> {
    let (events, _) =
        cachet_store::typed::load::<DossierEvent>(&*app.state.store, dossier).await.expect("the dossier's events");
    events.into_iter().skip(1).collect()
}

pub async fn a_late_postmark_is_rejected_the_same_way_by_every_entry_point(app: &WebApp) {
    app.staff_account("agent", StaffRole::Staff).await;
    // One date for the whole test: Paris midnight may pass while it runs.
    let today = today();
    let deadline = today - Days::new(2);
    let session = app.session_until(deadline).await;
    let postmark = today - Days::new(1);
    let (d, p, t) = (format_date(deadline), format_date(postmark), format_date(today));
    let iso = |date: chrono::NaiveDate| date.format("%Y-%m-%d").to_string();
    let agent = signed_in(app, "agent").await;

    // 1. The dossier page of the desk.
    let (by_page, _) = app.registered_ten_days_ago(session, "Guichet").await;
    let page = agent.get(&format!("/bureau/dossiers/{by_page}")).await;
    let done = agent
        .post_form(
            &format!("/bureau/dossiers/{by_page}/actions/reception-postale"),
            &page,
            &[("cachet", &iso(postmark)), ("arrivee", &iso(today)), ("incident", "")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text());

    // 2. The API.
    let (by_api, _) = app.registered_ten_days_ago(session, "Api").await;
    let reply = reqwest::Client::new()
        .post(app.url(&format!("/api/dossiers/{by_api}/postal-receipts")))
        .header("x-cachet-actor", "staff:agent")
        .json(&serde_json::json!({ "postmark_date": iso(postmark), "arrival_date": iso(today) }))
        .send()
        .await
        .expect("a postal receipt");
    assert_eq!(reply.status(), 200);

    // 3. A CSV file through the API.
    let (by_csv_api, csv_api_code) = app.registered_ten_days_ago(session, "Fichier").await;
    let reply = reqwest::Client::new()
        .post(app.url(&format!("/api/sessions/{session}/postal-imports?mode=apply")))
        .header("x-cachet-actor", "staff:agent")
        .header("content-type", "text/csv")
        .body(csv_file(&[format!("{csv_api_code};{p};{t};")]))
        .send()
        .await
        .expect("an import");
    assert_eq!(reply.status(), 200);

    // 4. A CSV file through the import page.
    let (by_csv_page, csv_page_code) = app.registered_ten_days_ago(session, "Courrier").await;
    let path = format!("/bureau/sessions/{session}/import-courrier");
    let form = agent.get(&path).await;
    let checked =
        agent.post_file(&path, "courrier.csv", csv_file(&[format!("{csv_page_code};{p};{t};")]), &form.csrf()).await;
    assert_eq!(checked.status, 200, "{}", checked.text());
    let content = checked.between("name=\"contenu\" value=\"", "\"").expect("the checked file");
    let applied = agent.post_form(&format!("{path}/application"), &checked, &[("contenu", &content)]).await;
    assert!(applied.text().contains("1 réception(s) enregistrée(s)."), "{}", applied.text());

    let head = app.state.store.head().await.expect("head").position;
    assert!(app.state.runner.wait_for(head, std::time::Duration::from_secs(10)).await);
    let expected_events = decided(app, by_page).await;
    assert_eq!(expected_events.len(), 2, "a receipt and its rejection: {expected_events:?}");
    let why = format!("Cachet de la poste du {p}, postérieur à la date limite du {d}");
    for dossier in [by_page, by_api, by_csv_api, by_csv_page] {
        assert_eq!(decided(app, dossier).await, expected_events, "the same events for {dossier}");
        let status = queries::dossier_status(&app.state.db, dossier).await.expect("read").expect("a dossier");
        assert_eq!(status.status, "rejected");
        let deposit = status.deposit.expect("a deposit");
        assert!(!deposit.on_time);
        assert_eq!(deposit.explanation, why);
        let message = format!(
            "Votre dossier a été rejeté car il a été déposé ou posté hors délai : cachet de la poste du {p}, \
             postérieur à la date limite du {d}."
        );
        assert_eq!(status.rejection.as_deref(), Some(message.as_str()));
        assert_eq!(status.message, message);
    }
}

web_tests!(
    the_office_imports_the_mail_after_a_dry_run,
    the_import_page_shows_the_file_errors_and_refuses_auditors,
    a_late_postmark_is_rejected_the_same_way_by_every_entry_point,
);
