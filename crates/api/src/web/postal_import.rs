//! The page that imports a day's postal mail from a CSV file: choose the file, read what each
//! line would do (a dry run), then apply. The file checked is the file applied: the dry run's
//! page carries its bytes (base64) in the apply form, so nothing is kept on the server between
//! the two steps. Both steps run `import::import`, the API's own code.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cachet_domain::ids::SessionId;
use cachet_projections::queries;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::import::{self, ImportReport, LineOutcome, Mode, MAX_BYTES};
use crate::web::forms::csrf;
use crate::web::layout::Page;
use crate::web::office::{office, Office, READ_ONLY};
use crate::web::{Visitor, WebError};

const TITLE: &str = "Import du courrier du jour";

pub fn router() -> Router<AppState> {
    // Room for the form's other fields and the multipart framing around the largest file.
    let upload_limit = MAX_BYTES + 64 * 1024;
    // The apply form carries the file in base64: four characters for three bytes.
    let apply_limit = MAX_BYTES / 3 * 4 + 64 * 1024;
    Router::new()
        .route(
            "/bureau/sessions/{session_id}/import-courrier",
            get(form).post(dry_run).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/bureau/sessions/{session_id}/import-courrier/application",
            post(apply).layer(DefaultBodyLimit::max(apply_limit)),
        )
}

/// The signed-in office member who may import into this session, or the answer to give instead.
async fn importer(
    state: &AppState,
    visitor: &Visitor,
    session_id: &str,
) -> Result<Result<(Office, Uuid), Response>, WebError> {
    let here = format!("/bureau/sessions/{session_id}/import-courrier");
    let office = match office(state, visitor, &here).await {
        Ok(office) => office,
        Err(response) => return Ok(Err(response)),
    };
    if office.account.role == cachet_domain::event::StaffRole::Auditor {
        return Err(WebError::Forbidden(READ_ONLY.to_owned()));
    }
    let id = Uuid::parse_str(session_id).map_err(|_| WebError::NotFound)?;
    queries::session(&state.db, id).await?.ok_or(WebError::NotFound)?;
    Ok(Ok((office, id)))
}

/// The file form, with the error of the last attempt next to the field.
fn file_form(session: Uuid, csrf_token: &str, error: Option<&str>) -> Markup {
    html! {
        form method="post" enctype="multipart/form-data" action={ "/bureau/sessions/" (session) "/import-courrier" } {
            (csrf(csrf_token))
            label for="fichier" {
                "Fichier CSV du courrier reçu"
                span.hint id="fichier-aide" {
                    "Une ligne par dossier reçu, avec l'en-tête : code utilisateur ; cachet de la poste ; date d'arrivée ; "
                    "incident (facultatif : « affranchissement insuffisant », « endommagé ou perdu », « grève ou retard »). "
                    "Dates au format JJ/MM/AAAA, fichier « CSV UTF-8 », 2 Mio et 10 000 lignes au plus."
                }
            }
            @if let Some(message) = error { span.field-error id="fichier-erreur" { "Erreur : " (message) } }
            input type="file" id="fichier" name="fichier" accept=".csv,text/csv" required
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=(if error.is_some() { "fichier-aide fichier-erreur" } else { "fichier-aide" });
            p.hint { "Rien n'est enregistré à cette étape : la vérification indique ce que ferait chaque ligne." }
            button type="submit" { "Vérifier le fichier" }
        }
    }
}

fn page(office: &Office, content: Markup) -> Response {
    Page::new(TITLE).signed_in(office.signed_in.clone()).render(content).into_response()
}

async fn form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
) -> Result<Response, WebError> {
    let (office, session) = match importer(&state, &visitor, &session_id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    Ok(page(
        &office,
        html! {
            p { a href={ "/bureau/sessions/" (session) } { "Retour au tableau de bord de la session" } }
            (file_form(session, &office.csrf_token, None))
        },
    ))
}

/// The counts of a report in one French sentence.
fn summary(report: &ImportReport) -> String {
    let s = &report.summary;
    let mut parts = vec![
        format!("{} dans les délais", s.on_time),
        format!("{} hors délai", s.late),
        format!("{} avec incident d'acheminement", s.incident),
    ];
    if s.already_recorded > 0 {
        parts.push(format!("{} déjà enregistrée(s)", s.already_recorded));
    }
    if s.refused > 0 {
        parts.push(format!("{} refusée(s)", s.refused));
    }
    if s.errors > 0 {
        parts.push(format!("{} en erreur", s.errors));
    }
    format!("{} ligne(s) lue(s) : {}.", s.lines, parts.join(", "))
}

fn outcome_label(outcome: &LineOutcome, mode: Mode, recorded: bool) -> &'static str {
    match (outcome, mode) {
        (LineOutcome::Error, _) => "Erreur",
        (LineOutcome::AlreadyRecorded, _) => "Déjà enregistrée",
        (LineOutcome::Refused, _) => "Refusée",
        (LineOutcome::OnTime { .. }, Mode::DryRun) => "Dans les délais : sera déposé",
        (LineOutcome::Late { .. }, Mode::DryRun) => "Hors délai : sera rejeté",
        (LineOutcome::Incident { .. }, Mode::DryRun) => "Incident : sera rejeté",
        (_, Mode::Apply) if !recorded => "Déjà enregistrée",
        (LineOutcome::OnTime { .. }, Mode::Apply) => "Déposé",
        (LineOutcome::Late { .. }, Mode::Apply) => "Rejeté (hors délai)",
        (LineOutcome::Incident { .. }, Mode::Apply) => "Rejeté (incident)",
    }
}

fn report_table(report: &ImportReport) -> Markup {
    html! {
        table {
            caption { "Résultat ligne par ligne" }
            thead { tr { th scope="col" { "Ligne" } th scope="col" { "Code utilisateur" } th scope="col" { "Résultat" } th scope="col" { "Détail" } } }
            tbody {
                @for line in &report.lines {
                    tr {
                        td { (line.line) }
                        td {
                            @if let Some(dossier) = line.dossier_id { a href={ "/bureau/dossiers/" (dossier) } { (line.user_code) } }
                            @else { (line.user_code) }
                        }
                        td { (outcome_label(&line.outcome, report.mode, line.recorded)) }
                        td { (line.message) }
                    }
                }
            }
        }
    }
}

/// Runs the import; a problem of the whole file (unreadable, too large…) goes back to the form.
async fn run(
    state: &AppState,
    office: &Office,
    session: Uuid,
    bytes: &[u8],
    mode: Mode,
) -> Result<Result<ImportReport, (StatusCode, String)>, WebError> {
    match import::import(state, &office.caller(), SessionId::from_uuid(session), bytes, mode).await {
        Ok(report) => Ok(Ok(report)),
        Err(error @ ApiError::Internal(_)) => Err(WebError::Api(error)),
        Err(ApiError::NotFound(_)) => Err(WebError::NotFound),
        Err(error) => Ok(Err((error.status(), error.to_string()))),
    }
}

fn form_again(office: &Office, session: Uuid, status: StatusCode, message: &str) -> Response {
    let mut response = page(
        office,
        html! {
            div.error-summary role="alert" aria-labelledby="erreurs-titre" {
                h2 id="erreurs-titre" { "Le fichier n'a pas pu être lu" }
                ul { li { a href="#fichier" { (message) } } }
            }
            (file_form(session, &office.csrf_token, Some(message)))
        },
    );
    *response.status_mut() = status;
    response
}

async fn dry_run(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    // The CSRF token comes first in the form, so nothing is read for a forged request.
    let token = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => field.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    visitor.check_csrf(&token)?;
    let (office, session) = match importer(&state, &visitor, &session_id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let bytes = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("fichier") => match field.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                let error = import::too_large();
                return Ok(form_again(&office, session, error.status(), &error.to_string()));
            }
            Err(_) => {
                let message = "Le transfert du fichier a été interrompu : recommencez.";
                return Ok(form_again(&office, session, StatusCode::BAD_REQUEST, message));
            }
        },
        _ => {
            let message = "Choisissez un fichier CSV avant de cliquer sur « Vérifier le fichier ».";
            return Ok(form_again(&office, session, StatusCode::UNPROCESSABLE_ENTITY, message));
        }
    };
    if bytes.is_empty() {
        let message = "Choisissez un fichier CSV avant de cliquer sur « Vérifier le fichier ».";
        return Ok(form_again(&office, session, StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    let report = match run(&state, &office, session, &bytes, Mode::DryRun).await? {
        Ok(report) => report,
        Err((status, message)) => return Ok(form_again(&office, session, status, &message)),
    };
    let to_record = report.lines.iter().filter(|l| l.outcome.is_accepted()).count();
    Ok(page(
        &office,
        html! {
            h2 { "Vérification du fichier" }
            p role="status" { (summary(&report)) " Rien n'a encore été enregistré." }
            @if to_record > 0 {
                form method="post" action={ "/bureau/sessions/" (session) "/import-courrier/application" } {
                    (csrf(&office.csrf_token))
                    input type="hidden" name="contenu" value=(URL_SAFE_NO_PAD.encode(&bytes));
                    p { "Appliquer l'import enregistre " (to_record) " réception(s) ; les lignes en erreur, refusées ou déjà enregistrées sont ignorées." }
                    button type="submit" { "Appliquer l'import" }
                }
            } @else {
                p { "Aucune ligne à enregistrer dans ce fichier." }
            }
            (report_table(&report))
            p { a href={ "/bureau/sessions/" (session) "/import-courrier" } { "Choisir un autre fichier" } }
        },
    ))
}

#[derive(Deserialize)]
struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    contenu: String,
}

async fn apply(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(session_id): Path<String>,
    Form(fields): Form<ApplyForm>,
) -> Result<Response, WebError> {
    visitor.check_csrf(&fields.csrf)?;
    let (office, session) = match importer(&state, &visitor, &session_id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(fields.contenu.trim()) else {
        let message = "Le fichier vérifié n'a pas été transmis : choisissez-le de nouveau.";
        return Ok(form_again(&office, session, StatusCode::BAD_REQUEST, message));
    };
    let report = match run(&state, &office, session, &bytes, Mode::Apply).await? {
        Ok(report) => report,
        Err((status, message)) => return Ok(form_again(&office, session, status, &message)),
    };
    Ok(page(
        &office,
        html! {
            h2 { "Import appliqué" }
            p role="status" { (report.summary.recorded) " réception(s) enregistrée(s). " (summary(&report)) }
            (report_table(&report))
            p { a href={ "/bureau/sessions/" (session) } { "Retour au tableau de bord de la session" } }
        },
    ))
}
