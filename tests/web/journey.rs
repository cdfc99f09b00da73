//! The candidate's journey in a real browser: pre-registration, login, an optional piece, the
//! closure refused without the dossier de pré-inscription, then accepted, and the status.

use fantoccini::key::Key;
use fantoccini::Locator;

use crate::browser::Browser;
use crate::harness::{days_from_today, pdf, WebApp, PASSWORD};

const AWAITING: &str = "le Centre de Gestion est en attente de votre dossier.";

pub async fn a_candidate_pre_registers_deposits_online_and_closes(app: &WebApp) {
    let Some(mut browser) = Browser::open("parcours-candidat").await else { return };
    let session = app.session_until(days_from_today(20)).await;
    let files = tempfile::tempdir().expect("folder");
    let form_pdf = files.path().join("dossier-signe.pdf");
    std::fs::write(&form_pdf, pdf("dossier de pré-inscription signé")).expect("write");
    let services_pdf = files.path().join("etat-des-services.pdf");
    std::fs::write(&services_pdf, pdf("état des services")).expect("write");

    // Pre-registration from the home page.
    browser.visit(&app.url("/"), "accueil").await;
    browser.follow("Se préinscrire", "formulaire-preinscription").await;
    assert_eq!(browser.path().await, format!("/sessions/{session}/preinscription"));
    browser.fill("nom", "Martin").await;
    browser.fill("prenom", "Camille").await;
    browser
        .client
        .execute("document.getElementById('date_naissance').value = '1985-03-14';", vec![])
        .await
        .expect("set the date");
    browser.fill("adresse", "12 rue des Lilas, 61000 Alençon").await;
    browser.fill("courriel", "camille.martin@exemple.fr").await;
    browser.fill("telephone", "02 33 80 48 00").await;
    browser.fill("q_grade", "Adjoint technique territorial").await;
    browser.fill("q_employeur", "Commune d'Alençon").await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser.fill("confirmation", PASSWORD).await;
    browser.press("Enregistrer ma préinscription", "preinscription-enregistree").await;
    let text = browser.text().await;
    assert!(text.contains("Votre préinscription est enregistrée. Votre code utilisateur est"), "{text}");
    let code = browser.text_of(".code").await;
    assert_eq!(code.len(), 8, "an 8-character code utilisateur: {code}");
    assert!(text.contains(AWAITING), "{text}");
    let dossier_path = browser.path().await;

    // Log out, then in again with the code and the password.
    browser.press("Se déconnecter", "deconnecte").await;
    browser.fill("code", &code).await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser.press("Se connecter", "connecte").await;
    assert_eq!(browser.path().await, dossier_path);

    // An optional piece first: the closure is refused without the registration form.
    browser.follow("Mes pièces", "pieces").await;
    let red_dot = browser.text_of("#piece-dossier-preinscription th").await;
    assert!(red_dot.contains("Dossier de pré-inscription daté et signé"), "{red_dot}");
    assert!(
        browser.client.find(Locator::Css("#piece-dossier-preinscription .red-dot")).await.is_ok(),
        "the registration form carries the red dot"
    );
    browser.choose_file("fichier-etat-services", &services_pdf).await;
    let add = "//tr[@id='piece-etat-services']//button[contains(., 'Ajouter le fichier')]";
    browser.click(add, "piece-facultative-ajoutee").await;
    let text = browser.text().await;
    assert!(
        text.contains("Le fichier a été ajouté à la pièce « État des services établi par l'employeur »."),
        "{text}"
    );
    assert!(browser.text_of("#piece-etat-services").await.contains("etat-des-services.pdf"));

    browser.press("Clôturer mon inscription", "cloture-refusee").await;
    let error = browser.text_of("#cloture-erreur").await;
    assert!(error.contains("Dossier de pré-inscription daté et signé"), "the refusal names the form: {error}");

    // The registration form, then the closure.
    browser.choose_file("fichier-dossier-preinscription", &form_pdf).await;
    let add = "//tr[@id='piece-dossier-preinscription']//button[contains(., 'Ajouter le fichier')]";
    browser.click(add, "dossier-ajoute").await;
    browser.press("Clôturer mon inscription", "recepisse").await;
    let text = browser.text().await;
    assert!(text.contains("Votre inscription a été clôturée le "), "{text}");
    assert!(text.contains("Dossier de pré-inscription daté et signé : dossier-signe.pdf"), "{text}");
    assert!(text.contains("État des services établi par l'employeur : etat-des-services.pdf"), "{text}");

    // The status still says « en attente » until the office transfers the dossier.
    browser.follow("Retour à mon dossier", "statut").await;
    let status = browser.text_of(".status").await;
    assert!(status.starts_with("Votre préinscription a été enregistrée le "), "{status}");
    assert!(status.ends_with(AWAITING), "{status}");
    browser.close().await;
}

pub async fn a_wrong_password_is_refused_next_to_the_field(app: &WebApp) {
    let Some(mut browser) = Browser::open("mauvais-mot-de-passe").await else { return };
    let session = app.session_until(days_from_today(20)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Durand").await;
    browser.visit(&app.url("/connexion"), "connexion").await;
    browser.fill("code", &code).await;
    browser.fill("mot_de_passe", "pas le bon mot de passe").await;
    browser.press("Se connecter", "refus").await;
    let error = browser.text_of("#code-erreur").await;
    assert_eq!(error, "Erreur : Code utilisateur ou mot de passe incorrect.");
    let described = browser.client.find(Locator::Id("code")).await.expect("field").attr("aria-describedby").await;
    assert_eq!(described.expect("described").as_deref(), Some("code-aide code-erreur"));
    assert_eq!(browser.path().await, "/connexion");
    browser.close().await;
}

pub async fn a_lost_password_is_reset_through_the_link_in_the_mail(app: &WebApp) {
    let Some(mut browser) = Browser::open("mot-de-passe-oublie").await else { return };
    let session = app.session_until(days_from_today(20)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Petit").await;
    browser.visit(&app.url("/connexion"), "connexion").await;
    browser.follow("Mot de passe oublié", "mot-de-passe-oublie").await;
    browser.fill("code", &code).await;
    browser.press("Recevoir un lien", "lien-envoye").await;
    assert!(browser.text().await.contains("Si ce code utilisateur correspond à une préinscription, un courriel"));

    // The confirmation of the pre-registration, then the reset link.
    let mails = app.smtp.wait_for(2, std::time::Duration::from_secs(10)).await;
    let mail = mails.iter().find(|m| m.subject.contains("réinitialisation")).expect("the reset mail");
    assert_eq!(mail.to, vec!["petit@exemple.fr".to_owned()]);
    assert_eq!(mail.subject, "Cachet – réinitialisation de votre mot de passe");
    assert_eq!(mail.from, "concours@cachet.invalid");
    assert!(mail.html.contains("valable 60 minutes"), "{}", mail.html);
    assert!(mail.text.contains(&code), "{}", mail.text);
    let start = mail.text.find(&app.url("/mot-de-passe/nouveau?jeton=")).expect("the link in the mail");
    let link: String = mail.text[start..].chars().take_while(|c| !c.is_whitespace()).collect();

    browser.visit(&link, "nouveau-mot-de-passe").await;
    browser.fill("mot_de_passe", "un-tout-nouveau-secret").await;
    browser.fill("confirmation", "un-tout-nouveau-secret").await;
    browser.press("Enregistrer le nouveau mot de passe", "mot-de-passe-modifie").await;
    assert!(browser.text().await.contains("Votre mot de passe a été modifié."));

    // The link works once only.
    browser.visit(&link, "lien-deja-utilise").await;
    assert!(browser.text().await.contains("Ce lien de réinitialisation n'est plus valable"));

    // The old password no longer opens the space; the new one does.
    let client = app.client();
    assert_eq!(client.login(&code, PASSWORD).await.status, 401);
    let reply = client.login(&code, "un-tout-nouveau-secret").await;
    assert_eq!(reply.status, 200);
    assert!(reply.path.starts_with("/dossiers/"));
    browser.close().await;
}

pub async fn a_form_posted_without_its_csrf_token_is_refused(app: &WebApp) {
    let Some(mut browser) = Browser::open("formulaire-sans-jeton").await else { return };
    let session = app.session_until(days_from_today(20)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Moreau").await;
    browser.visit(&app.url("/connexion"), "connexion").await;
    browser.fill("code", &code).await;
    browser.fill("mot_de_passe", PASSWORD).await;
    browser
        .client
        .execute("document.querySelector('input[name=csrf]').remove();", vec![])
        .await
        .expect("remove the token");
    browser.press("Se connecter", "refus-sans-jeton").await;
    let text = browser.text().await;
    assert!(text.contains("Ce formulaire a expiré ou ne provient pas de Cachet"), "{text}");
    // Not signed in.
    browser.visit(&app.url("/espace"), "toujours-deconnecte").await;
    assert_eq!(browser.path().await, "/connexion");
    browser.close().await;
}

pub async fn the_pieces_page_works_with_the_keyboard_alone(app: &WebApp) {
    let Some(mut browser) = Browser::open("clavier").await else { return };
    let session = app.session_until(days_from_today(20)).await;
    let (_, dossier, code) = app.pre_registered_candidate(session, "Bernard").await;
    let files = tempfile::tempdir().expect("folder");
    let form_pdf = files.path().join("dossier.pdf");
    std::fs::write(&form_pdf, pdf("dossier")).expect("write");

    // Sign in with the keyboard: type, Tab, type, Enter.
    browser.visit(&app.url("/connexion"), "connexion").await;
    browser.fill("code", &code).await;
    browser.press_key(Key::Tab).await;
    assert_eq!(browser.focused_id().await.as_deref(), Some("mot_de_passe"));
    browser.client.active_element().await.expect("focus").send_keys(PASSWORD).await.expect("type");
    browser.press_key(Key::Enter).await;
    browser.client.wait().for_element(Locator::Css(".status")).await.expect("the dossier page");
    browser.screenshot("connecte-au-clavier").await;

    // Tab from the top of the pieces page until « Choisir un fichier » of the red-dot piece.
    browser.visit(&app.url(&format!("/dossiers/{dossier}/pieces")), "pieces").await;
    let mut reached = false;
    for _ in 0..40 {
        browser.press_key(Key::Tab).await;
        if browser.focused_id().await.as_deref() == Some("fichier-dossier-preinscription") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches « Choisir un fichier » of the dossier de pré-inscription");
    let outline = browser
        .client
        .execute("return getComputedStyle(document.activeElement).outlineStyle;", vec![])
        .await
        .expect("the focus style");
    assert_ne!(outline.as_str(), Some("none"), "the focus is visible");
    browser.screenshot("focus-sur-le-fichier").await;
    // A file chooser is the operating system's dialog: WebDriver types the path into it.
    let input = browser.client.active_element().await.expect("focus");
    input.send_keys(&form_pdf.display().to_string()).await.expect("choose the file");
    browser.press_key(Key::Tab).await;
    let button = browser.client.active_element().await.expect("focus");
    assert!(button.text().await.expect("label").starts_with("Ajouter le fichier"));
    browser.press_key(Key::Enter).await;
    browser.client.wait().for_element(Locator::Css(".notice")).await.expect("the confirmation");
    browser.screenshot("ajoute-au-clavier").await;
    assert!(browser
        .text()
        .await
        .contains("Le fichier a été ajouté à la pièce « Dossier de pré-inscription daté et signé »."));
    browser.close().await;
}

web_tests!(
    a_candidate_pre_registers_deposits_online_and_closes,
    a_wrong_password_is_refused_next_to_the_field,
    a_lost_password_is_reset_through_the_link_in_the_mail,
    a_form_posted_without_its_csrf_token_is_refused,
    the_pieces_page_works_with_the_keyboard_alone,
);
