//! The HTTP layer of Cachet (axum): a thin layer that turns requests into commands, decides them
//! against the domain and appends them, and serves the read models. Errors leave as
//! `application/problem+json` with a French detail. The OpenAPI document at `/api/openapi.json`
//! is generated from the handlers.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod convocations;
pub mod demo;
pub mod error;
pub mod export;
pub mod extract;
pub mod files;
pub mod import;
pub mod mail;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod seal;
pub mod service;
pub mod web;

pub use app::{App, AppState, Database, Settings};
