//! The mailer against the test SMTP sink (`tests/support/smtp.rs`) and the local outbox: what
//! leaves is what the templates wrote, decoded back to the same French text.

#[path = "../../../tests/support/smtp.rs"]
mod smtp;

use std::time::Duration;

use cachet_api::mail::{password_reset, pre_registration_confirmation, Mail, MailError, MailSettings, Mailer};
use smtp::{ReceivedMail, SmtpSink};

const FROM: &str = "Cachet – service concours <concours@cdg.example>";
const WAIT: Duration = Duration::from_secs(10);

fn smtp_mailer(sink: &SmtpSink) -> Mailer {
    let settings = MailSettings::Smtp {
        host: "127.0.0.1".to_owned(),
        port: sink.port,
        username: None,
        password: None,
        tls: false,
    };
    Mailer::new(settings, FROM).expect("a mailer")
}

#[tokio::test]
async fn both_templates_reach_the_smtp_server_intact() {
    let sink = SmtpSink::start().await;
    let mailer = smtp_mailer(&sink);
    assert_eq!(mailer.describe(), format!("serveur SMTP 127.0.0.1:{}", sink.port));

    let reset =
        password_reset("petit@exemple.fr", "7K3M9Q2X", "http://127.0.0.1:8080/mot-de-passe/nouveau?jeton=abc", 60);
    let confirmation = pre_registration_confirmation(
        "durand@exemple.fr",
        "Camille Durand",
        "examen professionnel d'adjoint technique territorial principal de 2e classe – session 2024",
        "4H8N2R6T",
        "6 juillet 2023",
    );
    assert_eq!(mailer.send(&reset).await.expect("sent"), format!("smtp://127.0.0.1:{}", sink.port));
    mailer.send(&confirmation).await.expect("sent");

    let mails = sink.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let (first, second) = (&mails[0], &mails[1]);

    assert_eq!(first.from, "concours@cdg.example");
    assert_eq!(first.to, vec!["petit@exemple.fr".to_owned()]);
    assert_eq!(first.subject, "Cachet – réinitialisation de votre mot de passe");
    assert_eq!(first.text, reset.text);
    assert_eq!(first.html, reset.html);
    assert!(first.text.contains(
        "Une réinitialisation du mot de passe a été demandée pour le code utilisateur 7K3M9Q2X.\n\n\
         Pour choisir un nouveau mot de passe, ouvrez ce lien :\n\
         http://127.0.0.1:8080/mot-de-passe/nouveau?jeton=abc\n\n\
         Ce lien est valable 60 minutes et ne peut servir qu'une fois.\n"
    ));
    assert!(first.raw.contains("Content-Type: multipart/alternative;"), "{}", first.raw);
    assert!(first.raw.contains("From: =?utf-8?"), "the display name is encoded: {}", first.raw);

    assert_eq!(second.to, vec!["durand@exemple.fr".to_owned()]);
    assert_eq!(second.subject, "Cachet – confirmation de votre préinscription");
    assert_eq!(second.text, confirmation.text);
    assert_eq!(second.html, confirmation.html);
    assert!(second.text.starts_with("Bonjour Camille Durand,\n\n"));
    assert!(second.text.contains("Votre code utilisateur est : 4H8N2R6T\n"));
    assert!(second.text.contains("- par courrier, le cachet de la poste faisant foi ;\n"));
    assert!(second.text.contains("Tout dossier déposé ou posté hors délai sera rejeté.\n"));
}

#[tokio::test]
async fn lines_made_of_dots_survive_the_smtp_dot_stuffing() {
    let sink = SmtpSink::start().await;
    let text = "Ligne\n.\n..deux points\n.un point\nfin\n".to_owned();
    let mail = Mail { to: "a@exemple.fr".to_owned(), subject: "points".to_owned(), text, html: "<p>.</p>".to_owned() };
    smtp_mailer(&sink).send(&mail).await.expect("sent");
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].subject, "points");
    assert!(received[0].raw.contains("\r\n..deux points\r\n"), "sent as is, dot-stuffed: {}", received[0].raw);
    assert_eq!(received[0].text, mail.text);
    assert_eq!(received[0].html, mail.html);
}

#[tokio::test]
async fn a_failing_sink_refuses_the_first_messages_then_accepts() {
    let sink = SmtpSink::start_failing(1).await;
    let mailer = smtp_mailer(&sink);
    let mail = password_reset("a@exemple.fr", "7K3M9Q2X", "http://x/y", 60);
    let error = mailer.send(&mail).await.expect_err("the first DATA is refused");
    assert!(matches!(error, MailError::Transport(_)), "{error:?}");
    assert!(error.to_string().contains("451"), "{error}");
    assert!(sink.messages().is_empty());
    mailer.send(&mail).await.expect("the second is accepted");
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn without_smtp_each_mail_is_written_to_the_outbox() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::new(MailSettings::Outbox(outbox.clone()), FROM).expect("a mailer");
    assert_eq!(mailer.describe(), format!("dossier d'envoi local {}", outbox.display()));

    let mail = password_reset("a@exemple.fr", "7K3M9Q2X", "http://x/y", 60);
    let path = mailer.send(&mail).await.expect("written");
    let files: Vec<_> = std::fs::read_dir(&outbox).expect("the outbox").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].display().to_string(), path);
    assert!(path.ends_with(".eml"), "{path}");

    let eml = std::fs::read_to_string(&path).expect("the .eml file");
    assert!(eml.contains("To: a@exemple.fr\r\n"), "{eml}");
    let decoded = ReceivedMail::parse(String::new(), Vec::new(), eml);
    assert_eq!(decoded.subject, "Cachet – réinitialisation de votre mot de passe");
    assert_eq!(decoded.text, mail.text);
    assert_eq!(decoded.html, mail.html);
}

#[test]
fn the_sink_decodes_base64_bodies_and_q_encoded_subjects() {
    let raw = "Subject: =?UTF-8?Q?Cachet_=E2=80=93_r=C3=A9?=\r\n =?utf-8?b?aW5pdGlhbGlzYXRpb24=?= ok\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\
               Content-Transfer-Encoding: base64\r\n\r\n\
               UHLDqWluc2NyaXB0aW9u\r\nIGVucmVnaXN0csOpZS4=\r\n";
    let mail = ReceivedMail::parse("a@b".to_owned(), vec!["c@d".to_owned()], raw.to_owned());
    assert_eq!(mail.subject, "Cachet – réinitialisation ok");
    assert_eq!(mail.text, "Préinscription enregistrée.");
    assert_eq!(mail.html, "");
}
