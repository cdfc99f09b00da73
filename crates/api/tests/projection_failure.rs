//! A failing projection never blocks an append: commands still succeed, `/readyz` shows the
//! stalled read model with its error, and once the cause is repaired the projection catches up
//! by itself.

use std::time::Duration;

use cachet_api::app::projections;
use cachet_api::{App, Database, Settings};
use cachet_projections::runner::{prepare, Target};
use serde_json::Value;
use sqlx::{Connection, Executor, SqliteConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_read_model_never_blocks_commands_and_shows_in_readiness_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cachet.sqlite");
    let mut settings = Settings::new(Database::Sqlite(path.clone()), dir.path().join("files"));
    settings.dev_identity = true;
    settings.read_your_writes_timeout = Duration::from_millis(300);
    let app = App::build(settings).await.unwrap();
    let (store, db) = (app.state().store.clone(), app.state().db.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let mut config = serde_json::to_value(cachet_domain::demo::source_session()).unwrap();
    config["deposit_deadline"] =
        Value::from((chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string());
    let opened = client.post(format!("{base}/api/sessions")).header("X-Cachet-Actor", "admin:admin").json(&config);
    let session: Value = opened.send().await.unwrap().json().await.unwrap();
    let session = session["id"].as_str().unwrap().to_owned();
    let pre_register = |candidate: uuid::Uuid| {
        client
            .post(format!("{base}/api/sessions/{session}/dossiers"))
            .header("X-Cachet-Actor", format!("candidate:{candidate}"))
            .send()
    };
    assert_eq!(pre_register(uuid::Uuid::new_v4()).await.unwrap().status(), 201);

    // Break the read model under the running projection.
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    conn.execute("DROP TABLE dossier_pieces").await.unwrap();

    let response = pre_register(uuid::Uuid::new_v4()).await.unwrap();
    assert_eq!(response.status(), 201, "the append succeeds while the projection fails");
    let dossier: Value = response.json().await.unwrap();
    let dossier = uuid::Uuid::parse_str(dossier["dossier_id"].as_str().unwrap()).unwrap();
    assert_eq!(store.read_stream(dossier).await.unwrap().len(), 1, "the event is stored");

    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let problem: Value = ready.json().await.unwrap();
    assert_eq!(problem["detail"], "La vue « dossiers » est en retard de 1 événements et en erreur.");

    // Repaired, the projection retries and catches up on its own.
    prepare(&db, projections()[0].as_ref(), Target::Live).await.unwrap();
    let mut status = 0;
    for _ in 0..100 {
        status = client.get(format!("{base}/readyz")).send().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the projection recovered");
    let view = client
        .get(format!("{base}/api/dossiers/{dossier}"))
        .header("X-Cachet-Actor", "staff:agent")
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), 200);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
