//! The peer: the same command workload through cqrs-es 0.5 and postgres-es 0.5, a widely used
//! Rust event-sourcing framework. The aggregate wraps Cachet's own domain (`decide`, `evolve`),
//! so both sides run identical domain code; only the framework and store differ. Each command
//! loads the aggregate's events, applies them, handles the command and commits its events with
//! the sequence check postgres-es makes (its primary key on the aggregate and sequence).

use std::sync::Arc;
use std::time::Duration;

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState};
use cachet_domain::event::DomainEvent as _;
use cachet_domain::ids::{DossierId, SessionId};
use cachet_domain::session::SessionState;
use cachet_domain::Actor;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::workload;
use cachet_bench::measure::{closed_loop, Load};

#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerDossier(DossierState);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerEvent(DossierEvent);

impl cqrs_es::DomainEvent for PeerEvent {
    fn event_type(&self) -> String {
        self.0.event_type().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

pub struct PeerServices {
    session: SessionState,
}

#[derive(Debug)]
pub struct PeerError(String);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerError {}

impl Aggregate for PeerDossier {
    const TYPE: &'static str = "dossier";
    type Command = (DossierCommand, Actor);
    type Event = PeerEvent;
    type Error = PeerError;
    type Services = PeerServices;

    async fn handle(
        &mut self,
        (command, actor): Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let context = Context { now: chrono::Utc::now(), actor: &actor, session: &services.session };
        let events = decide(&self.0, &command, &context).map_err(|e| PeerError(e.to_string()))?;
        for event in events {
            sink.write(PeerEvent(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.0 = std::mem::take(&mut self.0).evolve(&event.0);
    }
}

/// postgres-es's tables, as its `db/init.sql` creates them.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
     payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, current_snapshot bigint CHECK (current_snapshot >= 0) \
     NOT NULL, payload json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
];

/// Creates the peer's tables and the same dossiers as Cachet's, written as postgres-es writes
/// them (JSON payloads, one row per event).
pub async fn seed(url: &str, session: SessionId, dossiers: usize) -> (PgPool, Vec<DossierId>) {
    let pool = PgPoolOptions::new().max_connections(64).connect(url).await.expect("the peer's database");
    for statement in SCHEMA {
        sqlx::query(statement).execute(&pool).await.expect("the peer's schema");
    }
    let mut ids = Vec::with_capacity(dossiers);
    let all: Vec<(DossierId, Vec<DossierEvent>)> = (0..dossiers)
        .map(|n| {
            let (dossier, _, events) = workload::dossier(n, session);
            (dossier, events)
        })
        .collect();
    for chunk in all.chunks(2_000) {
        let (mut aggregate, mut sequence, mut kind, mut payload) = (vec![], vec![], vec![], vec![]);
        for (dossier, events) in chunk {
            ids.push(*dossier);
            for (i, event) in events.iter().enumerate() {
                aggregate.push(dossier.as_uuid().to_string());
                sequence.push(i as i64 + 1);
                kind.push(event.event_type().to_owned());
                payload.push(serde_json::to_string(&PeerEvent(event.clone())).expect("JSON"));
            }
        }
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT 'dossier', a, s, t, '1', p::json, '{}'::json FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[]) AS u(a, s, t, p)",
        )
        .bind(aggregate)
        .bind(sequence)
        .bind(kind)
        .bind(payload)
        .execute(&pool)
        .await
        .expect("the peer's events");
    }
    sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
    (pool, ids)
}

pub async fn run(
    pool: PgPool,
    session: SessionId,
    dossiers: Arc<Vec<DossierId>>,
    clients: &[usize],
    duration: Duration,
) -> Vec<Load> {
    let services = PeerServices { session: workload::session_state(session) };
    let cqrs = Arc::new(postgres_es::postgres_cqrs::<PeerDossier>(pool, vec![], services));
    let mut loads = Vec::new();
    for &n in clients {
        let (cqrs, dossiers) = (cqrs.clone(), dossiers.clone());
        let load = closed_loop(n, Duration::from_millis(500), duration, move |client, i| {
            let (cqrs, dossiers) = (cqrs.clone(), dossiers.clone());
            async move {
                let dossier = workload::mine(&dossiers, client, n, i);
                cqrs.execute(&dossier.as_uuid().to_string(), (workload::command(), workload::staff()))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await;
        loads.push(load);
    }
    loads
}
