//! `decide` and `evolve` per operation, measured by criterion. The estimates are read back from
//! criterion's own files, so the suite's table shows the same figures criterion prints.

use std::path::Path;
use std::time::Duration;

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState};
use cachet_domain::ids::SessionId;
use cachet_store::typed::{append_request, decode};
use cachet_store::{ExpectedVersion, StoredEvent};
use chrono::{Duration as Days, Utc};
use criterion::Criterion;
use std::hint::black_box;
use uuid::Uuid;

use crate::commands::metadata;
use crate::workload;

/// (operation, mean time per call).
pub fn run(output: &Path, quick: bool) -> Vec<(&'static str, Duration)> {
    let mut criterion = Criterion::default()
        .output_directory(output)
        .warm_up_time(Duration::from_millis(if quick { 200 } else { 1_000 }))
        .measurement_time(Duration::from_millis(if quick { 500 } else { 3_000 }))
        .without_plots();
    let session_id = SessionId::from_uuid(Uuid::new_v4());
    let session = workload::session_state(session_id);
    let (_, _, events) = workload::dossier(0, session_id);
    let under_review = DossierState::fold(&events);
    let pre_registered = DossierState::fold(&events[..1]);
    let staff = workload::staff();
    let now = Utc::now();
    let context = Context { now, actor: &staff, session: &session };
    let receipt = DossierCommand::RecordPostalReceipt {
        postmark_date: workload::deadline() - Days::days(1),
        arrival_date: workload::deadline() + Days::days(2),
        incident: None,
    };
    let stored: Vec<StoredEvent> = {
        let request = append_request(Uuid::new_v4(), ExpectedVersion::Exact(0), &metadata(staff.clone()), now, &events);
        request
            .events
            .into_iter()
            .enumerate()
            .map(|(i, e)| StoredEvent {
                position: i as i64 + 1,
                event_id: e.event_id,
                stream_id: request.stream_id,
                stream_type: request.stream_type.clone(),
                stream_version: i as i64 + 1,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
                metadata: e.metadata,
                command_id: Some(request.command_id),
                occurred_at: e.occurred_at,
                recorded_at: e.occurred_at,
                prev_hash: vec![0; 32],
                hash: vec![0; 32],
            })
            .collect()
    };

    let names = [
        "decide: revue d'une pièce (dossier de 5 événements)",
        "decide: réception postale (jugement du cachet)",
        "evolve: un événement (moyenne sur les 5 d'un dossier)",
        "décodage JSON + evolve: un événement stocké (moyenne sur 5)",
    ];
    criterion.bench_function("decide_review_piece", |b| {
        b.iter(|| decide(black_box(&under_review), black_box(&workload::command()), &context))
    });
    criterion.bench_function("decide_postal_receipt", |b| {
        b.iter(|| decide(black_box(&pre_registered), black_box(&receipt), &context))
    });
    criterion.bench_function("evolve_5_events", |b| b.iter(|| DossierState::fold(black_box(&events))));
    criterion.bench_function("decode_evolve_5_events", |b| {
        b.iter(|| {
            black_box(&stored)
                .iter()
                .fold(DossierState::default(), |state, e| state.evolve(&decode::<DossierEvent>(e).expect("an event")))
        })
    });
    criterion.final_summary();
    let ids = ["decide_review_piece", "decide_postal_receipt", "evolve_5_events", "decode_evolve_5_events"];
    let divisors = [1.0, 1.0, 5.0, 5.0];
    names
        .into_iter()
        .zip(ids)
        .zip(divisors)
        .map(|((name, id), divisor)| {
            let file = output.join(id).join("new").join("estimates.json");
            let text = std::fs::read_to_string(&file).expect("criterion's estimates");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let ns = json["mean"]["point_estimate"].as_f64().expect("a mean") / divisor;
            (name, Duration::from_nanos(ns.round() as u64))
        })
        .collect()
}
