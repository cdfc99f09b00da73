//! The web pages, end to end: the real server on a free port over a fresh database, with an SMTP
//! sink for its mails; driven by a real headless Chromium (browser tests, which save a screenshot
//! of every page under `target/tmp/screenshots/`) and by a cookie-keeping HTTP client. Each
//! scenario runs on SQLite and PostgreSQL.

macro_rules! web_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = $crate::harness::Backend::sqlite().await else { return };
                    let app = $crate::harness::WebApp::start(backend).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = $crate::harness::Backend::postgres().await else { return };
                    let app = $crate::harness::WebApp::start(backend).await;
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
}

/// Scenarios that start their own server (with settings of their own): each gets the backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = $crate::harness::Backend::sqlite().await else { return };
                    super::$name(backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = $crate::harness::Backend::postgres().await else { return };
                    super::$name(backend).await;
                }
            )*
        }
    };
}

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/smtp.rs"]
mod smtp;

mod browser;
mod candidate_http;
mod convocations;
mod hardening;
mod harness;
mod import;
mod journey;
mod mails;
mod office;
