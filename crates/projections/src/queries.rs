//! Reads of the read models, as the API and the pages need them: a dossier's status and pieces,
//! a session's work queues and statistics.

use std::collections::BTreeMap;

use cachet_domain::deadline::Channel;
use cachet_domain::dossier::Status;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::ReadDb;
use crate::dossiers::{dimension, COUNTS, PIECES, SESSIONS, STATUS};
use crate::ProjectionError;

/// How the dossier was deposited, and why it was on time or late.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DepositInfo {
    /// `online`, `post` or `counter`.
    pub channel: String,
    /// E.g. « par voie postale ».
    pub channel_label: String,
    pub on_time: bool,
    /// E.g. « Cachet de la poste du 05/07/2023, dans les délais (date limite : 06/07/2023) ».
    pub explanation: String,
}

/// What the candidate sees of their dossier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DossierStatus {
    pub dossier_id: Uuid,
    pub session_id: Uuid,
    #[serde(skip)]
    pub candidate_id: Option<Uuid>,
    pub user_code: String,
    /// `pre_registered`, `deposited`, `under_review`, `incomplete`, `complete`, `rejected`,
    /// `lapsed` or `withdrawn`.
    pub status: String,
    /// The state in French, e.g. « en cours d'instruction ».
    pub status_label: String,
    /// The message of the espace sécurisé, quoted from the source document where it has one.
    pub message: String,
    /// The missing pieces, when the dossier is incomplete.
    pub missing: Vec<String>,
    pub deposit: Option<DepositInfo>,
    /// Why the dossier was rejected.
    pub rejection: Option<String>,
    /// The dossier's version: its `ETag`.
    pub version: i64,
    /// The global position of its last event.
    pub position: i64,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn uuid(text: &str) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(text).map_err(|e| ProjectionError::Corrupt(e.to_string()))
}

fn status_label(code: &str) -> String {
    Status::from_code(code).map_or_else(|| code.to_owned(), |s| s.label().to_owned())
}

fn channel_label(code: &str) -> String {
    [Channel::Online, Channel::Post, Channel::Counter]
        .into_iter()
        .find(|c| c.code() == code)
        .map_or_else(|| code.to_owned(), |c| c.label().to_owned())
}

fn status_from_row(row: &AnyRow) -> Result<DossierStatus, ProjectionError> {
    let status: String = row.try_get("status")?;
    let missing: String = row.try_get("missing")?;
    let channel: Option<String> = row.try_get("deposit_channel")?;
    let on_time: Option<i64> = row.try_get("deposit_on_time")?;
    let explanation: Option<String> = row.try_get("deposit_explanation")?;
    let candidate: String = row.try_get("candidate_id")?;
    Ok(DossierStatus {
        dossier_id: uuid(&row.try_get::<String, _>("dossier_id")?)?,
        session_id: uuid(&row.try_get::<String, _>("session_id")?)?,
        candidate_id: Uuid::parse_str(&candidate).ok(),
        user_code: row.try_get("user_code")?,
        status_label: status_label(&status),
        status,
        message: row.try_get("message")?,
        missing: serde_json::from_str(&missing).map_err(|e| ProjectionError::Corrupt(e.to_string()))?,
        deposit: match (channel, on_time, explanation) {
            (Some(channel), Some(on_time), Some(explanation)) => Some(DepositInfo {
                channel_label: channel_label(&channel),
                channel,
                on_time: on_time != 0,
                explanation,
            }),
            _ => None,
        },
        rejection: row.try_get("rejection")?,
        version: row.try_get("version")?,
        position: row.try_get("position")?,
        registered_at: micros(row.try_get("registered_at_us")?),
        updated_at: micros(row.try_get("updated_at_us")?),
    })
}

const STATUS_COLUMNS: &str = "dossier_id, session_id, candidate_id, user_code, status, message, missing, \
     deposit_channel, deposit_on_time, deposit_explanation, rejection, version, position, registered_at_us, updated_at_us";

pub async fn dossier_status(db: &ReadDb, dossier_id: Uuid) -> Result<Option<DossierStatus>, ProjectionError> {
    let row = sqlx::query(&format!("SELECT {STATUS_COLUMNS} FROM {STATUS} WHERE dossier_id = $1"))
        .bind(dossier_id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(status_from_row).transpose()
}

pub async fn dossier_by_user_code(db: &ReadDb, user_code: &str) -> Result<Option<DossierStatus>, ProjectionError> {
    let row = sqlx::query(&format!("SELECT {STATUS_COLUMNS} FROM {STATUS} WHERE user_code = $1"))
        .bind(user_code.to_owned())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(status_from_row).transpose()
}

/// One piece of a dossier and its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PieceRow {
    pub code: String,
    pub label: String,
    /// `registration_form` (the red dot), `required` or `conditional`.
    pub kind: String,
    /// The red dot: the online registration cannot be closed without this piece.
    pub red_dot: bool,
    /// `missing`, `deposited`, `received_on_paper`, `awaiting_review`, `accepted` or `refused`.
    pub state: String,
    /// The state in French, e.g. « refusée ».
    pub state_label: String,
    /// Why the piece was refused.
    pub reason: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
}

pub fn piece_state_label(code: &str) -> &'static str {
    match code {
        "deposited" => "déposée",
        "received_on_paper" => "reçue par courrier ou à l'accueil",
        "awaiting_review" => "reçue, en attente d'examen",
        "accepted" => "acceptée",
        "refused" => "refusée",
        _ => "manquante",
    }
}

pub async fn dossier_pieces(db: &ReadDb, dossier_id: Uuid) -> Result<Vec<PieceRow>, ProjectionError> {
    let rows = sqlx::query(&format!(
        "SELECT piece_code, label, kind, state, reason, filename, sha256, media_type, size FROM {PIECES} \
         WHERE dossier_id = $1 ORDER BY ord"
    ))
    .bind(dossier_id.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            Ok(PieceRow {
                code: row.try_get("piece_code")?,
                label: row.try_get("label")?,
                red_dot: kind == "registration_form",
                kind,
                state_label: piece_state_label(&state).to_owned(),
                state,
                reason: row.try_get("reason")?,
                filename: row.try_get("filename")?,
                sha256: row.try_get("sha256")?,
                media_type: row.try_get("media_type")?,
                size: row.try_get("size")?,
            })
        })
        .collect()
}

/// A staff work queue of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    ToTransfer,
    ToReview,
    Incomplete,
    Complete,
    Rejected,
    Lapsed,
    AwaitingDeposit,
    Withdrawn,
}

impl Queue {
    pub const ALL: [Queue; 8] = [
        Queue::ToTransfer,
        Queue::ToReview,
        Queue::Incomplete,
        Queue::Complete,
        Queue::Rejected,
        Queue::Lapsed,
        Queue::AwaitingDeposit,
        Queue::Withdrawn,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Queue::ToTransfer => "to_transfer",
            Queue::ToReview => "to_review",
            Queue::Incomplete => "incomplete",
            Queue::Complete => "complete",
            Queue::Rejected => "rejected",
            Queue::Lapsed => "lapsed",
            Queue::AwaitingDeposit => "awaiting_deposit",
            Queue::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.code() == code)
    }

    pub fn status(self) -> Status {
        match self {
            Queue::ToTransfer => Status::Deposited,
            Queue::ToReview => Status::UnderReview,
            Queue::Incomplete => Status::Incomplete,
            Queue::Complete => Status::Complete,
            Queue::Rejected => Status::Rejected,
            Queue::Lapsed => Status::Lapsed,
            Queue::AwaitingDeposit => Status::PreRegistered,
            Queue::Withdrawn => Status::Withdrawn,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueuePage {
    pub queue: String,
    /// Dossiers in the queue.
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    /// Oldest pre-registration first.
    pub items: Vec<DossierStatus>,
}

/// The last page a work queue serves.
pub const MAX_PAGE: i64 = 1_000_000;
/// The largest page of a work queue.
pub const MAX_PER_PAGE: i64 = 200;

/// How to read one page of an ordered list of `total` items: from the nearer end, so no page
/// skips more than half the list. `reversed` reads from the other end (the caller puts the page
/// back in order), `skip` then counts from that end. A page past the end (a stale link, say) is
/// read as it is: empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageScan {
    pub reversed: bool,
    pub limit: i64,
    pub skip: i64,
}

impl PageScan {
    /// The page that starts `offset` items in, of up to `per_page` items.
    pub fn of(total: i64, offset: i64, per_page: i64) -> Self {
        let rows = (total - offset).clamp(0, per_page);
        let from_end = total - offset - rows;
        if rows > 0 && from_end < offset {
            Self { reversed: true, limit: rows, skip: from_end }
        } else {
            Self { reversed: false, limit: per_page, skip: offset }
        }
    }
}

/// One page of a work queue; `page` is clamped to `1..=MAX_PAGE` and `per_page` to
/// `1..=MAX_PER_PAGE` (the API refuses values outside them before calling this).
pub async fn queue(
    db: &ReadDb,
    session_id: Uuid,
    queue: Queue,
    page: i64,
    per_page: i64,
) -> Result<QueuePage, ProjectionError> {
    let (page, per_page) = (page.clamp(1, MAX_PAGE), per_page.clamp(1, MAX_PER_PAGE));
    // Both are clamped, so this cannot overflow; saturate all the same rather than panic.
    let offset = (page - 1).saturating_mul(per_page);
    let total = status_counts(db, session_id).await?.get(queue.status().code()).copied().unwrap_or(0);
    // The page's dossiers are picked on the queue's index alone, before their rows are read: a
    // page in the middle of a large queue skips index entries, not rows.
    let PageScan { reversed, limit, skip } = PageScan::of(total, offset, per_page);
    let scan = if reversed { "DESC" } else { "ASC" };
    let columns = STATUS_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
    let rows = sqlx::query(&format!(
        "SELECT {columns} FROM (SELECT dossier_id FROM {STATUS} WHERE session_id = $1 AND status = $2 \
         ORDER BY registered_at_us {scan}, dossier_id {scan} LIMIT {limit} OFFSET {skip}) p \
         JOIN {STATUS} s ON s.dossier_id = p.dossier_id ORDER BY s.registered_at_us, s.dossier_id"
    ))
    .bind(session_id.to_string())
    .bind(queue.status().code())
    .fetch_all(&db.pool)
    .await?;
    let items = rows.iter().map(status_from_row).collect::<Result<_, _>>()?;
    Ok(QueuePage { queue: queue.code().to_owned(), total, page, per_page, items })
}

/// Counts of a session's dossiers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Statistics {
    pub total: i64,
    /// By status code.
    pub by_status: BTreeMap<String, i64>,
    /// By deposit channel code (deposited dossiers only).
    pub by_channel: BTreeMap<String, i64>,
    /// By kind of rejection reason (`late`, `transmission_incident`, `refused_form`, `non_conforming`).
    pub by_rejection: BTreeMap<String, i64>,
}

/// A session's counts under one dimension of [`COUNTS`], as the read model keeps them (no count
/// of the session's rows).
async fn counts(db: &ReadDb, session_id: Uuid, dimension: &str) -> Result<BTreeMap<String, i64>, ProjectionError> {
    let rows =
        sqlx::query(&format!("SELECT code, n FROM {COUNTS} WHERE session_id = $1 AND dimension = $2 AND n <> 0"))
            .bind(session_id.to_string())
            .bind(dimension)
            .fetch_all(&db.pool)
            .await?;
    rows.iter().map(|row| Ok((row.try_get::<String, _>("code")?, row.try_get::<i64, _>("n")?))).collect()
}

/// The number of a session's dossiers in each status.
pub async fn status_counts(db: &ReadDb, session_id: Uuid) -> Result<BTreeMap<String, i64>, ProjectionError> {
    counts(db, session_id, dimension::STATUS).await
}

/// A session's statistics, from the counts the read model keeps: one query whatever its size.
pub async fn statistics(db: &ReadDb, session_id: Uuid) -> Result<Statistics, ProjectionError> {
    let rows = sqlx::query(&format!("SELECT dimension, code, n FROM {COUNTS} WHERE session_id = $1 AND n <> 0"))
        .bind(session_id.to_string())
        .fetch_all(&db.pool)
        .await?;
    let mut stats = Statistics::default();
    for row in &rows {
        let (code, n) = (row.try_get::<String, _>("code")?, row.try_get::<i64, _>("n")?);
        let counts = match row.try_get::<String, _>("dimension")?.as_str() {
            dimension::STATUS => {
                stats.total += n;
                &mut stats.by_status
            }
            dimension::CHANNEL => &mut stats.by_channel,
            dimension::REJECTION => &mut stats.by_rejection,
            _ => continue,
        };
        counts.insert(code, n);
    }
    Ok(stats)
}

/// An exam session as the read model keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SessionSummary {
    pub session_id: Uuid,
    pub title: String,
    pub organiser: String,
    /// The deposit deadline in force (YYYY-MM-DD, Europe/Paris).
    pub deadline: String,
    /// The full configuration: catalogue of pieces, counter hours, tests.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

pub async fn session(db: &ReadDb, session_id: Uuid) -> Result<Option<SessionSummary>, ProjectionError> {
    let row = sqlx::query(&format!(
        "SELECT session_id, title, organiser, deadline, config FROM {SESSIONS} WHERE session_id = $1"
    ))
    .bind(session_id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|row| {
        let config: String = row.try_get("config")?;
        Ok(SessionSummary {
            session_id,
            title: row.try_get("title")?,
            organiser: row.try_get("organiser")?,
            deadline: row.try_get("deadline")?,
            config: serde_json::from_str(&config).map_err(|e| ProjectionError::Corrupt(e.to_string()))?,
        })
    })
    .transpose()
}

impl DossierStatus {
    /// The same row, computed from a dossier state rather than read (for as-of answers).
    pub fn from_state(
        state: &cachet_domain::dossier::DossierState,
        version: i64,
        position: i64,
        updated_at: DateTime<Utc>,
    ) -> Option<Self> {
        let view = crate::status::StatusView::from_state(state, version, position)?;
        Some(DossierStatus {
            dossier_id: view.dossier_id.as_uuid(),
            session_id: view.session_id.as_uuid(),
            candidate_id: state.candidate_id.map(|c| c.as_uuid()),
            user_code: view.user_code.to_string(),
            status: view.status.code().to_owned(),
            status_label: view.status.label().to_owned(),
            message: view.message,
            missing: view.missing,
            deposit: view.deposit.map(|d| DepositInfo {
                channel: d.channel.code().to_owned(),
                channel_label: d.channel.label().to_owned(),
                on_time: d.on_time,
                explanation: d.explanation,
            }),
            rejection: view.rejection,
            version,
            position,
            registered_at: state.registered_at.unwrap_or_default(),
            updated_at,
        })
    }
}

#[cfg(test)]
mod page_scan_tests {
    use super::PageScan;

    #[test]
    fn pages_are_read_from_the_nearer_end_and_never_skip_more_than_half() {
        // 5 items, 2 per page: pages 1 and 2 from the start, page 3 (the last, 1 item) from the end.
        assert_eq!(PageScan::of(5, 0, 2), PageScan { reversed: false, limit: 2, skip: 0 });
        assert_eq!(PageScan::of(5, 2, 2), PageScan { reversed: true, limit: 2, skip: 1 });
        assert_eq!(PageScan::of(5, 4, 2), PageScan { reversed: true, limit: 1, skip: 0 });
        // Past the end: read as asked, empty.
        assert_eq!(PageScan::of(5, 6, 2), PageScan { reversed: false, limit: 2, skip: 6 });
        for total in 0..40 {
            for offset in (0..45).step_by(3) {
                let scan = PageScan::of(total, offset, 3);
                assert!(scan.skip <= total / 2 || offset >= total, "{total} {offset}: {scan:?}");
            }
        }
    }
}
