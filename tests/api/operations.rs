//! What operators and client authors rely on: the OpenAPI document, health, readiness,
//! metrics and request ids; and the statistics and work queues of the exam office.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{candidate, days_from_today, Caller, TestApp};

/// Every route the router serves besides `/api/openapi.json` itself.
const ROUTES: [(&str, &str); 37] = [
    ("post", "/api/sessions"),
    ("get", "/api/sessions/{session_id}"),
    ("post", "/api/sessions/{session_id}/deadline-extensions"),
    ("post", "/api/sessions/{session_id}/deposit-closure"),
    ("post", "/api/sessions/{session_id}/postal-imports"),
    ("get", "/api/sessions/{session_id}/export.csv"),
    ("get", "/api/sessions/{session_id}/export.xlsx"),
    ("post", "/api/sessions/{session_id}/dossiers"),
    ("get", "/api/sessions/{session_id}/queues/{queue}"),
    ("get", "/api/sessions/{session_id}/statistics"),
    ("get", "/api/dossiers/{dossier_id}"),
    ("get", "/api/dossiers/{dossier_id}/pieces"),
    ("put", "/api/dossiers/{dossier_id}/pieces/{piece}"),
    ("delete", "/api/dossiers/{dossier_id}/pieces/{piece}"),
    ("get", "/api/dossiers/{dossier_id}/files/{sha256}"),
    ("post", "/api/dossiers/{dossier_id}/closure"),
    ("put", "/api/dossiers/{dossier_id}/missing-pieces/{piece}"),
    ("post", "/api/dossiers/{dossier_id}/withdrawal"),
    ("post", "/api/dossiers/{dossier_id}/postal-receipts"),
    ("post", "/api/dossiers/{dossier_id}/counter-receipts"),
    ("post", "/api/dossiers/{dossier_id}/refused-intakes"),
    ("post", "/api/dossiers/{dossier_id}/transfer"),
    ("post", "/api/dossiers/{dossier_id}/piece-reviews"),
    ("post", "/api/dossiers/{dossier_id}/review-conclusion"),
    ("post", "/api/dossiers/{dossier_id}/missing-piece-receipts"),
    ("post", "/api/dossiers/{dossier_id}/rejection"),
    ("post", "/api/dossiers/{dossier_id}/lapse"),
    ("post", "/api/sessions/{session_id}/tests/{test}/convocation-publication"),
    ("post", "/api/dossiers/{dossier_id}/convocations/{test}/withholding"),
    ("get", "/api/dossiers/{dossier_id}/convocations/{test}"),
    ("get", "/api/dossiers/{dossier_id}/history"),
    ("get", "/api/dossiers/{dossier_id}/as-of"),
    ("get", "/api/sessions/{session_id}/statistics/as-of"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
];

pub async fn the_openapi_document_is_3_1_and_lists_every_route_served(app: &TestApp) {
    let document: Value = app.get("/api/openapi.json", Caller::Anonymous).await.ok();
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", document["openapi"]);
    assert_eq!(document["info"]["title"], "Cachet");
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("path item").keys().map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|(_, path)| *path != "/api/openapi.json")
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, served);
    assert!(document["components"]["securitySchemes"]["identite"].is_object());

    // Each listed route is served: none answers the router's own 404 or a 405.
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{session_id}", &Uuid::new_v4().to_string())
            .replace("{dossier_id}", &Uuid::new_v4().to_string())
            .replace("{queue}", "complete")
            .replace("{test}", "admissibilite")
            .replace("{piece}", "etat-services")
            .replace("{sha256}", &"0".repeat(64));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let reply = app.send(app.request(method.clone(), &concrete, Caller::Admin)).await;
        assert_ne!(reply.status.as_u16(), 405, "{method} {path}");
        assert!(
            !reply.text().contains("Cette adresse ne correspond à aucune ressource."),
            "{method} {path} is not served"
        );
    }
}

/// Each operation says who may call it, every problem it can answer, and the headers of the
/// optimistic and idempotent protocol.
pub async fn the_openapi_document_names_callers_problems_and_headers(app: &TestApp) {
    let document: Value = app.get("/api/openapi.json", Caller::Anonymous).await.ok();
    let callers = ["candidat", "service concours", "auditeur", "administrateur"];
    for (path, item) in document["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, operation) in item.as_object().expect("path item") {
            let name = format!("{method} {path}");
            let responses = operation["responses"].as_object().expect("responses");
            let has = |status: &str| responses.contains_key(status);
            let header = |wanted: &str| {
                operation["parameters"].as_array().is_some_and(|params| {
                    params.iter().any(|p| p["in"] == "header" && p["name"].as_str() == Some(wanted))
                })
            };
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(description.contains("Appelant"), "{name} says who may call it: {description:?}");
            assert!(callers.iter().any(|c| description.contains(c)), "{name}: {description:?}");
            for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{name} answers {status} as a problem document"
                );
            }
            if operation["security"].is_array() {
                assert!(has("400") && has("401"), "{name}: a bad or missing identity");
            }
            let json_body = operation["requestBody"]["content"]["application/json"].is_object();
            if json_body {
                assert!(has("400") && has("413") && has("415") && has("422"), "{name}: a JSON body");
            }
            let command = method != "get";
            if command {
                assert!(header("Idempotency-Key"), "{name}: Idempotency-Key");
            }
            if command && path.starts_with("/api/dossiers/") {
                assert!(header("If-Match"), "{name}: If-Match");
                assert!(has("409") && has("412") && has("422"), "{name}: refused, stale or reused key");
                assert!(responses["200"]["headers"]["ETag"].is_object(), "{name}: the new version");
            }
            if method == "put" {
                assert!(header("X-Filename"), "{name}: X-Filename");
                assert!(has("413") && has("415"), "{name}: an upload");
            }
        }
    }
    let get_dossier = &document["paths"]["/api/dossiers/{dossier_id}"]["get"];
    assert!(get_dossier["responses"]["200"]["headers"]["ETag"].is_object());
    let pre_register = &document["paths"]["/api/sessions/{session_id}/dossiers"]["post"];
    assert!(pre_register["responses"]["201"]["headers"]["ETag"].is_object());
}

pub async fn health_readiness_metrics_and_request_ids_answer(app: &TestApp) {
    let health = app.get("/healthz", Caller::Anonymous).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json::<Value>()["status"], "ok");
    let request_id = health.header("x-request-id").expect("a request id");
    assert!(Uuid::parse_str(&request_id).is_ok(), "{request_id}");

    let given = app.send(app.request(Method::GET, "/healthz", Caller::Anonymous).header("x-request-id", "suivi-42"));
    assert_eq!(given.await.header("x-request-id").as_deref(), Some("suivi-42"), "a given id is propagated");
    let problem = app.get("/nulle-part", Caller::Anonymous).await;
    assert!(problem.header("x-request-id").is_some(), "problems carry one too");

    let session = app.session_until(days_from_today(30)).await;
    app.pre_register(session, candidate()).await;
    let ready: Value = app.get("/readyz", Caller::Anonymous).await.ok();
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["head"], 2);
    let projections = ready["projections"].as_array().expect("projections");
    assert_eq!(projections.iter().map(|p| p["name"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["dossiers"]);
    assert_eq!(projections[0]["lag"], 0);

    let metrics = app.get("/metrics", Caller::Anonymous).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains("cachet_http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/api/sessions/{session_id}/dossiers""#), "requests are counted by route");
    assert!(text.contains("cachet_projection_lag_events"));
}

pub async fn statistics_and_queues_reflect_the_states(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let awaiting = app.pre_register(session, candidate()).await;
    let online_owner = candidate();
    let online = app.pre_register(session, online_owner).await;
    app.deposit_online(online_owner, online).await;
    let reviewed_owner = candidate();
    let reviewed = app.pre_register(session, reviewed_owner).await;
    app.deposit_online(reviewed_owner, reviewed).await;
    app.transfer(reviewed).await.done();
    let by_post = app.pre_register(session, candidate()).await;
    app.record_postal_receipt(by_post, days_from_today(0), days_from_today(0)).await.done();
    let faxed = app.pre_register(session, candidate()).await;
    app.record_refused_intake(faxed, "fax", days_from_today(0)).await.done();
    let withdrawn_owner = candidate();
    let withdrawn = app.pre_register(session, withdrawn_owner).await;
    app.withdraw(withdrawn_owner, withdrawn).await.done();

    let statistics = app.statistics(session).await;
    assert_eq!(statistics["total"], 6);
    assert_eq!(
        statistics["by_status"],
        serde_json::json!({ "pre_registered": 1, "deposited": 2, "under_review": 1, "rejected": 1, "withdrawn": 1 })
    );
    assert_eq!(statistics["by_channel"], serde_json::json!({ "online": 2, "post": 1 }));
    assert_eq!(statistics["by_rejection"], serde_json::json!({ "refused_form": 1 }));

    assert_eq!(app.queue(session, "awaiting_deposit").await, (1, vec![awaiting]));
    assert_eq!(app.queue(session, "to_transfer").await, (2, vec![online, by_post]), "oldest first");
    assert_eq!(app.queue(session, "to_review").await, (1, vec![reviewed]));
    assert_eq!(app.queue(session, "rejected").await, (1, vec![faxed]));
    assert_eq!(app.queue(session, "withdrawn").await, (1, vec![withdrawn]));
    assert_eq!(app.queue(session, "complete").await, (0, vec![]));
    let page: Value =
        app.get(&format!("/api/sessions/{session}/queues/to_transfer?page=2&per_page=1"), Caller::Auditor).await.ok();
    assert_eq!(
        (page["total"].as_i64(), page["items"][0]["dossier_id"].as_str()),
        (Some(2), Some(by_post.to_string().as_str()))
    );

    // Transferring moves a dossier from one queue to the next at once.
    app.transfer(online).await.done();
    assert_eq!(app.queue(session, "to_transfer").await, (1, vec![by_post]));
    assert_eq!(app.queue(session, "to_review").await.0, 2);
    assert_eq!(app.statistics(session).await["by_status"]["under_review"], 2);
}

/// Pages in the second half of a queue are read from its other end; every page, joined, is the
/// whole queue in order, and a page past the end is empty.
pub async fn the_pages_of_a_queue_are_the_queue_in_order(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let mut dossiers = Vec::new();
    for _ in 0..5 {
        let dossier = app.pre_register(session, candidate()).await;
        app.record_postal_receipt(dossier, days_from_today(0), days_from_today(0)).await.done();
        dossiers.push(dossier.to_string());
    }
    let mut seen = Vec::new();
    for page in 1..=4 {
        let body: Value = app
            .get(&format!("/api/sessions/{session}/queues/to_transfer?page={page}&per_page=2"), Caller::Staff)
            .await
            .ok();
        assert_eq!(body["total"], 5, "page {page}");
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), [2, 2, 1, 0][page - 1], "page {page}");
        seen.extend(items.iter().map(|item| item["dossier_id"].as_str().expect("an id").to_owned()));
    }
    assert_eq!(seen, dossiers, "oldest first, each once");
}

crate::api_tests!(
    the_openapi_document_is_3_1_and_lists_every_route_served,
    the_openapi_document_names_callers_problems_and_headers,
    health_readiness_metrics_and_request_ids_answer,
    statistics_and_queues_reflect_the_states,
    the_pages_of_a_queue_are_the_queue_in_order,
);
