//! `cachet replay` while the server runs: the read models rebuilt beside the live ones are
//! compared, or swapped in, at the position the live runner has reached meanwhile.

use cachet_projections::dossiers::DossiersProjection;
use cachet_projections::replay::{compare_at_live, drop_rebuild, rebuild_beside, swap};
use cachet_projections::runner::{read_checkpoint, Target};

use crate::harness::{candidate, days_from_today, TestApp};

/// Two servers on one PostgreSQL database, as two processes: both run the projections, racing
/// for every batch. Each event is applied once, by one of them (the counts, which are moved by
/// each event, would show an event applied twice), and each server answers its commands once its
/// read models show them.
pub async fn two_servers_on_one_database_apply_each_event_once(app: &TestApp) {
    // One SQLite file has one server process.
    if !app.on_postgres() {
        return;
    }
    let other = app.second_server().await;
    let session = app.session_until(days_from_today(30)).await;
    let servers = [app, &other];
    futures::future::join_all((0..24).map(|i| async move {
        let owner = candidate();
        let dossier = servers[i % 2].pre_register(session, owner).await;
        assert_eq!(servers[i % 2].status(dossier).await.version, 1, "read on the server that registered it");
        let server = servers[(i + 1) % 2];
        if i % 4 < 2 {
            server.deposit_online(owner, dossier).await;
            assert_eq!(server.status(dossier).await.status, "deposited", "read on the server that took the deposit");
        } else if i % 4 == 2 {
            // Folded twice, this event would show twice in the dossier's state.
            server.record_refused_intake(dossier, "fax", days_from_today(0)).await.done();
            assert_eq!(server.status(dossier).await.status, "rejected");
        }
    }))
    .await;

    for server in servers {
        let statistics = server.statistics(session).await;
        assert_eq!(statistics["total"], 24);
        assert_eq!(statistics["by_status"], serde_json::json!({ "pre_registered": 6, "deposited": 12, "rejected": 6 }));
        assert_eq!(statistics["by_channel"], serde_json::json!({ "online": 12 }));
        assert_eq!(statistics["by_rejection"], serde_json::json!({ "refused_form": 6 }));
    }
    rebuild(app).await;
    let (position, differences) =
        compare_at_live(app.store(), app.read_db(), &DossiersProjection::default()).await.expect("compare");
    assert_eq!(differences, [], "the live read models equal a rebuild from the events");
    assert_eq!(position, head(app).await);
    drop_rebuild(app.read_db(), &DossiersProjection::default()).await.expect("drop the rebuild");
    // Each runner learns that the other applied an event when it next tries to apply it.
    for server in servers {
        server.wait_for_read_models().await;
    }
    other.finish().await;
}

async fn head(app: &TestApp) -> i64 {
    app.store().head().await.expect("head").position
}

/// Rebuilds beside the live read models up to the store's head.
async fn rebuild(app: &TestApp) {
    let until = head(app).await;
    let reached = rebuild_beside(app.store(), app.read_db(), &DossiersProjection::default(), until, |_| {})
        .await
        .expect("rebuild");
    assert_eq!(reached, until);
}

pub async fn a_check_while_the_server_runs_compares_both_copies_at_the_same_position(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    app.pre_register(session, candidate()).await;
    rebuild(app).await;
    // The server goes on: the live runner applies what the rebuild has not seen.
    app.pre_register(session, candidate()).await;

    let (position, differences) =
        compare_at_live(app.store(), app.read_db(), &DossiersProjection::default()).await.expect("compare");
    assert_eq!(differences, [], "the copies differ only by what the live runner applied meanwhile");
    assert_eq!(position, head(app).await);
    drop_rebuild(app.read_db(), &DossiersProjection::default()).await.expect("drop the rebuild");
}

pub async fn a_rebuild_swapped_in_while_the_server_runs_is_not_behind_it(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    app.pre_register(session, candidate()).await;
    rebuild(app).await;
    let meanwhile = app.pre_register(session, candidate()).await;

    let swapped = swap(app.store(), app.read_db(), &DossiersProjection::default()).await.expect("swap");
    assert_eq!(swapped, head(app).await, "the rows swapped in are those of the live checkpoint");
    let checkpoint =
        read_checkpoint(app.read_db(), &DossiersProjection::default(), Target::Live).await.expect("checkpoint");
    assert_eq!(checkpoint, swapped);
    assert_eq!(app.status(meanwhile).await.version, 1, "the dossier pre-registered meanwhile is still shown");
    assert_eq!(app.queue(session, "awaiting_deposit").await.0, 2);

    // The server goes on from there.
    let after = app.pre_register(session, candidate()).await;
    assert_eq!(app.status(after).await.version, 1);

    // The live tables have every index under its own name, so a second rebuild gets its own.
    let live = indexes(app, "dossier_status").await;
    assert!(live.contains(&"dossier_status_queue".to_owned()), "{live:?}");
    assert!(live.iter().all(|name| !name.contains("__rebuild")), "{live:?}");
    rebuild(app).await;
    let rebuilt = indexes(app, "dossier_status__rebuild").await;
    assert!(rebuilt.contains(&"dossier_status__rebuild_queue".to_owned()), "{rebuilt:?}");
    swap(app.store(), app.read_db(), &DossiersProjection::default()).await.expect("a second swap");
    assert_eq!(indexes(app, "dossier_status").await, live);
    assert_eq!(app.status(after).await.version, 1);
}

/// The names of a read-model table's indexes, sorted.
async fn indexes(app: &TestApp, table: &str) -> Vec<String> {
    let sql = match app.read_db().backend {
        cachet_store::Backend::Postgres => {
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename::text = $1 \
             ORDER BY 1"
        }
        cachet_store::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL ORDER BY 1"
        }
    };
    sqlx::query_scalar(sql).bind(table).fetch_all(&app.read_db().pool).await.expect("the indexes")
}

crate::api_tests!(
    a_check_while_the_server_runs_compares_both_copies_at_the_same_position,
    a_rebuild_swapped_in_while_the_server_runs_is_not_behind_it,
    two_servers_on_one_database_apply_each_event_once,
);
