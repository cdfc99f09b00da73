//! Runs the real `cachet` binary as a person or an operator would: `serve` with demo data,
//! `replay --check`, and two `serve` processes on one PostgreSQL under conflicting commands.

#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const CACHET: &str = env!("CARGO_BIN_EXE_cachet");

/// A running `cachet serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    base: String,
    output: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that failed midway must not leave its server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(CACHET)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("CACHET_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut base = String::new();
        while let Ok(line) = output.recv_timeout(Duration::from_secs(120)) {
            if let Some(rest) = line.strip_prefix("Cachet écoute sur ") {
                base = rest.split_whitespace().next().unwrap_or_default().to_owned();
                break;
            }
        }
        assert!(base.starts_with("http://"), "the server did not say where it listens");
        Self { child, base, output }
    }

    /// Sends SIGTERM and returns the exit status and the rest of the output.
    fn stop(mut self) -> (i32, Vec<String>) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        let mut rest = Vec::new();
        while let Ok(line) = self.output.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (status.code().unwrap_or(-1), rest)
    }
}

fn cachet(args: &[&str]) -> (i32, String) {
    let output = Command::new(CACHET).args(args).env_remove("CACHET_DATABASE_URL").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

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
        "Votre dossier a été rejeté car il a été déposé ou posté hors délai : Cachet de la poste du 07/07/2023, \
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
    let (code, out) = cachet(&["verify", "--data-dir", data]);
    assert_eq!(code, 0, "{out}");
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

    // For every dossier, process A records a postal receipt while process B records a refused
    // fax, at the same time: the two cannot both apply.
    let yesterday = (today - chrono::Duration::days(1)).to_string();
    let mut races = Vec::new();
    for dossier in &dossiers {
        let postal = client
            .post(format!("{}/api/dossiers/{dossier}/postal-receipts", a.base))
            .header("X-Cachet-Actor", "staff:agent.a")
            .json(&json!({"postmark_date": yesterday, "arrival_date": today.to_string()}))
            .send();
        let fax = client
            .post(format!("{}/api/dossiers/{dossier}/refused-intakes", b.base))
            .header("X-Cachet-Actor", "staff:agent.b")
            .json(&json!({"form": "fax", "received_on": today.to_string()}))
            .send();
        races.push(async move {
            let (postal, fax) = tokio::join!(postal, fax);
            (postal.unwrap(), fax.unwrap())
        });
    }
    let mut expected_versions = Vec::new();
    for race in futures::future::join_all(races).await {
        let (postal, fax) = race;
        let (postal_status, fax_status) = (postal.status().as_u16(), fax.status().as_u16());
        let postal_body: Value = postal.json().await.unwrap();
        let fax_body: Value = fax.json().await.unwrap();
        assert!(
            (postal_status == 200) != (fax_status == 200),
            "exactly one of the two commands applies: {postal_status} {postal_body} / {fax_status} {fax_body}"
        );
        let loser = if postal_status == 200 { (fax_status, &fax_body) } else { (postal_status, &postal_body) };
        assert_eq!(loser.0, 409, "the other gets the conflict answer: {}", loser.1);
        assert!(loser.1["detail"].as_str().unwrap().starts_with("Impossible de"), "{}", loser.1);
        // Pre-registration, then 1 event for a postal receipt on time or 2 for a refused intake.
        expected_versions.push(if postal_status == 200 { 2 } else { 3 });
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
