//! Runs the real `cachet` binary as a person or an operator would: `serve` with demo data,
//! `replay --check`, and two `serve` processes on one PostgreSQL under conflicting commands.

#[path = "../../../tests/support/pg.rs"]
mod pg;
#[path = "support/server.rs"]
mod server;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use server::{cachet, Server, CACHET};

async fn get(client: &reqwest::Client, url: &str, actor: &str) -> Value {
    let response = client.get(url).header("X-Cachet-Actor", actor).send().await.unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.unwrap()
}

/// Polls `/readyz` until the process's projections have applied every committed event.
async fn wait_until_caught_up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        let ready = get(client, &format!("{base}/readyz"), "staff:agent").await;
        if ready["projections"].as_array().is_some_and(|p| p.iter().all(|p| p["lag"] == 0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the projections of {base} did not catch up");
}

#[tokio::test]
async fn serve_with_demo_data_answers_then_stops_cleanly_and_replay_check_finds_what_was_edited_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Server::start(&["--demo", "--data-dir", data]);
    let client = reqwest::Client::new();

    // The demo is loaded and shown before the server says where it listens.
    let ready = get(&client, &format!("{}/readyz", server.base), "staff:agent").await;
    assert_eq!(ready["projections"][0]["lag"], 0, "{ready}");
    let session = cachet_api::demo::session_id();
    let stats = get(&client, &format!("{}/api/sessions/{session}/statistics", server.base), "auditor:audit").await;
    assert_eq!(stats["total"], 37);
    assert_eq!(stats["by_status"]["complete"], 6);
    let late = cachet_api::demo::dossier_id(30);
    let owner = format!("candidate:{}", cachet_api::demo::candidate_id(30));
    let status = get(&client, &format!("{}/api/dossiers/{late}", server.base), &owner).await;
    assert_eq!(
        status["message"],
        "Votre dossier a été rejeté car il a été déposé ou posté hors délai : cachet de la poste du 07/07/2023, \
         postérieur à la date limite du 06/07/2023."
    );
    let (code, rest) = server.stop();
    assert_eq!(code, 0, "{rest:?}");
    assert!(rest.iter().any(|l| l == "Cachet arrêté."), "{rest:?}");

    // Starting again keeps the data and does not load the demo twice.
    let again = Server::start(&["--demo", "--data-dir", data]);
    let stats = get(&client, &format!("{}/api/sessions/{session}/statistics", again.base), "auditor:audit").await;
    assert_eq!(stats["total"], 37);
    again.stop();

    let (code, out) = cachet(&["replay", "--check", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Vue « dossiers » : identique à sa reconstruction"), "{out}");

    // A read-model row altered by hand is reported, then a replay repairs it.
    let db = dir.path().join("cachet.sqlite");
    let sql = format!("UPDATE dossier_status SET message = 'falsifié' WHERE dossier_id = '{late}'");
    let status = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import sqlite3; c = sqlite3.connect({:?}); c.execute({sql:?}); c.commit()",
                db.display().to_string()
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, out) = cachet(&["replay", "--check", "--data-dir", data]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 différence(s)"), "{out}");
    assert!(out.contains(&format!("dossier_status {late} : valeurs différentes")), "{out}");

    let (code, out) = cachet(&["replay", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Vue « dossiers » reconstruite"), "{out}");
    let (code, out) = cachet(&["replay", "--check", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cachet(&["verify", "--projections", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Vue « dossiers » : identique à sa reconstruction"), "{out}");

    // An auditor's questions, by code utilisateur.
    let (code, out) = cachet(&["history", "28VMF3AG", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PostalReceiptRecorded — survenu le 07/07/2023 à 00h00"), "{out}");
    assert!(
        out.contains("Dossier reçu par voie postale le 10/07/2023. Cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023."),
        "{out}"
    );
    assert!(out.contains("par le service concours (agent.demo)"), "{out}");
    let (code, out) = cachet(&["as-of", "28VMF3AG", "--at", "2000-01-01", "--data-dir", data]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("n'existait pas au 01/01/2000 à 23h59"), "{out}");
    let now = chrono::Utc::now().to_rfc3339();
    let (code, out) = cachet(&["as-of", "28VMF3AG", "--at", &now, "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Vu par le candidat : Votre dossier a été rejeté car il a été déposé ou posté hors délai"),
        "{out}"
    );
    let session = cachet_api::demo::session_id().to_string();
    let (code, out) = cachet(&["as-of", "--session", &session, "--at", &now, "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": 37 dossier(s)."), "{out}");
}

/// Two server processes on one PostgreSQL receive conflicting commands on the same dossiers:
/// each command succeeds or gets the conflict answer, no event is lost or duplicated, and the
/// read models equal a fresh rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgres_keep_every_dossier_consistent_under_conflicting_commands() {
    let Some(db) = pg::PgTestDb::create().await else { return };
    let url = db.url.clone();
    let files = tempfile::tempdir().unwrap();
    let data = files.path().to_str().unwrap();
    let a = Server::start(&["--database-url", &url, "--dev-identity", "--data-dir", data]);
    let b = Server::start(&["--database-url", &url, "--dev-identity", "--data-dir", data]);
    let client = reqwest::Client::new();

    // A session still open for deposits: yesterday's postmark is on time.
    let today = chrono::Utc::now().date_naive();
    let mut config = serde_json::to_value(cachet_domain::demo::source_session()).unwrap();
    config["deposit_deadline"] = json!((today + chrono::Duration::days(30)).to_string());
    let opened: Value = client
        .post(format!("{}/api/sessions", a.base))
        .header("X-Cachet-Actor", "admin:admin")
        .json(&config)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = opened["id"].as_str().unwrap().to_owned();

    let mut dossiers = Vec::new();
    for n in 0..20 {
        let candidate = uuid::Uuid::new_v4();
        let base = if n % 2 == 0 { &a.base } else { &b.base };
        let response = client
            .post(format!("{base}/api/sessions/{session}/dossiers"))
            .header("X-Cachet-Actor", format!("candidate:{candidate}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        dossiers.push(body["dossier_id"].as_str().unwrap().to_owned());
    }

    // For every dossier, processes A and B each record a postal receipt at the same time (two
    // agents opening two envelopes of the same candidate): only one can be the deposit.
    let yesterday = (today - chrono::Duration::days(1)).to_string();
    let day_before = (today - chrono::Duration::days(2)).to_string();
    let mut races = Vec::new();
    for dossier in &dossiers {
        let receipt = |base: &str, agent: &str, postmark: &str| {
            client
                .post(format!("{base}/api/dossiers/{dossier}/postal-receipts"))
                .header("X-Cachet-Actor", format!("staff:{agent}"))
                .json(&json!({"postmark_date": postmark, "arrival_date": today.to_string()}))
                .send()
        };
        let (on_a, on_b) = (receipt(&a.base, "agent.a", &yesterday), receipt(&b.base, "agent.b", &day_before));
        races.push(async move {
            let (a, b) = tokio::join!(on_a, on_b);
            (a.unwrap(), b.unwrap())
        });
    }
    let mut expected_versions = Vec::new();
    for race in futures::future::join_all(races).await {
        let (on_a, on_b) = race;
        let (status_a, status_b) = (on_a.status().as_u16(), on_b.status().as_u16());
        let (body_a, body_b): (Value, Value) = (on_a.json().await.unwrap(), on_b.json().await.unwrap());
        assert!(
            (status_a == 200) != (status_b == 200),
            "exactly one applies: {status_a} {body_a} / {status_b} {body_b}"
        );
        let loser = if status_a == 200 { (status_b, &body_b) } else { (status_a, &body_a) };
        assert_eq!(loser.0, 409, "the other gets the conflict answer: {}", loser.1);
        assert_eq!(
            loser.1["detail"],
            "Impossible d'enregistrer la réception du dossier : le dossier est déposé, en attente de transfert."
        );
        // The pre-registration, then the one postal receipt.
        expected_versions.push(2);
    }

    // Both processes show every dossier at its one true version once their projections have
    // caught up with the shared log.
    for base in [&a.base, &b.base] {
        wait_until_caught_up(&client, base).await;
        for (dossier, expected) in dossiers.iter().zip(&expected_versions) {
            let status = get(&client, &format!("{base}/api/dossiers/{dossier}"), "auditor:audit").await;
            assert_eq!(status["version"], *expected, "{status}");
        }
    }
    a.stop();
    b.stop();

    let (code, out) = cachet(&["verify", "--database-url", &url]);
    assert_eq!(code, 0, "{out}");
    let total: i64 = 1 + 20 + expected_versions.iter().sum::<i64>() - 20;
    assert!(out.contains(&format!("{total} événements vérifiés")), "{out}");
    let (code, out) = cachet(&["replay", "--check", "--database-url", &url]);
    assert_eq!(code, 0, "{out}");
    // A rebuild swapped in twice (the second finds its tables' and indexes' names free), then
    // still identical to a fresh one.
    for _ in 0..2 {
        let (code, out) = cachet(&["replay", "--database-url", &url]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("Vue « dossiers » reconstruite"), "{out}");
    }
    let (code, out) = cachet(&["replay", "--check", "--database-url", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Vue « dossiers » : identique à sa reconstruction"), "{out}");
    db.drop_db().await;
}

/// The curl calls of the README's « Try it » section, run as written against a fresh demo,
/// answer what the README says they answer.
#[tokio::test]
async fn the_readme_examples_work_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("## Try it").nth(1).unwrap().split("## The `cachet` binary").next().unwrap();
    let calls: Vec<&str> = section.lines().filter(|l| l.starts_with("curl ")).collect();
    let expected: Vec<&str> = section
        .split("```text")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    assert!(calls.len() >= 8 && expected.len() == 3, "{calls:?} {expected:?}");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--demo", "--data-dir", dir.path().to_str().unwrap()]);
    let mut answers = String::new();
    for call in &calls {
        let call = call.replace("http://127.0.0.1:8080", &server.base);
        let output = Command::new("sh").args(["-c", &call]).output().unwrap();
        assert!(output.status.success(), "{call}");
        answers.push_str(&String::from_utf8_lossy(&output.stdout));
        answers.push('\n');
    }
    for line in expected {
        assert!(answers.contains(line), "the README promises {line}\nbut the calls answered:\n{answers}");
    }
    server.stop();
}

/// Seals and offline proof: a signed seal, a session exported with its proofs and verified
/// with no database; one edited byte fails it; a tail truncated after a seal is detected.
#[tokio::test]
async fn a_sealed_and_exported_session_verifies_offline_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    Server::start(&["--demo", "--data-dir", data]).stop();
    let key = dir.path().join("sceau.key");
    let (code, out) = cachet(&["seal", "--generate-key", key.to_str().unwrap(), "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Sceau de la position 192 : racine "), "{out}");

    let bundle = dir.path().join("session.jsonl");
    let session = cachet_api::demo::session_id().to_string();
    let (code, out) = cachet(&["export", "--session", &session, "--out", bundle.to_str().unwrap(), "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("191 événements, 1 sceau(x)"), "{out}");

    let offline = |extra: &[&str]| {
        let mut args = vec!["verify", "--file", bundle.to_str().unwrap(), "--data-dir", "/nonexistent/pas-de-base"];
        args.extend_from_slice(extra);
        cachet(&args)
    };
    let (code, out) = offline(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Paquet intègre : 191 événements vérifiés, 1 sceau(x) de signature valide."), "{out}");
    let late = cachet_api::demo::dossier_id(30).to_string();
    let (code, out) = offline(&["--dossier", &late]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("3 événement(s) du dossier {late} prouvé(s) sous un sceau.")), "{out}");

    // One byte edited: the postmark of the late dossier moved back by one day.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let edited = text.replacen(r#"\"postmark_date\":\"2023-07-07\""#, r#"\"postmark_date\":\"2023-07-06\""#, 1);
    assert_eq!(edited.len(), text.len());
    assert_ne!(edited, text);
    std::fs::write(&bundle, edited).unwrap();
    let (code, out) = offline(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(": le contenu ne correspond pas à son empreinte."), "{out}");

    // In the database: the seal holds, then a tail truncated after it (head moved back too)
    // is detected by the seal.
    let (code, out) = cachet(&["verify", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 sceau(x) conforme(s) aux événements."), "{out}");
    let db = dir.path().join("cachet.sqlite").display().to_string();
    let script = format!(
        "import sqlite3; c = sqlite3.connect({db:?}); c.execute('DROP TRIGGER events_no_delete'); \
         c.execute('DELETE FROM events WHERE position > 188'); \
         c.execute('UPDATE log_head SET position = 188, last_hash = (SELECT hash FROM events WHERE position = 188)'); c.commit()"
    );
    assert!(Command::new("python3").args(["-c", &script]).status().unwrap().success());
    let (code, out) = cachet(&["verify", "--data-dir", data]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Sceaux ROMPUS : le sceau de la position 192 couvre des événements absents : le journal s'arrête à la position 188."),
        "{out}"
    );
}

/// The same seal, export and offline verification on PostgreSQL.
#[tokio::test]
async fn a_session_sealed_on_postgres_verifies_offline() {
    let Some(db) = pg::PgTestDb::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    Server::start(&["--demo", "--database-url", &db.url, "--data-dir", data]).stop();
    let key = dir.path().join("sceau.key");
    let (code, out) = cachet(&["seal", "--generate-key", key.to_str().unwrap(), "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}");
    let bundle = dir.path().join("session.jsonl");
    let session = cachet_api::demo::session_id().to_string();
    let (code, out) =
        cachet(&["export", "--session", &session, "--out", bundle.to_str().unwrap(), "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cachet(&["verify", "--file", bundle.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Paquet intègre : 191 événements vérifiés, 1 sceau(x) de signature valide."), "{out}");
    let (code, out) = cachet(&["verify", "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 sceau(x) conforme(s) aux événements."), "{out}");
    db.drop_db().await;
}

/// The value of the session cookie a response sets.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cachet_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[start..start + 64].to_owned()
}

#[tokio::test]
async fn an_office_account_added_by_the_cli_signs_in_and_an_auditor_reads_a_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut add = Command::new(CACHET)
        .args([
            "user",
            "add",
            "audit",
            "--role",
            "auditor",
            "--name",
            "Inspection",
            "--password-stdin",
            "--data-dir",
            data,
        ])
        .env_remove("CACHET_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(add.stdin.as_mut().unwrap(), b"audit-secret-2024\n").unwrap();
    let output = add.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "Compte « audit » enregistré avec le rôle auditor.");

    let (code, text) = cachet(&["user", "add", "agent", "--role", "staff", "--generate-password", "--data-dir", data]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Mot de passe généré (affiché une seule fois) : "), "{text}");
    let (code, text) =
        cachet(&["user", "add", "bad name!", "--role", "staff", "--generate-password", "--data-dir", data]);
    assert_eq!(code, 1);
    assert!(text.contains("Le nom de compte ne peut contenir que des lettres"), "{text}");

    let server = Server::start(&["--demo", "--data-dir", data]);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = client.get(format!("{}/bureau/connexion", server.base)).send().await.unwrap();
    let cookie = session_cookie(&form).expect("an anonymous session");
    let token = csrf_of(&form.text().await.unwrap());
    let wrong = client
        .post(format!("{}/bureau/connexion", server.base))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("compte", "audit"), ("mot_de_passe", "pas le bon")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("Compte ou mot de passe incorrect."));
    let signed = client
        .post(format!("{}/bureau/connexion", server.base))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("compte", "audit"), ("mot_de_passe", "audit-secret-2024")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/bureau");
    let cookie = session_cookie(&signed).expect("a new session on login");

    // The demo dossier rejected for a postmark the day after the deadline.
    let page = client
        .get(format!("{}/bureau/dossiers/1bfdf003-8a11-5cf4-981e-134ba5b9a066", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Inspection (auditeur)"), "the header names the auditor");
    assert!(html.contains("Historique"));
    assert!(html.contains("cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023"), "{html}");
    let before = client
        .get(format!("{}/bureau/dossiers/1bfdf003-8a11-5cf4-981e-134ba5b9a066/a-date?instant=2023-05-01", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(before.text().await.unwrap().contains("Le dossier n'existait pas encore à cet instant."));
    let stats = client
        .get(format!(
            "{}/bureau/sessions/9d05ee90-167b-541e-aafe-0834de921ac7/statistiques?date=2023-07-06",
            server.base
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    assert!(stats.text().await.unwrap().contains("Au 06/07/2023 à 23h59"));
    // Without the session, the office pages send to their login.
    let anonymous = client.get(format!("{}/bureau", server.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/bureau/connexion?suite=/bureau");
    let (code, _) = server.stop();
    assert_eq!(code, 0);
}

#[tokio::test]
async fn closing_the_demo_deposits_lapses_the_dossiers_never_deposited_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    Server::start(&["--demo", "--data-dir", data]).stop();
    let session = cachet_api::demo::session_id().to_string();
    let close = ["session", "close-deposits", "--session", &session, "--as", "agent", "--data-dir", data];
    let (code, text) = cachet(&close);
    assert_eq!(code, 1);
    assert!(text.contains("le compte « agent » n'existe pas"), "{text}");
    let (code, text) = cachet(&["user", "add", "agent", "--role", "staff", "--generate-password", "--data-dir", data]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cachet(&close);
    assert_eq!((code, text.trim()), (0, "5 dossier(s) déclaré(s) non parvenu(s)."));
    let (code, text) = cachet(&close);
    assert_eq!((code, text.trim()), (0, "0 dossier(s) déclaré(s) non parvenu(s)."));
}
