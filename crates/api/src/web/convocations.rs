//! Convocation pages: the office publishes a test's convocations from the session's dashboard
//! and withholds one from the dossier page; the candidate downloads theirs from their space.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use cachet_domain::dossier::{DossierCommand, DossierState};
use cachet_domain::ids::{CandidateId, DossierId, SessionId, TestCode};
use cachet_domain::session::SessionConfig;
use cachet_domain::time::format_instant;
use maud::{html, Markup};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Caller;
use crate::convocations::{self, TestLine};
use crate::error::ApiError;
use crate::service::execute_dossier;
use crate::web::desk::form_values;
use crate::web::forms::csrf;
use crate::web::layout::Page;
use crate::web::office::acting_office;
use crate::web::{Visitor, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bureau/sessions/{session_id}/convocations/{test}", post(publish))
        .route("/bureau/dossiers/{dossier_id}/convocations/{test}/retenue", post(withhold))
        .route("/dossiers/{dossier_id}/convocations/{test}", get(download))
}

fn test_code(text: &str) -> Result<TestCode, WebError> {
    TestCode::parse(text).map_err(|_| WebError::NotFound)
}

/// The dashboard's section: each test, its date, the publication limit, and the button.
pub fn session_section(session: Uuid, config: &SessionConfig, may_act: bool, csrf_token: &str) -> Markup {
    html! {
        @if !config.tests.is_empty() {
            h2 { "Convocations" }
            p.hint { "Les convocations sont mises à disposition dans l'espace sécurisé des candidats dont le dossier est complet, au moins "
                (config.convocation_lead_days) " jours avant l'épreuve. Elles ne sont ni envoyées par courrier ni jointes à un courriel." }
            ul {
                @for spec in &config.tests {
                    li {
                        strong { (spec.label) } " – " (convocations::when(spec)) ", " (spec.place)
                        " (publication au plus tard le " (format_instant(config.convocation_publication_limit(spec))) ")"
                        @if may_act {
                            form method="post" action={ "/bureau/sessions/" (session) "/convocations/" (spec.code) } {
                                (csrf(csrf_token))
                                button type="submit" { "Publier les convocations : " (spec.label) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The dossier page's section: where each convocation stands, and the form to withhold one.
pub fn dossier_section(dossier: Uuid, lines: &[TestLine], complete: bool, may_act: bool, csrf_token: &str) -> Markup {
    html! {
        @if !lines.is_empty() && (complete || lines.iter().any(|l| l.published || l.withheld.is_some())) {
            h2 { "Convocations" }
            ul {
                @for line in lines {
                    li {
                        (line.spec.label) " – " (convocations::when(&line.spec)) " : "
                        @if line.published {
                            "publiée ; téléchargée " (line.downloads) " fois par le candidat"
                        } @else if let Some(reason) = &line.withheld {
                            "retenue (" (reason) ")"
                        } @else {
                            "non publiée"
                        }
                        @if may_act && complete && !line.published && line.withheld.is_none() {
                            form method="post" action={ "/bureau/dossiers/" (dossier) "/convocations/" (line.spec.code) "/retenue" } {
                                (csrf(csrf_token))
                                label for={ "motif-convocation-" (line.spec.code) } { "Motif pour retenir cette convocation" }
                                input type="text" id={ "motif-convocation-" (line.spec.code) } name="motif" required;
                                button type="submit" { "Retenir la convocation : " (line.spec.label) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The candidate's section: the published convocations only.
pub fn candidate_section(dossier: Uuid, config: &SessionConfig, state: &DossierState) -> Markup {
    let published: Vec<TestLine> = convocations::lines(config, state).into_iter().filter(|l| l.published).collect();
    html! {
        @if !published.is_empty() {
            h2 { "Mes convocations" }
            p { "À imprimer et à présenter avec une pièce d'identité le jour de l'épreuve." }
            ul {
                @for line in &published {
                    li { a href={ "/dossiers/" (dossier) "/convocations/" (line.spec.code) } {
                        "Convocation à l'épreuve « " (line.spec.label) " » du " (convocations::when(&line.spec).trim_start_matches("le ")) " (PDF)"
                    } }
                }
            }
        }
    }
}

async fn publish(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((session_id, test)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values = form_values(fields);
    let here = format!("/bureau/sessions/{session_id}");
    let token = values.get("csrf").map(String::as_str).unwrap_or_default();
    let office = match acting_office(&state, &visitor, token, &here).await? {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let caller = office.caller();
    let session = Uuid::parse_str(&session_id).map_err(|_| WebError::NotFound)?;
    let test = test_code(&test)?;
    let report = convocations::publish(&state, &caller, SessionId::from_uuid(session), &test).await?;
    Ok(Page::new("Publication des convocations")
        .signed_in(office.signed_in.clone())
        .render(html! {
            p role="status" { (report.describe()) }
            p { a href=(here) { "Retour au tableau de bord de la session" } }
        })
        .into_response())
}

async fn withhold(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, test)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values = form_values(fields);
    let here = format!("/bureau/dossiers/{dossier_id}");
    let token = values.get("csrf").map(String::as_str).unwrap_or_default();
    let office = match acting_office(&state, &visitor, token, &here).await? {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let caller = office.caller();
    let id = Uuid::parse_str(&dossier_id).map_err(|_| WebError::NotFound)?;
    let test = test_code(&test)?;
    let reason = values.get("motif").cloned().unwrap_or_default();
    let command = DossierCommand::WithholdConvocation { test, reason };
    match execute_dossier(&state, &caller, DossierId::from_uuid(id), command, None, Uuid::new_v4()).await {
        Ok(_) => Ok(axum::response::Redirect::to(&format!("{here}?fait=convocation-retenue")).into_response()),
        Err(error @ ApiError::Internal(_)) => Err(WebError::Api(error)),
        Err(ApiError::NotFound(_)) => Err(WebError::NotFound),
        Err(error) => {
            crate::web::office::dossier_with_error(&state, &office, id, error.status(), &error.to_string()).await
        }
    }
}

async fn download(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((dossier_id, test)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let owned = match crate::web::candidate::owned_dossier(&state, &visitor, &dossier_id).await {
        Ok(owned) => owned,
        Err(response) => return Ok(response),
    };
    let test = test_code(&test)?;
    let caller = Caller::Candidate(CandidateId::from_uuid(owned.candidate_id));
    let (filename, bytes) = convocations::download(&state, &caller, owned.dossier_id, &test).await?;
    Ok(crate::web::candidate::attachment("application/pdf", &filename, bytes))
}
