//! Read models folded from the global order of events.
//!
//! Architecture invariant: a read model holds no rule. It folds the facts that events carry
//! (verdicts, missing pieces, rejection reasons) and the domain's own `evolve`, so rebuilding it
//! from position 0 always gives the same rows.

pub mod status;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] cachet_store::StoreError),
}
