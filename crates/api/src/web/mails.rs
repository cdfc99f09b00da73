//! The office's page of the mails sent to candidates: what waits, what failed and why, with a
//! button to re-send a failed one; then the last ones sent.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use cachet_domain::event::StaffRole;
use cachet_domain::time::format_instant;
use maud::html;

use crate::app::AppState;
use crate::outbox;
use crate::web::forms::csrf;
use crate::web::layout::Page;
use crate::web::office::{acting_office, office};
use crate::web::{Visitor, WebError};

pub fn router() -> Router<AppState> {
    Router::new().route("/bureau/courriels", get(list)).route("/bureau/courriels/{mail_id}/renvoi", post(resend))
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "pre_registration" => "Confirmation de préinscription",
        "deposit_receipt" => "Récépissé de dépôt",
        "received" => "Dossier reçu",
        "incomplete" => "Dossier incomplet",
        "complete" => "Dossier complet",
        "rejected" => "Dossier rejeté",
        "convocation" => "Convocation disponible",
        "reminder" => "Rappel de la date limite",
        _ => "Courriel",
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "pending" => "en attente d'envoi",
        "sending" => "en cours d'envoi",
        "sent" => "envoyé",
        "failed" => "échec",
        _ => "inconnu",
    }
}

fn at(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(format_instant).unwrap_or_default()
}

async fn list(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    let office = match office(&state, &visitor, "/bureau/courriels").await {
        Ok(office) => office,
        Err(response) => return Ok(response),
    };
    let may_act = office.account.role != StaffRole::Auditor;
    let counts = outbox::counts(&state.db).await?;
    let lines = outbox::recent(&state.db, 200).await?;
    Ok(Page::new("Courriels aux candidats")
        .signed_in(office.signed_in.clone())
        .render(html! {
            p role="status" { (counts.pending) " en attente, " (counts.failed) " en échec, " (counts.sent) " envoyé(s)." }
            p.hint { "Un courriel qui échoue est réessayé automatiquement, à intervalles croissants ; après le dernier essai, "
                "ou si l'envoi a été interrompu, il reste ici en échec jusqu'à ce qu'il soit renvoyé." }
            table {
                thead { tr {
                    th scope="col" { "Courriel" } th scope="col" { "Dossier" } th scope="col" { "État" }
                    th scope="col" { "Essais" } th scope="col" { "Destinataire et objet" } th scope="col" { "Détail" }
                } }
                tbody {
                    @for line in &lines {
                        tr {
                            td { (kind_label(&line.kind)) br; span.hint { "mis en file le " (at(line.queued_at_us)) } }
                            td { a href={ "/bureau/dossiers/" (line.dossier_id) } { "voir le dossier" } }
                            td { (state_label(&line.state)) @if let Some(sent) = line.sent_at_us { br; span.hint { "le " (at(sent)) } } }
                            td { (line.attempts) }
                            td { (line.recipient.as_deref().unwrap_or("")) @if let Some(subject) = &line.subject { br; (subject) } }
                            td {
                                @if let Some(error) = &line.last_error { (error) }
                                @if may_act && line.state == "failed" {
                                    form method="post" action={ "/bureau/courriels/" (line.mail_id) "/renvoi" } {
                                        (csrf(&office.csrf_token))
                                        button type="submit" { "Renvoyer" span.visually-hidden { " : " (kind_label(&line.kind)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
        .into_response())
}

#[derive(serde::Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn resend(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(mail_id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    if let Err(response) = acting_office(&state, &visitor, &form.csrf, "/bureau/courriels").await? {
        return Ok(response);
    }
    if !outbox::resend(&state.db, &mail_id).await? {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to("/bureau/courriels").into_response())
}
