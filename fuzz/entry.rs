#![allow(dead_code)] // each fuzz target uses one of these functions; the corpus test uses them all.

//! What each fuzz target does with its input, shared by the targets (`fuzz_targets/`, run by
//! `cargo fuzz`) and by the ordinary test that replays the committed corpora
//! (`tests/fuzz_corpora`). Each function must return for any input, never panic; where the input
//! is accepted, it checks a property.

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState};
use cachet_domain::event::{Actor, DomainEvent, StaffRole};
use cachet_domain::ids::{CandidateId, DossierId, SessionId};
use cachet_domain::session::{SessionConfig, SessionEvent, SessionState};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

/// The event types an input's second byte picks from.
pub const EVENT_TYPES: [&str; 23] = [
    "PreRegistered",
    "PieceUploaded",
    "PieceRemoved",
    "RegistrationClosed",
    "PostalReceiptRecorded",
    "CounterReceiptRecorded",
    "IntakeRefused",
    "Rejected",
    "Transferred",
    "PieceReviewed",
    "MarkedIncomplete",
    "MarkedComplete",
    "MissingPieceReceived",
    "ReviewResumed",
    "Lapsed",
    "Withdrawn",
    "ConvocationPublished",
    "ConvocationWithheld",
    "ConvocationDownloaded",
    "SessionOpened",
    "DeadlineExtended",
    "Unknown",
    "",
];

/// Event decoding and upcasting: byte 0 is the schema version, byte 1 the event type, the rest the
/// stored payload. A decoded event re-encodes to bytes that decode to itself, and folds into a
/// state without panicking.
pub fn event(data: &[u8]) {
    let [version, kind, payload @ ..] = data else { return };
    let event_type = EVENT_TYPES[usize::from(*kind) % EVENT_TYPES.len()];
    let version = u16::from(*version % 3);
    if let Ok(event) = DossierEvent::decode(event_type, version, payload) {
        let again = DossierEvent::decode(event.event_type(), DossierEvent::SCHEMA_VERSION, &event.encode())
            .expect("an event re-decodes from its own encoding");
        assert_eq!(again, event);
        let state = DossierState::default().evolve(&event);
        let _ = state.candidate_message();
    }
    if let Ok(event) = SessionEvent::decode(event_type, version, payload) {
        let again = SessionEvent::decode(event.event_type(), SessionEvent::SCHEMA_VERSION, &event.encode())
            .expect("an event re-decodes from its own encoding");
        assert_eq!(again, event);
        let _ = SessionState::default().evolve(&event);
    }
}

/// The CSV import's reading: any bytes give lines or a French error, never a panic.
pub fn csv_import(data: &[u8]) {
    match cachet_api::import::parse(data) {
        Ok(lines) => assert!(!lines.is_empty(), "a file read has lines"),
        Err(error) => assert!(!error.to_string().is_empty(), "an error says why"),
    }
}

/// Upload type detection and file-name cleaning: recognised by content only, a name with no path.
pub fn upload(data: &[u8]) {
    if let Some(kind) = cachet_api::files::sniff(data) {
        let expected: &[u8] = match format!("{kind:?}").as_str() {
            "Pdf" => b"%PDF-",
            "Jpeg" => &[0xFF, 0xD8, 0xFF],
            _ => &[0x89, b'P', b'N', b'G'],
        };
        assert!(data.starts_with(expected), "{kind:?} recognised by its signature");
    }
    let name = cachet_api::files::sanitise_filename(&String::from_utf8_lossy(data));
    assert!(!name.contains('/') && !name.contains('\\'), "no path in {name:?}");
}

/// A command as JSON: deserialised, then decided in a few states by a candidate and by the office.
/// Whatever it decides folds into a state without panicking.
pub fn command(data: &[u8]) {
    let Ok(command) = serde_json::from_slice::<DossierCommand>(data) else { return };
    let session_id = SessionId::from_uuid(Uuid::from_u128(1));
    let candidate_id = CandidateId::from_uuid(Uuid::from_u128(2));
    let dossier_id = DossierId::from_uuid(Uuid::from_u128(3));
    let now = Utc.with_ymd_and_hms(2023, 7, 5, 10, 0, 0).single().expect("an instant");
    let config = SessionConfig { ..cachet_domain::demo::source_session() };
    let session = SessionState::default().evolve(&SessionEvent::SessionOpened { session_id, config });
    let registered = DossierState::default().evolve(&DossierEvent::PreRegistered {
        dossier_id,
        session_id,
        candidate_id,
        user_code: cachet_api::service::user_code_for(dossier_id),
        registered_at: now - chrono::Duration::days(30),
    });
    let actors =
        [Actor::Candidate { candidate_id }, Actor::Staff { account: "agent".to_owned(), role: StaffRole::Staff }];
    for state in [DossierState::default(), registered] {
        for actor in &actors {
            let ctx = Context { now, actor, session: &session };
            if let Ok(events) = decide(&state, &command, &ctx) {
                let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
                let _ = after.candidate_message();
            }
        }
    }
}
