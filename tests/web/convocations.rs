//! Convocations, through the pages: publication refused 14 days before a test and accepted 16
//! days before; a withheld convocation; the candidate sees nothing before publication, then
//! downloads a PDF whose text is checked, and the download is an event; another candidate's
//! convocation answers 404; an auditor cannot publish.

use cachet_domain::dossier::DossierEvent;
use cachet_domain::event::StaffRole;
use cachet_domain::ids::TestCode;
use cachet_domain::session::SessionConfig;
use cachet_domain::time::format_date;
use chrono::NaiveTime;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{days_from_today, pdf_text, today, WebApp, WebClient, PASSWORD};

async fn office(app: &WebApp, account: &str) -> WebClient {
    let client = app.client();
    let form = client.get("/bureau/connexion").await;
    let signed = client.post_form("/bureau/connexion", &form, &[("compte", account), ("mot_de_passe", PASSWORD)]).await;
    assert_eq!(signed.path, "/bureau");
    client
}

/// A candidate whose dossier arrived by post, was transferred and found complete.
async fn complete(app: &WebApp, session: Uuid, name: &str) -> (WebClient, Uuid, String) {
    let (candidate, dossier, code) = app.pre_registered_candidate(session, name).await;
    let day = today().format("%Y-%m-%d").to_string();
    app.staff_command(dossier, "postal-receipts", json!({ "postmark_date": day, "arrival_date": day })).await;
    app.staff_command(dossier, "transfer", json!({})).await;
    for piece in ["dossier-preinscription", "etat-services", "arrete-situation"] {
        app.staff_command(dossier, "piece-reviews", json!({ "piece": piece, "outcome": "accepted" })).await;
    }
    app.staff_command(dossier, "review-conclusion", json!({})).await;
    let head = app.state.store.head().await.expect("head").position;
    assert!(app.state.runner.wait_for(head, std::time::Duration::from_secs(10)).await);
    (candidate, dossier, code)
}

pub async fn convocations_are_published_with_their_lead_time_and_downloaded_by_their_candidate(app: &WebApp) {
    app.staff_account("agent", StaffRole::Staff).await;
    app.staff_account("audit", StaffRole::Auditor).await;
    let nine = NaiveTime::from_hms_opt(9, 0, 0).expect("a time");
    let mut config = SessionConfig { deposit_deadline: days_from_today(3), ..cachet_domain::demo::source_session() };
    // Computed once, for the session and the expected texts: Paris midnight may pass meanwhile.
    let written_day = days_from_today(16);
    config.tests[0].starts_at = written_day.and_time(nine);
    config.tests[1].starts_at = days_from_today(14).and_time(nine);
    let session = app.open_session(&config).await;
    let (alice, alice_dossier, alice_code) = complete(app, session, "Aubert").await;
    let (bruno, bruno_dossier, _) = complete(app, session, "Besson").await;
    let (chloe, chloe_dossier, _) = complete(app, session, "Carpentier").await;
    let alice_convocation = format!("/dossiers/{alice_dossier}/convocations/admissibilite");

    // Nothing before publication.
    let page = alice.get(&format!("/dossiers/{alice_dossier}")).await;
    assert!(page.text().contains("Votre dossier est complet"), "{}", page.text());
    assert!(!page.text().contains("Mes convocations"));
    assert_eq!(alice.get_bytes(&alice_convocation).await.0, 404);

    let agent = office(app, "agent").await;
    let dashboard = agent.get(&format!("/bureau/sessions/{session}")).await;
    assert!(dashboard.text().contains("Publier les convocations : Épreuve écrite d'admissibilité"));

    // 14 days before the oral: refused, and the page says until when it was possible.
    let refused = agent.post_form(&format!("/bureau/sessions/{session}/convocations/admission"), &dashboard, &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused.text().contains(
            "La publication des convocations à l'épreuve « Épreuve orale d'admission » n'est plus possible : \
             elles doivent être disponibles au moins 15 jours avant l'épreuve"
        ),
        "{}",
        refused.text()
    );

    // One convocation withheld, with its reason, from the dossier page.
    let dossier_page = agent.get(&format!("/bureau/dossiers/{chloe_dossier}")).await;
    assert!(dossier_page.text().contains("Épreuve écrite d'admissibilité"), "{}", dossier_page.text());
    let withheld = agent
        .post_form(
            &format!("/bureau/dossiers/{chloe_dossier}/convocations/admissibilite/retenue"),
            &dossier_page,
            &[("motif", "identité à vérifier")],
        )
        .await;
    assert!(withheld.text().contains("Convocation retenue."), "{}", withheld.text());
    assert!(withheld.text().contains("retenue (identité à vérifier)"), "{}", withheld.text());

    // An auditor cannot publish.
    let auditor = office(app, "audit").await;
    let home = auditor.get("/bureau").await;
    let denied = auditor.post_form(&format!("/bureau/sessions/{session}/convocations/admissibilite"), &home, &[]).await;
    assert_eq!(denied.status, 403);

    // 16 days before the written test: published for the two others; a second run adds nothing.
    let published =
        agent.post_form(&format!("/bureau/sessions/{session}/convocations/admissibilite"), &dashboard, &[]).await;
    assert_eq!(published.status, 200, "{}", published.text());
    assert!(
        published.text().contains("2 convocation(s) publiée(s) ; 0 déjà publiée(s) ; 1 retenue(s)."),
        "{}",
        published.text()
    );
    let again =
        agent.post_form(&format!("/bureau/sessions/{session}/convocations/admissibilite"), &dashboard, &[]).await;
    assert!(again.text().contains("0 convocation(s) publiée(s) ; 2 déjà publiée(s) ; 1 retenue(s)."));

    // The candidate sees it, downloads it, and the download is recorded.
    let page = alice.get(&format!("/dossiers/{alice_dossier}")).await;
    let written = format_date(written_day);
    assert!(
        page.text().contains(&format!(
            "Convocation à l'épreuve « Épreuve écrite d'admissibilité » du {written} à 09h00 (PDF)"
        )),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("Épreuve orale d'admission"), "only what is published");
    let (status, pdf, headers) = alice.get_bytes(&alice_convocation).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    let text = pdf_text(&pdf);
    for expected in [
        "Camille AUBERT",
        alice_code.as_str(),
        "Épreuve écrite d'admissibilité",
        &format!("le {written} à 09h00"),
        "Centre de Gestion de l'Orne",
        "2 rue François Arago, 61250 Valframbert",
        "https://www.cdg61.fr/plans/admissibilite.pdf",
        "À imprimer et à présenter avec une pièce d'identité.",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let (events, _) =
        cachet_store::typed::load::<DossierEvent>(&*app.state.store, alice_dossier).await.expect("events");
    let test = TestCode::parse("admissibilite").expect("a code");
    assert!(events.contains(&DossierEvent::ConvocationDownloaded { test }), "the download is an event");
    let office_view = agent.get(&format!("/bureau/dossiers/{alice_dossier}")).await;
    assert!(office_view.text().contains("publiée ; téléchargée 1 fois par le candidat"), "{}", office_view.text());
    assert!(office_view.text().contains("téléchargée par le candidat"), "the history says so");

    // The same through the API: the oral still refused as a problem document, the written test's
    // convocation served to its candidate (another download recorded) and to no one else.
    let http = reqwest::Client::new();
    let refused = http
        .post(app.url(&format!("/api/sessions/{session}/tests/admission/convocation-publication")))
        .header("x-cachet-actor", "staff:agent")
        .send()
        .await
        .expect("publish");
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = refused.json().await.expect("JSON");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("au moins 15 jours avant l'épreuve")), "{problem}");
    let candidate = |dossier: Uuid| async move {
        let account = cachet_api::accounts::candidate_by_dossier(&app.state.db, dossier)
            .await
            .expect("read")
            .expect("an account");
        format!("candidate:{}", account.candidate_id)
    };
    let api_pdf = format!("/api/dossiers/{alice_dossier}/convocations/admissibilite");
    let reply =
        http.get(app.url(&api_pdf)).header("x-cachet-actor", candidate(alice_dossier).await).send().await.expect("GET");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.bytes().await.expect("the PDF").to_vec(), pdf, "the same document");
    let (bruno_account, chloe_account) = (candidate(bruno_dossier).await, candidate(chloe_dossier).await);
    let reply = http.get(app.url(&api_pdf)).header("x-cachet-actor", bruno_account).send().await.expect("GET");
    assert_eq!(reply.status(), 404);
    let reply = http
        .get(app.url(&format!("/api/dossiers/{chloe_dossier}/convocations/admissibilite")))
        .header("x-cachet-actor", chloe_account)
        .send()
        .await
        .expect("GET");
    assert_eq!(reply.status(), 404, "withheld: nothing to download");

    // Another candidate's convocation answers 404; the withheld one is not offered.
    assert_eq!(bruno.get_bytes(&alice_convocation).await.0, 404);
    assert!(!chloe.get(&format!("/dossiers/{chloe_dossier}")).await.text().contains("Mes convocations"));
    assert_eq!(chloe.get_bytes(&format!("/dossiers/{chloe_dossier}/convocations/admissibilite")).await.0, 404);
}

web_tests!(convocations_are_published_with_their_lead_time_and_downloaded_by_their_candidate);
