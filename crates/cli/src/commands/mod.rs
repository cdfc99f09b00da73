//! One module per subcommand.

pub mod as_of;
pub mod backup;
pub mod export;
pub mod history;
pub mod migrate;
pub mod replay;
pub mod seal;
pub mod serve;
pub mod session;
pub mod user;
pub mod verify;
