//! Every API route against every identity: anonymous, the candidate who owns the dossier,
//! another candidate, staff, auditor, admin. Each request carries a valid body, so a refusal can
//! only come from who is asking: the wrong role is refused (401 without identity, 403 for a role,
//! 404 for another candidate's dossier) and the right one is never refused for who it is.
//! Wrong identities go first, and must not change anything.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::harness::{days_from_today, session_until, today, Caller, TestApp};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Anonymous,
    Owner,
    Other,
    Staff,
    Auditor,
    Admin,
}

const EVERYONE: [Who; 6] = [Who::Anonymous, Who::Owner, Who::Other, Who::Staff, Who::Auditor, Who::Admin];
const OFFICE: &[Who] = &[Who::Staff, Who::Admin];
const READERS: &[Who] = &[Who::Staff, Who::Auditor, Who::Admin];
const OWNER_AND_READERS: &[Who] = &[Who::Owner, Who::Staff, Who::Auditor, Who::Admin];

enum Body {
    None,
    Json(Value),
    Csv(&'static str),
    File,
}

struct Route {
    method: Method,
    path: String,
    body: Body,
    allowed: &'static [Who],
    /// Candidates are told the dossier does not exist (404) rather than refused (403).
    dossier_scoped: bool,
}

pub async fn every_route_refuses_the_wrong_identity_and_lets_the_right_one_in(app: &TestApp) {
    let owner_id = Uuid::new_v4();
    let (owner, other) = (Caller::Candidate(owner_id), Caller::Candidate(Uuid::new_v4()));
    let session = app.session_until(days_from_today(20)).await;
    let dossier = app.pre_register(session, owner).await;
    let day = today().to_string();
    let s = |p: &str| format!("/api/sessions/{session}{p}");
    let d = |p: &str| format!("/api/dossiers/{dossier}{p}");
    let route = |method: Method, path: String, body: Body, allowed: &'static [Who], dossier_scoped: bool| Route {
        method,
        path,
        body,
        allowed,
        dossier_scoped,
    };
    let csv = "code utilisateur;cachet de la poste;date d'arrivée\nAAAA2222;05/07/2023;07/07/2023\n";
    let routes = vec![
        route(
            Method::POST,
            "/api/sessions".to_owned(),
            Body::Json(serde_json::to_value(session_until(days_from_today(30))).expect("JSON")),
            &[Who::Admin],
            false,
        ),
        route(Method::GET, s(""), Body::None, &EVERYONE, false),
        route(
            Method::POST,
            s("/deadline-extensions"),
            Body::Json(json!({"new_deadline": days_from_today(25).to_string(), "reason": "grève"})),
            &[Who::Admin],
            false,
        ),
        route(Method::POST, s("/deposit-closure"), Body::None, OFFICE, false),
        route(Method::POST, s("/postal-imports?mode=dry-run"), Body::Csv(csv), OFFICE, false),
        route(Method::GET, s("/export.csv"), Body::None, READERS, false),
        route(Method::GET, s("/export.xlsx"), Body::None, READERS, false),
        route(Method::POST, s("/dossiers"), Body::None, &[Who::Owner, Who::Other], false),
        route(Method::GET, s("/queues/complete"), Body::None, READERS, false),
        route(Method::GET, s("/statistics"), Body::None, READERS, false),
        route(Method::GET, s(&format!("/statistics/as-of?at={day}")), Body::None, READERS, false),
        route(Method::POST, s("/tests/admissibilite/convocation-publication"), Body::None, OFFICE, false),
        route(Method::GET, d(""), Body::None, OWNER_AND_READERS, true),
        route(Method::GET, d("/pieces"), Body::None, OWNER_AND_READERS, true),
        route(Method::GET, d(&format!("/files/{}", "0".repeat(64))), Body::None, OWNER_AND_READERS, true),
        route(Method::GET, d("/history"), Body::None, READERS, false),
        route(Method::GET, d(&format!("/as-of?at={day}")), Body::None, READERS, false),
        route(Method::GET, d("/convocations/admissibilite"), Body::None, OWNER_AND_READERS, true),
        route(
            Method::POST,
            d("/convocations/admissibilite/withholding"),
            Body::Json(json!({"reason": "à vérifier"})),
            OFFICE,
            false,
        ),
        route(Method::PUT, d("/pieces/etat-services"), Body::File, &[Who::Owner], true),
        route(Method::DELETE, d("/pieces/etat-services"), Body::None, &[Who::Owner], true),
        route(Method::PUT, d("/missing-pieces/etat-services"), Body::File, &[Who::Owner], true),
        route(Method::POST, d("/closure"), Body::None, &[Who::Owner], true),
        route(
            Method::POST,
            d("/refused-intakes"),
            Body::Json(json!({"form": "fax", "received_on": day})),
            OFFICE,
            false,
        ),
        route(
            Method::POST,
            d("/counter-receipts"),
            Body::Json(json!({"received_at": "2023-07-05T10:00:00+02:00"})),
            OFFICE,
            false,
        ),
        route(Method::POST, d("/transfer"), Body::None, OFFICE, false),
        route(
            Method::POST,
            d("/piece-reviews"),
            Body::Json(json!({"piece": "etat-services", "outcome": "accepted"})),
            OFFICE,
            false,
        ),
        route(Method::POST, d("/review-conclusion"), Body::None, OFFICE, false),
        route(
            Method::POST,
            d("/missing-piece-receipts"),
            Body::Json(json!({"channel": "post", "piece": "etat-services", "postmark_date": day, "arrival_date": day})),
            OFFICE,
            false,
        ),
        route(Method::POST, d("/lapse"), Body::None, OFFICE, false),
        route(
            Method::POST,
            d("/postal-receipts"),
            Body::Json(json!({"postmark_date": day, "arrival_date": day})),
            OFFICE,
            false,
        ),
        route(Method::POST, d("/rejection"), Body::Json(json!({"detail": "dossier non signé"})), OFFICE, false),
        route(
            Method::POST,
            d("/withdrawal"),
            Body::Json(json!({"reason": "raisons personnelles"})),
            &[Who::Owner, Who::Staff, Who::Admin],
            true,
        ),
    ];
    let caller = |who: Who| match who {
        Who::Anonymous => Caller::Anonymous,
        Who::Owner => owner,
        Who::Other => other,
        Who::Staff => Caller::Staff,
        Who::Auditor => Caller::Auditor,
        Who::Admin => Caller::Admin,
    };
    let send = |route: &Route, who: Who| {
        let builder = app.request(route.method.clone(), &route.path, caller(who));
        let builder = match &route.body {
            Body::None => builder,
            Body::Json(value) => builder.json(value),
            Body::Csv(text) => builder.header("content-type", "text/csv").body(*text),
            Body::File => builder
                .header("content-type", "application/pdf")
                .header("x-filename", "piece.pdf")
                .body(b"%PDF-1.4\n%%EOF\n".to_vec()),
        };
        app.send(builder)
    };

    let mut refusals = 0;
    for route in &routes {
        let before = app.store().head().await.expect("head").position;
        for who in EVERYONE.into_iter().filter(|w| !route.allowed.contains(w)) {
            let reply = send(route, who).await;
            let expected = match who {
                Who::Anonymous => 401,
                Who::Other if route.dossier_scoped => 404,
                _ => 403,
            };
            assert_eq!(reply.status.as_u16(), expected, "{} {} as {who:?}: {}", route.method, route.path, reply.text());
            assert_eq!(reply.header("content-type").as_deref(), Some("application/problem+json"));
            refusals += 1;
        }
        let after = app.store().head().await.expect("head").position;
        assert_eq!(after, before, "{} {}: a refused identity changed nothing", route.method, route.path);
    }
    for route in &routes {
        for who in route.allowed.iter().copied() {
            let reply = send(route, who).await;
            let status = reply.status.as_u16();
            assert!(
                status != 401
                    && status != 403
                    && !(status == 404 && who == Who::Owner && route.path.ends_with(&dossier.to_string())),
                "{} {} as {who:?} is let in: {status} {}",
                route.method,
                route.path,
                reply.text()
            );
        }
    }
    assert!(refusals > 100, "{refusals} refusals checked");
}

crate::api_tests!(every_route_refuses_the_wrong_identity_and_lets_the_right_one_in);
