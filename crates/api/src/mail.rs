//! E-mail: a sender over SMTP (lettre), or — when no SMTP server is configured — a local outbox
//! folder where each mail is written as an `.eml` file, its path logged; and the French
//! templates, each a text and an HTML body.

use std::path::PathBuf;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use maud::html;

/// Where mails go.
#[derive(Clone)]
pub enum MailSettings {
    /// An SMTP relay. `tls: false` is plain SMTP, for a relay on loopback or a trusted network;
    /// `tls: true` requires STARTTLS.
    Smtp { host: String, port: u16, username: Option<String>, password: Option<String>, tls: bool },
    /// No SMTP server: each mail is written to this folder as an `.eml` file, its path logged.
    Outbox(PathBuf),
}

/// Written by hand so that the SMTP password never reaches a log.
impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp { host, port, username, password, tls } => f
                .debug_struct("Smtp")
                .field("host", host)
                .field("port", port)
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .field("tls", tls)
                .finish(),
            Self::Outbox(folder) => f.debug_tuple("Outbox").field(folder).finish(),
        }
    }
}

/// One mail, with its text and HTML bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a mail was not sent. Only `InvalidAddress` is meant for a reader; the others are for logs.
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
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, host: String, port: u16, tls: bool },
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
                if let Some(user) = username {
                    builder = builder.credentials(Credentials::new(user, password.unwrap_or_default()));
                }
                Transport::Smtp { transport: builder.build(), host, port, tls }
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
            Transport::Smtp { host, port, tls: false, .. } => format!("serveur SMTP {host}:{port}"),
            Transport::Smtp { host, port, tls: true, .. } => format!("serveur SMTP {host}:{port} (STARTTLS)"),
            Transport::Outbox { folder, .. } => format!("dossier d'envoi local {}", folder.display()),
        }
    }

    /// Sends one mail (multipart/alternative: text and HTML, UTF-8). Returns where it went: the
    /// SMTP server (`smtp://host:port`), or the path of the `.eml` file written.
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
            Transport::Smtp { transport, host, port, .. } => {
                transport.send(message).await.map_err(|e| MailError::Transport(e.to_string()))?;
                Ok(format!("smtp://{host}:{port}"))
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
/// `deadline` is the civil date as shown to candidates, e.g. « 6 juillet 2023 ».
pub fn pre_registration_confirmation(
    to: &str,
    candidate_name: &str,
    session_title: &str,
    user_code: &str,
    deadline: &str,
) -> Mail {
    let text = format!(
        "Bonjour {candidate_name},\n\n\
         Votre préinscription est enregistrée pour : {session_title}.\n\
         Votre code utilisateur est : {user_code}\n\
         Il vous sera demandé, avec le mot de passe que vous avez choisi, pour accéder à votre espace sécurisé \
         candidat. Pour votre sécurité, ce mot de passe n'est jamais envoyé par courriel.\n\n\
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
        p { "Votre préinscription est enregistrée pour : " (session_title) "." }
        p { "Votre code utilisateur est : " strong { (user_code) } }
        p { "Il vous sera demandé, avec le mot de passe que vous avez choisi, pour accéder à votre espace sécurisé "
            "candidat. Pour votre sécurité, ce mot de passe n'est jamais envoyé par courriel." }
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

/// The notifications about a dossier, each with what its mail says beyond the candidate's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    DepositReceipt,
    Received,
    Incomplete,
    Complete,
    Rejected,
    /// `test`: « « Épreuve écrite d'admissibilité » le 12/10/2023 à 09h00 ».
    Convocation {
        test: String,
    },
    /// `deadline`: « 06/07/2023 ».
    Reminder {
        deadline: String,
    },
}

/// A mail about a dossier: the subject of its kind, the candidate's message after the event (the
/// exact text of the espace sécurisé), what to do next, and the link to the space.
pub fn notice(
    kind: Notice,
    to: &str,
    candidate_name: &str,
    session_title: &str,
    user_code: &str,
    payload: &cachet_projections::notifications::Payload,
    space: &str,
) -> Mail {
    let (subject, lead, next): (String, String, String) = match &kind {
        Notice::DepositReceipt => (
            "Cachet – récépissé de dépôt de votre dossier".to_owned(),
            format!(
                "Votre inscription en ligne est clôturée : votre dossier est déposé{}.",
                payload.explanation.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            "Le récépissé de dépôt est disponible dans votre espace sécurisé.".to_owned(),
        ),
        Notice::Received => (
            "Cachet – votre dossier a été reçu".to_owned(),
            format!(
                "Votre dossier a été reçu par le Centre de Gestion{}.",
                payload.explanation.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            "Vous serez informé(e) par courriel de la suite de son instruction.".to_owned(),
        ),
        Notice::Incomplete => (
            "Cachet – votre dossier est incomplet".to_owned(),
            "L'instruction de votre dossier a relevé des pièces manquantes.".to_owned(),
            "Envoyez les pièces manquantes par courrier ou déposez-les en ligne dans votre espace sécurisé.".to_owned(),
        ),
        Notice::Complete => (
            "Cachet – votre dossier est complet".to_owned(),
            "L'instruction de votre dossier est terminée.".to_owned(),
            "Votre convocation sera mise à disposition dans votre espace sécurisé ; vous en serez averti(e) par courriel."
                .to_owned(),
        ),
        Notice::Rejected => (
            "Cachet – votre dossier a été rejeté".to_owned(),
            "Votre dossier ne peut pas être retenu.".to_owned(),
            "Le motif figure aussi dans votre espace sécurisé.".to_owned(),
        ),
        Notice::Convocation { test } => (
            "Cachet – votre convocation est disponible".to_owned(),
            format!("Votre convocation à l'épreuve {test} est disponible dans votre espace sécurisé."),
            "Elle n'est ni jointe à ce courriel ni envoyée par courrier : téléchargez-la, imprimez-la et présentez-la \
             avec une pièce d'identité le jour de l'épreuve."
                .to_owned(),
        ),
        Notice::Reminder { deadline } => (
            format!("Cachet – rappel : date limite de dépôt le {deadline}"),
            format!("La date limite de dépôt de votre dossier est le {deadline} (dernier délai) et nous ne l'avons pas encore reçu."),
            "Déposez-le par courrier (le cachet de la poste faisant foi), à l'accueil du Centre de Gestion aux heures \
             d'ouverture, ou en ligne en cliquant sur « Clôturer mon inscription » avant minuit."
                .to_owned(),
        ),
    };
    let show_message = !matches!(kind, Notice::Convocation { .. } | Notice::Reminder { .. });
    let missing = if kind == Notice::Incomplete { payload.missing.clone() } else { Vec::new() };
    let mut text = format!("Bonjour {candidate_name},\n\n{session_title}\nCode utilisateur : {user_code}\n\n{lead}\n");
    if show_message {
        text.push_str(&format!("\n{}\n", payload.message));
    }
    if !missing.is_empty() {
        text.push_str("\nPièces manquantes :\n");
        for piece in &missing {
            text.push_str(&format!("- {piece}\n"));
        }
    }
    text.push_str(&format!("\n{next}\nVotre espace sécurisé : {space}\n\n{}\n", signature()));
    let html = html! {
        p { "Bonjour " (candidate_name) "," }
        p { (session_title) br; "Code utilisateur : " strong { (user_code) } }
        p { (lead) }
        @if show_message { p { strong { (payload.message) } } }
        @if !missing.is_empty() { p { "Pièces manquantes :" } ul { @for piece in &missing { li { (piece) } } } }
        p { (next) }
        p { "Votre espace sécurisé : " a href=(space) { (space) } }
        p { (signature()) }
    };
    Mail { to: to.to_owned(), subject, text, html: html.into_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://cachet.example/mot-de-passe/nouveau?jeton=abc&x=1";

    #[test]
    fn the_reset_mail_gives_the_code_the_link_and_its_validity() {
        let mail = password_reset("a@exemple.fr", "7K3M9Q2X", LINK, 60);
        assert_eq!(mail.to, "a@exemple.fr");
        assert_eq!(mail.subject, "Cachet – réinitialisation de votre mot de passe");
        for body in [&mail.text, &mail.html] {
            assert!(
                body.contains("réinitialisation du mot de passe a été demandée pour le code utilisateur"),
                "{body}"
            );
            assert!(body.contains("7K3M9Q2X"), "{body}");
            assert!(body.contains("valable 60 minutes et ne peut servir qu'une fois"), "{body}");
            assert!(body.contains("Si vous n'êtes pas à l'origine de cette demande, ignorez ce message"), "{body}");
        }
        assert!(mail.text.contains(&format!("\n{LINK}\n")), "the link alone on its line: {}", mail.text);
        assert!(
            mail.html.contains(r#"<a href="https://cachet.example/mot-de-passe/nouveau?jeton=abc&amp;x=1">"#),
            "{}",
            mail.html
        );
    }

    #[test]
    fn the_confirmation_gives_the_code_and_the_three_channels_but_never_a_password() {
        let mail = pre_registration_confirmation(
            "a@exemple.fr",
            "Alex Martin",
            "examen professionnel d'adjoint technique territorial principal de 2e classe – session 2024",
            "7K3M9Q2X",
            "6 juillet 2023",
        );
        assert_eq!(mail.subject, "Cachet – confirmation de votre préinscription");
        for body in [&mail.text, &mail.html] {
            assert!(body.contains("Bonjour Alex Martin,"), "{body}");
            assert!(body.contains("Votre code utilisateur est : "), "{body}");
            assert!(body.contains("7K3M9Q2X"), "{body}");
            assert!(body.contains("La préinscription ne vaut pas inscription"), "{body}");
            assert!(body.contains("au plus tard le 6 juillet 2023 (dernier délai)"), "{body}");
            assert!(body.contains("le cachet de la poste faisant foi"), "{body}");
            assert!(body.contains("à l'accueil du Centre de Gestion"), "{body}");
            assert!(body.contains("« Clôturer mon inscription » avant minuit"), "{body}");
            assert!(body.contains("Tout dossier déposé ou posté hors délai sera rejeté."), "{body}");
            assert!(!body.contains("mot de passe :") && !body.contains("mot de passe est"), "never the password");
        }
    }

    #[test]
    fn html_bodies_escape_what_they_quote() {
        let mail = pre_registration_confirmation("a@exemple.fr", "<b>Eve</b> & co", "<i>examen</i>", "7K3M9Q2X", "<j>");
        assert!(mail.html.contains("Bonjour &lt;b&gt;Eve&lt;/b&gt; &amp; co,"), "{}", mail.html);
        assert!(mail.html.contains("&lt;i&gt;examen&lt;/i&gt;"), "{}", mail.html);
        assert!(!mail.html.contains("<b>") && !mail.html.contains("<i>") && !mail.html.contains("<j>"));
        assert!(mail.text.contains("Bonjour <b>Eve</b> & co,"), "the text body is not escaped");

        let mail = password_reset("a@exemple.fr", "<script>", "https://x/\"><script>", 60);
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(mail.html.contains("&lt;script&gt;"), "{}", mail.html);
    }

    #[tokio::test]
    async fn an_invalid_recipient_is_named_in_french() {
        let dir = tempfile::tempdir().expect("folder");
        let mailer = Mailer::new(MailSettings::Outbox(dir.path().to_owned()), "concours@cdg.example").expect("mailer");
        let error = mailer.send(&password_reset("pas une adresse", "X", "y", 60)).await.expect_err("refused");
        assert_eq!(error.to_string(), "L'adresse électronique « pas une adresse » n'est pas valide.");
        assert_eq!(std::fs::read_dir(dir.path()).expect("folder").count(), 0, "nothing written");
    }

    #[test]
    fn an_invalid_sender_is_refused_and_settings_hide_the_password() {
        let settings = MailSettings::Smtp {
            host: "127.0.0.1".to_owned(),
            port: 2525,
            username: Some("cachet".to_owned()),
            password: Some("s3cret".to_owned()),
            tls: false,
        };
        assert!(!format!("{settings:?}").contains("s3cret"));
        let error = Mailer::new(settings.clone(), "Cachet <pas une adresse>").err().expect("refused");
        assert!(matches!(error, MailError::InvalidAddress(_)), "{error:?}");
        let mailer = Mailer::new(settings, "Cachet <concours@cdg.example>").expect("mailer");
        assert_eq!(mailer.describe(), "serveur SMTP 127.0.0.1:2525");
    }
}
