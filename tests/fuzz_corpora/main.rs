//! The fuzz corpora (`fuzz/corpus/<target>/`, grown by `cargo +nightly fuzz run <target>` and
//! committed) replayed as ordinary tests: every input the fuzzers kept still runs through the
//! same code (`fuzz/entry.rs`) without a panic, on the stable compiler, in CI.

#[path = "../../fuzz/entry.rs"]
mod entry;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut inputs = 0;
    for file in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
        let path = file.expect("an entry").path();
        let data = std::fs::read(&path).expect("an input");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panics", path.display());
        inputs += 1;
    }
    assert!(inputs >= 5, "{target}: a corpus of {inputs} inputs");
}

#[test]
fn the_event_corpus_decodes_or_is_refused() {
    replay("event", entry::event);
}

#[test]
fn the_csv_import_corpus_reads_or_is_refused_in_french() {
    replay("csv_import", entry::csv_import);
}

#[test]
fn the_upload_corpus_is_recognised_by_content_only() {
    replay("upload", entry::upload);
}

#[test]
fn the_command_corpus_decides_or_is_refused() {
    replay("command", entry::command);
}

/// Writes the seed inputs the fuzzers start from (run once, by hand, then commit them):
/// `cargo test --test fuzz_corpora -- --ignored write_seeds`.
#[test]
#[ignore = "writes the seed corpora"]
fn write_seeds() {
    use cachet_domain::dossier::*;
    use cachet_domain::event::DomainEvent;
    use cachet_domain::ids::*;
    use cachet_domain::session::SessionEvent;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let folder = root.join(target);
        std::fs::create_dir_all(&folder).expect("a folder");
        std::fs::write(folder.join(name), bytes).expect("a seed");
    };
    let day = chrono::NaiveDate::from_ymd_opt(2023, 7, 5).expect("a date");
    let at = day.and_hms_opt(10, 0, 0).expect("a time").and_utc();
    let dossier_id = DossierId::from_uuid(uuid::Uuid::from_u128(3));
    let session_id = SessionId::from_uuid(uuid::Uuid::from_u128(1));
    let candidate_id = CandidateId::from_uuid(uuid::Uuid::from_u128(2));
    let piece = PieceCode::parse("etat-services").expect("a piece");
    let verdict = cachet_domain::deadline::judge_postmark(day, day);
    let events = [
        DossierEvent::PreRegistered {
            dossier_id,
            session_id,
            candidate_id,
            user_code: cachet_api::service::user_code_for(dossier_id),
            registered_at: at,
        },
        DossierEvent::PostalReceiptRecorded { postmark_date: day, arrival_date: day, incident: None, verdict },
        DossierEvent::Transferred,
        DossierEvent::PieceReviewed { piece: piece.clone(), review: PieceReview::Missing },
        DossierEvent::Rejected { reason: RejectionReason::Late { verdict } },
        DossierEvent::Withdrawn { at, reason: Some("raison".to_owned()) },
    ];
    for (n, event) in events.iter().enumerate() {
        let index = entry::EVENT_TYPES.iter().position(|t| *t == event.event_type()).expect("listed") as u8;
        let mut bytes = vec![1, index];
        bytes.extend(event.encode());
        write("event", &format!("seed-{n}"), &bytes);
    }
    let opened = SessionEvent::SessionOpened { session_id, config: cachet_domain::demo::source_session() };
    let mut bytes = vec![1, 19];
    bytes.extend(opened.encode());
    write("event", "seed-session", &bytes);
    write("event", "seed-empty", b"");

    for (n, csv) in [
        "code utilisateur;cachet de la poste;date d'arrivée;incident\nABCD2345;05/07/2023;07/07/2023;\n",
        "code utilisateur,cachet de la poste,date d'arrivée\nABCD2345,2023-07-05,2023-07-07\n",
        "\u{feff}code utilisateur;cachet de la poste;date d'arrivée;incident\nABCD2345;06/07/2023;07/07/2023;grève ou retard\n",
        "code utilisateur;cachet\n",
        "",
    ]
    .iter()
    .enumerate()
    {
        write("csv_import", &format!("seed-{n}"), csv.as_bytes());
    }
    for (n, bytes) in [
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
        vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'],
        vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
        b"../../etc/passwd".to_vec(),
        b"C:\\Users\\moi\\pi\xc3\xa8ce.pdf".to_vec(),
    ]
    .iter()
    .enumerate()
    {
        write("upload", &format!("seed-{n}"), bytes);
    }
    let commands = [
        DossierCommand::RecordPostalReceipt { postmark_date: day, arrival_date: day, incident: None },
        DossierCommand::RecordCounterReceipt { received_at: at },
        DossierCommand::Transfer,
        DossierCommand::ReviewPiece { piece: piece.clone(), review: PieceReview::Accepted },
        DossierCommand::ConcludeReview,
        DossierCommand::Reject { detail: "non signé".to_owned() },
        DossierCommand::Withdraw { reason: None },
        DossierCommand::CloseRegistration,
        DossierCommand::RemovePiece { piece },
    ];
    for (n, command) in commands.iter().enumerate() {
        write("command", &format!("seed-{n}"), &serde_json::to_vec(command).expect("JSON"));
    }
}
