#![allow(dead_code)] // each test file uses part of this module.

//! The real `cachet` binary, for the process tests: a running `cachet serve`, and one-shot
//! commands. Included by each test file with `#[path]`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

pub const CACHET: &str = env!("CARGO_BIN_EXE_cachet");

/// A running `cachet serve` on a free port, killed when dropped (a test that failed midway must
/// not leave its server running).
pub struct Server {
    pub child: Child,
    pub base: String,
    output: Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cachet serve ARGS --listen 127.0.0.1:0`, its errors on the test's output.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Self {
        Self::spawn(args, Stdio::inherit())
    }

    /// The same, its errors discarded (for tests that kill it many times).
    pub fn start_quiet<S: AsRef<OsStr>>(args: &[S]) -> Self {
        Self::spawn(args, Stdio::null())
    }

    fn spawn<S: AsRef<OsStr>>(args: &[S], stderr: Stdio) -> Self {
        let mut child = Command::new(CACHET)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("CACHET_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start cachet serve");
        let stdout = child.stdout.take().expect("its output");
        let (tx, output) = std::sync::mpsc::channel();
        // Keeps reading what the server prints: a closed pipe would end it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        while let Ok(line) = output.recv_timeout(Duration::from_secs(120)) {
            if let Some(rest) = line.strip_prefix("Cachet écoute sur ") {
                let base = rest.split_whitespace().next().unwrap_or_default().to_owned();
                return Self { child, base, output };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not say where it listens");
    }

    /// Sends SIGTERM and returns the exit status and the rest of the output.
    pub fn stop(mut self) -> (i32, Vec<String>) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().expect("the server exits");
        let mut rest = Vec::new();
        while let Ok(line) = self.output.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (status.code().unwrap_or(-1), rest)
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cachet ARGS` to its end: its exit code and everything it printed.
pub fn cachet<S: AsRef<OsStr>>(args: &[S]) -> (i32, String) {
    let output = Command::new(CACHET).args(args).env_remove("CACHET_DATABASE_URL").output().expect("run cachet");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

/// The number of events `cachet verify` checked, from its output.
pub fn events_verified(out: &str) -> i64 {
    let line = out.lines().find(|l| l.contains("événements vérifiés")).unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().find_map(|w| w.replace('\u{202f}', "").parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Opens the source document's session, deadline in 30 days, through the API as an admin (the
/// server runs with `--dev-identity`); answers its id.
pub async fn open_session(http: &reqwest::Client, base: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    let mut config = serde_json::to_value(cachet_domain::demo::source_session()).expect("a config");
    config["deposit_deadline"] = serde_json::json!((today + chrono::Duration::days(30)).to_string());
    let opened: serde_json::Value = http
        .post(format!("{base}/api/sessions"))
        .header("X-Cachet-Actor", "admin:admin")
        .json(&config)
        .send()
        .await
        .expect("open a session")
        .json()
        .await
        .expect("JSON");
    opened["id"].as_str().expect("an id").to_owned()
}
