//! A real headless Chromium, driven through Debian's chromedriver with fantoccini. Each test
//! gets its own chromedriver and browser (stopped when the test ends), and saves a screenshot of
//! every page it visits under `target/tmp/screenshots/<test>/`.
//!
//! Without chromium or chromedriver the browser tests are skipped with a message, except with
//! `CI=true`, where it is a failure (`.ci/run` installs both).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::sync::{Semaphore, SemaphorePermit};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A chromedriver process, killed when dropped.
struct Driver {
    port: u16,
    process: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
/// Two cores: at most two browsers at once.
static BROWSERS: Semaphore = Semaphore::const_new(2);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn start_driver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            !in_ci(),
            "CI=true and {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("chromium or chromedriver missing: browser test skipped");
        return None;
    }
    let port = free_port();
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { port, process };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(driver);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not start on port {port}");
}

/// A browser for one test.
pub struct Browser {
    pub client: Client,
    name: String,
    shots: usize,
    _profile: tempfile::TempDir,
    // Dropped after the client: the browser goes before its driver.
    _driver: Driver,
    _permit: SemaphorePermit<'static>,
}

impl Browser {
    /// A fresh headless browser, or `None` when the browser tests are skipped.
    pub async fn open(test: &str) -> Option<Self> {
        let permit = BROWSERS.acquire().await.expect("browser semaphore");
        let driver = start_driver()?;
        let profile = tempfile::tempdir().expect("browser profile folder");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1400", "--lang=fr-FR", "--no-first-run",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!("an object") };
        let client = ClientBuilder::rustls()
            .expect("TLS configuration")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("open a browser session");
        Some(Self { client, name: test.to_owned(), shots: 0, _profile: profile, _driver: driver, _permit: permit })
    }

    fn shots_dir(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots").join(&self.name)
    }

    /// Saves a screenshot of the page as `NN-<what>.png`.
    pub async fn screenshot(&mut self, what: &str) {
        let png = self.client.screenshot().await.expect("take a screenshot");
        let dir = self.shots_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        self.shots += 1;
        std::fs::write(dir.join(format!("{:02}-{what}.png", self.shots)), png).expect("save the screenshot");
    }

    /// Opens a page and takes its screenshot.
    pub async fn visit(&mut self, url: &str, what: &str) {
        self.client.goto(url).await.expect("open the page");
        self.screenshot(what).await;
    }

    pub async fn fill(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("field #{id}: {e}"));
        field.clear().await.ok();
        field.send_keys(value).await.expect("type into the field");
    }

    /// Clicks the submit button whose text contains `label`, and waits for the next page.
    pub async fn press(&mut self, label: &str, what: &str) {
        self.click(&format!("//button[contains(normalize-space(.), \"{label}\")]"), what).await;
    }

    /// Follows the link whose text contains `label`.
    pub async fn follow(&mut self, label: &str, what: &str) {
        self.click(&format!("//a[contains(normalize-space(.), \"{label}\")]"), what).await;
    }

    /// Clicks the element at `xpath` and waits until the browser has left the page (its old
    /// document goes stale) and shows the next one: the next `find` never sees the old page.
    pub async fn click(&mut self, xpath: &str, what: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("the current page");
        let element = self.client.find(Locator::XPath(xpath)).await.unwrap_or_else(|e| panic!("{xpath}: {e}"));
        element.click().await.expect("click");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while old.tag_name().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "{xpath}: the page did not change");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.client.wait().for_element(Locator::Css("footer")).await.expect("the next page");
        self.screenshot(what).await;
    }

    /// The visible text of the page's main content.
    pub async fn text(&self) -> String {
        self.client.find(Locator::Css("main")).await.expect("the main content").text().await.expect("its text")
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.expect("current URL").path().to_owned()
    }

    /// Chooses a file for a file input (WebDriver types its path).
    pub async fn choose_file(&self, id: &str, path: &std::path::Path) {
        let input = self.client.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("file input #{id}: {e}"));
        input.send_keys(&path.display().to_string()).await.expect("choose the file");
    }

    /// Presses one key on the keyboard, wherever the focus is (as a person would).
    pub async fn press_key(&self, key: fantoccini::key::Key) {
        let value: char = key.into();
        let keys = KeyActions::new("clavier".to_owned()).then(KeyAction::Down { value }).then(KeyAction::Up { value });
        self.client.perform_actions(keys).await.expect("press a key");
    }

    /// The id of the element that has the focus.
    pub async fn focused_id(&self) -> Option<String> {
        self.client.active_element().await.expect("the focused element").attr("id").await.expect("its id")
    }

    pub async fn close(self) {
        self.client.close().await.ok();
    }
}
