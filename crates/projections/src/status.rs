//! The candidate's status view: for each dossier, its state, the exact message of `domain.md`
//! (with the Paris date and time where it has one), the missing pieces, the deposit receipt
//! (channel and decisive date) and the rejection reason.

use std::collections::BTreeMap;

use cachet_domain::deadline::Channel;
use cachet_domain::dossier::{DossierEvent, DossierState, Status};
use cachet_domain::event::DomainEvent;
use cachet_domain::ids::{DossierId, SessionId, UserCode};
use cachet_store::typed::decode;
use cachet_store::{EventStore, StoredEvent};
use serde::Serialize;

use crate::fold::fold_dossiers;
use crate::ProjectionError;

/// How the dossier was deposited, and why it was on time or late.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DepositReceipt {
    pub channel: Channel,
    pub on_time: bool,
    /// E.g. « Cachet de la poste du 05/07/2023, dans les délais (date limite : 06/07/2023) ».
    pub explanation: String,
}

/// One row of the status view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusView {
    pub dossier_id: DossierId,
    pub session_id: SessionId,
    pub user_code: UserCode,
    pub status: Status,
    /// The message the candidate reads.
    pub message: String,
    pub missing: Vec<String>,
    pub deposit: Option<DepositReceipt>,
    pub rejection: Option<String>,
    /// The dossier stream's version, for `ETag`.
    pub version: i64,
    /// The global position of the dossier's last event.
    pub position: i64,
}

impl StatusView {
    /// The row for a dossier state, `None` before pre-registration.
    pub fn from_state(state: &DossierState, version: i64, position: i64) -> Option<Self> {
        let message = state.candidate_message()?;
        Some(Self {
            dossier_id: state.id?,
            session_id: state.session_id?,
            user_code: state.user_code.clone()?,
            status: state.status,
            message: message.text,
            missing: message.missing,
            deposit: state.deposit.as_ref().map(|d| DepositReceipt {
                channel: d.channel,
                on_time: d.verdict.on_time,
                explanation: d.verdict.explanation(),
            }),
            rejection: state.rejection.as_ref().map(|r| r.message()),
            version,
            position,
        })
    }
}

/// The status views of every dossier, folded in memory from the global order.
#[derive(Default)]
pub struct StatusViews {
    dossiers: BTreeMap<DossierId, (DossierState, i64, i64)>,
    position: i64,
}

impl StatusViews {
    /// Folds one stored event; events of other stream types are skipped.
    pub fn apply(&mut self, stored: &StoredEvent) -> Result<(), ProjectionError> {
        self.position = stored.position;
        if stored.stream_type != DossierEvent::STREAM_TYPE {
            return Ok(());
        }
        let event: DossierEvent = decode(stored)?;
        let id = DossierId::from_uuid(stored.stream_id);
        let (state, version, position) = self.dossiers.entry(id).or_default();
        state.apply(&event);
        *version = stored.stream_version;
        *position = stored.position;
        Ok(())
    }

    /// Rebuilds every view from position 0, streaming the log ([`crate::fold`]).
    pub async fn rebuild(store: &dyn EventStore) -> Result<Self, ProjectionError> {
        let folded = fold_dossiers(store, None).await?;
        let dossiers = folded
            .dossiers
            .into_iter()
            .map(|(id, d)| (DossierId::from_uuid(id), (d.state, d.version, d.position)))
            .collect();
        Ok(Self { dossiers, position: folded.position })
    }

    /// The last position folded.
    pub fn position(&self) -> i64 {
        self.position
    }

    pub fn get(&self, id: DossierId) -> Option<StatusView> {
        self.dossiers.get(&id).and_then(|(state, version, position)| StatusView::from_state(state, *version, *position))
    }

    pub fn iter(&self) -> impl Iterator<Item = StatusView> + '_ {
        self.dossiers
            .values()
            .filter_map(|(state, version, position)| StatusView::from_state(state, *version, *position))
    }
}
