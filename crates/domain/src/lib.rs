//! The pure domain of Cachet: the exam session and dossier streams, their commands and events,
//! `decide`/`evolve`, and the deadline rules.
//!
//! Architecture invariant: this crate does no I/O, has no async code and never reads the clock.
//! The current instant, the acting person and the exam session's configuration come in as values
//! (see [`dossier::Context`]). Every business rule lives in a `decide` function; `evolve` only
//! applies facts and cannot fail.

pub mod deadline;
pub mod demo;
pub mod describe;
pub mod dossier;
pub mod error;
pub mod event;
pub mod ids;
pub mod session;
pub mod time;

pub use error::DomainError;
pub use event::{Actor, DomainEvent};
