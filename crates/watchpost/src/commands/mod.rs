//! One module per subcommand, and what they share: loading a config for a command.

pub mod check;
pub mod cron;
pub mod function;
pub mod lag;
pub mod notify;
pub mod once;
pub mod probe;
pub mod run;
pub mod status;
pub mod validate;

use std::process::ExitCode;
use watchpost_config::Config;

/// Load the config at `path`, or print every problem (FILE:LINE:COL: ...) and say which exit
/// code that is. With `warn`, warnings (an empty config) are logged.
pub fn load_config(path: &std::path::Path, warn: bool) -> Result<Config, ExitCode> {
    match watchpost_config::load(path) {
        Ok(config) => {
            if warn {
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                }
            }
            Ok(config)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Err(ExitCode::from(crate::EXIT_USAGE))
        }
    }
}
