//! The exam office's side (*bureau*): its own login, separate from the candidates', and the
//! pages every office account may read — auditors included, who read and never act: the
//! sessions and their statistics (now or at a past date), a dossier with its full history (both
//! times, actor, description, what the candidate read after each event), and the dossier as it
//! stood at a past instant.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use cachet_domain::dossier::{DossierEvent, DossierState};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{DossierId, SessionId};
use cachet_domain::time::{format_date, format_instant};
use cachet_projections::queries::{self, DossierStatus, Statistics};
use cachet_store::typed::load;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::accounts::{self, SessionUser, StaffAccount};
use crate::app::AppState;
use crate::audit::{dossier_as_of, dossier_history, statistics_as_of};
use crate::error::ApiError;
use crate::routes::audit::parse_at;
use crate::web::forms::{csrf, Errors, Input};
use crate::web::layout::{Page, SignedIn};
use crate::web::session::set_cookie;
use crate::web::{Visitor, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bureau/connexion", get(login_form).post(login))
        .route("/bureau", get(dashboard))
        .route("/bureau/recherche", get(search))
        .route("/bureau/sessions/{session_id}/statistiques", get(statistics_page))
        .route("/bureau/dossiers/{dossier_id}", get(dossier_page))
        .route("/bureau/dossiers/{dossier_id}/a-date", get(as_of_page))
}

pub fn role_label(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Staff => "agent du service concours",
        StaffRole::Auditor => "auditeur",
        StaffRole::Admin => "administrateur",
    }
}

/// The signed-in office account, or the way to the office login.
pub(crate) struct Office {
    pub(crate) account: StaffAccount,
    pub(crate) signed_in: Option<SignedIn>,
    pub(crate) csrf_token: String,
}

/// What every office action answers an auditor.
pub(crate) const READ_ONLY: &str = "Les auditeurs ont un accès en lecture seule : cette action leur est interdite.";

impl Office {
    /// The API caller this member acts as.
    pub(crate) fn caller(&self) -> crate::auth::Caller {
        crate::auth::Caller::Staff { account: self.account.account.clone(), role: self.account.role }
    }
}

/// The preamble of every office action: the form's CSRF token, the signed-in member, and a role
/// that may act (auditors are read-only, 403). `Ok(Err(response))` is the office login to go to.
pub(crate) async fn acting_office(
    state: &AppState,
    visitor: &Visitor,
    csrf_token: &str,
    back: &str,
) -> Result<Result<Office, Response>, WebError> {
    visitor.check_csrf(csrf_token)?;
    let office = match office(state, visitor, back).await {
        Ok(office) => office,
        Err(response) => return Ok(Err(response)),
    };
    if office.account.role == StaffRole::Auditor {
        return Err(WebError::Forbidden(READ_ONLY.to_owned()));
    }
    Ok(Ok(office))
}

pub(crate) async fn office(state: &AppState, visitor: &Visitor, back: &str) -> Result<Office, Response> {
    let Some(name) = visitor.staff() else {
        let back: String = back.chars().filter(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c)).collect();
        return Err(Redirect::to(&format!("/bureau/connexion?suite={back}")).into_response());
    };
    let account = match accounts::staff_by_account(&state.db, name).await {
        Ok(Some(account)) => account,
        Ok(None) => return Err(Redirect::to("/bureau/connexion").into_response()),
        Err(e) => return Err(WebError::from(e).into_response()),
    };
    let signed_in = visitor.session.as_ref().map(|s| SignedIn {
        label: format!("{} ({})", account.display_name, role_label(account.role)),
        home: "/bureau".to_owned(),
        csrf_token: s.csrf_token.clone(),
    });
    let csrf_token = visitor.session.as_ref().map(|s| s.csrf_token.clone()).unwrap_or_default();
    Ok(Office { account, signed_in, csrf_token })
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct Next {
    suite: Option<String>,
}

fn safe_next(next: &str) -> bool {
    next.starts_with("/bureau")
        && !next.contains("//")
        && next.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
}

fn render_login(account: &str, errors: &Errors, csrf_token: &str, next: &str) -> Markup {
    html! {
        p { "Réservé aux agents du service concours, aux auditeurs et aux administrateurs. Les candidats se connectent à leur "
            a href="/connexion" { "espace sécurisé" } "." }
        (errors.summary())
        form method="post" action="/bureau/connexion" novalidate {
            (csrf(csrf_token))
            input type="hidden" name="suite" value=(next);
            (Input { name: "compte", label: "Compte", kind: "text", value: account, hint: None, required: true, autocomplete: Some("username") }.render(errors))
            (Input { name: "mot_de_passe", label: "Mot de passe", kind: "password", value: "", hint: None, required: true, autocomplete: Some("current-password") }.render(errors))
            button type="submit" { "Se connecter" }
        }
    }
}

async fn login_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(next): Query<Next>,
) -> Result<Response, WebError> {
    let (session, jar) = visitor.ensure(&state).await?;
    let next = next.suite.filter(|s| safe_next(s)).unwrap_or_default();
    let page = Page::new("Service concours").render(render_login("", &Errors::default(), &session.csrf_token, &next));
    Ok(match jar {
        Some(jar) => (jar, page).into_response(),
        None => page.into_response(),
    })
}

async fn login(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values: BTreeMap<String, String> = fields.into_iter().collect();
    let session = visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?.clone();
    let name = values.get("compte").map(|c| c.trim().to_owned()).unwrap_or_default();
    let password = values.get("mot_de_passe").cloned().unwrap_or_default();
    let next = values.get("suite").cloned().filter(|s| safe_next(s)).unwrap_or_default();
    let now = Utc::now();
    let keys = [format!("personnel:{name}"), format!("adresse:{}", visitor.address)];
    let refuse = |message: String| {
        let mut errors = Errors::default();
        errors.add("compte", message);
        let page = Page::new("Service concours").render(render_login(&name, &errors, &session.csrf_token, &next));
        (StatusCode::UNAUTHORIZED, page).into_response()
    };
    if let Some(minutes) = accounts::locked_for(&state.db, &keys, now).await? {
        return Ok(refuse(format!(
            "Trop de tentatives de connexion infructueuses. Par sécurité, réessayez dans {minutes} minute{}.",
            if minutes > 1 { "s" } else { "" }
        )));
    }
    let account = if accounts::check_account_name(&name).is_ok() {
        accounts::staff_by_account(&state.db, &name).await?
    } else {
        None
    };
    if !accounts::verify_password(account.as_ref().map(|a| a.password_hash.clone()), password).await {
        accounts::record_failure(&state.db, &keys, now).await?;
        return Ok(refuse("Compte ou mot de passe incorrect.".to_owned()));
    }
    let Some(account) = account else { return Ok(refuse("Compte ou mot de passe incorrect.".to_owned())) };
    accounts::clear_failures(&state.db, &keys[0]).await?;
    accounts::close_session(&state.db, &session.token, now).await?;
    let signed = accounts::open_session(&state.db, SessionUser::Staff { account: account.account }, now).await?;
    let target = if next.is_empty() { "/bureau".to_owned() } else { next };
    Ok((set_cookie(&state, &signed.token), Redirect::to(&target)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Dashboard, search, statistics
// ---------------------------------------------------------------------------------------------

async fn dashboard(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    let office = match office(&state, &visitor, "/bureau").await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let sessions = crate::web::candidate::sessions(&state).await?;
    Ok(Page::new("Service concours")
        .signed_in(office.signed_in.clone())
        .render(html! {
            @if office.account.role == StaffRole::Auditor {
                p.notice { "Accès auditeur : consultation seule. L'historique de chaque dossier, son état à une date passée et les statistiques d'une session à une date sont consultables ici." }
            }
            h2 { "Rechercher un dossier" }
            form method="get" action="/bureau/recherche" {
                label for="q" { "Code utilisateur ou numéro de dossier" }
                input type="text" id="q" name="q" required;
                button type="submit" { "Rechercher" }
            }
            h2 { "Sessions" }
            ul {
                @for s in &sessions {
                    li { a href={ "/bureau/sessions/" (s.id) } { strong { (s.title) } } " – date limite le " (format_date(s.deadline)) " – "
                        a href={ "/bureau/sessions/" (s.id) "/statistiques" } { "statistiques" span.visually-hidden { " : " (s.title) } } }
                }
            }
            h2 { "Courriels" }
            p { a href="/bureau/courriels" { "Courriels aux candidats : en attente, en échec, envoyés" } }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let office = match office(&state, &visitor, "/bureau").await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let q = query.q.unwrap_or_default().trim().to_owned();
    let found = match Uuid::parse_str(&q) {
        Ok(id) => queries::dossier_status(&state.db, id).await?,
        Err(_) => queries::dossier_by_user_code(&state.db, &q.to_uppercase()).await?,
    };
    match found {
        Some(dossier) => Ok(Redirect::to(&format!("/bureau/dossiers/{}", dossier.dossier_id)).into_response()),
        None => Ok((
            StatusCode::NOT_FOUND,
            Page::new("Rechercher un dossier").signed_in(office.signed_in.clone()).render(html! {
                p role="alert" { "Aucun dossier ne correspond à « " (q) " »." }
                p { a href="/bureau" { "Retour au tableau de bord" } }
            }),
        )
            .into_response()),
    }
}

#[derive(Deserialize, Default)]
struct DateQuery {
    date: Option<String>,
}

fn statistics_table(stats: &Statistics) -> Markup {
    let label = |code: &str| {
        cachet_domain::dossier::Status::from_code(code).map_or_else(|| code.to_owned(), |s| s.label().to_owned())
    };
    html! {
        p { "Dossiers : " strong { (stats.total) } }
        table {
            caption { "Par état" }
            thead { tr { th scope="col" { "État" } th scope="col" { "Dossiers" } } }
            tbody { @for (code, n) in &stats.by_status { tr { th scope="row" { (label(code)) } td { (n) } } } }
        }
        table {
            caption { "Par canal de dépôt" }
            thead { tr { th scope="col" { "Canal" } th scope="col" { "Dossiers" } } }
            tbody { @for (code, n) in &stats.by_channel { tr { th scope="row" { (code) } td { (n) } } } }
        }
        table {
            caption { "Rejets par motif" }
            thead { tr { th scope="col" { "Motif" } th scope="col" { "Dossiers" } } }
            tbody { @for (code, n) in &stats.by_rejection { tr { th scope="row" { (code) } td { (n) } } } }
        }
    }
}

async fn statistics_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Query(query): Query<DateQuery>,
) -> Result<Response, WebError> {
    let back = format!("/bureau/sessions/{session_id}/statistiques");
    let office = match office(&state, &visitor, &back).await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let id = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let summary = queries::session(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let date = query.date.unwrap_or_default();
    let mut errors = Errors::default();
    let (heading, stats) = if date.trim().is_empty() {
        ("Aujourd'hui".to_owned(), queries::statistics(&state.db, id).await?)
    } else {
        match parse_at(date.trim()) {
            Ok(at) => (
                format!("Au {}", format_instant(at)),
                statistics_as_of(&*state.store, SessionId::from_uuid(id), at).await?,
            ),
            Err(e) => {
                errors.add("date", e.to_string());
                ("Aujourd'hui".to_owned(), queries::statistics(&state.db, id).await?)
            }
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = Page::new("Statistiques de la session").signed_in(office.signed_in.clone()).render(html! {
        p { strong { (summary.title) } }
        form method="get" action=(back) {
            (Input { name: "date", label: "Statistiques à une date passée", kind: "text", value: &date, hint: Some("AAAA-MM-JJ (fin de cette journée, heure de Paris) ou AAAA-MM-JJTHH:MM:SS+02:00."), required: false, autocomplete: None }.render(&errors))
            button type="submit" { "Afficher" }
        }
        h2 { (heading) }
        (statistics_table(&stats))
    });
    Ok((status, page).into_response())
}

// ---------------------------------------------------------------------------------------------
// A dossier and its history
// ---------------------------------------------------------------------------------------------

fn status_block(status: &DossierStatus) -> Markup {
    html! {
        dl {
            dt { "Code utilisateur" } dd { (status.user_code) }
            dt { "État" } dd { (status.status_label) }
            dt { "Message affiché au candidat" } dd { (status.message) }
            @if !status.missing.is_empty() {
                dt { "Pièces manquantes" } dd { ul { @for m in &status.missing { li { (m) } } } }
            }
            @if let Some(deposit) = &status.deposit { dt { "Dépôt" } dd { (deposit.channel_label) " : " (deposit.explanation) } }
        }
    }
}

#[derive(Deserialize, Default)]
struct DossierQuery {
    fait: Option<String>,
}

fn done_label(action: &str) -> Option<&'static str> {
    Some(match action {
        "reception-postale" => "Réception postale enregistrée.",
        "reception-accueil" => "Dépôt à l'accueil enregistré.",
        "refus-de-forme" => "Refus enregistré.",
        "transfert" => "Dossier transféré.",
        "examen" => "Examen de la pièce enregistré.",
        "conclusion" => "Instruction conclue.",
        "piece-recue" => "Pièce reçue enregistrée.",
        "rejet" => "Dossier rejeté.",
        "convocation-retenue" => "Convocation retenue.",
        _ => return None,
    })
}

async fn render_dossier(
    state: &AppState,
    office: &Office,
    id: Uuid,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let status = queries::dossier_status(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let history = dossier_history(&*state.store, DossierId::from_uuid(id)).await?.ok_or(WebError::NotFound)?;
    let candidate = accounts::candidate_by_dossier(&state.db, id).await?;
    let pieces = queries::dossier_pieces(&state.db, id).await?;
    let may_act = crate::web::desk::may_act_account(&office.account);
    let config = crate::convocations::session_config(state, SessionId::from_uuid(status.session_id)).await?;
    let (events, _) = load::<DossierEvent>(&*state.store, id).await.map_err(ApiError::from)?;
    let lines = crate::convocations::lines(&config, &DossierState::fold(&events));
    let complete = status.status == cachet_domain::dossier::Status::Complete.code();
    let convocation_section =
        crate::web::convocations::dossier_section(id, &lines, complete, may_act, &office.csrf_token);
    Ok(html! {
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if let Some(error) = error { div.error-summary role="alert" { p { "Action refusée : " (error) } } }
        @if let Some(candidate) = &candidate {
            p { strong { (candidate.identity.full_name()) } ", né(e) le " (format_date(candidate.identity.birth_date)) }
            p { (candidate.identity.address) " – " (candidate.identity.email) " – " (candidate.identity.phone) }
        }
        (status_block(&status))
        p { a href={ "/bureau/sessions/" (status.session_id) } { "Retour à la session" } }
        (crate::web::desk::pieces_table(id, &pieces))
        @if may_act { (crate::web::desk::action_forms(id, &status.status, &pieces, &office.csrf_token)) }
        (convocation_section)
        form method="get" action={ "/bureau/dossiers/" (id) "/a-date" } {
            (Input { name: "instant", label: "État du dossier à un instant passé", kind: "text", value: "", hint: Some("AAAA-MM-JJ (fin de cette journée, heure de Paris) ou AAAA-MM-JJTHH:MM:SS+02:00."), required: true, autocomplete: None }.render(&Errors::default()))
            button type="submit" { "Afficher" }
        }
        h2 { "Historique" }
        table {
            caption.visually-hidden { "Historique du dossier, dans l'ordre" }
            thead { tr {
                th scope="col" { "N°" } th scope="col" { "Survenu le" } th scope="col" { "Enregistré le" }
                th scope="col" { "Auteur" } th scope="col" { "Événement" } th scope="col" { "Message affiché ensuite au candidat" }
            } }
            tbody {
                @for entry in &history {
                    tr {
                        td { (entry.version) }
                        td { (format_instant(entry.occurred_at)) }
                        td { (format_instant(entry.recorded_at)) }
                        td { (entry.actor) }
                        td { (entry.description) }
                        td { (entry.message) @if !entry.missing.is_empty() { " : " (entry.missing.join(", ")) } }
                    }
                }
            }
        }
    })
}

/// The dossier page with an action's refusal shown at the top.
pub(crate) async fn dossier_with_error(
    state: &AppState,
    office: &Office,
    id: Uuid,
    status: StatusCode,
    message: &str,
) -> Result<Response, WebError> {
    let content = render_dossier(state, office, id, None, Some(message)).await?;
    Ok((status, Page::new("Dossier").signed_in(office.signed_in.clone()).render(content)).into_response())
}

async fn dossier_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
    Query(query): Query<DossierQuery>,
) -> Result<Response, WebError> {
    let office = match office(&state, &visitor, &format!("/bureau/dossiers/{dossier_id}")).await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let id = Uuid::parse_str(&dossier_id).map_err(|_| WebError::NotFound)?;
    let notice = query.fait.as_deref().and_then(done_label);
    let content = render_dossier(&state, &office, id, notice, None).await?;
    Ok(Page::new("Dossier").signed_in(office.signed_in.clone()).render(content).into_response())
}

#[derive(Deserialize, Default)]
struct InstantQuery {
    instant: Option<String>,
}

async fn as_of_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(dossier_id): Path<String>,
    Query(query): Query<InstantQuery>,
) -> Result<Response, WebError> {
    let office = match office(&state, &visitor, &format!("/bureau/dossiers/{dossier_id}")).await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let id = Uuid::parse_str(&dossier_id).map_err(|_| WebError::NotFound)?;
    queries::dossier_status(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let text = query.instant.unwrap_or_default();
    let mut errors = Errors::default();
    let answer = match parse_at(text.trim()) {
        Ok(at) => Some((at, dossier_as_of(&*state.store, DossierId::from_uuid(id), at).await?)),
        Err(e) => {
            errors.add("instant", e.to_string());
            None
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = Page::new("État du dossier à une date").signed_in(office.signed_in.clone()).render(html! {
        form method="get" action={ "/bureau/dossiers/" (id) "/a-date" } {
            (Input { name: "instant", label: "Instant", kind: "text", value: &text, hint: Some("AAAA-MM-JJ (fin de cette journée, heure de Paris) ou AAAA-MM-JJTHH:MM:SS+02:00."), required: true, autocomplete: None }.render(&errors))
            button type="submit" { "Afficher" }
        }
        @if let Some((at, found)) = &answer {
            h2 { "Au " (format_instant(*at)) }
            @match found {
                Some(status) => (status_block(status)),
                None => p { "Le dossier n'existait pas encore à cet instant." },
            }
        }
        p { a href={ "/bureau/dossiers/" (id) } { "Retour au dossier" } }
    });
    Ok((status, page).into_response())
}
