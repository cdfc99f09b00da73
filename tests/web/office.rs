//! The exam office in a real browser: its own login, a postal receipt on time and one late with
//! the explanation shown, a bulk transfer, the review to incomplete, the missing piece received,
//! then complete; and an auditor who tries an office action is refused.

use cachet_domain::event::StaffRole;
use cachet_domain::time::format_date;
use chrono::Days;
use fantoccini::Locator;

use crate::browser::Browser;
use crate::harness::{days_from_today, today, WebApp, PASSWORD};

async fn set(browser: &Browser, id: &str, value: &str) {
    let script = format!("document.getElementById({id:?}).value = {value:?};");
    browser.client.execute(&script, vec![]).await.expect("set a field");
}

fn iso(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub async fn the_office_records_receipts_transfers_reviews_and_completes(app: &WebApp) {
    let Some(mut browser) = Browser::open("service-concours").await else { return };
    app.staff_account("agent", StaffRole::Staff).await;
    // One date for the whole test: Paris midnight may pass while it runs.
    let today = today();
    let deadline = today - Days::new(1);
    let session = app.session_until(deadline).await;
    let (on_time, code) = app.registered_ten_days_ago(session, "Laurent").await;
    let (late, _) = app.registered_ten_days_ago(session, "Tardieu").await;

    browser.visit(&app.url("/bureau/connexion"), "connexion").await;
    browser.fill("compte", "agent").await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser.press("Se connecter", "tableau-de-bord").await;
    assert_eq!(browser.path().await, "/bureau");

    // A letter postmarked on the deadline day, arrived today: on time.
    browser.visit(&app.url(&format!("/bureau/dossiers/{on_time}")), "dossier-a-l-heure").await;
    set(&browser, "cachet", &iso(deadline)).await;
    set(&browser, "arrivee", &iso(today)).await;
    browser.press("Enregistrer la réception postale", "reception-a-l-heure").await;
    let d = format_date(deadline);
    let text = browser.text().await;
    assert!(text.contains("Réception postale enregistrée."), "{text}");
    assert!(
        text.contains(&format!("par voie postale : Cachet de la poste du {d}, dans les délais (date limite : {d})")),
        "{text}"
    );

    // One postmarked the day after: rejected, and the page says why.
    browser.visit(&app.url(&format!("/bureau/dossiers/{late}")), "dossier-en-retard").await;
    set(&browser, "cachet", &iso(today)).await;
    set(&browser, "arrivee", &iso(today)).await;
    browser.press("Enregistrer la réception postale", "reception-en-retard").await;
    let text = browser.text().await;
    let why = format!("Cachet de la poste du {}, postérieur à la date limite du {d}", format_date(today));
    assert!(text.contains(&why), "{text}");
    assert!(text.contains("rejeté"), "{text}");

    // The transfer, from the queue, by selection.
    browser.visit(&app.url(&format!("/bureau/sessions/{session}")), "file-a-transferer").await;
    assert!(browser.text().await.contains("À transférer (1)"));
    browser.client.find(Locator::Id(&format!("d-{on_time}"))).await.expect("the checkbox").click().await.expect("tick");
    browser.press("Transférer la sélection", "transfere").await;
    assert!(browser.text().await.contains("1 dossier(s) transféré(s)"), "{}", browser.text().await);

    // The review, piece by piece: one missing, so incomplete.
    browser.visit(&app.url(&format!("/bureau/dossiers/{on_time}")), "a-instruire").await;
    for (piece, outcome) in
        [("dossier-preinscription", "acceptee"), ("etat-services", "manquante"), ("arrete-situation", "acceptee")]
    {
        set(&browser, &format!("resultat-{piece}"), outcome).await;
        let label = browser.text_of(&format!("#resultat-{piece}")).await;
        assert!(!label.is_empty());
        let xpath = format!("//form[.//input[@name='piece' and @value='{piece}']]//button");
        browser.click(&xpath, "piece-examinee").await;
    }
    browser.screenshot("pieces-examinees").await;
    browser.press("Conclure l'instruction", "incomplet").await;
    let text = browser.text().await;
    assert!(text.contains("Votre dossier est incomplet"), "{text}");
    assert!(text.contains("État des services établi par l'employeur"), "{text}");

    // The missing piece arrives by post: back under review, accepted, complete.
    set(&browser, "cachet-etat-services", &iso(today)).await;
    set(&browser, "arrivee-etat-services", &iso(today)).await;
    browser.press("Enregistrer la pièce reçue par courrier", "piece-recue").await;
    assert!(browser
        .text()
        .await
        .contains("Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction."));
    set(&browser, "resultat-etat-services", "acceptee").await;
    let xpath = "//form[.//input[@name='piece' and @value='etat-services']]//button";
    browser.click(xpath, "piece-examinee").await;
    browser.press("Conclure l'instruction", "complet").await;
    assert!(browser.text().await.contains("Votre dossier est complet"), "{}", browser.text().await);

    // The candidate reads the same.
    let candidate = app.client();
    let page = candidate.login(&code, PASSWORD).await;
    assert!(page.text().contains("Votre dossier est complet"));
    browser.close().await;
}

pub async fn an_auditor_reads_but_cannot_act(app: &WebApp) {
    app.staff_account("audit", StaffRole::Auditor).await;
    // One date for the whole test: Paris midnight may pass while it runs.
    let today = today();
    let session = app.session_until(today - Days::new(1)).await;
    let (dossier, _) = app.registered_ten_days_ago(session, "Simon").await;
    let client = app.client();
    let form = client.get("/bureau/connexion").await;
    let signed = client.post_form("/bureau/connexion", &form, &[("compte", "audit"), ("mot_de_passe", PASSWORD)]).await;
    assert_eq!(signed.path, "/bureau");
    let page = client.get(&format!("/bureau/dossiers/{dossier}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Historique") && !page.text().contains("Enregistrer la réception postale"));
    let before = app.state.store.head().await.expect("head").position;
    let refused = client
        .post_form(
            &format!("/bureau/dossiers/{dossier}/actions/reception-postale"),
            &page,
            &[("cachet", &iso(today - Days::new(2))), ("arrivee", &iso(today)), ("incident", "")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("Les auditeurs ont un accès en lecture seule : cette action leur est interdite."));
    assert_eq!(app.state.store.head().await.expect("head").position, before, "nothing recorded");
    let queue = client.get(&format!("/bureau/sessions/{session}")).await;
    assert!(!queue.body.contains("Clore les dépôts"));
}

pub async fn an_extension_first_lists_the_dossiers_whose_verdict_it_would_change(app: &WebApp) {
    app.staff_account("admin", StaffRole::Admin).await;
    app.staff_account("agent", StaffRole::Staff).await;
    // One date for the whole test: Paris midnight may pass while it runs.
    let today = today();
    let deadline = today - Days::new(3);
    let session = app.session_until(deadline).await;
    let (late, late_code) = app.registered_ten_days_ago(session, "Retard").await;
    let (_, lapsed_code) = app.registered_ten_days_ago(session, "Absent").await;
    let postmark = today - Days::new(1);
    let reply = reqwest::Client::new()
        .post(app.url(&format!("/api/dossiers/{late}/postal-receipts")))
        .header("x-cachet-actor", "staff:agent")
        .json(&serde_json::json!({ "postmark_date": iso(postmark), "arrival_date": iso(today) }))
        .send()
        .await
        .expect("a postal receipt");
    assert!(reply.status().is_success());
    let reply = reqwest::Client::new()
        .post(app.url(&format!("/api/sessions/{session}/deposit-closure")))
        .header("x-cachet-actor", "staff:agent")
        .send()
        .await
        .expect("close the deposits");
    assert!(reply.status().is_success());

    // A staff member may not extend.
    let agent = app.client();
    let form = agent.get("/bureau/connexion").await;
    agent.post_form("/bureau/connexion", &form, &[("compte", "agent"), ("mot_de_passe", PASSWORD)]).await;
    let refused = agent.get(&format!("/bureau/sessions/{session}/prolongation")).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("Cette action est réservée aux administrateurs."));

    let admin = app.client();
    let form = admin.get("/bureau/connexion").await;
    admin.post_form("/bureau/connexion", &form, &[("compte", "admin"), ("mot_de_passe", PASSWORD)]).await;
    let page = admin.get(&format!("/bureau/sessions/{session}/prolongation")).await;
    assert_eq!(page.status, 200);
    let preview = admin
        .post_form(
            &format!("/bureau/sessions/{session}/prolongation"),
            &page,
            &[("etape", "apercu"), ("date", &iso(today)), ("motif", "grève des services postaux")],
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    let text = preview.text();
    assert!(text.contains("Dossiers dont le verdict changerait : 2"), "{text}");
    let (d, p) = (format_date(deadline), format_date(postmark));
    assert!(
        text.contains(&format!("{late_code} Rejeté : Cachet de la poste du {p}, postérieur à la date limite du {d}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Cachet de la poste du {p}, dans les délais (date limite : {})", format_date(today)))
    );
    assert!(text.contains(&format!("{lapsed_code} Non parvenu Rouvert au dépôt en ligne")), "{text}");
    // Nothing is recorded by the preview.
    let summary = cachet_projections::queries::session(&app.state.db, session).await.expect("read").expect("session");
    assert_eq!(summary.deadline, iso(deadline));

    let done = admin
        .post_raw(
            &format!("/bureau/sessions/{session}/prolongation"),
            &[
                ("csrf".to_owned(), preview.csrf()),
                ("etape".to_owned(), "confirmer".to_owned()),
                ("date".to_owned(), iso(today)),
                ("motif".to_owned(), "grève des services postaux".to_owned()),
            ],
        )
        .await;
    assert_eq!(done.path, format!("/bureau/sessions/{session}"));
    assert!(done.text().contains(&format!("Date limite prolongée au {}", format_date(today))), "{}", done.text());
    let summary = cachet_projections::queries::session(&app.state.db, session).await.expect("read").expect("session");
    assert_eq!(summary.deadline, iso(today));
}

/// The most recent weekday before today, when the source session's counter is open 8:30–12:00
/// and 13:30–17:00.
fn last_weekday() -> chrono::NaiveDate {
    use chrono::Datelike;
    let mut day = days_from_today(-1);
    while matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
        day = day.pred_opt().expect("a day");
    }
    day
}

pub async fn the_desk_records_the_counter_refused_forms_and_a_piece_brought_to_the_counter(app: &WebApp) {
    let Some(mut browser) = Browser::open("accueil-et-refus").await else { return };
    app.staff_account("agent", StaffRole::Staff).await;
    let session = app.session_until(days_from_today(5)).await;
    let (counter, _) = app.registered_ten_days_ago(session, "Guichet").await;
    let (faxed, _) = app.registered_ten_days_ago(session, "Telecopie").await;
    let day = last_weekday();

    browser.visit(&app.url("/bureau/connexion"), "connexion").await;
    browser.fill("compte", "agent").await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser.press("Se connecter", "tableau-de-bord").await;

    // A counter receipt at 20:00 is refused: the counter was closed, and the page says when it opens.
    browser.visit(&app.url(&format!("/bureau/dossiers/{counter}")), "dossier-accueil").await;
    set(&browser, "date", &iso(day)).await;
    set(&browser, "heure", "20:00").await;
    browser.press("Enregistrer le dépôt à l'accueil", "accueil-ferme").await;
    let text = browser.text().await;
    assert!(text.contains(&format!("L'accueil est fermé le {} à 20h00", format_date(day))), "{text}");
    assert!(text.contains("horaires d'ouverture"), "{text}");
    // At 10:00 it is recorded, on time.
    set(&browser, "date", &iso(day)).await;
    set(&browser, "heure", "10:00").await;
    browser.press("Enregistrer le dépôt à l'accueil", "accueil-ouvert").await;
    let text = browser.text().await;
    assert!(text.contains("déposé à l'accueil"), "{text}");
    assert!(text.contains("dans les délais"), "{text}");

    // A dossier sent by fax is refused from the desk; the candidate reads why.
    browser.visit(&app.url(&format!("/bureau/dossiers/{faxed}")), "dossier-telecopie").await;
    set(&browser, "forme", "telecopie").await;
    set(&browser, "recu", &iso(today())).await;
    browser.press("Enregistrer le refus", "refus-telecopie").await;
    let text = browser.text().await;
    assert!(text.contains("télécopie"), "{text}");
    let status =
        cachet_projections::queries::dossier_status(&app.state.db, faxed).await.expect("read").expect("a dossier");
    assert_eq!(status.status, "rejected");

    // The counter dossier is transferred, found incomplete, and the missing piece is brought to the counter.
    browser.visit(&app.url(&format!("/bureau/dossiers/{counter}")), "a-transferer").await;
    browser.press("Transférer dans le logiciel", "transfere").await;
    for (piece, outcome) in
        [("dossier-preinscription", "acceptee"), ("etat-services", "manquante"), ("arrete-situation", "acceptee")]
    {
        set(&browser, &format!("resultat-{piece}"), outcome).await;
        let xpath = format!("//form[.//input[@name='piece' and @value='{piece}']]//button");
        browser.click(&xpath, "piece-examinee").await;
    }
    browser.press("Conclure l'instruction", "incomplet").await;
    assert!(browser.text().await.contains("Votre dossier est incomplet"));
    // At 03:00 the counter is closed. The day is a past one: today at 03:00 would be in the future
    // when the tests run between midnight and 3 a.m., Paris time.
    set(&browser, "date-accueil-etat-services", &iso(day)).await;
    set(&browser, "heure-accueil-etat-services", "03:00").await;
    browser
        .press("Enregistrer la pièce remise à l'accueil : État des services établi par l'employeur", "piece-nuit")
        .await;
    assert!(browser.text().await.contains("L'accueil est fermé le"), "{}", browser.text().await);
    set(&browser, "date-accueil-etat-services", &iso(day)).await;
    set(&browser, "heure-accueil-etat-services", "14:00").await;
    browser
        .press("Enregistrer la pièce remise à l'accueil : État des services établi par l'employeur", "piece-remise")
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction."),
        "{text}"
    );
    browser.close().await;
}

pub async fn the_office_previews_and_downloads_a_piece(app: &WebApp) {
    app.staff_account("agent", StaffRole::Staff).await;
    app.staff_account("audit", StaffRole::Auditor).await;
    let session = app.session_until(days_from_today(5)).await;
    let (candidate, dossier, _) = app.pre_registered_candidate(session, "Apercu").await;
    let pdf = crate::harness::pdf("État des services de Camille Apercu");
    let uploaded = candidate.upload(dossier, "etat-services", "état des services.pdf", pdf.clone()).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());
    let base = format!("/bureau/dossiers/{dossier}/pieces/etat-services");

    for account in ["agent", "audit"] {
        let office = app.client();
        let form = office.get("/bureau/connexion").await;
        office.post_form("/bureau/connexion", &form, &[("compte", account), ("mot_de_passe", PASSWORD)]).await;
        let page = office.get(&format!("/bureau/dossiers/{dossier}")).await;
        assert!(page.body.contains(&format!("href=\"{base}/apercu\"")), "a preview link for {account}");
        assert!(page.text().contains("Télécharger état des services.pdf"), "{}", page.text());
        let (status, bytes, headers) = office.get_bytes(&format!("{base}/apercu")).await;
        assert_eq!(status, 200);
        assert_eq!(bytes, pdf, "the very bytes uploaded");
        assert_eq!(headers["content-type"], "application/pdf");
        let disposition = headers["content-disposition"].to_str().expect("ASCII");
        assert!(disposition.starts_with("inline; filename="), "{disposition}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let (status, _, headers) = office.get_bytes(&format!("{base}/fichier")).await;
        assert_eq!(status, 200);
        assert!(headers["content-disposition"].to_str().expect("ASCII").starts_with("attachment; filename="));
        let (status, _, _) =
            office.get_bytes(&format!("/bureau/dossiers/{dossier}/pieces/arrete-situation/apercu")).await;
        assert_eq!(status, 404, "no file, no preview");
    }
    // The candidate is not the office: the preview sends to the office's login.
    let (status, bytes, _) = candidate.get_bytes(&format!("{base}/apercu")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&bytes).contains("action=\"/bureau/connexion\""), "the office login page");
    assert_ne!(bytes, pdf);
}

/// Appends `n` pre-registrations (no accounts), a minute apart; returns their dossier ids in
/// pre-registration order.
async fn pre_registrations(app: &WebApp, session: uuid::Uuid, n: usize) -> Vec<uuid::Uuid> {
    use cachet_domain::dossier::DossierEvent;
    use cachet_domain::event::Actor;
    use cachet_domain::ids::{CandidateId, DossierId, SessionId};
    use cachet_store::typed::{append_request, Metadata};
    let start = chrono::Utc::now() - chrono::Duration::days(10);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (candidate_id, dossier_id) =
            (CandidateId::from_uuid(uuid::Uuid::new_v4()), DossierId::from_uuid(uuid::Uuid::new_v4()));
        let at = start + chrono::Duration::minutes(i as i64);
        let event = DossierEvent::PreRegistered {
            dossier_id,
            session_id: SessionId::from_uuid(session),
            candidate_id,
            user_code: cachet_api::service::user_code_for(dossier_id),
            registered_at: at,
        };
        let command_id = uuid::Uuid::new_v4();
        let metadata = Metadata {
            actor: Actor::Candidate { candidate_id },
            command_id,
            correlation_id: command_id,
            causation_id: None,
        };
        let request =
            append_request(dossier_id.as_uuid(), cachet_store::ExpectedVersion::Exact(0), &metadata, at, &[event]);
        app.state.store.append(request).await.expect("append");
        ids.push(dossier_id.as_uuid());
    }
    let head = app.state.store.head().await.expect("head").position;
    assert!(app.state.runner.wait_for(head, std::time::Duration::from_secs(20)).await);
    ids
}

/// The dossiers a queue page lists, in its order.
fn listed(body: &str) -> Vec<uuid::Uuid> {
    body.split("<a href=\"/bureau/dossiers/")
        .skip(1)
        .filter_map(|rest| rest.get(..36).and_then(|id| uuid::Uuid::parse_str(id).ok()))
        .collect()
}

pub async fn the_desk_pages_a_queue_in_both_orders(app: &WebApp) {
    app.staff_account("agent", StaffRole::Staff).await;
    let session = app.session_until(days_from_today(5)).await;
    let ids = pre_registrations(app, session, 121).await;
    let agent = app.client();
    let form = agent.get("/bureau/connexion").await;
    agent.post_form("/bureau/connexion", &form, &[("compte", "agent"), ("mot_de_passe", PASSWORD)]).await;
    for newest_first in [false, true] {
        let mut seen = Vec::new();
        for page in 1..=3 {
            let tri = if newest_first { "&tri=recents" } else { "" };
            let reply = agent.get(&format!("/bureau/sessions/{session}?file=awaiting_deposit&page={page}{tri}")).await;
            assert_eq!(reply.status, 200);
            assert!(reply.text().contains("En attente de dépôt (121)"), "{}", reply.text());
            assert!(reply.text().contains(&format!("Page {page} sur 3")), "{}", reply.text());
            let lines = listed(&reply.body);
            assert_eq!(lines.len(), if page == 3 { 21 } else { 50 }, "page {page}");
            seen.extend(lines);
        }
        let mut expected = ids.clone();
        if newest_first {
            expected.reverse();
        }
        assert_eq!(seen, expected, "every dossier once, in order (newest first: {newest_first})");
    }
    // A page past the end (a stale link): empty, not an error.
    let past = agent.get(&format!("/bureau/sessions/{session}?file=awaiting_deposit&page=4")).await;
    assert_eq!(past.status, 200, "{}", past.text());
    assert!(listed(&past.body).is_empty());
}

pub async fn an_auditor_in_a_browser_is_offered_no_action_and_refused_one(app: &WebApp) {
    let Some(mut browser) = Browser::open("auditeur").await else { return };
    app.staff_account("audit", StaffRole::Auditor).await;
    let session = app.session_until(days_from_today(-1)).await;
    let (dossier, _) = app.registered_ten_days_ago(session, "Lecture").await;
    browser.visit(&app.url("/bureau/connexion"), "connexion").await;
    browser.fill("compte", "audit").await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser.press("Se connecter", "tableau-de-bord").await;
    browser.visit(&app.url(&format!("/bureau/sessions/{session}")), "session").await;
    let text = browser.text().await;
    assert!(!text.contains("Importer le courrier du jour") && !text.contains("Clore les dépôts"), "{text}");
    browser.visit(&app.url(&format!("/bureau/dossiers/{dossier}")), "dossier").await;
    let text = browser.text().await;
    assert!(text.contains("Historique") && !text.contains("Enregistrer la réception postale"), "{text}");
    // Typing the address of an action page gets a refusal, in French.
    let before = app.state.store.head().await.expect("head").position;
    browser.visit(&app.url(&format!("/bureau/sessions/{session}/import-courrier")), "import-refuse").await;
    let text = browser.text().await;
    assert!(text.contains("Les auditeurs ont un accès en lecture seule : cette action leur est interdite."), "{text}");
    assert_eq!(app.state.store.head().await.expect("head").position, before);
    browser.close().await;
}

web_tests!(
    the_office_records_receipts_transfers_reviews_and_completes,
    an_auditor_reads_but_cannot_act,
    an_extension_first_lists_the_dossiers_whose_verdict_it_would_change,
    the_desk_records_the_counter_refused_forms_and_a_piece_brought_to_the_counter,
    the_office_previews_and_downloads_a_piece,
    the_desk_pages_a_queue_in_both_orders,
    an_auditor_in_a_browser_is_offered_no_action_and_refused_one,
);
