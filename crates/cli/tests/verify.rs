//! `cachet verify` run as an auditor would: on an intact store, then after tampering.

use std::process::Command;

use cachet_store::sqlite::SqliteEventStore;
use cachet_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use sqlx::{Connection, Executor, SqliteConnection};
use uuid::Uuid;

fn cachet(data_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cachet"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CACHET_DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

async fn store_with_events(path: &std::path::Path, count: usize) {
    let store = SqliteEventStore::open(path).await.unwrap();
    for n in 0..count {
        let request = AppendRequest {
            stream_id: Uuid::new_v4(),
            stream_type: "test".to_owned(),
            expected: ExpectedVersion::Exact(0),
            command_id: Uuid::new_v4(),
            events: vec![NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "TestHappened".to_owned(),
                schema_version: 1,
                payload: format!(r#"{{"type":"TestHappened","n":{n}}}"#).into_bytes(),
                metadata: b"{}".to_vec(),
                occurred_at: chrono::Utc::now(),
            }],
            read_guards: Vec::new(),
        };
        store.append(request).await.unwrap();
    }
}

#[tokio::test]
async fn verify_reports_an_intact_chain_then_names_the_position_an_auditor_must_look_at() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cachet.sqlite");
    store_with_events(&db, 5).await;

    let (code, out) = cachet(dir.path(), &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Chaîne intègre : 5 événements vérifiés, dernière position 5"), "{out}");

    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    conn.execute("DROP TRIGGER events_no_update").await.unwrap();
    conn.execute("UPDATE events SET payload = CAST('{\"type\":\"TestHappened\",\"n\":99}' AS BLOB) WHERE position = 3")
        .await
        .unwrap();
    conn.close().await.unwrap();

    let (code, out) = cachet(dir.path(), &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Chaîne ROMPUE à la position 3 : le contenu enregistré ne correspond pas à son empreinte."),
        "{out}"
    );
    assert!(out.contains("2 événements vérifiés avant la rupture."), "{out}");
}

#[test]
fn migrate_creates_the_embedded_database_in_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = cachet(&dir.path().join("neuf"), &["migrate"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Base à jour"), "{out}");
    assert!(dir.path().join("neuf/cachet.sqlite").exists());
}
