//! The exam office's desk: a session's work queues (counts, search by name, code utilisateur or
//! dossier number, sort, pagination), transfers one at a time or in bulk, and on a dossier the
//! actions its state allows — postal and counter receipts, refused intake, transfer, review
//! piece by piece, conclusion, missing pieces received on paper, rejection. Every action is the
//! same domain command as the API's, recorded with the acting account. Auditors see no action,
//! and a forged one is refused.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use cachet_domain::dossier::{DossierCommand, PaperDelivery, PieceReview, RefusedForm, Status, TransmissionIncident};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{DossierId, PieceCode, SessionId};
use cachet_domain::time::{format_instant, paris_to_utc};
use cachet_projections::dossiers::STATUS;
use cachet_projections::queries::{self, PageScan, PieceRow, Queue};
use chrono::{NaiveDate, NaiveTime};
use maud::{html, Markup};
use serde::Deserialize;
use sqlx::Row;
use uuid::Uuid;

use crate::accounts;
use crate::app::AppState;
use crate::error::ApiError;
use crate::service::{self, execute_dossier};
use crate::web::forms::csrf;
use crate::web::layout::Page;
use crate::web::office::{acting_office, office, Office};
use crate::web::{Visitor, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bureau/sessions/{session_id}", get(session_page))
        .route("/bureau/sessions/{session_id}/transferts", post(bulk_transfer))
        .route("/bureau/sessions/{session_id}/cloture-des-depots", post(close_deposits))
        .route("/bureau/sessions/{session_id}/prolongation", get(extension_form).post(extension))
        .route("/bureau/dossiers/{dossier_id}/actions/{action}", post(act))
        .route("/bureau/dossiers/{dossier_id}/pieces/{piece}/fichier", get(download))
        .route("/bureau/dossiers/{dossier_id}/pieces/{piece}/apercu", get(preview))
}

const PER_PAGE: i64 = 50;

fn may_act(office: &Office) -> bool {
    office.account.role != StaffRole::Auditor
}

pub(crate) fn form_values(fields: Vec<(String, String)>) -> BTreeMap<String, String> {
    fields.into_iter().collect()
}

fn queue_label(queue: Queue) -> &'static str {
    match queue {
        Queue::ToTransfer => "À transférer",
        Queue::ToReview => "À instruire",
        Queue::Incomplete => "Incomplets",
        Queue::Complete => "Complets",
        Queue::Rejected => "Rejetés",
        Queue::Lapsed => "Non parvenus",
        Queue::AwaitingDeposit => "En attente de dépôt",
        Queue::Withdrawn => "Désistements",
    }
}

// ---------------------------------------------------------------------------------------------
// A session's queues
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct QueueQuery {
    file: Option<String>,
    page: Option<i64>,
    q: Option<String>,
    tri: Option<String>,
    fait: Option<String>,
}

struct Line {
    dossier_id: String,
    user_code: String,
    name: String,
    status: String,
    registered_at_us: i64,
}

/// One page of a queue, or of a search across the session: by code utilisateur, dossier number
/// or the start of the first or last name (accents and case ignored).
///
/// Each part is served by an index: a queue (counted by `dossier_counts`) by `(session_id,
/// status, registered_at_us, dossier_id)`, whose page is picked on the index alone before the
/// rows are read; a search by
/// the equality indexes on the code and the dossier number and by a range of the per-session name
/// keys (`accounts::name_key`), so its cost follows the number of hits, not the session's size.
/// Beyond this many hits a search says « plus de 1 000 » and serves its first pages only.
const SEARCH_CAP: i64 = 1000;

async fn fetch_count(db: &sqlx::AnyPool, sql: &str, binds: &[String]) -> Result<i64, ApiError> {
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(b.clone());
    }
    let db_error = |e| ApiError::internal("count a queue", e);
    query.fetch_one(db).await.map_err(db_error)?.try_get("n").map_err(db_error)
}

async fn lines(
    state: &AppState,
    session: Uuid,
    queue: Option<Queue>,
    search: &str,
    newest_first: bool,
    page: i64,
    queue_total: i64,
) -> Result<(i64, Vec<Line>), ApiError> {
    let db_error = |e| ApiError::internal("read a queue", e);
    let order = if newest_first { "DESC" } else { "ASC" };
    let offset = (page.clamp(1, 1_000_000) - 1).saturating_mul(PER_PAGE);
    let mut binds: Vec<String> = vec![session.to_string()];
    let mut total: i64;
    let hits = if search.is_empty() {
        let queue = queue.unwrap_or(Queue::ToTransfer);
        binds.push(queue.status().code().to_owned());
        format!("SELECT dossier_id, registered_at_us FROM {STATUS} WHERE session_id = $1 AND status = $2")
    } else {
        let (from, to) = accounts::prefix_range(search);
        let (from, to) = if from.is_empty() { (String::new(), String::new()) } else { (from, to) };
        binds.extend([search.to_uppercase(), search.to_lowercase(), from, to]);
        format!(
            "SELECT dossier_id FROM {STATUS} WHERE session_id = $1 AND user_code = $2 \
             UNION SELECT dossier_id FROM {STATUS} WHERE session_id = $1 AND dossier_id = $3 \
             UNION SELECT dossier_id FROM candidate_accounts WHERE session_id = $1 AND last_name_key >= $4 AND last_name_key < $5 \
             UNION SELECT dossier_id FROM candidate_accounts WHERE session_id = $1 AND first_name_key >= $4 AND first_name_key < $5"
        )
    };
    let db = &state.db.pool;
    let page_sql = if search.is_empty() {
        total = queue_total;
        // Read from the nearer end of the queue; the final ORDER BY puts the page back in the
        // order asked for.
        let PageScan { reversed, limit, skip } = PageScan::of(total, offset, PER_PAGE);
        let scan = if reversed == newest_first { "ASC" } else { "DESC" };
        format!(
            "SELECT p.dossier_id FROM ({hits} ORDER BY registered_at_us {scan}, dossier_id {scan} \
             LIMIT {limit} OFFSET {skip}) p"
        )
    } else {
        // Count the hits up to a cap: a search that matches a good part of the session (a common
        // first name) is not sorted whole, but read in the session's order until a page is full.
        let capped = format!(
            "SELECT COUNT(*) AS n FROM ({} LIMIT {}) h",
            hits.replace(" UNION ", " UNION ALL "),
            SEARCH_CAP + 1
        );
        total = fetch_count(db, &capped, &binds).await?;
        if total <= SEARCH_CAP {
            total = fetch_count(db, &format!("SELECT COUNT(*) AS n FROM ({hits}) h"), &binds).await?;
            format!(
                "SELECT h.dossier_id FROM ({hits}) h JOIN {STATUS} r ON r.dossier_id = h.dossier_id \
                 ORDER BY r.registered_at_us {order}, r.dossier_id {order} LIMIT {PER_PAGE} OFFSET {offset}"
            )
        } else {
            format!(
                "SELECT r.dossier_id FROM {STATUS} r LEFT JOIN candidate_accounts c ON c.dossier_id = r.dossier_id \
                 WHERE r.session_id = $1 AND (r.user_code = $2 OR r.dossier_id = $3 \
                 OR (c.last_name_key >= $4 AND c.last_name_key < $5) OR (c.first_name_key >= $4 AND c.first_name_key < $5)) \
                 ORDER BY r.registered_at_us {order}, r.dossier_id {order} LIMIT {PER_PAGE} OFFSET {offset}"
            )
        }
    };
    let select_sql = format!(
        "SELECT s.dossier_id, s.user_code, s.status, s.registered_at_us, a.last_name, a.first_name \
         FROM ({page_sql}) pg JOIN {STATUS} s ON s.dossier_id = pg.dossier_id \
         LEFT JOIN candidate_accounts a ON a.dossier_id = s.dossier_id \
         ORDER BY s.registered_at_us {order}, s.dossier_id {order}"
    );
    let mut select = sqlx::query(&select_sql);
    for b in &binds {
        select = select.bind(b.clone());
    }
    let rows = select.fetch_all(&state.db.pool).await.map_err(db_error)?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let last: Option<String> = row.try_get("last_name").map_err(db_error)?;
        let first: Option<String> = row.try_get("first_name").map_err(db_error)?;
        lines.push(Line {
            dossier_id: row.try_get("dossier_id").map_err(db_error)?,
            user_code: row.try_get("user_code").map_err(db_error)?,
            name: match (first, last) {
                (Some(f), Some(l)) => format!("{} {f}", l.to_uppercase()),
                _ => String::new(),
            },
            status: row.try_get("status").map_err(db_error)?,
            registered_at_us: row.try_get("registered_at_us").map_err(db_error)?,
        });
    }
    Ok((total, lines))
}

async fn session_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Result<Response, WebError> {
    let here = format!("/bureau/sessions/{session_id}");
    let office = match office(&state, &visitor, &here).await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let id = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let summary = queries::session(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let by_status = queries::status_counts(&state.db, id).await?;
    let search = query.q.clone().unwrap_or_default().trim().chars().take(100).collect::<String>();
    let queue = if search.is_empty() {
        Some(Queue::ALL.into_iter().find(|q| Some(q.code()) == query.file.as_deref()).unwrap_or(Queue::ToTransfer))
    } else {
        None
    };
    let newest_first = query.tri.as_deref() == Some("recents");
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let count = |q: Queue| by_status.get(q.status().code()).copied().unwrap_or(0);
    let (total, lines) = lines(&state, id, queue, &search, newest_first, page, queue.map_or(0, count)).await?;
    let capped = !search.is_empty() && total > SEARCH_CAP;
    // A queue pages through all its dossiers; a search through its first SEARCH_CAP hits.
    let listed = if search.is_empty() { total } else { total.min(SEARCH_CAP) };
    let pages = ((listed + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |file: Option<Queue>, page: i64, tri: bool| {
        let mut url = format!("{here}?page={page}");
        if let Some(q) = file {
            url.push_str(&format!("&file={}", q.code()));
        }
        if !search.is_empty() {
            url.push_str(&format!("&q={}", search.replace(['&', '#', '?', ' '], "+")));
        }
        if tri {
            url.push_str("&tri=recents");
        }
        url
    };
    let bulk = queue == Some(Queue::ToTransfer) && may_act(&office) && !lines.is_empty();
    let csrf_token = visitor.session.as_ref().map(|s| s.csrf_token.clone()).unwrap_or_default();
    let notice = query.fait.as_deref().map(|f| f.replace('-', " "));
    Ok(Page::new("Tableau de bord de la session")
        .signed_in(office.signed_in.clone())
        .render(html! {
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            p { strong { (summary.title) } " – date limite de dépôt le " (summary.deadline.split('-').rev().collect::<Vec<_>>().join("/")) }
            nav aria-label="Files de travail" {
                ul {
                    @for q in [Queue::ToTransfer, Queue::ToReview, Queue::Incomplete, Queue::Complete, Queue::Rejected, Queue::Lapsed, Queue::AwaitingDeposit, Queue::Withdrawn] {
                        li {
                            @if Some(q) == queue { strong aria-current="page" { (queue_label(q)) " (" (count(q)) ")" } }
                            @else { a href=(link(Some(q), 1, false)) { (queue_label(q)) " (" (count(q)) ")" } }
                        }
                    }
                }
            }
            form method="get" action=(here) {
                label for="q" { "Rechercher dans la session" span.hint { "Nom, début du nom, code utilisateur ou numéro de dossier." } }
                input type="text" id="q" name="q" value=(search);
                button type="submit" { "Rechercher" }
            }
            h2 {
                @if let Some(q) = queue { (queue_label(q)) } @else { "Résultats de la recherche" } " : "
                @if capped { "plus de " (crate::import::format_count(SEARCH_CAP as usize)) " dossiers" } @else { (total) " dossier(s)" }
            }
            @if capped { p.hint { "Seuls les " (crate::import::format_count(SEARCH_CAP as usize)) " premiers sont affichés : précisez la recherche (nom complet, code utilisateur ou numéro de dossier)." } }
            p {
                "Tri : "
                @if newest_first { a href=(link(queue, 1, false)) { "plus anciennes préinscriptions d'abord" } " | plus récentes d'abord" }
                @else { "plus anciennes préinscriptions d'abord | " a href=(link(queue, 1, true)) { "plus récentes d'abord" } }
            }
            form method="post" action={ (here) "/transferts" } {
                (csrf(&csrf_token))
                table {
                    thead { tr {
                        @if bulk { th scope="col" { span.visually-hidden { "Sélection" } } }
                        th scope="col" { "Code utilisateur" } th scope="col" { "Candidat" } th scope="col" { "État" } th scope="col" { "Préinscription" }
                    } }
                    tbody {
                        @for line in &lines {
                            tr {
                                @if bulk {
                                    td { input type="checkbox" id={ "d-" (line.dossier_id) } name="dossier" value=(line.dossier_id);
                                         label.visually-hidden for={ "d-" (line.dossier_id) } { "Sélectionner " (line.user_code) } }
                                }
                                td { a href={ "/bureau/dossiers/" (line.dossier_id) } { (line.user_code) } }
                                td { (line.name) }
                                td { (Status::from_code(&line.status).map_or(line.status.as_str(), |s| s.label())) }
                                td { (chrono::DateTime::from_timestamp_micros(line.registered_at_us).map(format_instant).unwrap_or_default()) }
                            }
                        }
                    }
                }
                @if bulk { button type="submit" { "Transférer la sélection" } }
            }
            @if pages > 1 {
                nav aria-label="Pages" {
                    "Page " (page) " sur " (pages) " "
                    @if page > 1 { a href=(link(queue, page - 1, newest_first)) { "Page précédente" } " " }
                    @if page < pages { a href=(link(queue, page + 1, newest_first)) { "Page suivante" } }
                }
            }
            @if office.account.role == StaffRole::Admin {
                p { a href={ (here) "/prolongation" } { "Prolonger la date limite" } }
            }
            @if let Ok(config) = serde_json::from_value::<cachet_domain::session::SessionConfig>(summary.config.clone()) {
                (crate::web::convocations::session_section(id, &config, may_act(&office), &csrf_token))
            }
            @if may_act(&office) {
                p { a href={ (here) "/import-courrier" } { "Importer le courrier du jour (fichier CSV)" } }
                h2 { "Après la date limite" }
                form method="post" action={ (here) "/cloture-des-depots" } {
                    (csrf(&csrf_token))
                    p.hint { "Déclare non parvenus les dossiers préinscrits sans aucun dépôt. Sans effet avant la date limite ; sans risque si l'opération est répétée." }
                    button type="submit" { "Clore les dépôts" }
                }
            }
            p { a href={ "/bureau/sessions/" (id) "/statistiques" } { "Statistiques de la session" } }
        })
        .into_response())
}

async fn bulk_transfer(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let here = format!("/bureau/sessions/{session_id}");
    let token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.clone()).unwrap_or_default();
    let office = match acting_office(&state, &visitor, &token, &here).await? {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let session = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let mut done = 0;
    let mut refused = Vec::new();
    for (_, value) in fields.iter().filter(|(k, _)| k == "dossier") {
        let Ok(id) = Uuid::parse_str(value) else { continue };
        // Only this session's dossiers.
        match queries::dossier_status(&state.db, id).await? {
            Some(status) if status.session_id == session => {}
            _ => continue,
        }
        match execute_dossier(
            &state,
            &office.caller(),
            DossierId::from_uuid(id),
            DossierCommand::Transfer,
            None,
            Uuid::new_v4(),
        )
        .await
        {
            Ok(_) => done += 1,
            Err(ApiError::Internal(cause)) => return Err(WebError::Api(ApiError::Internal(cause))),
            Err(error) => refused.push(error.to_string()),
        }
    }
    let mut notice = format!("{done}-dossier(s)-transféré(s)");
    if !refused.is_empty() {
        notice.push_str(&format!(",-{}-refusé(s)", refused.len()));
    }
    Ok(Redirect::to(&format!("{here}?file=to_transfer&fait={notice}")).into_response())
}

async fn close_deposits(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let here = format!("/bureau/sessions/{session_id}");
    let values = form_values(fields);
    let token = values.get("csrf").map(String::as_str).unwrap_or_default();
    let office = match acting_office(&state, &visitor, token, &here).await? {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let session = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    match service::close_deposits(&state, &office.caller(), SessionId::from_uuid(session)).await {
        Ok(report) => {
            Ok(Redirect::to(&format!("{here}?file=lapsed&fait={}-dossier(s)-déclaré(s)-non-parvenu(s)", report.lapsed))
                .into_response())
        }
        Err(ApiError::Internal(cause)) => Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => Err(WebError::Api(error)),
    }
}

// ---------------------------------------------------------------------------------------------
// Extending the deadline (administrators), after seeing what it would change
// ---------------------------------------------------------------------------------------------

const ADMIN_ONLY: &str = "Cette action est réservée aux administrateurs.";

fn extension_fields(date: &str, reason: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error { p.field-error id="prolongation-erreur" role="alert" { "Erreur : " (error) } }
        label for="date" { "Nouvelle date limite" span.hint { "JJ/MM/AAAA, postérieure à la date limite actuelle." } }
        input type="date" id="date" name="date" value=(date) required aria-describedby=[error.map(|_| "prolongation-erreur")];
        label for="motif" { "Motif de la décision" span.hint { "Par exemple : grève des services postaux." } }
        input type="text" id="motif" name="motif" value=(reason) required;
    }
}

async fn extension_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
) -> Result<Response, WebError> {
    let here = format!("/bureau/sessions/{session_id}/prolongation");
    let office = match office(&state, &visitor, &here).await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    if office.account.role != StaffRole::Admin {
        return Err(WebError::Forbidden(ADMIN_ONLY.to_owned()));
    }
    let id = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let summary = queries::session(&state.db, id).await?.ok_or(WebError::NotFound)?;
    Ok(Page::new("Prolonger la date limite")
        .signed_in(office.signed_in.clone())
        .render(html! {
            p { strong { (summary.title) } " – date limite actuelle : " (summary.deadline) }
            p { "Les décisions déjà prises restent acquises. Avant d'enregistrer la prolongation, la liste des dossiers dont le verdict changerait s'affiche." }
            form method="post" action=(here) {
                (csrf(&office.csrf_token))
                input type="hidden" name="etape" value="apercu";
                (extension_fields("", "", None))
                button type="submit" { "Voir les dossiers concernés" }
            }
        })
        .into_response())
}

async fn extension(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values = form_values(fields);
    visitor.check_csrf(values.get("csrf").map(String::as_str).unwrap_or_default())?;
    let here = format!("/bureau/sessions/{session_id}/prolongation");
    let office = match office(&state, &visitor, &here).await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    if office.account.role != StaffRole::Admin {
        return Err(WebError::Forbidden(ADMIN_ONLY.to_owned()));
    }
    let id = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let summary = queries::session(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let raw_date = values.get("date").cloned().unwrap_or_default();
    let reason = values.get("motif").map(|r| r.trim().to_owned()).unwrap_or_default();
    let page = |status: StatusCode, content: Markup| {
        (status, Page::new("Prolonger la date limite").signed_in(office.signed_in.clone()).render(content))
            .into_response()
    };
    let form_again = |error: &str| {
        html! {
            p { strong { (summary.title) } }
            form method="post" action=(here) {
                (csrf(&office.csrf_token))
                input type="hidden" name="etape" value="apercu";
                (extension_fields(&raw_date, &reason, Some(error)))
                button type="submit" { "Voir les dossiers concernés" }
            }
        }
    };
    let new_deadline = match date(&values, "date", "Nouvelle date limite") {
        Ok(d) => d,
        Err(message) => return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, form_again(&message))),
    };
    if values.get("etape").map(String::as_str) == Some("confirmer") {
        let command = cachet_domain::session::SessionCommand::ExtendDeadline { new_deadline, reason: reason.clone() };
        return match service::execute_session(
            &state,
            &office.caller(),
            SessionId::from_uuid(id),
            command,
            Uuid::new_v4(),
        )
        .await
        {
            Ok(_) => Ok(Redirect::to(&format!(
                "/bureau/sessions/{id}?fait=Date-limite-prolongée-au-{}",
                cachet_domain::time::format_date(new_deadline).replace('/', "%2F")
            ))
            .into_response()),
            Err(ApiError::Internal(cause)) => Err(WebError::Api(ApiError::Internal(cause))),
            Err(error) => Ok(page(error.status(), form_again(&error.to_string()))),
        };
    }
    // The preview: every rejected or lapsed dossier the new date would bear on.
    let rows = sqlx::query(&format!(
        "SELECT dossier_id, user_code FROM {STATUS} WHERE session_id = $1 AND status IN ('rejected', 'lapsed') ORDER BY user_code"
    ))
    .bind(id.to_string())
    .fetch_all(&state.db.pool)
    .await
    .map_err(|e| ApiError::internal("list the dossiers an extension bears on", e))?;
    let mut effects = Vec::new();
    for row in rows {
        let dossier: String = row.try_get("dossier_id").map_err(|e| ApiError::internal("read", e))?;
        let code: String = row.try_get("user_code").map_err(|e| ApiError::internal("read", e))?;
        let Ok(dossier) = Uuid::parse_str(&dossier) else { continue };
        let (events, _) = cachet_store::typed::load::<cachet_domain::dossier::DossierEvent>(&*state.store, dossier)
            .await
            .map_err(ApiError::from)?;
        if let Some(effect) = cachet_domain::dossier::DossierState::fold(&events).extension_effect(new_deadline) {
            effects.push((dossier, code, effect));
        }
    }
    use cachet_domain::dossier::ExtensionEffect;
    Ok(page(
        StatusCode::OK,
        html! {
            p { strong { (summary.title) } " – nouvelle date limite proposée : " (cachet_domain::time::format_date(new_deadline)) " – motif : " (reason) }
            h2 { "Dossiers dont le verdict changerait : " (effects.len()) }
            @if effects.is_empty() { p { "Aucun dossier déjà jugé ne serait concerné." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Code utilisateur" } th scope="col" { "Aujourd'hui" } th scope="col" { "Avec la nouvelle date limite" } } }
                    tbody {
                        @for (dossier, code, effect) in &effects {
                            tr {
                                td { a href={ "/bureau/dossiers/" (dossier) } { (code) } }
                                @match effect {
                                    ExtensionEffect::LateWouldBeOnTime { was, would_be } => {
                                        td { "Rejeté : " (was.explanation()) }
                                        td { (would_be.explanation()) " – la décision prise reste acquise, à réexaminer." }
                                    }
                                    ExtensionEffect::LapsedReopens => {
                                        td { "Non parvenu" }
                                        td { "Rouvert au dépôt en ligne jusqu'à la nouvelle date limite." }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action=(here) {
                (csrf(&office.csrf_token))
                input type="hidden" name="etape" value="confirmer";
                input type="hidden" name="date" value=(new_deadline.format("%Y-%m-%d").to_string());
                input type="hidden" name="motif" value=(reason);
                button type="submit" { "Enregistrer la prolongation" }
            }
            p { a href={ "/bureau/sessions/" (id) } { "Annuler" } }
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// A dossier's actions
// ---------------------------------------------------------------------------------------------

fn date_input(name: &str, label: &str) -> Markup {
    html! {
        label for=(name) { (label) span.hint { "JJ/MM/AAAA" } }
        input type="date" id=(name) name=(name) required;
    }
}

fn select(name: &str, label: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) { @for (value, text) in options { option value=(value) { (text) } } }
    }
}

const INCIDENTS: [(&str, &str); 4] = [
    ("", "aucun"),
    ("affranchissement-insuffisant", "affranchissement insuffisant"),
    ("endommage-ou-perdu", "dossier endommagé ou perdu"),
    ("greve-ou-retard", "grève ou retard d'acheminement"),
];

const FORMS: [(&str, &str); 5] = [
    ("telecopie", "transmis par télécopie"),
    ("courriel", "transmis par messagerie électronique"),
    ("photocopie", "photocopié"),
    ("capture", "capture d'écran"),
    ("converti", "converti dans un autre format et modifié"),
];

/// The action forms a dossier's state allows, for an account that may act.
pub fn action_forms(dossier: Uuid, status: &str, pieces: &[PieceRow], csrf_token: &str) -> Markup {
    let action = |name: &str| format!("/bureau/dossiers/{dossier}/actions/{name}");
    let status = Status::from_code(status).unwrap_or_default();
    html! {
        h2 { "Actions" }
        @if matches!(status, Status::PreRegistered | Status::Lapsed) {
            form method="post" action=(action("reception-postale")) {
                (csrf(csrf_token))
                fieldset { legend { "Réception par courrier" }
                    (date_input("cachet", "Date du cachet de la poste"))
                    (date_input("arrivee", "Date d'arrivée"))
                    (select("incident", "Incident de transmission", &INCIDENTS))
                    button type="submit" { "Enregistrer la réception postale" }
                }
            }
            form method="post" action=(action("reception-accueil")) {
                (csrf(csrf_token))
                fieldset { legend { "Dépôt à l'accueil" }
                    (date_input("date", "Date du dépôt"))
                    label for="heure" { "Heure" span.hint { "HH:MM" } }
                    input type="time" id="heure" name="heure" required;
                    button type="submit" { "Enregistrer le dépôt à l'accueil" }
                }
            }
            form method="post" action=(action("refus-de-forme")) {
                (csrf(csrf_token))
                fieldset { legend { "Dossier reçu sous une forme refusée" }
                    (select("forme", "Forme", &FORMS))
                    (date_input("recu", "Reçu le"))
                    button type="submit" { "Enregistrer le refus" }
                }
            }
        }
        @if status == Status::Deposited {
            form method="post" action=(action("transfert")) {
                (csrf(csrf_token))
                button type="submit" { "Transférer dans le logiciel" }
            }
        }
        @if status == Status::UnderReview {
            h3 { "Instruction, pièce par pièce" }
            @for piece in pieces {
                form method="post" action=(action("examen")) {
                    (csrf(csrf_token))
                    input type="hidden" name="piece" value=(piece.code);
                    fieldset { legend { (piece.label) " – " (piece.state_label) }
                        (select(&format!("resultat-{}", piece.code), "Résultat", &[("acceptee", "acceptée"), ("manquante", "manquante"), ("refusee", "refusée")]))
                        label for={ "motif-" (piece.code) } { "Motif du refus" span.hint { "Seulement si la pièce est refusée." } }
                        input type="text" id={ "motif-" (piece.code) } name={ "motif-" (piece.code) };
                        button type="submit" { "Enregistrer : " (piece.label) }
                    }
                }
            }
            form method="post" action=(action("conclusion")) {
                (csrf(csrf_token))
                button type="submit" { "Conclure l'instruction" }
            }
        }
        @if status == Status::Incomplete {
            h3 { "Pièce manquante reçue" }
            @for piece in pieces.iter().filter(|p| matches!(p.state.as_str(), "missing" | "refused")) {
                form method="post" action=(action("piece-recue")) {
                    (csrf(csrf_token))
                    input type="hidden" name="piece" value=(piece.code);
                    fieldset { legend { (piece.label) }
                        (date_input(&format!("cachet-{}", piece.code), "Date du cachet de la poste"))
                        (date_input(&format!("arrivee-{}", piece.code), "Date d'arrivée"))
                        button type="submit" { "Enregistrer la pièce reçue par courrier : " (piece.label) }
                    }
                }
                form method="post" action=(action("piece-accueil")) {
                    (csrf(csrf_token))
                    input type="hidden" name="piece" value=(piece.code);
                    fieldset { legend { (piece.label) " – remise à l'accueil" }
                        (date_input(&format!("date-accueil-{}", piece.code), "Date de la remise"))
                        label for={ "heure-accueil-" (piece.code) } { "Heure" span.hint { "HH:MM" } }
                        input type="time" id={ "heure-accueil-" (piece.code) } name={ "heure-accueil-" (piece.code) } required;
                        button type="submit" { "Enregistrer la pièce remise à l'accueil : " (piece.label) }
                    }
                }
            }
        }
        @if matches!(status, Status::Deposited | Status::UnderReview | Status::Incomplete) {
            form method="post" action=(action("rejet")) {
                (csrf(csrf_token))
                fieldset { legend { "Rejeter le dossier comme non conforme" }
                    label for="detail" { "Motif" span.hint { "Sera lu par le candidat, p. ex. « le dossier de pré-inscription n'est pas signé. »" } }
                    input type="text" id="detail" name="detail" required;
                    button type="submit" { "Rejeter le dossier" }
                }
            }
        }
    }
}

fn date(values: &BTreeMap<String, String>, name: &str, label: &str) -> Result<NaiveDate, String> {
    let text = values.get(name).map(|v| v.trim()).unwrap_or_default();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y"))
        .map_err(|_| format!("{label} : indiquez une date au format JJ/MM/AAAA."))
}

fn time(values: &BTreeMap<String, String>, name: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(values.get(name).map(|v| v.trim()).unwrap_or_default(), "%H:%M")
        .map_err(|_| "Heure : indiquez une heure au format HH:MM.".to_owned())
}

fn command_of(action: &str, values: &BTreeMap<String, String>) -> Result<DossierCommand, String> {
    let piece = || {
        PieceCode::parse(values.get("piece").map(String::as_str).unwrap_or_default())
            .map_err(|_| "Pièce inconnue.".to_owned())
    };
    match action {
        "reception-postale" => Ok(DossierCommand::RecordPostalReceipt {
            postmark_date: date(values, "cachet", "Date du cachet de la poste")?,
            arrival_date: date(values, "arrivee", "Date d'arrivée")?,
            incident: match values.get("incident").map(String::as_str).unwrap_or_default() {
                "" => None,
                "affranchissement-insuffisant" => Some(TransmissionIncident::InsufficientPostage),
                "endommage-ou-perdu" => Some(TransmissionIncident::DamagedOrLost),
                "greve-ou-retard" => Some(TransmissionIncident::StrikeOrDelay),
                _ => return Err("Incident de transmission inconnu.".to_owned()),
            },
        }),
        "reception-accueil" => {
            let day = date(values, "date", "Date du dépôt")?;
            Ok(DossierCommand::RecordCounterReceipt { received_at: paris_to_utc(day.and_time(time(values, "heure")?)) })
        }
        "refus-de-forme" => Ok(DossierCommand::RecordRefusedIntake {
            form: match values.get("forme").map(String::as_str).unwrap_or_default() {
                "telecopie" => RefusedForm::Fax,
                "courriel" => RefusedForm::Email,
                "photocopie" => RefusedForm::Photocopy,
                "capture" => RefusedForm::Screenshot,
                "converti" => RefusedForm::ConvertedAndModified,
                _ => return Err("Forme de dépôt inconnue.".to_owned()),
            },
            received_on: date(values, "recu", "Reçu le")?,
        }),
        "transfert" => Ok(DossierCommand::Transfer),
        "examen" => {
            let piece = piece()?;
            let outcome = values.get(&format!("resultat-{piece}")).map(String::as_str).unwrap_or_default();
            let review = match outcome {
                "acceptee" => PieceReview::Accepted,
                "manquante" => PieceReview::Missing,
                "refusee" => {
                    let reason = values.get(&format!("motif-{piece}")).map(|r| r.trim()).unwrap_or_default();
                    if reason.is_empty() {
                        return Err("Indiquez le motif du refus de la pièce.".to_owned());
                    }
                    PieceReview::Refused { reason: reason.to_owned() }
                }
                _ => return Err("Résultat d'examen inconnu.".to_owned()),
            };
            Ok(DossierCommand::ReviewPiece { piece, review })
        }
        "conclusion" => Ok(DossierCommand::ConcludeReview),
        "piece-recue" => {
            let piece = piece()?;
            Ok(DossierCommand::ReceiveMissingPiece {
                delivery: PaperDelivery::Post {
                    postmark_date: date(values, &format!("cachet-{piece}"), "Date du cachet de la poste")?,
                    arrival_date: date(values, &format!("arrivee-{piece}"), "Date d'arrivée")?,
                },
                piece,
            })
        }
        "piece-accueil" => {
            let piece = piece()?;
            let day = date(values, &format!("date-accueil-{piece}"), "Date de la remise")?;
            Ok(DossierCommand::ReceiveMissingPiece {
                delivery: PaperDelivery::Counter {
                    received_at: paris_to_utc(day.and_time(time(values, &format!("heure-accueil-{piece}"))?)),
                },
                piece,
            })
        }
        "rejet" => {
            let detail = values.get("detail").map(|d| d.trim().to_owned()).unwrap_or_default();
            if detail.is_empty() {
                return Err("Indiquez le motif du rejet.".to_owned());
            }
            Ok(DossierCommand::Reject { detail })
        }
        _ => Err(String::new()),
    }
}

async fn act(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, action)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values = form_values(fields);
    let here = format!("/bureau/dossiers/{dossier_id}");
    let token = values.get("csrf").map(String::as_str).unwrap_or_default();
    let office = match acting_office(&state, &visitor, token, &here).await? {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let id = Uuid::parse_str(&dossier_id).map_err(|_| WebError::NotFound)?;
    queries::dossier_status(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let command = match command_of(&action, &values) {
        Ok(command) => command,
        Err(message) if message.is_empty() => return Err(WebError::NotFound),
        Err(message) => {
            return crate::web::office::dossier_with_error(
                &state,
                &office,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &message,
            )
            .await
        }
    };
    match execute_dossier(&state, &office.caller(), DossierId::from_uuid(id), command, None, Uuid::new_v4()).await {
        Ok(_) => Ok(Redirect::to(&format!("{here}?fait={action}")).into_response()),
        Err(ApiError::Internal(cause)) => Err(WebError::Api(ApiError::Internal(cause))),
        Err(error) => {
            crate::web::office::dossier_with_error(&state, &office, id, error.status(), &error.to_string()).await
        }
    }
}

async fn download(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, piece)): Path<(String, String)>,
) -> Result<Response, WebError> {
    piece_file(&state, &visitor, &dossier_id, &piece, false).await
}

/// The piece shown in the browser rather than saved: a PDF in its viewer, an image as itself.
async fn preview(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, piece)): Path<(String, String)>,
) -> Result<Response, WebError> {
    piece_file(&state, &visitor, &dossier_id, &piece, true).await
}

async fn piece_file(
    state: &AppState,
    visitor: &Visitor,
    dossier_id: &str,
    piece: &str,
    inline: bool,
) -> Result<Response, WebError> {
    if let Err(response) = office(state, visitor, &format!("/bureau/dossiers/{dossier_id}")).await {
        return Ok(response);
    }
    let id = Uuid::parse_str(dossier_id).map_err(|_| WebError::NotFound)?;
    let row = queries::dossier_pieces(&state.db, id)
        .await?
        .into_iter()
        .find(|p| p.code == piece)
        .ok_or(WebError::NotFound)?;
    let (Some(sha256), Some(name)) = (row.sha256, row.filename) else { return Err(WebError::NotFound) };
    let bytes = state.files.read(&sha256).await?;
    let content_type = crate::files::content_type(row.media_type.as_deref());
    let mut response = crate::web::candidate::attachment(content_type, &name, bytes);
    if inline {
        // Only the types recognised at upload (PDF, JPEG, PNG) are stored, and `nosniff` holds
        // them to their type, so showing them inline runs nothing.
        let disposition = response.headers().get(header::CONTENT_DISPOSITION).cloned();
        if let Some(value) = disposition.and_then(|v| v.to_str().ok().map(|v| v.replacen("attachment", "inline", 1))) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
            }
        }
    }
    Ok(response)
}

/// The pieces of a dossier for the office: state, reason, file with its download link.
pub fn pieces_table(dossier: Uuid, pieces: &[PieceRow]) -> Markup {
    html! {
        h2 { "Pièces" }
        table {
            thead { tr { th scope="col" { "Pièce" } th scope="col" { "État" } th scope="col" { "Fichier" } } }
            tbody {
                @for piece in pieces {
                    tr {
                        th scope="row" { @if piece.red_dot { span.red-dot aria-hidden="true" {} span.visually-hidden { "Pastille rouge : " } } (piece.label) }
                        td { (piece.state_label) @if let Some(reason) = &piece.reason { " : " (reason) } }
                        td {
                            @if let Some(name) = &piece.filename {
                                @let base = format!("/bureau/dossiers/{dossier}/pieces/{}", piece.code);
                                @if piece.media_type.as_deref().is_some_and(|m| m != "pdf") {
                                    img.apercu src={ (base) "/apercu" } alt={ "Aperçu de « " (name) " »" } width="160";
                                    br;
                                }
                                a href={ (base) "/fichier" } { "Télécharger " (name) }
                                " | "
                                a href={ (base) "/apercu" } target="_blank" rel="noopener" { "Aperçu" span.visually-hidden { " de « " (name) " » (nouvel onglet)" } }
                            } @else { "Aucun fichier" }
                        }
                    }
                }
            }
        }
    }
}

/// Whether an office account may act, for the dossier page.
pub fn may_act_account(account: &accounts::StaffAccount) -> bool {
    account.role != StaffRole::Auditor
}
