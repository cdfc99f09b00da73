//! Domain events through the real store: folding them one by one as they are decided equals
//! folding them back from storage, on both backends.

use std::sync::Arc;

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierState, FileRef, MediaType, PieceReview};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId, Sha256Hex, UserCode};
use cachet_domain::session::{SessionEvent, SessionState};
use cachet_domain::Actor;
use cachet_store::typed::{append_request, load, Metadata};
use cachet_store::{EventStore, ExpectedVersion};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use crate::contract::Harness;
use crate::postgres::PgHarness;
use crate::sqlite::SqliteHarness;

fn session() -> SessionState {
    let config = cachet_domain::demo::source_session();
    SessionState::fold(&[SessionEvent::SessionOpened { session_id: SessionId::from_uuid(Uuid::from_u128(7)), config }])
}

fn file(n: u8) -> FileRef {
    FileRef {
        sha256: Sha256Hex::parse(&format!("{n:02x}").repeat(32)).unwrap(),
        size: 1000 + u64::from(n),
        media_type: MediaType::Pdf,
        filename: format!("piece-{n}.pdf"),
    }
}

/// A step of a random history: which command, and how long after the previous step.
fn command(op: u8, n: u8) -> (DossierCommand, bool) {
    let code = |c: &str| PieceCode::parse(c).unwrap();
    let pieces = ["dossier-preinscription", "etat-services", "amenagement-epreuves"];
    let any_piece = code(pieces[usize::from(n) % 3]);
    let date = NaiveDate::from_ymd_opt(2023, 7, 1).unwrap() + Duration::days(i64::from(n % 10));
    match op % 12 {
        0 => (DossierCommand::UploadPiece { piece: any_piece, file: file(n) }, true),
        1 => (DossierCommand::RemovePiece { piece: any_piece }, true),
        2 => (DossierCommand::CloseRegistration, true),
        3 => (
            DossierCommand::RecordPostalReceipt {
                postmark_date: date,
                arrival_date: date + Duration::days(2),
                incident: None,
            },
            false,
        ),
        4 => (DossierCommand::Transfer, false),
        5 => (DossierCommand::ReviewPiece { piece: any_piece, review: PieceReview::Accepted }, false),
        6 => (DossierCommand::ReviewPiece { piece: any_piece, review: PieceReview::Missing }, false),
        7 => (DossierCommand::ConcludeReview, false),
        8 => (DossierCommand::UploadMissingPiece { piece: any_piece, file: file(n) }, true),
        9 => (DossierCommand::Withdraw { reason: Some("mutation".to_owned()) }, true),
        10 => (DossierCommand::Lapse, false),
        _ => (
            DossierCommand::ReviewPiece {
                piece: any_piece,
                review: PieceReview::Refused { reason: "illisible".to_owned() },
            },
            false,
        ),
    }
}

async fn replay_history(store: Arc<dyn EventStore>, steps: Vec<(u8, u8, u16)>) -> Result<(), TestCaseError> {
    let session = session();
    let dossier = DossierId::from_uuid(Uuid::new_v4());
    let candidate = CandidateId::from_uuid(Uuid::new_v4());
    let candidate_actor = Actor::Candidate { candidate_id: candidate };
    let staff = Actor::Staff { account: "agent".to_owned(), role: StaffRole::Staff };
    let mut now: DateTime<Utc> = "2023-06-20T08:00:00Z".parse().unwrap();
    let mut live = DossierState::default();
    let mut version = 0;

    let pre_register = DossierCommand::PreRegister {
        dossier_id: dossier,
        session_id: session.id.unwrap(),
        candidate_id: candidate,
        user_code: UserCode::parse("AB3KX9QZ").unwrap(),
    };
    let mut history = vec![(pre_register, true)];
    history.extend(steps.iter().map(|(op, n, _)| command(*op, *n)));
    let gaps = std::iter::once(0).chain(steps.iter().map(|(_, _, minutes)| *minutes));

    for ((cmd, by_candidate), gap) in history.into_iter().zip(gaps) {
        now += Duration::minutes(i64::from(gap) * 10);
        let actor = if by_candidate { &candidate_actor } else { &staff };
        let Ok(events) = decide(&live, &cmd, &Context { now, actor, session: &session }) else { continue };
        if events.is_empty() {
            continue;
        }
        let metadata = Metadata {
            actor: actor.clone(),
            command_id: Uuid::new_v4(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
        };
        let request = append_request(
            dossier.as_uuid(),
            ExpectedVersion::Exact(version),
            &metadata,
            cmd.occurred_at(now),
            &events,
        );
        version = store.append(request).await.unwrap().stream_version;
        live = events.iter().fold(live, DossierState::evolve);
    }
    let (stored, stored_version) = load(&*store, dossier.as_uuid()).await.unwrap();
    prop_assert_eq!(stored_version, version);
    prop_assert_eq!(DossierState::fold(&stored), live);
    Ok(())
}

fn steps() -> impl Strategy<Value = Vec<(u8, u8, u16)>> {
    proptest::collection::vec((any::<u8>(), any::<u8>(), 0_u16..400), 1..40)
}

fn check_folding(runtime: &tokio::runtime::Runtime, store: Arc<dyn EventStore>) {
    proptest!(ProptestConfig::with_cases(24), |(history in steps())| {
        runtime.block_on(replay_history(store.clone(), history))?;
    });
}

#[test]
fn folding_decided_events_equals_folding_them_from_sqlite() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let harness = runtime.block_on(SqliteHarness::new()).unwrap();
    check_folding(&runtime, runtime.block_on(harness.open()));
}

#[test]
fn folding_decided_events_equals_folding_them_from_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(harness) = runtime.block_on(PgHarness::new()) else { return };
    check_folding(&runtime, runtime.block_on(harness.open()));
    runtime.block_on(harness.finish());
}
