//! Mails through the durable outbox, to a real SMTP server on loopback (the sink): every kind of
//! notification with its recipient, subject and content; retries then failure, visible in
//! `/readyz`, the metrics and the office's page, and a re-send; a restart between queueing and
//! sending; two servers on one PostgreSQL. Each mail arrives exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use cachet_api::auth::Caller;
use cachet_api::mail::MailSettings;
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{SessionId, TestCode};
use cachet_domain::session::SessionConfig;
use cachet_domain::time::{end_of_paris_day, format_date};
use chrono::{Days, NaiveTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{days_from_today, pdf, today, Backend, WebApp, PASSWORD};
use crate::smtp::{ReceivedMail, SmtpSink};

async fn settle(app: &WebApp) {
    let head = app.state.store.head().await.expect("head").position;
    assert!(app.state.runner.wait_for(head, Duration::from_secs(10)).await);
}

/// Waits until `to` received a mail with this subject, and returns it.
async fn mail_to(sink: &SmtpSink, to: &str, subject: &str) -> ReceivedMail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(mail) = sink.messages().into_iter().find(|m| m.to == [to.to_owned()] && m.subject == subject) {
            return mail;
        }
        assert!(tokio::time::Instant::now() < deadline, "no mail « {subject} » to {to}: {:#?}", sink.messages());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every mail arrived once: no two with the same recipient and subject.
fn once_each(sink: &SmtpSink) {
    let mut seen: BTreeMap<(Vec<String>, String), usize> = BTreeMap::new();
    for mail in sink.messages() {
        *seen.entry((mail.to.clone(), mail.subject.clone())).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "mails sent more than once: {twice:?}");
}

fn both(mail: &ReceivedMail, text: &str) {
    assert!(mail.text.contains(text), "{text:?} in the text: {}", mail.text);
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    assert!(mail.html.contains(&escaped), "{text:?} in the HTML: {}", mail.html);
}

pub async fn every_notification_reaches_its_candidate_once(backend: Backend) {
    let app = WebApp::start(backend).await;
    app.staff_account("agent", StaffRole::Staff).await;
    // One date for the whole test: Paris midnight may pass while it runs.
    let today = today();
    let nine = NaiveTime::from_hms_opt(9, 0, 0).expect("a time");
    let deadline = today + Days::new(3);
    let test_day = today + Days::new(20);
    let mut config = SessionConfig { deposit_deadline: deadline, ..cachet_domain::demo::source_session() };
    config.tests[0].starts_at = test_day.and_time(nine);
    let session = app.open_session(&config).await;
    let space = |dossier: Uuid| app.url(&format!("/dossiers/{dossier}"));

    // Pre-registration: the code utilisateur, never the password.
    let (_, paper, paper_code) = app.pre_registered_candidate(session, "Papier").await;
    let mail = mail_to(&app.smtp, "papier@exemple.fr", "Cachet – confirmation de votre préinscription").await;
    both(&mail, &paper_code);
    both(&mail, &format!("au plus tard le {} (dernier délai)", format_date(deadline)));
    assert!(!mail.text.contains(PASSWORD));
    assert_eq!(mail.from, "concours@cachet.invalid");

    // Received by post, on time.
    let day = today.format("%Y-%m-%d").to_string();
    app.staff_command(paper, "postal-receipts", json!({ "postmark_date": day, "arrival_date": day })).await;
    let mail = mail_to(&app.smtp, "papier@exemple.fr", "Cachet – votre dossier a été reçu").await;
    both(&mail, &format!("Cachet de la poste du {}, dans les délais", format_date(today)));
    both(&mail, &space(paper));

    // Incomplete, with the missing piece.
    app.staff_command(paper, "transfer", json!({})).await;
    for (piece, outcome) in
        [("dossier-preinscription", "accepted"), ("etat-services", "missing"), ("arrete-situation", "accepted")]
    {
        app.staff_command(paper, "piece-reviews", json!({ "piece": piece, "outcome": outcome })).await;
    }
    app.staff_command(paper, "review-conclusion", json!({})).await;
    let mail = mail_to(&app.smtp, "papier@exemple.fr", "Cachet – votre dossier est incomplet").await;
    both(&mail, "Votre dossier est incomplet");
    both(&mail, "État des services établi par l'employeur");

    // The piece arrives: complete.
    app.staff_command(
        paper,
        "missing-piece-receipts",
        json!({ "channel": "post", "piece": "etat-services", "postmark_date": day, "arrival_date": day }),
    )
    .await;
    app.staff_command(paper, "piece-reviews", json!({ "piece": "etat-services", "outcome": "accepted" })).await;
    app.staff_command(paper, "review-conclusion", json!({})).await;
    let mail = mail_to(&app.smtp, "papier@exemple.fr", "Cachet – votre dossier est complet").await;
    both(&mail, "Votre dossier est complet");

    // The convocation: announced, never attached.
    settle(&app).await;
    let staff = Caller::Staff { account: "agent".to_owned(), role: StaffRole::Staff };
    let test = TestCode::parse("admissibilite").expect("a code");
    let published = cachet_api::convocations::publish(&app.state, &staff, SessionId::from_uuid(session), &test)
        .await
        .expect("publish");
    assert_eq!(published.published, 1);
    let mail = mail_to(&app.smtp, "papier@exemple.fr", "Cachet – votre convocation est disponible").await;
    both(&mail, &format!("« Épreuve écrite d'admissibilité » le {} à 09h00", format_date(test_day)));
    both(&mail, "n'est ni jointe à ce courriel ni envoyée par courrier");
    assert!(!mail.raw.contains("application/pdf"), "no attachment");

    // Online: the deposit receipt.
    let (online_client, online, _) = app.pre_registered_candidate(session, "Enligne").await;
    online_client.upload(online, "dossier-preinscription", "dossier.pdf", pdf("dossier")).await;
    let pieces = online_client.get(&format!("/dossiers/{online}/pieces")).await;
    let closed = online_client.post_form(&format!("/dossiers/{online}/cloture"), &pieces, &[]).await;
    assert_eq!(closed.status, 200, "{}", closed.text());
    let mail = mail_to(&app.smtp, "enligne@exemple.fr", "Cachet – récépissé de dépôt de votre dossier").await;
    both(&mail, "Votre inscription en ligne est clôturée");

    // Late: rejected, with the reason.
    let past = app.session_until(today - Days::new(2)).await;
    let (late, _) = app.registered_ten_days_ago(past, "Tardif").await;
    app.staff_command(late, "postal-receipts", json!({ "postmark_date": day, "arrival_date": day })).await;
    let mail = mail_to(&app.smtp, "tardif@exemple.fr", "Cachet – votre dossier a été rejeté").await;
    both(&mail, &format!("cachet de la poste du {}, postérieur à la date limite du", format_date(today)));
    assert!(
        !app.smtp.messages().iter().any(|m| m.to == ["tardif@exemple.fr"] && m.subject.contains("reçu")),
        "a late dossier is not announced as received"
    );

    // Two days before a deadline: a reminder to whoever has not deposited, once.
    let soon_deadline = today + Days::new(2);
    let soon = app.session_until(soon_deadline).await;
    let (_, _, _) = app.pre_registered_candidate(soon, "Oublieux").await;
    settle(&app).await;
    // An instant of `today` (reminders look two days after its Paris date) that is not in the
    // future, since a reminder is due from the instant it is queued.
    let now = Utc::now().min(end_of_paris_day(today) - chrono::Duration::microseconds(1));
    assert_eq!(cachet_api::outbox::queue_reminders(&app.state, now).await.expect("reminders"), 1);
    cachet_api::outbox::queue_reminders(&app.state, now).await.expect("reminders again");
    let subject = format!("Cachet – rappel : date limite de dépôt le {}", format_date(soon_deadline));
    let mail = mail_to(&app.smtp, "oublieux@exemple.fr", &subject).await;
    both(&mail, "« Clôturer mon inscription » avant minuit");

    // Nothing twice, and the outbox agrees.
    tokio::time::sleep(Duration::from_millis(500)).await;
    once_each(&app.smtp);
    let counts = cachet_api::outbox::counts(&app.state.db).await.expect("counts");
    assert_eq!(counts.sent as usize, app.smtp.messages().len());
    assert_eq!((counts.pending, counts.failed), (0, 0));
    app.finish().await;
}

pub async fn a_failing_mail_is_retried_then_shown_failed_and_re_sent_by_the_office(backend: Backend) {
    // The sink refuses the first four messages; three attempts are allowed.
    let failing = SmtpSink::start_failing(4).await;
    let port = failing.port;
    let app = WebApp::start_with(backend, |settings| {
        settings.mail =
            MailSettings::Smtp { host: "127.0.0.1".to_owned(), port, username: None, password: None, tls: false };
        settings.mail_max_attempts = 3;
    })
    .await;
    app.staff_account("agent", StaffRole::Staff).await;
    let session = app.session_until(days_from_today(5)).await;
    app.pre_registered_candidate(session, "Patient").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while cachet_api::outbox::counts(&app.state.db).await.expect("counts").failed == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the mail fails after three attempts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failing.messages().is_empty());

    let ready: serde_json::Value = reqwest::get(app.url("/readyz")).await.expect("readyz").json().await.expect("JSON");
    assert_eq!(ready["mail"]["failed"], 1, "{ready}");
    let metrics = reqwest::get(app.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("cachet_mail_outbox_failed 1"), "{metrics}");
    assert!(metrics.contains("cachet_mail_send_errors_total 3"), "{metrics}");

    let office = app.client();
    let form = office.get("/bureau/connexion").await;
    office.post_form("/bureau/connexion", &form, &[("compte", "agent"), ("mot_de_passe", PASSWORD)]).await;
    let page = office.get("/bureau/courriels").await;
    let text = page.text();
    assert!(text.contains("0 en attente, 1 en échec, 0 envoyé(s)."), "{text}");
    assert!(text.contains("Confirmation de préinscription"), "{text}");
    assert!(text.contains("échec"), "{text}");
    let action =
        format!("/bureau/courriels/{}", page.between("action=\"/bureau/courriels/", "\"").expect("the re-send form"));
    assert!(action.ends_with("/renvoi"), "{action}");

    // Re-sent: one more refusal (retried after a backoff), then accepted, once.
    let done = office.post_form(&action, &page, &[]).await;
    assert_eq!(done.path, "/bureau/courriels", "{} {}", done.status, done.text());
    let mails = failing.wait_for(1, Duration::from_secs(15)).await;
    let lines = cachet_api::outbox::recent(&app.state.db, 10).await.expect("lines");
    assert_eq!(mails.len(), 1, "{:?}", lines.iter().map(|l| (&l.state, l.attempts, &l.last_error)).collect::<Vec<_>>());
    assert_eq!(mails[0].subject, "Cachet – confirmation de votre préinscription");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(failing.messages().len(), 1, "sent once");
    let text = office.get("/bureau/courriels").await.text();
    assert!(text.contains("0 en attente, 0 en échec, 1 envoyé(s)."), "{text}");
    app.finish().await;
}

pub async fn a_restart_between_queueing_and_sending_sends_each_mail_once(backend: Backend) {
    // A sender that looks once at start-up, then not for an hour: mails queue and wait.
    let app = WebApp::start_with(backend, |settings| settings.outbox_poll = Duration::from_secs(3600)).await;
    let session = app.session_until(days_from_today(5)).await;
    app.pre_registered_candidate(session, "Avant").await;
    app.pre_registered_candidate(session, "Pendant").await;
    settle(&app).await;
    let counts = cachet_api::outbox::counts(&app.state.db).await.expect("counts");
    assert_eq!((counts.pending, counts.sent), (2, 0), "queued, not sent");
    assert!(app.smtp.messages().is_empty());

    let app = app.restart(|_| {}).await;
    let mails = app.smtp.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 2);
    let app = app.restart(|_| {}).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 2, "nothing sent again after another restart");
    once_each(&app.smtp);
    app.finish().await;
}

pub async fn two_servers_on_one_database_send_each_mail_once(backend: Backend) {
    if matches!(backend, Backend::Sqlite) {
        return; // More than one server is PostgreSQL's case (README).
    }
    let first = WebApp::start_with(backend, |settings| settings.outbox_poll = Duration::from_millis(10)).await;
    let second = first.second_server(|settings| settings.outbox_poll = Duration::from_millis(10)).await;
    let session = first.session_until(days_from_today(5)).await;
    for n in 0..12 {
        let server = if n % 2 == 0 { &first } else { &second };
        server.pre_registered_candidate(session, &format!("Candidat{n}")).await;
    }
    let mails = first.smtp.wait_for(12, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 12);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(first.smtp.messages().len(), 12, "no mail sent twice");
    assert!(second.smtp.messages().is_empty());
    once_each(&first.smtp);
    let counts = cachet_api::outbox::counts(&first.state.db).await.expect("counts");
    assert_eq!((counts.sent, counts.pending, counts.failed), (12, 0, 0));
    second.finish().await;
    first.finish().await;
}

backend_tests!(
    every_notification_reaches_its_candidate_once,
    a_failing_mail_is_retried_then_shown_failed_and_re_sent_by_the_office,
    a_restart_between_queueing_and_sending_sends_each_mail_once,
    two_servers_on_one_database_send_each_mail_once,
);
