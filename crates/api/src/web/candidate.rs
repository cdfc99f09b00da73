//! The espace sécurisé candidat: pre-registration, login and logout, lost password, the status
//! of the dossier, its pieces (upload, replace, remove), the online closure with its receipt, and
//! the printable documents. A candidate reaches only their own dossier: any other identifier
//! answers the same 404 as one that does not exist.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use cachet_documents as documents;
use cachet_domain::dossier::{DossierCommand, DossierEvent, DossierState, Status};
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId, UserCode};
use cachet_domain::session::{PieceKind, SessionConfig};
use cachet_domain::time::{format_date, format_instant, paris_date};
use cachet_projections::queries::{self, DossierStatus, PieceRow};
use cachet_store::typed::load;
use chrono::{NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use sqlx::Row;
use uuid::Uuid;

use crate::accounts::{self, CandidateAccount, Identity, SessionUser};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::files::describe_size;
use crate::service::{self, execute_dossier};
use crate::web::forms::{csrf, Errors, Input};
use crate::web::layout::{Page, SignedIn};
use crate::web::session::{clear_cookie, set_cookie};
use crate::web::{Visitor, WebError};

pub fn router(max_upload_bytes: u64) -> Router<AppState> {
    // The multipart body holds the file and a few small fields; the file's own limit is checked
    // while it streams, with a clear message, before this outer bound is reached.
    let upload_limit = usize::try_from(max_upload_bytes.saturating_add(1024 * 1024)).unwrap_or(usize::MAX);
    Router::new()
        .route("/", get(home))
        .route("/sessions/{session_id}/preinscription", get(pre_registration_form).post(pre_register))
        .route("/connexion", get(login_form).post(login))
        .route("/deconnexion", post(logout))
        .route("/mot-de-passe-oublie", get(forgotten_form).post(forgotten))
        .route("/mot-de-passe/nouveau", get(reset_form).post(reset))
        .route("/espace", get(my_space))
        .route("/dossiers/{dossier_id}", get(status_page))
        .route("/dossiers/{dossier_id}/pieces", get(pieces_page))
        .route("/dossiers/{dossier_id}/pieces/{piece}", post(upload).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/dossiers/{dossier_id}/pieces/{piece}/retrait", post(remove))
        .route("/dossiers/{dossier_id}/pieces/{piece}/fichier", get(download))
        .route("/dossiers/{dossier_id}/cloture", post(close))
        .route("/dossiers/{dossier_id}/recepisse", get(receipt_page))
        .route("/dossiers/{dossier_id}/recepisse.pdf", get(receipt_pdf))
        .route("/dossiers/{dossier_id}/dossier-de-preinscription.pdf", get(registration_form_pdf))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn signed_in(visitor: &Visitor, account: &CandidateAccount) -> Option<SignedIn> {
    visitor.session.as_ref().map(|s| SignedIn {
        label: format!("Code utilisateur {}", account.user_code),
        home: format!("/dossiers/{}", account.dossier_id),
        csrf_token: s.csrf_token.clone(),
    })
}

/// A signed-in candidate's own dossier, or the way to the login page, or 404.
struct Owned {
    account: CandidateAccount,
    csrf: String,
    signed_in: Option<SignedIn>,
}

async fn owned(state: &AppState, visitor: &Visitor, dossier_id: &str, back: &str) -> Result<Owned, Response> {
    let Some(user_code) = visitor.candidate() else {
        return Err(Redirect::to(&format!("/connexion?suite={}", urlencode(back))).into_response());
    };
    let account = match accounts::candidate_by_code(&state.db, user_code).await {
        Ok(Some(account)) => account,
        Ok(None) => return Err(WebError::NotFound.into_response()),
        Err(e) => return Err(WebError::from(e).into_response()),
    };
    if Uuid::parse_str(dossier_id).ok() != Some(account.dossier_id) {
        return Err(WebError::NotFound.into_response());
    }
    let csrf = visitor.session.as_ref().map(|s| s.csrf_token.clone()).unwrap_or_default();
    let signed_in = signed_in(visitor, &account);
    Ok(Owned { account, csrf, signed_in })
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn session_config(state: &AppState, session_id: Uuid) -> Result<Option<(SessionConfig, NaiveDate)>, WebError> {
    let Some(summary) = queries::session(&state.db, session_id).await? else { return Ok(None) };
    let mut config: SessionConfig = serde_json::from_value(summary.config)
        .map_err(|e| WebError::Api(ApiError::internal("read a session configuration", e)))?;
    let deadline = NaiveDate::parse_from_str(&summary.deadline, "%Y-%m-%d").unwrap_or(config.deposit_deadline);
    config.deposit_deadline = deadline;
    Ok(Some((config, deadline)))
}

/// The signed-in candidate's account when the dossier is theirs, or the answer to give instead
/// (the login page, or 404 for another's dossier).
pub(crate) async fn owned_dossier(
    state: &AppState,
    visitor: &Visitor,
    dossier_id: &str,
) -> Result<CandidateAccount, Response> {
    owned(state, visitor, dossier_id, &format!("/dossiers/{dossier_id}")).await.map(|owned| owned.account)
}

async fn dossier_state(state: &AppState, dossier_id: Uuid) -> Result<DossierState, WebError> {
    let (events, _) = load::<DossierEvent>(&*state.store, dossier_id).await.map_err(ApiError::from)?;
    Ok(DossierState::fold(&events))
}

fn caller_of(account: &CandidateAccount) -> Caller {
    Caller::Candidate(CandidateId::from_uuid(account.candidate_id))
}

/// Renders a page, setting the session cookie when one was just opened.
fn with_cookie(jar: Option<axum_extra::extract::cookie::CookieJar>, page: impl IntoResponse) -> Response {
    match jar {
        Some(jar) => (jar, page).into_response(),
        None => page.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Home
// ---------------------------------------------------------------------------------------------

pub(crate) struct OpenSession {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    pub(crate) organiser: String,
    pub(crate) deadline: NaiveDate,
}

/// Every session, the latest deadline first.
pub(crate) async fn sessions(state: &AppState) -> Result<Vec<OpenSession>, WebError> {
    let rows =
        sqlx::query("SELECT session_id, title, organiser, deadline FROM exam_sessions ORDER BY deadline DESC, title")
            .fetch_all(&state.db.pool)
            .await
            .map_err(|e| ApiError::internal("list the sessions", e))?;
    let mut sessions = Vec::new();
    for row in rows {
        let get = |c: &str| row.try_get::<String, _>(c).map_err(|e| ApiError::internal("list the sessions", e));
        let (Ok(id), Ok(deadline)) =
            (Uuid::parse_str(&get("session_id")?), NaiveDate::parse_from_str(&get("deadline")?, "%Y-%m-%d"))
        else {
            continue;
        };
        sessions.push(OpenSession { id, title: get("title")?, organiser: get("organiser")?, deadline });
    }
    Ok(sessions)
}

async fn home(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    let today = paris_date(Utc::now());
    let sessions = sessions(&state).await?;
    let signed_in = match visitor.candidate() {
        Some(code) => accounts::candidate_by_code(&state.db, code).await?.and_then(|a| signed_in(&visitor, &a)),
        None => None,
    };
    let page = Page::new("Inscriptions aux examens professionnels").signed_in(signed_in);
    Ok(page
        .render(html! {
            p { "Préinscrivez-vous en ligne, puis déposez votre dossier signé avant la date limite : par courrier \
                 (le cachet de la poste faisant foi), à l'accueil du Centre de Gestion, ou en ligne dans votre espace \
                 sécurisé (déposez chaque pièce puis cliquez sur « Clôturer mon inscription » avant minuit)." }
            p { "La préinscription ne vaut pas inscription : elle ne devient une inscription qu'une fois le dossier \
                 complet déposé." }
            h2 { "Sessions" }
            @if sessions.is_empty() { p { "Aucune session n'est ouverte pour le moment." } }
            ul {
                @for s in &sessions {
                    li {
                        strong { (s.title) } " – " (s.organiser) ". Date limite de dépôt : le " (format_date(s.deadline)) "."
                        " "
                        @if s.deadline >= today {
                            a href={ "/sessions/" (s.id) "/preinscription" } { "Se préinscrire" span.visually-hidden { " : " (s.title) } }
                        } @else {
                            "Préinscriptions closes."
                        }
                    }
                }
            }
            h2 { "Déjà préinscrit ?" }
            p { a href="/connexion" { "Accéder à mon espace sécurisé" } " avec mon code utilisateur et mon mot de passe." }
        })
        .into_response())
}

async fn my_space(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    match visitor.candidate() {
        Some(code) => match accounts::candidate_by_code(&state.db, code).await? {
            Some(account) => Ok(Redirect::to(&format!("/dossiers/{}", account.dossier_id)).into_response()),
            None => Err(WebError::NotFound),
        },
        None => Ok(Redirect::to("/connexion").into_response()),
    }
}

// ---------------------------------------------------------------------------------------------
// Pre-registration
// ---------------------------------------------------------------------------------------------

fn identity_fields(config: &SessionConfig) -> Vec<(String, String, &'static str, Option<&'static str>, bool)> {
    let mut fields = vec![
        ("nom".to_owned(), "Nom de naissance".to_owned(), "text", Some("family-name"), true),
        ("prenom".to_owned(), "Prénom".to_owned(), "text", Some("given-name"), true),
        ("date_naissance".to_owned(), "Date de naissance".to_owned(), "date", Some("bday"), true),
        ("adresse".to_owned(), "Adresse postale".to_owned(), "text", Some("street-address"), true),
        ("courriel".to_owned(), "Adresse électronique".to_owned(), "email", Some("email"), true),
        ("telephone".to_owned(), "Téléphone".to_owned(), "tel", Some("tel"), true),
    ];
    for q in &config.questions {
        fields.push((format!("q_{}", q.code), q.label.clone(), "text", None, q.required));
    }
    fields
}

fn hint_for(name: &str) -> Option<&'static str> {
    match name {
        "date_naissance" => Some("Au format JJ/MM/AAAA si votre navigateur ne propose pas de calendrier."),
        "courriel" => Some("Les messages du Centre de Gestion y seront envoyés, dont le lien de mot de passe oublié."),
        "mot_de_passe" => Some("Au moins 10 caractères. Il vous sera demandé avec votre code utilisateur."),
        _ => None,
    }
}

fn render_pre_registration(
    session_id: Uuid,
    config: &SessionConfig,
    values: &BTreeMap<String, String>,
    errors: &Errors,
    csrf_token: &str,
    nonce: &str,
) -> Markup {
    let value = |name: &str| values.get(name).map(String::as_str).unwrap_or_default().to_owned();
    html! {
        p { strong { (config.title) } " – " (config.organiser) }
        p { "Date limite de dépôt du dossier : le " (format_date(config.deposit_deadline)) " (dernier délai)." }
        (errors.summary())
        form method="post" action={ "/sessions/" (session_id) "/preinscription" } novalidate {
            (csrf(csrf_token))
            input type="hidden" name="jeton" value=(nonce);
            fieldset {
                legend { "Vos coordonnées" }
                @for (name, label, kind, autocomplete, required) in identity_fields(config) {
                    @let v = value(&name);
                    (Input { name: &name, label: &label, kind, value: &v, hint: hint_for(&name), required, autocomplete }.render(errors))
                }
            }
            fieldset {
                legend { "Votre mot de passe" }
                (Input { name: "mot_de_passe", label: "Mot de passe", kind: "password", value: "", hint: hint_for("mot_de_passe"), required: true, autocomplete: Some("new-password") }.render(errors))
                (Input { name: "confirmation", label: "Confirmation du mot de passe", kind: "password", value: "", hint: None, required: true, autocomplete: Some("new-password") }.render(errors))
            }
            button type="submit" { "Enregistrer ma préinscription" }
        }
    }
}

async fn pre_registration_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
) -> Result<Response, WebError> {
    let session_id = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let (config, _) = session_config(&state, session_id).await?.ok_or(WebError::NotFound)?;
    let (session, jar) = visitor.ensure(&state).await?;
    let nonce = accounts::new_token()?;
    let page = Page::new("Préinscription").render(render_pre_registration(
        session_id,
        &config,
        &BTreeMap::new(),
        &Errors::default(),
        &session.csrf_token,
        &nonce,
    ));
    Ok(with_cookie(jar, page))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"(),;:[]\\".contains(c))
}

fn valid_phone(phone: &str) -> bool {
    let rest = phone.trim().strip_prefix('+').unwrap_or(phone.trim());
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    rest.chars().all(|c| c.is_ascii_digit() || " .-()".contains(c)) && (10..=15).contains(&digits)
}

fn parse_birth_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y")).ok()
}

/// Checks the identity part of the form; every error is named next to its field.
fn read_identity(config: &SessionConfig, values: &BTreeMap<String, String>, errors: &mut Errors) -> Option<Identity> {
    let text = |name: &str| values.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut required = |name: &str, message: &str, max: usize| {
        let value = text(name);
        if value.is_empty() {
            errors.add(name, message);
        } else if value.chars().count() > max {
            errors.add(name, format!("Ce champ ne peut pas dépasser {max} caractères."));
        } else if value.chars().any(char::is_control) {
            errors.add(name, "Ce champ contient des caractères non autorisés.");
        }
        value
    };
    let last_name = required("nom", "Indiquez votre nom de naissance.", 100);
    let first_name = required("prenom", "Indiquez votre prénom.", 100);
    let address = required("adresse", "Indiquez votre adresse postale.", 300);
    let mut answers = BTreeMap::new();
    for q in &config.questions {
        let name = format!("q_{}", q.code);
        let value = if q.required {
            required(&name, &format!("Répondez à la question « {} ».", q.label), 200)
        } else {
            text(&name).chars().take(200).collect()
        };
        answers.insert(q.code.clone(), value);
    }
    let email = text("courriel");
    if !valid_email(&email) {
        errors.add("courriel", "Indiquez une adresse électronique valide, par exemple prenom.nom@exemple.fr.");
    }
    let phone = text("telephone");
    if !valid_phone(&phone) {
        errors.add("telephone", "Indiquez un numéro de téléphone valide, par exemple 02 33 80 48 00.");
    }
    let today = paris_date(Utc::now());
    let birth_date = match parse_birth_date(&text("date_naissance")) {
        None => {
            errors.add("date_naissance", "Indiquez votre date de naissance, par exemple 14/03/1985.");
            None
        }
        Some(date) if date > today - chrono::Days::new(16 * 365) || date < today - chrono::Days::new(100 * 366) => {
            errors.add("date_naissance", "Cette date de naissance n'est pas plausible : vérifiez-la.");
            None
        }
        Some(date) => Some(date),
    };
    if let Err(message) = accounts::check_new_password(
        values.get("mot_de_passe").map(String::as_str).unwrap_or_default(),
        values.get("confirmation").map(String::as_str).unwrap_or_default(),
    ) {
        let field = if message.contains("identiques") { "confirmation" } else { "mot_de_passe" };
        errors.add(field, message);
    }
    if !errors.is_empty() {
        return None;
    }
    Some(Identity { last_name, first_name, birth_date: birth_date?, address, email, phone, answers })
}

async fn pre_register(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    let session = visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?.clone();
    let session_uuid = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let (config, _) = session_config(&state, session_uuid).await?.ok_or(WebError::NotFound)?;
    let nonce = values.get("jeton").cloned().filter(|n| n.len() == 64).unwrap_or(accounts::new_token()?);
    let mut errors = Errors::default();
    let identity = read_identity(&config, &values, &mut errors);
    let render_errors = |errors: &Errors| {
        let page = Page::new("Préinscription").render(render_pre_registration(
            session_uuid,
            &config,
            &values,
            errors,
            &session.csrf_token,
            &nonce,
        ));
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let Some(identity) = identity else { return Ok(render_errors(&errors)) };

    // The candidate and the dossier derive from the form's nonce, so a form sent twice (a double
    // click, a retry after a lost answer) pre-registers once.
    let command_id = service::command_id(Some(&nonce), &format!("pre-register-page:{session_uuid}"));
    let candidate_id = CandidateId::from_uuid(Uuid::new_v5(&command_id, b"candidate"));
    let caller = Caller::Candidate(candidate_id);
    let registered = match service::pre_register(
        &state,
        &caller,
        SessionId::from_uuid(session_uuid),
        candidate_id,
        command_id,
    )
    .await
    {
        Ok(registered) => registered,
        Err(ApiError::Internal(cause)) => return Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => {
            errors.add("nom", error.to_string());
            return Ok(render_errors(&errors));
        }
    };
    let password = values.get("mot_de_passe").cloned().unwrap_or_default();
    let password_again = password.clone();
    let account = CandidateAccount {
        user_code: registered.user_code.to_string(),
        candidate_id: candidate_id.as_uuid(),
        dossier_id: registered.dossier_id.as_uuid(),
        session_id: session_uuid,
        identity,
        password_hash: accounts::hash_password(password).await?,
        created_at: Utc::now(),
    };
    let created = accounts::create_candidate(&state.db, &account).await?;
    let stored = accounts::candidate_by_code(&state.db, &account.user_code).await?.ok_or(WebError::NotFound)?;
    // A form sent again (double click, retry) finds the account of its first sending: it signs in
    // only with the password that account was created with.
    if !created && !accounts::verify_password(Some(stored.password_hash.clone()), password_again).await {
        errors.add(
            "mot_de_passe",
            "Ce formulaire a déjà été envoyé avec un autre mot de passe : connectez-vous avec votre code utilisateur.",
        );
        return Ok(render_errors(&errors));
    }

    accounts::close_session(&state.db, &session.token, Utc::now()).await?;
    let signed =
        accounts::open_session(&state.db, SessionUser::Candidate { user_code: stored.user_code }, Utc::now()).await?;
    let jar = set_cookie(&state, &signed.token);
    Ok((jar, Redirect::to(&format!("/dossiers/{}?bienvenue=1", stored.dossier_id))).into_response())
}

// ---------------------------------------------------------------------------------------------
// Login, logout, lost password
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct LoginQuery {
    suite: Option<String>,
}

fn render_login(values: &BTreeMap<String, String>, errors: &Errors, csrf_token: &str, next: &str) -> Markup {
    let code = values.get("code").cloned().unwrap_or_default();
    html! {
        (errors.summary())
        form method="post" action="/connexion" novalidate {
            (csrf(csrf_token))
            input type="hidden" name="suite" value=(next);
            (Input { name: "code", label: "Code utilisateur", kind: "text", value: &code, hint: Some("Le code de 8 caractères reçu à la préinscription."), required: true, autocomplete: Some("username") }.render(errors))
            (Input { name: "mot_de_passe", label: "Mot de passe", kind: "password", value: "", hint: None, required: true, autocomplete: Some("current-password") }.render(errors))
            button type="submit" { "Se connecter" }
        }
        p { a href="/mot-de-passe-oublie" { "Mot de passe oublié ?" } }
    }
}

async fn login_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let (session, jar) = visitor.ensure(&state).await?;
    let next = query.suite.filter(|s| safe_next(s)).unwrap_or_default();
    let page = Page::new("Espace sécurisé candidat").render(render_login(
        &BTreeMap::new(),
        &Errors::default(),
        &session.csrf_token,
        &next,
    ));
    Ok(with_cookie(jar, page))
}

/// Only our own dossier pages may be where a login leads, written with plain characters.
fn safe_next(next: &str) -> bool {
    next.starts_with("/dossiers/")
        && !next.contains("//")
        && next.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
}

async fn login(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    let session = visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?.clone();
    let code = values.get("code").map(|c| c.trim().to_uppercase()).unwrap_or_default();
    let password = values.get("mot_de_passe").cloned().unwrap_or_default();
    let next = values.get("suite").cloned().filter(|s| safe_next(s)).unwrap_or_default();
    let now = Utc::now();
    let keys = [format!("candidat:{code}"), format!("adresse:{}", visitor.address)];
    let refuse = |message: String| {
        let mut errors = Errors::default();
        errors.add("code", message);
        let page =
            Page::new("Espace sécurisé candidat").render(render_login(&values, &errors, &session.csrf_token, &next));
        (StatusCode::UNAUTHORIZED, page).into_response()
    };
    if let Some(minutes) = accounts::locked_for(&state.db, &keys, now).await? {
        return Ok(refuse(format!(
            "Trop de tentatives de connexion infructueuses. Par sécurité, réessayez dans {minutes} minute{}.",
            if minutes > 1 { "s" } else { "" }
        )));
    }
    let account =
        if UserCode::parse(&code).is_ok() { accounts::candidate_by_code(&state.db, &code).await? } else { None };
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    if !accounts::verify_password(hash, password).await {
        accounts::record_failure(&state.db, &keys, now).await?;
        return Ok(refuse("Code utilisateur ou mot de passe incorrect.".to_owned()));
    }
    let Some(account) = account else { return Ok(refuse("Code utilisateur ou mot de passe incorrect.".to_owned())) };
    accounts::clear_failures(&state.db, &keys[0]).await?;
    accounts::close_session(&state.db, &session.token, now).await?;
    let signed =
        accounts::open_session(&state.db, SessionUser::Candidate { user_code: account.user_code.clone() }, now).await?;
    let target = if next.is_empty() { format!("/dossiers/{}", account.dossier_id) } else { next };
    Ok((set_cookie(&state, &signed.token), Redirect::to(&target)).into_response())
}

async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    let session = visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?;
    accounts::close_session(&state.db, &session.token, Utc::now()).await?;
    Ok((clear_cookie(), Redirect::to("/connexion?deconnecte=1")).into_response())
}

fn render_forgotten(errors: &Errors, csrf_token: &str) -> Markup {
    html! {
        p { "Indiquez votre code utilisateur : un lien pour choisir un nouveau mot de passe sera envoyé à l'adresse \
             électronique donnée lors de votre préinscription." }
        (errors.summary())
        form method="post" action="/mot-de-passe-oublie" novalidate {
            (csrf(csrf_token))
            (Input { name: "code", label: "Code utilisateur", kind: "text", value: "", hint: None, required: true, autocomplete: Some("username") }.render(errors))
            button type="submit" { "Recevoir un lien" }
        }
    }
}

async fn forgotten_form(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    let (session, jar) = visitor.ensure(&state).await?;
    Ok(with_cookie(
        jar,
        Page::new("Mot de passe oublié").render(render_forgotten(&Errors::default(), &session.csrf_token)),
    ))
}

/// The same answer whether the code exists or not.
const RESET_SENT: &str = "Si ce code utilisateur correspond à une préinscription, un courriel contenant un lien pour \
     choisir un nouveau mot de passe vient d'être envoyé à l'adresse électronique déclarée. Ce lien est valable 60 \
     minutes et ne peut servir qu'une fois.";

async fn forgotten(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    let session = visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?.clone();
    let code = values.get("code").map(|c| c.trim().to_uppercase()).unwrap_or_default();
    let now = Utc::now();
    let keys = [format!("reinitialisation:{}", visitor.address)];
    if let Some(minutes) = accounts::locked_for(&state.db, &keys, now).await? {
        let mut errors = Errors::default();
        errors.add(
            "code",
            format!(
                "Trop de demandes depuis cette adresse. Réessayez dans {minutes} minute{}.",
                if minutes > 1 { "s" } else { "" }
            ),
        );
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            Page::new("Mot de passe oublié").render(render_forgotten(&errors, &session.csrf_token)),
        )
            .into_response());
    }
    accounts::record_failure(&state.db, &keys, now).await?;
    if UserCode::parse(&code).is_ok() {
        if let Some(account) = accounts::candidate_by_code(&state.db, &code).await? {
            let token = accounts::create_reset(&state.db, &account.user_code, now).await?;
            let link =
                format!("{}/mot-de-passe/nouveau?jeton={token}", state.settings.public_url.trim_end_matches('/'));
            let mail = crate::mail::password_reset(
                &account.identity.email,
                &account.user_code,
                &link,
                u32::try_from(accounts::RESET_VALID_MINUTES).unwrap_or(60),
            );
            // Sent in the background: the answer takes the same time whether the code exists or not.
            let mailer = state.mailer.clone();
            tokio::spawn(async move {
                if let Err(error) = mailer.send(&mail).await {
                    tracing::error!(error = %error, "the password reset mail could not be sent");
                }
            });
        }
    }
    Ok(Page::new("Mot de passe oublié")
        .render(html! {
            p.notice role="status" { (RESET_SENT) }
            p { a href="/connexion" { "Retour à la connexion" } }
        })
        .into_response())
}

#[derive(Deserialize)]
struct ResetQuery {
    jeton: Option<String>,
}

const RESET_INVALID: &str = "Ce lien de réinitialisation n'est plus valable : il a déjà servi ou il a expiré. \
     Demandez-en un nouveau.";

fn render_reset(errors: &Errors, csrf_token: &str, token: &str, user_code: &str) -> Markup {
    html! {
        p { "Choisissez un nouveau mot de passe pour le code utilisateur " strong { (user_code) } "." }
        (errors.summary())
        form method="post" action="/mot-de-passe/nouveau" novalidate {
            (csrf(csrf_token))
            input type="hidden" name="jeton" value=(token);
            (Input { name: "mot_de_passe", label: "Nouveau mot de passe", kind: "password", value: "", hint: hint_for("mot_de_passe"), required: true, autocomplete: Some("new-password") }.render(errors))
            (Input { name: "confirmation", label: "Confirmation du nouveau mot de passe", kind: "password", value: "", hint: None, required: true, autocomplete: Some("new-password") }.render(errors))
            button type="submit" { "Enregistrer le nouveau mot de passe" }
        }
    }
}

fn reset_invalid_page() -> Response {
    (
        StatusCode::GONE,
        Page::new("Nouveau mot de passe").render(html! {
            p role="alert" { (RESET_INVALID) }
            p { a href="/mot-de-passe-oublie" { "Demander un nouveau lien" } }
        }),
    )
        .into_response()
}

async fn reset_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<ResetQuery>,
) -> Result<Response, WebError> {
    let token = query.jeton.unwrap_or_default();
    let Some(user_code) = accounts::reset_target(&state.db, &token, Utc::now()).await? else {
        return Ok(reset_invalid_page());
    };
    let (session, jar) = visitor.ensure(&state).await?;
    let page = Page::new("Nouveau mot de passe").render(render_reset(
        &Errors::default(),
        &session.csrf_token,
        &token,
        &user_code,
    ));
    Ok(with_cookie(jar, page))
}

async fn reset(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    let session = visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?.clone();
    let token = values.get("jeton").cloned().unwrap_or_default();
    let now = Utc::now();
    let Some(user_code) = accounts::reset_target(&state.db, &token, now).await? else {
        return Ok(reset_invalid_page());
    };
    let password = values.get("mot_de_passe").cloned().unwrap_or_default();
    if let Err(message) =
        accounts::check_new_password(&password, values.get("confirmation").map(String::as_str).unwrap_or_default())
    {
        let mut errors = Errors::default();
        let field = if message.contains("identiques") { "confirmation" } else { "mot_de_passe" };
        errors.add(field, message);
        let page =
            Page::new("Nouveau mot de passe").render(render_reset(&errors, &session.csrf_token, &token, &user_code));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let hash = accounts::hash_password(password).await?;
    if !accounts::consume_reset(&state.db, &token, now).await? {
        return Ok(reset_invalid_page());
    }
    accounts::set_candidate_password(&state.db, &user_code, &hash).await?;
    accounts::close_candidate_sessions(&state.db, &user_code).await?;
    accounts::clear_failures(&state.db, &format!("candidat:{user_code}")).await?;
    Ok(Page::new("Nouveau mot de passe")
        .render(html! {
            p.notice role="status" { "Votre mot de passe a été modifié. Vous pouvez vous connecter avec votre code utilisateur et ce nouveau mot de passe." }
            p { a href="/connexion" { "Se connecter" } }
        })
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// The dossier: status
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct StatusQuery {
    bienvenue: Option<String>,
}

async fn status_of(state: &AppState, dossier_id: Uuid) -> Result<DossierStatus, WebError> {
    queries::dossier_status(&state.db, dossier_id).await?.ok_or(WebError::NotFound)
}

async fn status_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let account = &owned.account;
    let status = status_of(&state, account.dossier_id).await?;
    let config = session_config(&state, account.session_id).await?;
    let title = config.as_ref().map(|(c, _)| c.title.clone()).unwrap_or_default();
    let dossier = dossier_state(&state, account.dossier_id).await?;
    let closed = dossier.deposit.as_ref().is_some_and(|d| d.channel == cachet_domain::deadline::Channel::Online);
    let incomplete = status.status == Status::Incomplete.code();
    let page = Page::new("Mon dossier").signed_in(owned.signed_in.clone());
    Ok(page
        .render(html! {
            @if query.bienvenue.is_some() {
                div.notice role="status" {
                    p { "Votre préinscription est enregistrée. Votre code utilisateur est "
                        span.code { (account.user_code) }
                        " : notez-le, il vous sera demandé avec votre mot de passe pour accéder à votre espace sécurisé." }
                    p { "La préinscription ne vaut pas inscription : imprimez le "
                        a href={ "/dossiers/" (account.dossier_id) "/dossier-de-preinscription.pdf" } { "dossier de pré-inscription" }
                        ", datez-le et signez-le, puis déposez-le avec les pièces demandées avant la date limite." }
                }
            }
            p { strong { (title) } }
            dl {
                dt { "Candidat" } dd { (account.identity.full_name()) }
                dt { "Code utilisateur" } dd { (account.user_code) }
                @if let Some((_, deadline)) = &config { dt { "Date limite de dépôt" } dd { "le " (format_date(*deadline)) " (dernier délai)" } }
            }
            h2 { "État de mon dossier" }
            div.status role="status" {
                p { (status.message) }
                @if incomplete && !status.missing.is_empty() {
                    p { "Pièces manquantes :" }
                    ul { @for piece in &status.missing { li { (piece) } } }
                }
            }
            @if incomplete {
                p { "Vous pouvez envoyer les pièces manquantes par courrier ou les "
                    a href={ "/dossiers/" (account.dossier_id) "/pieces" } { "déposer en ligne sur la page des pièces" } "." }
            }
            @if let Some(deposit) = &status.deposit {
                p { "Dépôt " (deposit.channel_label) " : " (deposit.explanation) "." }
            }
            @if let Some((config, _)) = &config {
                (crate::web::convocations::candidate_section(account.dossier_id, config, &dossier))
            }
            h2 { "Mon dossier" }
            ul {
                li { a href={ "/dossiers/" (account.dossier_id) "/pieces" } { "Mes pièces" } }
                li { a href={ "/dossiers/" (account.dossier_id) "/dossier-de-preinscription.pdf" } { "Dossier de pré-inscription à imprimer (PDF)" } }
                @if closed { li { a href={ "/dossiers/" (account.dossier_id) "/recepisse" } { "Récépissé de dépôt" } } }
            }
        })
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// The dossier: pieces, upload, removal, closure
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct PiecesQuery {
    ajoute: Option<String>,
    retire: Option<String>,
}

/// Where an error goes on the pieces page.
enum PiecesError {
    Piece(String, String),
    Closure(String),
}

fn can_deposit(status: &str) -> bool {
    status == Status::PreRegistered.code() || status == Status::Lapsed.code()
}

fn piece_row(dossier_id: Uuid, csrf_token: &str, piece: &PieceRow, status: &str, error: Option<&str>) -> Markup {
    let editable = can_deposit(status);
    let missing_afterwards =
        status == Status::Incomplete.code() && matches!(piece.state.as_str(), "missing" | "refused");
    let input_id = format!("fichier-{}", piece.code);
    let error_id = format!("erreur-{}", piece.code);
    html! {
        tr id={ "piece-" (piece.code) } {
            th scope="row" {
                @if piece.red_dot {
                    span.red-dot aria-hidden="true" {}
                    span.visually-hidden { "Pastille rouge : " }
                }
                (piece.label)
                @if piece.red_dot { span.hint { "Indispensable pour clôturer votre inscription." } }
                @else if piece.kind == "conditional" { span.hint { "Si vous êtes concerné(e)." } }
            }
            td {
                (piece.state_label)
                @if let Some(reason) = &piece.reason { " : " (reason) }
            }
            td {
                @if let (Some(name), Some(_)) = (&piece.filename, &piece.sha256) {
                    a href={ "/dossiers/" (dossier_id) "/pieces/" (piece.code) "/fichier" } { (name) }
                    @if let Some(size) = piece.size { " (" (describe_size(u64::try_from(size).unwrap_or(0))) ")" }
                } @else { "Aucun fichier" }
            }
            td {
                @if let Some(message) = error { span.field-error id=(error_id) role="alert" { "Erreur : " (message) } }
                @if editable || missing_afterwards {
                    form method="post" enctype="multipart/form-data" action={ "/dossiers/" (dossier_id) "/pieces/" (piece.code) } {
                        (csrf(csrf_token))
                        label for=(input_id) { "Choisir un fichier" span.visually-hidden { " pour : " (piece.label) } }
                        input type="file" id=(input_id) name="fichier" accept=".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"
                            aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| error_id.clone())];
                        button type="submit" { "Ajouter le fichier" span.visually-hidden { " : " (piece.label) } }
                    }
                }
                @if editable && piece.sha256.is_some() {
                    form method="post" action={ "/dossiers/" (dossier_id) "/pieces/" (piece.code) "/retrait" } {
                        (csrf(csrf_token))
                        button.secondary type="submit" { "Retirer le fichier" span.visually-hidden { " : " (piece.label) } }
                    }
                }
            }
        }
    }
}

async fn render_pieces(
    state: &AppState,
    owned: &Owned,
    notice: Option<String>,
    error: Option<PiecesError>,
) -> Result<Markup, WebError> {
    let dossier_id = owned.account.dossier_id;
    let status = status_of(state, dossier_id).await?;
    let pieces = queries::dossier_pieces(&state.db, dossier_id).await?;
    let deadline = session_config(state, owned.account.session_id).await?.map(|(_, d)| d);
    let (piece_error, closure_error) = match &error {
        Some(PiecesError::Piece(code, message)) => (Some((code.as_str(), message.as_str())), None),
        Some(PiecesError::Closure(message)) => (None, Some(message.as_str())),
        None => (None, None),
    };
    Ok(html! {
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if let Some((_, message)) = piece_error { div.error-summary role="alert" { p { (message) } } }
        div.status { p { (status.message) } }
        p { "Déposez chaque pièce au format PDF, JPEG ou PNG, " (describe_size(state.files.max_bytes)) " au plus par fichier. "
            "Le dossier de pré-inscription, marqué d'une pastille rouge, doit être joint pour clôturer votre inscription ; "
            "les autres pièces peuvent être déposées plus tard." }
        @if let Some(deadline) = deadline {
            p { "Clôturez votre inscription avant minuit (heure de Paris) le " (format_date(deadline)) "." }
        }
        table {
            caption.visually-hidden { "Pièces du dossier" }
            thead { tr { th scope="col" { "Pièce" } th scope="col" { "État" } th scope="col" { "Fichier" } th scope="col" { "Action" } } }
            tbody {
                @for piece in &pieces {
                    (piece_row(dossier_id, &owned.csrf, piece, &status.status, piece_error.filter(|(c, _)| *c == piece.code).map(|(_, m)| m)))
                }
            }
        }
        @if can_deposit(&status.status) {
            h2 { "Clôturer mon inscription" }
            form method="post" action={ "/dossiers/" (dossier_id) "/cloture" } {
                (csrf(&owned.csrf))
                p.hint id="cloture-aide" { "Une fois l'inscription clôturée, les pièces ne peuvent plus être modifiées en ligne." }
                @if let Some(message) = closure_error { p.field-error id="cloture-erreur" role="alert" { "Erreur : " (message) } }
                button type="submit" aria-describedby=(if closure_error.is_some() { "cloture-aide cloture-erreur" } else { "cloture-aide" }) { "Clôturer mon inscription" }
            }
        }
        p { a href={ "/dossiers/" (dossier_id) } { "Retour à mon dossier" } }
    })
}

async fn pieces_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
    Query(query): Query<PiecesQuery>,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/pieces")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let pieces = queries::dossier_pieces(&state.db, owned.account.dossier_id).await?;
    let label_of = |code: &str| pieces.iter().find(|p| p.code == code).map(|p| p.label.clone());
    let notice = match (query.ajoute.as_deref().and_then(label_of), query.retire.as_deref().and_then(label_of)) {
        (Some(label), _) => Some(format!("Le fichier a été ajouté à la pièce « {label} ».")),
        (None, Some(label)) => Some(format!("Le fichier de la pièce « {label} » a été retiré.")),
        _ => None,
    };
    let content = render_pieces(&state, &owned, notice, None).await?;
    Ok(Page::new("Mes pièces").signed_in(owned.signed_in.clone()).render(content).into_response())
}

async fn pieces_error(
    state: &AppState,
    owned: &Owned,
    status: StatusCode,
    error: PiecesError,
) -> Result<Response, WebError> {
    let content = render_pieces(state, owned, None, Some(error)).await?;
    Ok((status, Page::new("Mes pièces").signed_in(owned.signed_in.clone()).render(content)).into_response())
}

fn piece_code(text: &str) -> Result<PieceCode, WebError> {
    PieceCode::parse(text).map_err(|_| WebError::NotFound)
}

async fn upload(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, piece)): Path<(String, String)>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/pieces")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let code = piece_code(&piece)?;
    let too_large = || format!("Le fichier dépasse la taille maximale de {}.", describe_size(state.files.max_bytes));
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            "Le transfert du fichier a été interrompu ou le formulaire est mal formé.".to_owned()
        }
    };
    // The CSRF token comes first in the form, so nothing is stored for a forged request.
    let first = match multipart.next_field().await {
        Ok(field) => field,
        Err(e) => {
            return pieces_error(
                &state,
                &owned,
                StatusCode::BAD_REQUEST,
                PiecesError::Piece(code.to_string(), multipart_error(e)),
            )
            .await
        }
    };
    let token = match first {
        Some(field) if field.name() == Some("csrf") => field.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    visitor.check_csrf(&token)?;
    let field = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("fichier") => field,
        Ok(_) => {
            return pieces_error(
                &state,
                &owned,
                StatusCode::UNPROCESSABLE_ENTITY,
                PiecesError::Piece(
                    code.to_string(),
                    "Choisissez un fichier avant de cliquer sur « Ajouter le fichier ».".to_owned(),
                ),
            )
            .await
        }
        Err(e) => {
            return pieces_error(
                &state,
                &owned,
                StatusCode::BAD_REQUEST,
                PiecesError::Piece(code.to_string(), multipart_error(e)),
            )
            .await
        }
    };
    // Nothing is stored for a dossier that no longer takes pieces online.
    let current = status_of(&state, owned.account.dossier_id).await?;
    if !can_deposit(&current.status) && current.status != Status::Incomplete.code() {
        let message = "Ce dossier ne reçoit plus de pièces en ligne dans son état actuel.".to_owned();
        return pieces_error(&state, &owned, StatusCode::CONFLICT, PiecesError::Piece(code.to_string(), message)).await;
    }
    let filename = field.file_name().unwrap_or_default().to_owned();
    if filename.is_empty() {
        return pieces_error(
            &state,
            &owned,
            StatusCode::UNPROCESSABLE_ENTITY,
            PiecesError::Piece(
                code.to_string(),
                "Choisissez un fichier avant de cliquer sur « Ajouter le fichier ».".to_owned(),
            ),
        )
        .await;
    }
    let file = match state.files.put_stream(field, &filename).await {
        Ok(file) => file,
        Err(ApiError::Internal(cause)) => return Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => {
            return pieces_error(
                &state,
                &owned,
                error.status(),
                PiecesError::Piece(code.to_string(), error.to_string()),
            )
            .await
        }
    };
    let status = status_of(&state, owned.account.dossier_id).await?;
    let command = if status.status == Status::Incomplete.code() {
        DossierCommand::UploadMissingPiece { piece: code.clone(), file }
    } else {
        DossierCommand::UploadPiece { piece: code.clone(), file }
    };
    let dossier = DossierId::from_uuid(owned.account.dossier_id);
    match execute_dossier(&state, &caller_of(&owned.account), dossier, command, None, Uuid::new_v4()).await {
        Ok(_) => Ok(Redirect::to(&format!("/dossiers/{}/pieces?ajoute={code}#piece-{code}", owned.account.dossier_id))
            .into_response()),
        Err(ApiError::Internal(cause)) => Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => {
            pieces_error(&state, &owned, error.status(), PiecesError::Piece(code.to_string(), error.to_string())).await
        }
    }
}

async fn remove(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, piece)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?;
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/pieces")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let code = piece_code(&piece)?;
    let dossier = DossierId::from_uuid(owned.account.dossier_id);
    let command = DossierCommand::RemovePiece { piece: code.clone() };
    match execute_dossier(&state, &caller_of(&owned.account), dossier, command, None, Uuid::new_v4()).await {
        Ok(_) => Ok(Redirect::to(&format!("/dossiers/{}/pieces?retire={code}#piece-{code}", owned.account.dossier_id))
            .into_response()),
        Err(ApiError::Internal(cause)) => Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => {
            pieces_error(&state, &owned, error.status(), PiecesError::Piece(code.to_string(), error.to_string())).await
        }
    }
}

async fn download(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, piece)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/pieces")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let pieces = queries::dossier_pieces(&state.db, owned.account.dossier_id).await?;
    let row = pieces.into_iter().find(|p| p.code == piece).ok_or(WebError::NotFound)?;
    let (Some(sha256), Some(name)) = (row.sha256, row.filename) else { return Err(WebError::NotFound) };
    let bytes = state.files.read(&sha256).await?;
    let content_type = crate::files::content_type(row.media_type.as_deref());
    Ok(attachment(content_type, &name, bytes))
}

pub(crate) fn attachment(content_type: &str, filename: &str, bytes: Vec<u8>) -> Response {
    let ascii: String =
        filename.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", urlencode(filename)),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

async fn close(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?;
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/pieces")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let dossier = DossierId::from_uuid(owned.account.dossier_id);
    match execute_dossier(
        &state,
        &caller_of(&owned.account),
        dossier,
        DossierCommand::CloseRegistration,
        None,
        Uuid::new_v4(),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/dossiers/{}/recepisse", owned.account.dossier_id)).into_response()),
        Err(ApiError::Internal(cause)) => Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => pieces_error(&state, &owned, error.status(), PiecesError::Closure(error.to_string())).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Receipt and documents
// ---------------------------------------------------------------------------------------------

/// What the receipt states: when the registration was closed and the pieces deposited.
struct Receipt {
    closed_at: chrono::DateTime<Utc>,
    pieces: Vec<(String, String)>,
}

async fn receipt_of(state: &AppState, account: &CandidateAccount) -> Result<Receipt, WebError> {
    let (events, _) = load::<DossierEvent>(&*state.store, account.dossier_id).await.map_err(ApiError::from)?;
    let mut closure = None;
    let mut dossier = DossierState::default();
    for event in &events {
        dossier = dossier.evolve(event);
        if let DossierEvent::RegistrationClosed { closed_at, pieces, .. } = event {
            closure = Some((*closed_at, pieces.clone(), dossier.clone()));
        }
    }
    let (closed_at, codes, at_closure) = closure.ok_or(WebError::NotFound)?;
    let config = session_config(state, account.session_id).await?.map(|(c, _)| c);
    let pieces = codes
        .iter()
        .map(|code| {
            let label =
                config.as_ref().and_then(|c| c.piece(code)).map_or_else(|| code.to_string(), |p| p.label.clone());
            let file = at_closure
                .pieces
                .get(code)
                .and_then(|p| p.file.as_ref())
                .map(|f| f.filename.clone())
                .unwrap_or_default();
            (label, file)
        })
        .collect();
    Ok(Receipt { closed_at, pieces })
}

async fn receipt_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/recepisse")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let receipt = receipt_of(&state, &owned.account).await?;
    let id = owned.account.dossier_id;
    Ok(Page::new("Récépissé de dépôt")
        .signed_in(owned.signed_in.clone())
        .render(html! {
            p.notice role="status" { "Votre inscription a été clôturée le " (format_instant(receipt.closed_at)) "." }
            h2 { "Pièces déposées" }
            ul { @for (label, file) in &receipt.pieces { li { (label) " : " (file) } } }
            p { "Votre dossier reste « en attente » jusqu'à son transfert par le service concours, qui l'instruira ensuite." }
            p { a href={ "/dossiers/" (id) "/recepisse.pdf" } { "Télécharger le récépissé (PDF)" } }
            p { a href={ "/dossiers/" (id) } { "Retour à mon dossier" } }
        })
        .into_response())
}

async fn receipt_pdf(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}/recepisse")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let receipt = receipt_of(&state, &owned.account).await?;
    let config = session_config(&state, owned.account.session_id).await?.map(|(c, _)| c).ok_or(WebError::NotFound)?;
    let bytes = documents::deposit_receipt(&documents::DepositReceipt {
        organiser: config.organiser.clone(),
        session_title: config.title.clone(),
        user_code: owned.account.user_code.clone(),
        dossier_number: owned.account.dossier_id.to_string(),
        candidate_name: owned.account.identity.full_name(),
        closed_at: format!("le {}", format_instant(receipt.closed_at)),
        pieces: receipt.pieces.into_iter().map(|(label, value)| documents::Field { label, value }).collect(),
    });
    Ok(attachment("application/pdf", &format!("recepisse-{}.pdf", owned.account.user_code), bytes))
}

async fn registration_form_pdf(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
) -> Result<Response, WebError> {
    let owned = match owned(&state, &visitor, &dossier_id, &format!("/dossiers/{dossier_id}")).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let account = &owned.account;
    let (config, deadline) = session_config(&state, account.session_id).await?.ok_or(WebError::NotFound)?;
    let status = status_of(&state, account.dossier_id).await?;
    let field = |label: &str, value: String| documents::Field { label: label.to_owned(), value };
    let identity = &account.identity;
    let mut candidate = vec![
        field("Nom", identity.last_name.to_uppercase()),
        field("Prénom", identity.first_name.clone()),
        field("Date de naissance", format_date(identity.birth_date)),
        field("Adresse", identity.address.clone()),
        field("Courriel", identity.email.clone()),
        field("Téléphone", identity.phone.clone()),
    ];
    for q in &config.questions {
        candidate.push(field(&q.label, identity.answers.get(&q.code).cloned().unwrap_or_default()));
    }
    let bytes = documents::pre_registration_form(&documents::PreRegistrationForm {
        organiser: config.organiser.clone(),
        session_title: config.title.clone(),
        user_code: account.user_code.clone(),
        dossier_number: account.dossier_id.to_string(),
        registered_at: format!("le {}", format_instant(status.registered_at)),
        deadline: format_date(deadline),
        candidate,
        pieces: config
            .pieces
            .iter()
            .map(|p| documents::PieceLine {
                label: p.label.clone(),
                required: p.kind.is_required(),
                registration_form: p.kind == PieceKind::RegistrationForm,
            })
            .collect(),
    });
    Ok(attachment("application/pdf", &format!("dossier-de-preinscription-{}.pdf", account.user_code), bytes))
}
