//! One module per subcommand.

pub mod migrate;
pub mod replay;
pub mod serve;
pub mod verify;
