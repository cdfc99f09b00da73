//! The notifications an event calls for, queued in `mail_outbox` (migration 0005) by the
//! `dossiers` projection in the transaction that moves its checkpoint past the event: a mail is
//! queued exactly when its event is processed, once. The sender (`cachet_api::outbox`) sends them.
//!
//! Only the live read models queue (a rebuild beside them never does), and never for an event
//! older than the outbox itself (`mail_outbox_start`), so a rebuild from position 0 sends nothing
//! again: each mail's id derives from its event's position and the outbox keeps it forever.

use cachet_domain::dossier::{DossierEvent, DossierState};
use cachet_store::StoredEvent;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::rows::{insert, json, AnyQuery, Placeholders, Record};
use crate::status::StatusView;
use crate::ProjectionError;

/// The kinds of mail the outbox carries.
pub const KINDS: [&str; 8] = [
    "pre_registration",
    "deposit_receipt",
    "received",
    "incomplete",
    "complete",
    "rejected",
    "convocation",
    "reminder",
];

/// What a template needs beyond the candidate's account: the candidate's message after the event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The message of the espace sécurisé after the event.
    pub message: String,
    /// The missing pieces (incomplete).
    #[serde(default)]
    pub missing: Vec<String>,
    /// Why on time (receipts) — the deadline rule's explanation.
    #[serde(default)]
    pub explanation: Option<String>,
    /// The test (convocation).
    #[serde(default)]
    pub test: Option<String>,
    /// The deadline, YYYY-MM-DD (reminder).
    #[serde(default)]
    pub deadline: Option<String>,
}

/// A mail to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub mail_id: String,
    pub kind: &'static str,
    pub dossier_id: String,
    pub payload: Payload,
    pub queued_at_us: i64,
}

/// The mail an event calls for, given the dossier's state right after it.
pub fn for_event(stored: &StoredEvent, event: &DossierEvent, after: &DossierState) -> Option<Notification> {
    let kind = match event {
        DossierEvent::PreRegistered { .. } => "pre_registration",
        DossierEvent::RegistrationClosed { verdict, .. } if verdict.on_time => "deposit_receipt",
        DossierEvent::PostalReceiptRecorded { verdict, incident: None, .. } if verdict.on_time => "received",
        DossierEvent::CounterReceiptRecorded { verdict, .. } if verdict.on_time => "received",
        DossierEvent::MarkedIncomplete { .. } => "incomplete",
        DossierEvent::MarkedComplete => "complete",
        DossierEvent::Rejected { .. } => "rejected",
        DossierEvent::ConvocationPublished { .. } => "convocation",
        _ => return None,
    };
    let view = StatusView::from_state(after, stored.stream_version, stored.position)?;
    let payload = Payload {
        message: view.message,
        missing: view.missing,
        explanation: view.deposit.map(|d| d.explanation),
        test: match event {
            DossierEvent::ConvocationPublished { test, .. } => Some(test.to_string()),
            _ => None,
        },
        deadline: None,
    };
    Some(Notification {
        mail_id: format!("{kind}:{}", stored.position),
        kind,
        dossier_id: stored.stream_id.to_string(),
        payload,
        queued_at_us: stored.recorded_at.timestamp_micros(),
    })
}

/// Queues a mail; one already queued under the same id is kept as it is.
pub async fn queue(conn: &mut AnyConnection, note: &Notification) -> Result<(), ProjectionError> {
    let payload = json(&note.payload)?;
    sqlx::query(
        "INSERT INTO mail_outbox (mail_id, kind, dossier_id, payload, state, attempts, next_attempt_at_us, queued_at_us) \
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (mail_id) DO NOTHING",
    )
    .bind(&note.mail_id)
    .bind(note.kind)
    .bind(&note.dossier_id)
    .bind(payload)
    .bind(note.queued_at_us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A mail to queue, its fields named and ordered as `mail_outbox`'s columns.
#[derive(serde::Serialize)]
struct MailRecord<'a> {
    mail_id: &'a str,
    kind: &'static str,
    dossier_id: &'a str,
    payload: String,
    state: &'static str,
    attempts: i64,
    next_attempt_at_us: i64,
    queued_at_us: i64,
}

impl Record for MailRecord<'_> {
    const COLUMNS: &'static str =
        "mail_id, kind, dossier_id, payload, state, attempts, next_attempt_at_us, queued_at_us";
    const WIDTH: usize = 8;

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.mail_id)
            .bind(self.kind)
            .bind(self.dossier_id)
            .bind(&self.payload)
            .bind(self.state)
            .bind(self.attempts)
            .bind(self.next_attempt_at_us)
            .bind(self.queued_at_us)
    }
}

/// Queues the mails of a batch, like [`queue`] but in a few statements ([`insert`]): on a busy
/// day most events call for a mail.
pub(crate) async fn queue_all(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    notes: &[Notification],
) -> Result<(), ProjectionError> {
    let records = notes
        .iter()
        .map(|note| {
            Ok(MailRecord {
                mail_id: &note.mail_id,
                kind: note.kind,
                dossier_id: &note.dossier_id,
                payload: json(&note.payload)?,
                state: "pending",
                attempts: 0,
                next_attempt_at_us: note.queued_at_us,
                queued_at_us: note.queued_at_us,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    insert(conn, placeholders, "mail_outbox", &records, "ON CONFLICT (mail_id) DO NOTHING").await
}
