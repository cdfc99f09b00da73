//! The frame every page shares (header, navigation, main landmark, footer) and the stylesheet.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The stylesheet: dark text on white (contrast above 7:1), a thick visible focus ring, the red
/// dot of the registration form.
pub const STYLESHEET: &str = r#"
:root { --ink: #1a1a1a; --muted: #4a4a4a; --brand: #00307a; --error: #a4001d; --ok: #1b5e20; --line: #8a8a8a; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "Marianne", Arial, Helvetica, sans-serif; color: var(--ink); background: #fff; line-height: 1.5; }
a { color: var(--brand); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible {
  outline: 3px solid #ffbf47; outline-offset: 2px; box-shadow: 0 0 0 5px var(--ink);
}
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 10; }
header.site { background: var(--brand); color: #fff; padding: .75rem 1.5rem; display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 1rem; }
header.site a { color: #fff; }
header.site .brand { font-weight: bold; font-size: 1.25rem; text-decoration: none; }
header.site form { display: inline; }
header.site button { background: #fff; color: var(--brand); border: 2px solid #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
footer { max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; color: var(--muted); font-size: .9rem; }
h1 { font-size: 1.75rem; margin-top: 0; }
label { display: block; font-weight: bold; margin-top: 1rem; }
.hint { display: block; color: var(--muted); font-weight: normal; font-size: .95rem; }
input[type=text], input[type=email], input[type=tel], input[type=date], input[type=password], textarea, select {
  width: 100%; max-width: 32rem; padding: .5rem; font-size: 1rem; border: 2px solid var(--ink); border-radius: 0; }
input[type=file] { font-size: 1rem; max-width: 100%; }
textarea { min-height: 4rem; }
button, .button { display: inline-block; margin-top: 1rem; padding: .6rem 1.2rem; font-size: 1rem; font-weight: bold; color: #fff;
  background: var(--brand); border: 2px solid var(--brand); cursor: pointer; text-decoration: none; }
button.secondary { background: #fff; color: var(--brand); }
.field-error { display: block; color: var(--error); font-weight: bold; margin: .25rem 0; }
input[aria-invalid=true] { border-color: var(--error); border-width: 3px; }
.error-summary { border: 3px solid var(--error); padding: 1rem; margin-bottom: 1.5rem; }
.error-summary h2 { color: var(--error); margin-top: 0; font-size: 1.2rem; }
.notice { border-left: 6px solid var(--ok); padding: .75rem 1rem; background: #eef6ee; margin-bottom: 1.5rem; }
.status { border-left: 6px solid var(--brand); padding: .75rem 1rem; background: #eef2f9; font-size: 1.1rem; }
.code { font-family: "Courier New", monospace; font-size: 1.5rem; font-weight: bold; letter-spacing: .1em; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border: 1px solid var(--line); padding: .5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td form { margin: 0; }
td button { margin-top: .5rem; }
.red-dot { display: inline-block; width: .9rem; height: .9rem; border-radius: 50%; background: #d0021b; border: 1px solid #6d0010; vertical-align: middle; margin-right: .4rem; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
fieldset { border: 1px solid var(--line); margin: 1.5rem 0; padding: 0 1rem 1rem; }
legend { font-weight: bold; font-size: 1.1rem; padding: 0 .25rem; }
"#;

pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
        .into_response()
}

/// Who the header shows as logged in, with the way out.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// E.g. « Code utilisateur 7K3M9Q2X ».
    pub label: String,
    /// Where the candidate's or the staff member's home is.
    pub home: String,
    pub csrf_token: String,
}

/// A page being built: its title and who is signed in.
#[derive(Clone, Debug)]
pub struct Page {
    pub title: String,
    pub signed_in: Option<SignedIn>,
}

impl Page {
    pub fn new(title: &str) -> Self {
        Self { title: title.to_owned(), signed_in: None }
    }

    pub fn signed_in(mut self, signed_in: Option<SignedIn>) -> Self {
        self.signed_in = signed_in;
        self
    }

    /// The whole document around a page's content.
    pub fn render(&self, content: Markup) -> Html<String> {
        let markup = html! {
            (DOCTYPE)
            html lang="fr" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " – Cachet" }
                    link rel="stylesheet" href="/static/cachet.css";
                }
                body {
                    a.skip href="#contenu" { "Aller au contenu" }
                    header.site {
                        a.brand href="/" { "Cachet" span.visually-hidden { " – accueil" } }
                        @if let Some(user) = &self.signed_in {
                            nav aria-label="Compte" {
                                a href=(user.home) { (user.label) }
                                " "
                                form method="post" action="/deconnexion" {
                                    input type="hidden" name="csrf" value=(user.csrf_token);
                                    button type="submit" { "Se déconnecter" }
                                }
                            }
                        } @else {
                            nav aria-label="Compte" { a href="/connexion" { "Espace sécurisé candidat : se connecter" } }
                        }
                    }
                    main id="contenu" tabindex="-1" {
                        h1 { (self.title) }
                        (content)
                    }
                    footer { "Centre de Gestion – service concours. Le cachet de la poste faisant foi." }
                }
            }
        };
        Html(markup.into_string())
    }

    /// A page that only says something (errors, confirmations).
    pub fn message_page(&self, message: &str) -> Html<String> {
        self.render(html! {
            p role="alert" { (message) }
            p { a href="/" { "Retour à l'accueil" } }
        })
    }
}
