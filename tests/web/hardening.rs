//! Hardening seen from outside: a client that trickles its request headers loses its connection
//! once the header timeout passes, while a normal client is served; every kind of body has a size
//! limit; the lost-password page answers the same whether a code exists or not.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, WebApp};

pub async fn a_client_that_trickles_its_headers_is_cut_off(backend: Backend) {
    let app = WebApp::start_with(backend, |settings| settings.header_read_timeout = Duration::from_millis(500)).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: cachet\r\n").await.expect("the start of a request");
    let started = Instant::now();
    let mut closed = false;
    // One header byte every 100 ms, never the blank line that ends the headers.
    for byte in b"X-Lent: ".iter().cycle().take(40) {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {} // an error answer (408) before closing is fine too
            Err(_) => {}
        }
    }
    assert!(closed, "the trickling connection is closed");
    assert!(started.elapsed() < Duration::from_secs(3), "within the header timeout: {:?}", started.elapsed());
    let reply = reqwest::get(app.url("/healthz")).await.expect("a normal request");
    assert_eq!(reply.status(), 200);
    app.finish().await;
}

pub async fn every_kind_of_body_has_a_size_limit(backend: Backend) {
    let app = WebApp::start(backend).await;
    let http = reqwest::Client::new();
    let big = "a".repeat(3 * 1024 * 1024);
    // A page's form (2 MiB at most), an API command (64 KiB), a CSV import (2 MiB): all refused
    // with 413 before the body is read to its end.
    let form = http
        .post(app.url("/connexion"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={big}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(form.status(), 413);
    let session = app.session_until(crate::harness::days_from_today(5)).await;
    let command = http
        .post(app.url(&format!("/api/sessions/{session}/deadline-extensions")))
        .header("x-cachet-actor", "admin:admin")
        .header("content-type", "application/json")
        .body(format!("{{\"reason\": \"{}\"}}", &big[..100 * 1024]))
        .send()
        .await
        .expect("an answer");
    assert_eq!(command.status(), 413);
    let import = http
        .post(app.url(&format!("/api/sessions/{session}/postal-imports")))
        .header("x-cachet-actor", "staff:agent")
        .header("content-type", "text/csv")
        .body(big.clone())
        .send()
        .await
        .expect("an answer");
    assert_eq!(import.status(), 413);
    app.finish().await;
}

pub async fn the_lost_password_page_does_not_tell_whether_a_code_exists(backend: Backend) {
    let app = WebApp::start(backend).await;
    let session = app.session_until(crate::harness::days_from_today(5)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Discret").await;
    let ask = |code: String| {
        let client = app.client();
        async move {
            let form = client.get("/mot-de-passe-oublie").await;
            client.post_form("/mot-de-passe-oublie", &form, &[("code", &code)]).await
        }
    };
    let known = ask(code).await;
    let unknown = ask("ZZZZ9999".to_owned()).await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.path, unknown.path);
    let text = |reply: &crate::harness::PageReply| {
        let token = reply.between("name=\"csrf\" value=\"", "\"").unwrap_or_default();
        if token.is_empty() {
            reply.text()
        } else {
            reply.text().replace(&token, "")
        }
    };
    assert_eq!(text(&known), text(&unknown), "the same page either way");
    assert!(known.text().contains("Si ce code utilisateur correspond à une préinscription, un courriel"));
    // Only the real candidate gets a mail: the confirmation of the pre-registration, then the link.
    let mails = app.smtp.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.messages().len(), 2, "{mails:?}");
    assert!(app.smtp.messages().iter().all(|m| m.to == ["discret@exemple.fr"]));
    app.finish().await;
}

pub async fn expired_sessions_reset_links_and_login_counters_are_swept(backend: Backend) {
    use cachet_api::accounts;
    let app = WebApp::start(backend).await;
    let session = app.session_until(crate::harness::days_from_today(5)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Balaye").await;
    let client = app.client();
    client.login(&code, "pas-le-bon-mot-de-passe").await;
    let form = client.get("/mot-de-passe-oublie").await;
    client.post_form("/mot-de-passe-oublie", &form, &[("code", &code)]).await;
    let count = |table: &'static str| {
        let db = app.state.db.clone();
        async move {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&db.pool)
                .await
                .expect("a count");
            n
        }
    };
    let tables = ["web_sessions", "password_resets", "login_throttle"];
    for table in tables {
        assert!(count(table).await > 0, "{table} has a row to sweep");
    }
    // Now: everything is still in use, nothing goes.
    let now = chrono::Utc::now();
    assert_eq!(accounts::sweep(&app.state.db, now).await.expect("a sweep"), accounts::Swept::default());
    // Two days later: all of it has expired.
    let swept = accounts::sweep(&app.state.db, now + chrono::Duration::days(2)).await.expect("a sweep");
    assert!(swept.sessions > 0 && swept.resets > 0 && swept.throttles > 0, "{swept:?}");
    for table in tables {
        assert_eq!(count(table).await, 0, "{table} swept");
    }
    app.finish().await;
}

/// Logs in with `X-Forwarded-For: forwarded`; answers the page.
async fn login_from(app: &WebApp, forwarded: &str, code: &str, password: &str) -> (u16, String) {
    let http = reqwest::Client::builder().cookie_store(true).build().expect("a client");
    let form = http.get(app.url("/connexion")).send().await.expect("the form").text().await.expect("HTML");
    let start = form.find("name=\"csrf\" value=\"").expect("a CSRF token") + 19;
    let token = form[start..start + 64].to_owned();
    let reply = http
        .post(app.url("/connexion"))
        .header("x-forwarded-for", format!("198.51.100.7, {forwarded}"))
        .form(&[("csrf", token.as_str()), ("code", code), ("mot_de_passe", password)])
        .send()
        .await
        .expect("a login");
    let status = reply.status().as_u16();
    (status, reply.text().await.expect("HTML"))
}

pub async fn failed_logins_count_against_the_client_behind_a_trusted_proxy_only(backend: Backend) {
    let locked = "Trop de tentatives de connexion infructueuses";
    // Behind a trusted proxy (here, loopback): each client is counted on its own.
    let app =
        WebApp::start_with(backend, |settings| settings.trusted_proxies = vec!["127.0.0.1".parse().expect("an IP")])
            .await;
    let session = app.session_until(crate::harness::days_from_today(5)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Mandataire").await;
    for n in 0..5 {
        let (status, _) = login_from(&app, "203.0.113.5", &format!("ZZZZ000{n}"), "mauvais").await;
        assert_eq!(status, 401);
    }
    let (_, page) = login_from(&app, "203.0.113.5", &code, crate::harness::PASSWORD).await;
    assert!(page.contains(locked), "the address that failed five times waits");
    let (status, page) = login_from(&app, "203.0.113.6", &code, crate::harness::PASSWORD).await;
    assert!(status == 200 && !page.contains(locked), "another client behind the same proxy signs in");
    app.finish().await;
}

pub async fn without_a_trusted_proxy_x_forwarded_for_changes_nothing(backend: Backend) {
    let locked = "Trop de tentatives de connexion infructueuses";
    let app = WebApp::start(backend).await;
    let session = app.session_until(crate::harness::days_from_today(5)).await;
    let (_, _, code) = app.pre_registered_candidate(session, "Usurpateur").await;
    for n in 0..5 {
        login_from(&app, &format!("203.0.113.{n}"), &format!("ZZZZ000{n}"), "mauvais").await;
    }
    // A new X-Forwarded-For each time did not make five clients of one.
    let (_, page) = login_from(&app, "203.0.113.99", &code, crate::harness::PASSWORD).await;
    assert!(page.contains(locked), "the header is not believed");
    app.finish().await;
}

backend_tests!(
    failed_logins_count_against_the_client_behind_a_trusted_proxy_only,
    without_a_trusted_proxy_x_forwarded_for_changes_nothing,
    expired_sessions_reset_links_and_login_counters_are_swept,
    a_client_that_trickles_its_headers_is_cut_off,
    every_kind_of_body_has_a_size_limit,
    the_lost_password_page_does_not_tell_whether_a_code_exists,
);
