//! One module per subcommand.

pub mod check;
pub mod cron;
pub mod notify;
pub mod once;
pub mod run;
pub mod validate;
