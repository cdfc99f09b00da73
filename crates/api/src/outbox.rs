//! The mail sender: it takes the notifications the `dossiers` projection queued in `mail_outbox`
//! (see `cachet_projections::notifications`), writes each in French from the candidate's account
//! and the session, and sends it through the [`Mailer`](crate::mail::Mailer).
//!
//! Each row is claimed by a compare-and-set on its state before it is sent, so two processes never
//! send the same mail; a failure is retried with exponential backoff, then the mail is `failed`,
//! visible in `/readyz`, the metrics and the office's page, where it can be re-sent. A row left
//! `sending` by a crash is never re-sent by itself (the mail may have left): it becomes `failed`
//! for a person to check. The same task queues the reminders due two days before a deadline.

use std::time::Duration;

use cachet_domain::session::SessionConfig;
use cachet_domain::time::{format_date, paris_date};
use cachet_projections::db::ReadDb;
use cachet_projections::dossiers::{SESSIONS, STATUS};
use cachet_projections::notifications::{self, Notification, Payload};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts;
use crate::app::AppState;
use crate::error::ApiError;
use crate::mail::{self, Mail};

/// How often the sender looks for due mails when it found none.
pub const POLL: Duration = Duration::from_secs(1);
/// The first retry's delay; each next one doubles, up to an hour.
pub const RETRY: Duration = Duration::from_secs(30);
/// Attempts before a mail is `failed`.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed row may stay `sending` before it counts as interrupted.
const LEASE: Duration = Duration::from_secs(120);
/// A mail whose dossier still has no candidate account after this long is `failed`.
const NO_ACCOUNT: Duration = Duration::from_secs(3600);
/// How often the reminders due are queued.
const REMINDERS_EVERY: Duration = Duration::from_secs(60);

fn db_error(context: &'static str) -> impl Fn(sqlx::Error) -> ApiError {
    move |e| ApiError::internal(context, e)
}

/// Starts the sender; it stops when `stop` turns true.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_reminders: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            if last_reminders.is_none_or(|at| at.elapsed() >= REMINDERS_EVERY) {
                if let Err(error) = queue_reminders(&state, Utc::now()).await {
                    tracing::warn!(?error, "could not queue the deadline reminders");
                }
                // The gauges, once a minute here (and at every /readyz and /metrics).
                if let Ok(counts) = counts(&state.db).await {
                    state.metrics.mail_pending.set(counts.pending);
                    state.metrics.mail_failed.set(counts.failed);
                }
                last_reminders = Some(tokio::time::Instant::now());
            }
            let sent = match send_due(&state).await {
                Ok(sent) => sent,
                Err(error) => {
                    tracing::warn!(?error, "the mail sender failed a round");
                    0
                }
            };

            if sent == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(state.settings.outbox_poll) => {}
                    changed = stop.changed() => if changed.is_err() { return },
                }
            }
        }
    })
}

/// One round: marks interrupted sends failed, then claims and sends the due mails. Returns how
/// many mails it tried.
pub async fn send_due(state: &AppState) -> Result<usize, ApiError> {
    let now = Utc::now().timestamp_micros();
    sqlx::query(
        "UPDATE mail_outbox SET state = 'failed', claim = NULL, last_error = $1 \
         WHERE state = 'sending' AND claimed_until_us < $2",
    )
    .bind("Envoi interrompu (arrêt du serveur) : vérifiez auprès du candidat avant de renvoyer ce courriel.")
    .bind(now)
    .execute(&state.db.pool)
    .await
    .map_err(db_error("mark interrupted mails"))?;
    let rows = sqlx::query(
        "SELECT mail_id, kind, dossier_id, payload, attempts, queued_at_us FROM mail_outbox \
         WHERE state = 'pending' AND next_attempt_at_us <= $1 ORDER BY next_attempt_at_us, mail_id LIMIT 20",
    )
    .bind(now)
    .fetch_all(&state.db.pool)
    .await
    .map_err(db_error("read the due mails"))?;
    let mut tried = 0;
    for row in rows {
        let read = |e| ApiError::internal("read a due mail", e);
        let mail_id: String = row.try_get("mail_id").map_err(read)?;
        let claim = Uuid::new_v4().to_string();
        let claimed = sqlx::query(
            "UPDATE mail_outbox SET state = 'sending', claim = $1, claimed_until_us = $2 \
             WHERE mail_id = $3 AND state = 'pending'",
        )
        .bind(&claim)
        // The lease runs from this claim, not from the start of the round: a round may send for a while.
        .bind(Utc::now().timestamp_micros() + LEASE.as_micros() as i64)
        .bind(&mail_id)
        .execute(&state.db.pool)
        .await
        .map_err(db_error("claim a mail"))?;
        if claimed.rows_affected() != 1 {
            continue; // another process took it
        }
        tried += 1;
        let kind: String = row.try_get("kind").map_err(read)?;
        let dossier: String = row.try_get("dossier_id").map_err(read)?;
        let payload: String = row.try_get("payload").map_err(read)?;
        let attempts: i64 = row.try_get("attempts").map_err(read)?;
        let queued_at_us: i64 = row.try_get("queued_at_us").map_err(read)?;
        let payload: Payload = serde_json::from_str(&payload).unwrap_or_default();
        let outcome = match compose(state, &kind, &dossier, &payload).await {
            Ok(Some(mail)) => match state.mailer.send(&mail).await {
                Ok(_) => Ok(mail),
                Err(error) => Err(error.to_string()),
            },
            Ok(None) if now - queued_at_us > NO_ACCOUNT.as_micros() as i64 => {
                fail(state, &mail_id, &claim, "Aucun compte candidat pour ce dossier : pas d'adresse électronique.")
                    .await?;
                continue;
            }
            Ok(None) => {
                // The account is written just after the pre-registration's event: wait for it
                // without spending an attempt.
                sqlx::query(
                    "UPDATE mail_outbox SET state = 'pending', claim = NULL, next_attempt_at_us = $1 \
                     WHERE mail_id = $2 AND claim = $3",
                )
                .bind(Utc::now().timestamp_micros() + state.settings.mail_retry.as_micros() as i64)
                .bind(&mail_id)
                .bind(&claim)
                .execute(&state.db.pool)
                .await
                .map_err(db_error("reschedule a mail"))?;
                continue;
            }
            Err(error) => Err(format!("{error:?}")),
        };
        match outcome {
            Ok(mail) => {
                let marked = sqlx::query(
                    "UPDATE mail_outbox SET state = 'sent', claim = NULL, sent_at_us = $1, recipient = $2, subject = $3, \
                     last_error = NULL, attempts = attempts + 1 WHERE mail_id = $4 AND claim = $5",
                )
                .bind(Utc::now().timestamp_micros())
                .bind(&mail.to)
                .bind(&mail.subject)
                .bind(&mail_id)
                .bind(&claim)
                .execute(&state.db.pool)
                .await
                .map_err(db_error("mark a mail sent"))?;
                if marked.rows_affected() == 0 {
                    // Its lease ran out while it was being sent and another process marked it
                    // interrupted: the office page shows it failed although it left.
                    tracing::error!(mail = %mail_id, "a mail was sent after its claim expired; it shows as failed");
                }
                state.metrics.mails_sent.inc();
            }
            Err(error) => {
                state.metrics.mail_errors.inc();
                tracing::warn!(mail = %mail_id, attempt = attempts + 1, %error, "a mail could not be sent");
                if attempts + 1 >= state.settings.mail_max_attempts {
                    fail(state, &mail_id, &claim, &error).await?;
                } else {
                    let delay = retry_delay(state.settings.mail_retry, attempts);
                    sqlx::query(
                        "UPDATE mail_outbox SET state = 'pending', claim = NULL, attempts = attempts + 1, \
                         next_attempt_at_us = $1, last_error = $2 WHERE mail_id = $3 AND claim = $4",
                    )
                    .bind(Utc::now().timestamp_micros() + delay.as_micros() as i64)
                    .bind(&error)
                    .bind(&mail_id)
                    .bind(&claim)
                    .execute(&state.db.pool)
                    .await
                    .map_err(db_error("reschedule a mail"))?;
                }
            }
        }
    }
    Ok(tried)
}

/// `base`, doubled for each attempt already made, at most an hour.
pub fn retry_delay(base: Duration, attempts: i64) -> Duration {
    let factor = 2u32.saturating_pow(u32::try_from(attempts).unwrap_or(u32::MAX).min(16));
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

async fn fail(state: &AppState, mail_id: &str, claim: &str, error: &str) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE mail_outbox SET state = 'failed', claim = NULL, attempts = attempts + 1, last_error = $1 \
         WHERE mail_id = $2 AND claim = $3",
    )
    .bind(error)
    .bind(mail_id)
    .bind(claim)
    .execute(&state.db.pool)
    .await
    .map_err(db_error("mark a mail failed"))?;
    Ok(())
}

/// The mail for a queued notification, or `None` while the dossier has no candidate account.
async fn compose(state: &AppState, kind: &str, dossier: &str, payload: &Payload) -> Result<Option<Mail>, ApiError> {
    let dossier_id = Uuid::parse_str(dossier).map_err(|e| ApiError::internal("read a mail's dossier", e))?;
    let Some(account) = accounts::candidate_by_dossier(&state.db, dossier_id).await? else { return Ok(None) };
    let summary = cachet_projections::queries::session(&state.db, account.session_id)
        .await?
        .ok_or_else(|| ApiError::internal("write a mail", "the dossier's session is not in the read models"))?;
    let config: SessionConfig =
        serde_json::from_value(summary.config).map_err(|e| ApiError::internal("read a session", e))?;
    let deadline = NaiveDate::parse_from_str(&summary.deadline, "%Y-%m-%d").unwrap_or(config.deposit_deadline);
    let to = account.identity.email.as_str();
    let name = account.identity.full_name();
    let space = format!("{}/dossiers/{dossier_id}", state.settings.public_url.trim_end_matches('/'));
    let notice =
        |kind: mail::Notice| mail::notice(kind, to, &name, &summary.title, &account.user_code, payload, &space);
    Ok(Some(match kind {
        "pre_registration" => {
            mail::pre_registration_confirmation(to, &name, &summary.title, &account.user_code, &format_date(deadline))
        }
        "deposit_receipt" => notice(mail::Notice::DepositReceipt),
        "received" => notice(mail::Notice::Received),
        "incomplete" => notice(mail::Notice::Incomplete),
        "complete" => notice(mail::Notice::Complete),
        "rejected" => notice(mail::Notice::Rejected),
        "convocation" => {
            let test = payload.test.as_deref().and_then(|code| config.tests.iter().find(|t| t.code.as_str() == code));
            let label = test.map_or_else(String::new, |t| format!("« {} » {}", t.label, crate::convocations::when(t)));
            notice(mail::Notice::Convocation { test: label })
        }
        "reminder" => notice(mail::Notice::Reminder { deadline: format_date(deadline) }),
        other => return Err(ApiError::internal("write a mail", format!("unknown kind {other}"))),
    }))
}

/// Queues, once per dossier and deadline, a reminder to every candidate still pre-registered
/// without a deposit two days before the deadline (Paris).
pub async fn queue_reminders(state: &AppState, now: chrono::DateTime<Utc>) -> Result<usize, ApiError> {
    let in_two_days = paris_date(now) + chrono::Duration::days(2);
    let rows = sqlx::query(&format!(
        "SELECT s.dossier_id, s.message FROM {STATUS} s JOIN {SESSIONS} e ON e.session_id = s.session_id \
         WHERE e.deadline = $1 AND s.status = 'pre_registered'"
    ))
    .bind(in_two_days.to_string())
    .fetch_all(&state.db.pool)
    .await
    .map_err(db_error("find the reminders due"))?;
    let mut conn = state.db.pool.acquire().await.map_err(db_error("queue a reminder"))?;
    for row in &rows {
        let dossier: String = row.try_get("dossier_id").map_err(db_error("read a reminder"))?;
        let message: String = row.try_get("message").map_err(db_error("read a reminder"))?;
        let note = Notification {
            mail_id: format!("reminder:{dossier}:{in_two_days}"),
            kind: "reminder",
            dossier_id: dossier,
            payload: Payload { message, deadline: Some(in_two_days.to_string()), ..Payload::default() },
            queued_at_us: now.timestamp_micros(),
        };
        notifications::queue(&mut conn, &note).await?;
    }
    Ok(rows.len())
}

/// The outbox's counts, for `/readyz`, the metrics and the office.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct OutboxCounts {
    pub pending: i64,
    pub failed: i64,
    pub sent: i64,
}

pub async fn counts(db: &ReadDb) -> Result<OutboxCounts, ApiError> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM mail_outbox GROUP BY state")
        .fetch_all(&db.pool)
        .await
        .map_err(db_error("count the mails"))?;
    let mut counts = OutboxCounts::default();
    for row in rows {
        let state: String = row.try_get("state").map_err(db_error("count the mails"))?;
        let n: i64 = row.try_get("n").map_err(db_error("count the mails"))?;
        match state.as_str() {
            "pending" | "sending" => counts.pending += n,
            "failed" => counts.failed += n,
            "sent" => counts.sent += n,
            _ => {}
        }
    }
    Ok(counts)
}

/// One mail as the office's page lists it.
#[derive(Clone, Debug)]
pub struct OutboxLine {
    pub mail_id: String,
    pub kind: String,
    pub dossier_id: String,
    pub state: String,
    pub attempts: i64,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub last_error: Option<String>,
    pub queued_at_us: i64,
    pub sent_at_us: Option<i64>,
}

/// The mails not sent (failed first), then the last ones sent.
pub async fn recent(db: &ReadDb, limit: i64) -> Result<Vec<OutboxLine>, ApiError> {
    let rows = sqlx::query(&format!(
        "SELECT mail_id, kind, dossier_id, state, attempts, recipient, subject, last_error, queued_at_us, sent_at_us \
         FROM mail_outbox ORDER BY CASE state WHEN 'failed' THEN 0 WHEN 'pending' THEN 1 WHEN 'sending' THEN 1 ELSE 2 END, \
         queued_at_us DESC, mail_id LIMIT {limit}"
    ))
    .fetch_all(&db.pool)
    .await
    .map_err(db_error("list the mails"))?;
    rows.iter()
        .map(|row| {
            let read = |e| ApiError::internal("list the mails", e);
            Ok(OutboxLine {
                mail_id: row.try_get("mail_id").map_err(read)?,
                kind: row.try_get("kind").map_err(read)?,
                dossier_id: row.try_get("dossier_id").map_err(read)?,
                state: row.try_get("state").map_err(read)?,
                attempts: row.try_get("attempts").map_err(read)?,
                recipient: row.try_get("recipient").map_err(read)?,
                subject: row.try_get("subject").map_err(read)?,
                last_error: row.try_get("last_error").map_err(read)?,
                queued_at_us: row.try_get("queued_at_us").map_err(read)?,
                sent_at_us: row.try_get("sent_at_us").map_err(read)?,
            })
        })
        .collect()
}

/// Puts a failed mail back in the queue, to be sent at once. Returns whether it was failed.
pub async fn resend(db: &ReadDb, mail_id: &str) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "UPDATE mail_outbox SET state = 'pending', attempts = 0, next_attempt_at_us = $1, claim = NULL, \
         last_error = NULL WHERE mail_id = $2 AND state = 'failed'",
    )
    .bind(Utc::now().timestamp_micros())
    .bind(mail_id)
    .execute(&db.pool)
    .await
    .map_err(db_error("re-send a mail"))?;
    Ok(done.rows_affected() == 1)
}
