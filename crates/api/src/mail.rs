//! E-mail: a sender over SMTP (lettre), or — when no SMTP server is configured — a local outbox
//! folder where each mail is written as an `.eml` file, its path logged; and the French
//! templates, each a text and an HTML body.

use std::path::PathBuf;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use maud::html;

/// Where mails go.
#[derive(Clone, Debug)]
pub enum MailSettings {
    /// An SMTP relay. `tls: false` is plain SMTP, for a relay on loopback or a trusted network;
    /// `tls: true` requires STARTTLS.
    Smtp { host: String, port: u16, username: Option<String>, password: Option<String>, tls: bool },
    /// No SMTP server: each mail is written to this folder as an `.eml` file.
    Outbox(PathBuf),
}

/// One mail, with its text and HTML bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("L'adresse électronique « {0} » n'est pas valide.")]
    InvalidAddress(String),
    #[error("mail could not be built: {0}")]
    Build(String),
    #[error("mail could not be sent: {0}")]
    Transport(String),
    #[error("outbox folder: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
enum Transport {
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, description: String },
    Outbox { transport: AsyncFileTransport<Tokio1Executor>, folder: PathBuf },
}

/// Sends mails; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn new(settings: MailSettings, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from.parse().map_err(|_| MailError::InvalidAddress(from.to_owned()))?;
        let transport = match settings {
            MailSettings::Smtp { host, port, username, password, tls } => {
                let builder = if tls {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                        .map_err(|e| MailError::Transport(e.to_string()))?
                } else {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
                };
                let mut builder = builder.port(port);
                if let (Some(user), Some(password)) = (username, password) {
                    builder = builder.credentials(Credentials::new(user, password));
                }
                Transport::Smtp { transport: builder.build(), description: format!("serveur SMTP {host}:{port}") }
            }
            MailSettings::Outbox(folder) => {
                std::fs::create_dir_all(&folder)?;
                Transport::Outbox { transport: AsyncFileTransport::new(&folder), folder }
            }
        };
        Ok(Self { transport, from })
    }

    /// Where mails go, in French, for the server's start-up message.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::Outbox { folder, .. } => format!("dossier d'envoi local {}", folder.display()),
        }
    }

    /// Sends one mail (multipart/alternative: text and HTML, UTF-8). Returns where it went: the
    /// SMTP server, or the `.eml` file written.
    pub async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::InvalidAddress(mail.to.clone()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone())),
            )
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Smtp { transport, description } => {
                transport.send(message).await.map_err(|e| MailError::Transport(e.to_string()))?;
                Ok(description.clone())
            }
            Transport::Outbox { transport, folder } => {
                let id = transport.send(message).await.map_err(|e| MailError::Transport(e.to_string()))?;
                let path = folder.join(format!("{id}.eml"));
                tracing::info!(mail.path = %path.display(), "mail written to the local outbox (no SMTP server configured)");
                Ok(path.display().to_string())
            }
        }
    }
}

fn signature() -> &'static str {
    "Le service concours du Centre de Gestion"
}

/// The link to choose a new password.
pub fn password_reset(to: &str, user_code: &str, link: &str, valid_minutes: u32) -> Mail {
    let text = format!(
        "Bonjour,\n\n\
         Une réinitialisation du mot de passe a été demandée pour le code utilisateur {user_code}.\n\n\
         Pour choisir un nouveau mot de passe, ouvrez ce lien :\n{link}\n\n\
         Ce lien est valable {valid_minutes} minutes et ne peut servir qu'une fois.\n\
         Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : votre mot de passe reste inchangé.\n\n\
         {}\n",
        signature()
    );
    let html = html! {
        p { "Bonjour," }
        p { "Une réinitialisation du mot de passe a été demandée pour le code utilisateur " strong { (user_code) } "." }
        p { "Pour choisir un nouveau mot de passe, ouvrez ce lien : " a href=(link) { (link) } }
        p { "Ce lien est valable " (valid_minutes) " minutes et ne peut servir qu'une fois. "
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : votre mot de passe reste inchangé." }
        p { (signature()) }
    };
    Mail {
        to: to.to_owned(),
        subject: "Cachet – réinitialisation de votre mot de passe".to_owned(),
        text,
        html: html.into_string(),
    }
}

/// The confirmation of a pre-registration, with the code utilisateur (never the password).
pub fn pre_registration_confirmation(
    to: &str,
    candidate_name: &str,
    session_title: &str,
    user_code: &str,
    deadline: &str,
) -> Mail {
    let text = format!(
        "Bonjour {candidate_name},\n\n\
         Votre préinscription à l'{session_title} est enregistrée.\n\
         Votre code utilisateur est : {user_code}\n\n\
         La préinscription ne vaut pas inscription : imprimez, datez et signez votre dossier de pré-inscription et \
         déposez-le avec les pièces demandées au plus tard le {deadline} (dernier délai) :\n\
         - par courrier, le cachet de la poste faisant foi ;\n\
         - à l'accueil du Centre de Gestion, aux heures d'ouverture ;\n\
         - ou en ligne dans votre espace sécurisé, en déposant chaque pièce puis en cliquant sur « Clôturer mon \
         inscription » avant minuit.\n\
         Tout dossier déposé ou posté hors délai sera rejeté.\n\n\
         {}\n",
        signature()
    );
    let html = html! {
        p { "Bonjour " (candidate_name) "," }
        p { "Votre préinscription à l'" (session_title) " est enregistrée." }
        p { "Votre code utilisateur est : " strong { (user_code) } }
        p { "La préinscription ne vaut pas inscription : imprimez, datez et signez votre dossier de pré-inscription et "
            "déposez-le avec les pièces demandées au plus tard le " (deadline) " (dernier délai) :" }
        ul {
            li { "par courrier, le cachet de la poste faisant foi ;" }
            li { "à l'accueil du Centre de Gestion, aux heures d'ouverture ;" }
            li { "ou en ligne dans votre espace sécurisé, en déposant chaque pièce puis en cliquant sur « Clôturer mon inscription » avant minuit." }
        }
        p { "Tout dossier déposé ou posté hors délai sera rejeté." }
        p { (signature()) }
    };
    Mail {
        to: to.to_owned(),
        subject: "Cachet – confirmation de votre préinscription".to_owned(),
        text,
        html: html.into_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reset_mail_gives_the_link_and_its_validity() {
        let mail =
            password_reset("a@exemple.fr", "7K3M9Q2X", "https://cachet.example/mot-de-passe/nouveau?jeton=x", 60);
        assert_eq!(mail.subject, "Cachet – réinitialisation de votre mot de passe");
        assert!(mail.text.contains("code utilisateur 7K3M9Q2X"));
        assert!(mail.text.contains("https://cachet.example/mot-de-passe/nouveau?jeton=x"));
        assert!(mail.text.contains("valable 60 minutes et ne peut servir qu'une fois"));
        assert!(mail.html.contains(r#"href="https://cachet.example/mot-de-passe/nouveau?jeton=x""#));
    }

    #[test]
    fn html_bodies_escape_what_they_quote() {
        let mail = pre_registration_confirmation("a@exemple.fr", "<b>Eve</b>", "examen", "7K3M9Q2X", "06/07/2023");
        assert!(mail.html.contains("&lt;b&gt;Eve&lt;/b&gt;"));
        assert!(!mail.html.contains("<b>Eve"));
        assert!(!mail.text.contains("mot de passe :"), "never the password");
        assert_eq!(mail.subject, "Cachet – confirmation de votre préinscription");
    }

    #[tokio::test]
    async fn without_smtp_each_mail_is_written_to_the_outbox() {
        let dir = tempfile::tempdir().expect("folder");
        let mailer = Mailer::new(MailSettings::Outbox(dir.path().join("outbox")), "Cachet <concours@cdg.example>")
            .expect("a mailer");
        let path = mailer.send(&password_reset("a@exemple.fr", "7K3M9Q2X", "http://x/y", 60)).await.expect("sent");
        assert!(path.ends_with(".eml"), "{path}");
        let eml = std::fs::read_to_string(&path).expect("the .eml file");
        assert!(eml.contains("To: a@exemple.fr"), "{eml}");
        assert!(mailer.describe().starts_with("dossier d'envoi local "));
    }

    #[tokio::test]
    async fn an_invalid_recipient_is_named_in_french() {
        let dir = tempfile::tempdir().expect("folder");
        let mailer = Mailer::new(MailSettings::Outbox(dir.path().to_owned()), "concours@cdg.example").expect("mailer");
        let error = mailer.send(&password_reset("pas une adresse", "X", "y", 60)).await.expect_err("refused");
        assert_eq!(error.to_string(), "L'adresse électronique « pas une adresse » n'est pas valide.");
    }
}
