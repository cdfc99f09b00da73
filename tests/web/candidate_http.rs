//! The candidate pages through HTTP, as a browser without JavaScript uses them: form errors next
//! to their fields, login throttling without user enumeration, hostile uploads, ownership, the
//! status messages, the closure after the deadline, and the PDFs read back with pdftotext.

use cachet_api::accounts::{self, CandidateAccount, Identity};
use cachet_domain::dossier::DossierEvent;
use cachet_domain::event::Actor;
use cachet_domain::ids::{CandidateId, DossierId, SessionId, UserCode};
use cachet_store::typed::{append_request, Metadata};
use cachet_store::ExpectedVersion;
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{days_from_today, pdf, pdf_text, WebApp, MAX_UPLOAD_BYTES, PASSWORD};

/// Every stored object under the files folder (content-addressed or temporary).
fn stored_files(app: &WebApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&app.dir.path().join("files"), &mut out);
    out.sort();
    out
}

async fn office(app: &WebApp, path: &str, body: serde_json::Value) {
    let reply = reqwest::Client::new()
        .post(app.url(path))
        .header("x-cachet-actor", "staff:agent")
        .json(&body)
        .send()
        .await
        .expect("office action");
    assert!(reply.status().is_success(), "{path}: {}", reply.text().await.unwrap_or_default());
}

pub async fn pre_registration_errors_are_shown_next_to_their_fields(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let client = app.client();
    let form = client.get(&format!("/sessions/{session}/preinscription")).await;
    let reply = client
        .post_form(
            &format!("/sessions/{session}/preinscription"),
            &form,
            &[
                ("nom", ""),
                ("prenom", "Camille"),
                ("date_naissance", "31/02/1985"),
                ("adresse", "1 place de la Mairie"),
                ("courriel", "pas-une-adresse"),
                ("telephone", "12"),
                ("q_grade", ""),
                ("q_employeur", "Commune"),
                ("mot_de_passe", "court"),
                ("confirmation", "court"),
            ],
        )
        .await;
    assert_eq!(reply.status, 422);
    let csp = reply.headers["content-security-policy"].to_str().expect("ASCII");
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    let text = reply.text();
    for message in [
        "Erreur : Indiquez votre nom de naissance.",
        "Erreur : Indiquez votre date de naissance, par exemple 14/03/1985.",
        "Erreur : Indiquez une adresse électronique valide, par exemple prenom.nom@exemple.fr.",
        "Erreur : Indiquez un numéro de téléphone valide, par exemple 02 33 80 48 00.",
        "Erreur : Répondez à la question « Grade actuel ».",
        "Erreur : Le mot de passe doit contenir au moins 10 caractères.",
    ] {
        assert!(text.contains(message), "« {message} » is shown: {text}");
    }
    assert!(reply.body.contains(r#"id="courriel" name="courriel" value="pas-une-adresse""#), "values are kept");
    assert!(reply.body.contains(r#"aria-invalid="true" aria-describedby="courriel-aide courriel-erreur""#));
    assert!(!reply.body.contains("value=\"court\""), "passwords are never sent back");
    // Nothing was pre-registered.
    assert_eq!(app.state.store.head().await.expect("head").position, 1, "only the session's event");
}

pub async fn a_pre_registration_sent_twice_registers_once(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let client = app.client();
    let form = client.get(&format!("/sessions/{session}/preinscription")).await;
    let fields = [
        ("nom", "Lefebvre"),
        ("prenom", "Sacha"),
        ("date_naissance", "1990-01-02"),
        ("adresse", "3 rue Haute"),
        ("courriel", "sacha@exemple.fr"),
        ("telephone", "0233804800"),
        ("q_grade", "Agent de maîtrise"),
        ("q_employeur", "Département de l'Orne"),
        ("mot_de_passe", PASSWORD),
        ("confirmation", PASSWORD),
    ];
    let first = client.post_form(&format!("/sessions/{session}/preinscription"), &form, &fields).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The same form (same nonce) sent again from another tab of the same visitor.
    let again = app.client();
    let form_again = again.get(&format!("/sessions/{session}/preinscription")).await;
    let mut replayed: Vec<(String, String)> = vec![
        ("csrf".to_owned(), form_again.csrf()),
        ("jeton".to_owned(), form.between("name=\"jeton\" value=\"", "\"").expect("nonce")),
    ];
    replayed.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let second = again.post_raw(&format!("/sessions/{session}/preinscription"), &replayed).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(first.path, second.path, "the same dossier");
    assert_eq!(app.state.store.head().await.expect("head").position, 2, "one PreRegistered event");
}

pub async fn login_failures_are_throttled_without_telling_whether_a_code_exists(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Roux").await;
    let client = app.client();
    let unknown = client.login("ZZZZZZZZ", PASSWORD).await;
    let wrong = client.login(&code, "mauvais mot de passe").await;
    assert_eq!((unknown.status, wrong.status), (401, 401));
    let message = "Code utilisateur ou mot de passe incorrect.";
    assert!(unknown.text().contains(message) && wrong.text().contains(message));
    for _ in 0..4 {
        client.login(&code, "mauvais mot de passe").await;
    }
    // Five failures on the account: even the right password waits.
    let locked = client.login(&code, PASSWORD).await;
    assert_eq!(locked.status, 401);
    assert!(
        locked
            .text()
            .contains("Trop de tentatives de connexion infructueuses. Par sécurité, réessayez dans 15 minutes."),
        "{}",
        locked.text()
    );
}

pub async fn hostile_uploads_are_refused_and_nothing_is_stored(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let (client, dossier, _) = app.pre_registered_candidate(session, "Fournier").await;
    let before = stored_files(app);

    let exe = client
        .upload(dossier, "etat-services", "etat.pdf", b"MZ\x90\x00\x03\x00\x00\x00 this is a program".to_vec())
        .await;
    assert_eq!(exe.status, 415);
    assert!(exe.text().contains("Seuls les fichiers PDF, JPEG ou PNG sont acceptés"), "{}", exe.text());

    let big = client.upload(dossier, "etat-services", "gros.pdf", pdf(&"x".repeat(MAX_UPLOAD_BYTES as usize))).await;
    assert_eq!(big.status, 413);
    assert!(big.text().contains("Le fichier dépasse la taille maximale de 256 Kio."), "{}", big.text());

    let empty = client.upload(dossier, "etat-services", "vide.pdf", Vec::new()).await;
    assert_eq!(empty.status, 422);
    assert!(empty.text().contains("Le fichier est vide."), "{}", empty.text());

    assert_eq!(stored_files(app), before, "nothing stored");
    let pieces = client.get(&format!("/dossiers/{dossier}/pieces")).await;
    assert!(pieces.text().contains("Aucun fichier"), "no piece recorded");

    // A hostile name is made harmless, and the server still works.
    let hostile =
        client.upload(dossier, "etat-services", "../../etc/<script>alert(1)</script>.pdf", pdf("services")).await;
    assert_eq!(hostile.status, 200, "{}", hostile.body);
    assert!(!hostile.body.contains("<script>"), "no markup from the name");
    let row = hostile.between("id=\"piece-etat-services\"", "</tr>").expect("the row");
    // Only the last path component is kept, and only harmless characters.
    assert!(row.contains(">script_.pdf</a>"), "{row}");
}

pub async fn a_piece_is_replaced_or_removed_until_closure(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let (client, dossier, _) = app.pre_registered_candidate(session, "Garnier").await;
    let row = |page: &crate::harness::PageReply| page.between("id=\"piece-etat-services\"", "</tr>").expect("the row");
    let first = client.upload(dossier, "etat-services", "premier.pdf", pdf("premier")).await;
    assert!(row(&first).contains(">premier.pdf</a>"));
    let second = client.upload(dossier, "etat-services", "second.pdf", pdf("second")).await;
    assert!(row(&second).contains(">second.pdf</a>") && !row(&second).contains("premier.pdf"), "replaced");
    let removed = client.post_form(&format!("/dossiers/{dossier}/pieces/etat-services/retrait"), &second, &[]).await;
    assert_eq!(removed.status, 200);
    assert!(removed
        .text()
        .contains("Le fichier de la pièce « État des services établi par l'employeur » a été retiré."));
    assert!(row(&removed).contains("Aucun fichier"));

    client.upload(dossier, "etat-services", "services.pdf", pdf("services")).await;
    client.upload(dossier, "dossier-preinscription", "dossier.pdf", pdf("dossier")).await;
    let pieces = client.get(&format!("/dossiers/{dossier}/pieces")).await;
    client.post_form(&format!("/dossiers/{dossier}/cloture"), &pieces, &[]).await;
    // Once closed, the page offers no change, and a form kept open is refused.
    let after = client.get(&format!("/dossiers/{dossier}/pieces")).await;
    assert!(!after.body.contains("Ajouter le fichier") && !after.body.contains("Retirer le fichier"));
    let late = client.post_form(&format!("/dossiers/{dossier}/pieces/etat-services/retrait"), &pieces, &[]).await;
    assert_eq!(late.status, 409, "{}", late.text());
    assert!(row(&late).contains("services.pdf"), "the piece is still there");
}

pub async fn another_candidates_dossier_answers_404_everywhere(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let (owner, dossier, _) = app.pre_registered_candidate(session, "Girard").await;
    owner.upload(dossier, "dossier-preinscription", "dossier.pdf", pdf("dossier")).await;
    let pieces = owner.get(&format!("/dossiers/{dossier}/pieces")).await;
    let closed = owner.post_form(&format!("/dossiers/{dossier}/cloture"), &pieces, &[]).await;
    assert_eq!(closed.path, format!("/dossiers/{dossier}/recepisse"));

    let (intruder, own_dossier, _) = app.pre_registered_candidate(session, "Bonnet").await;
    let own = intruder.get(&format!("/dossiers/{own_dossier}")).await;
    for path in [
        format!("/dossiers/{dossier}"),
        format!("/dossiers/{dossier}/pieces"),
        format!("/dossiers/{dossier}/pieces/dossier-preinscription/fichier"),
        format!("/dossiers/{dossier}/recepisse"),
        format!("/dossiers/{dossier}/recepisse.pdf"),
        format!("/dossiers/{dossier}/dossier-de-preinscription.pdf"),
    ] {
        let (status, body, _) = intruder.get_bytes(&path).await;
        assert_eq!(status, 404, "GET {path}");
        assert!(String::from_utf8_lossy(&body).contains("Cette page n'existe pas ou ne vous est pas accessible."));
    }
    for path in [format!("/dossiers/{dossier}/pieces/etat-services/retrait"), format!("/dossiers/{dossier}/cloture")] {
        let reply = intruder.post_form(&path, &own, &[]).await;
        assert_eq!(reply.status, 404, "POST {path}");
    }
    let upload = intruder.upload_with_token(dossier, "etat-services", "x.pdf", pdf("x"), &own.csrf()).await;
    assert_eq!(upload.status, 404, "POST upload");
    // And a visitor who is not signed in is sent to the login page.
    let anonymous = app.client().get(&format!("/dossiers/{dossier}")).await;
    assert_eq!(anonymous.path, "/connexion");
}

pub async fn the_status_page_shows_the_missing_pieces_and_the_rejection(app: &WebApp) {
    let session = app.session_until(days_from_today(20)).await;
    let (client, dossier, _) = app.pre_registered_candidate(session, "Lambert").await;
    client.upload(dossier, "dossier-preinscription", "dossier.pdf", pdf("dossier")).await;
    let pieces = client.get(&format!("/dossiers/{dossier}/pieces")).await;
    client.post_form(&format!("/dossiers/{dossier}/cloture"), &pieces, &[]).await;
    office(app, &format!("/api/dossiers/{dossier}/transfer"), json!({})).await;
    let page = client.get(&format!("/dossiers/{dossier}")).await;
    assert!(page.text().contains("Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction."));

    let reviews = format!("/api/dossiers/{dossier}/piece-reviews");
    office(app, &reviews, json!({"piece": "dossier-preinscription", "outcome": "accepted"})).await;
    office(app, &reviews, json!({"piece": "etat-services", "outcome": "missing"})).await;
    office(app, &reviews, json!({"piece": "arrete-situation", "outcome": "refused", "reason": "illisible"})).await;
    office(app, &format!("/api/dossiers/{dossier}/review-conclusion"), json!({})).await;
    let page = client.get(&format!("/dossiers/{dossier}")).await;
    let status = page.between("class=\"status\"", "</div>").map(|s| crate::harness::plain(&s)).expect("status");
    assert!(status.contains("Votre dossier est incomplet"), "{status}");
    assert!(status.contains("Pièces manquantes : État des services établi par l'employeur"), "{status}");
    assert!(status.contains("Dernier arrêté de situation administrative (pièce refusée : illisible)"), "{status}");
    assert!(page.text().contains("déposer en ligne sur la page des pièces"));

    // The missing piece deposited online from the pieces page.
    let reply = client.upload(dossier, "etat-services", "services.pdf", pdf("services")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    office(app, &format!("/api/dossiers/{dossier}/rejection"), json!({"detail": "la signature manque."})).await;
    let page = client.get(&format!("/dossiers/{dossier}")).await;
    assert!(
        page.text().contains("Votre dossier a été rejeté car il n'est pas conforme : la signature manque."),
        "{}",
        page.text()
    );
}

/// A dossier pre-registered ten days ago in a session whose deadline was yesterday, with its
/// account, signed in; and that deadline.
async fn dossier_after_the_deadline(app: &WebApp) -> (crate::harness::WebClient, Uuid, NaiveDate) {
    // Computed once, for the session and the expected texts: Paris midnight may pass meanwhile.
    let deadline = days_from_today(-1);
    let session = app.session_until(deadline).await;
    let candidate_id = CandidateId::from_uuid(Uuid::new_v4());
    let dossier_id = DossierId::from_uuid(Uuid::new_v4());
    let user_code = UserCode::parse("LATE2345").expect("a code");
    let at = Utc.from_utc_datetime(&days_from_today(-10).and_hms_opt(9, 0, 0).expect("time"));
    let event = DossierEvent::PreRegistered {
        dossier_id,
        session_id: SessionId::from_uuid(session),
        candidate_id,
        user_code: user_code.clone(),
        registered_at: at,
    };
    let command_id = Uuid::new_v4();
    let metadata = Metadata {
        actor: Actor::Candidate { candidate_id },
        command_id,
        correlation_id: command_id,
        causation_id: None,
    };
    // The dossier de pré-inscription was deposited before the deadline; only the closure is late.
    let file = app.state.files.put_bytes(pdf("dossier"), "dossier.pdf").await.expect("a stored file");
    let uploaded = DossierEvent::PieceUploaded {
        piece: cachet_domain::ids::PieceCode::parse("dossier-preinscription").expect("a code"),
        file,
        replaced: None,
    };
    let request = append_request(dossier_id.as_uuid(), ExpectedVersion::Exact(0), &metadata, at, &[event, uploaded]);
    let outcome = app.state.store.append(request).await.expect("append");
    assert!(
        app.state.runner.wait_for(outcome.last_position.expect("position"), std::time::Duration::from_secs(10)).await
    );
    let account = CandidateAccount {
        user_code: user_code.to_string(),
        candidate_id: candidate_id.as_uuid(),
        dossier_id: dossier_id.as_uuid(),
        session_id: session,
        identity: Identity {
            last_name: "Tardif".to_owned(),
            first_name: "Alex".to_owned(),
            birth_date: chrono::NaiveDate::from_ymd_opt(1980, 5, 6).expect("date"),
            address: "1 rue du Retard".to_owned(),
            email: "alex@exemple.fr".to_owned(),
            phone: "0233000000".to_owned(),
            answers: Default::default(),
        },
        password_hash: accounts::hash_password(PASSWORD.to_owned()).await.expect("hash"),
        created_at: at,
    };
    accounts::create_candidate(&app.state.db, &account).await.expect("account");
    let client = app.client();
    assert_eq!(client.login("LATE2345", PASSWORD).await.status, 200);
    (client, dossier_id.as_uuid(), deadline)
}

pub async fn closing_after_midnight_on_the_deadline_day_is_refused(app: &WebApp) {
    let (client, dossier, deadline) = dossier_after_the_deadline(app).await;
    let pieces = client.get(&format!("/dossiers/{dossier}/pieces")).await;
    let reply = client.post_form(&format!("/dossiers/{dossier}/cloture"), &pieces, &[]).await;
    assert_eq!(reply.status, 409);
    let error = reply.between("id=\"cloture-erreur\"", "</p>").map(|e| crate::harness::plain(&e)).expect("the error");
    let deadline = cachet_domain::time::format_date(deadline);
    assert!(
        error.contains("Erreur : La clôture de l'inscription n'est plus possible : clôture en ligne le "),
        "{error}"
    );
    assert!(
        error.contains(&format!("postérieure à la date limite du {deadline} (inscription à clôturer avant minuit)")),
        "{error}"
    );
}

pub async fn the_generated_pdfs_carry_the_candidate_and_the_pieces(app: &WebApp) {
    // Computed once, for the session and the expected texts: Paris midnight may pass meanwhile.
    let deadline = days_from_today(20);
    let session = app.session_until(deadline).await;
    let (client, dossier, code) = app.pre_registered_candidate(session, "Mercier").await;
    let (status, form, headers) = client.get_bytes(&format!("/dossiers/{dossier}/dossier-de-preinscription.pdf")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    let text = pdf_text(&form);
    for expected in [
        "Dossier de pré-inscription",
        &code,
        "MERCIER",
        "Camille",
        "14/03/1985",
        "Grade actuel",
        "Adjoint technique territorial",
        "Dossier de pré-inscription daté et signé",
        "État des services établi par l'employeur",
        "Signature du candidat",
        &cachet_domain::time::format_date(deadline),
    ] {
        assert!(text.contains(expected), "« {expected} » in the form:\n{text}");
    }

    client.upload(dossier, "dossier-preinscription", "mon-dossier.pdf", pdf("dossier")).await;
    let pieces = client.get(&format!("/dossiers/{dossier}/pieces")).await;
    client.post_form(&format!("/dossiers/{dossier}/cloture"), &pieces, &[]).await;
    let (status, receipt, _) = client.get_bytes(&format!("/dossiers/{dossier}/recepisse.pdf")).await;
    assert_eq!(status, 200);
    let text = pdf_text(&receipt);
    for expected in ["Récépissé de dépôt", &code, "Camille MERCIER", "mon-dossier.pdf", "Inscription clôturée le"]
    {
        assert!(text.contains(expected), "« {expected} » in the receipt:\n{text}");
    }
}

web_tests!(
    pre_registration_errors_are_shown_next_to_their_fields,
    a_pre_registration_sent_twice_registers_once,
    login_failures_are_throttled_without_telling_whether_a_code_exists,
    hostile_uploads_are_refused_and_nothing_is_stored,
    a_piece_is_replaced_or_removed_until_closure,
    another_candidates_dossier_answers_404_everywhere,
    the_status_page_shows_the_missing_pieces_and_the_rejection,
    closing_after_midnight_on_the_deadline_day_is_refused,
    the_generated_pdfs_carry_the_candidate_and_the_pieces,
);
