//! One module per subcommand.

pub mod as_of;
pub mod history;
pub mod migrate;
pub mod replay;
pub mod serve;
pub mod verify;
