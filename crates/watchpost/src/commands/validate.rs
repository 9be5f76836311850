//! `watchpost validate [-c FILE]`: check a config and say `ok` (after any warnings, on stderr),
//! or list every problem as FILE:LINE:COL: message and exit 2.

use crate::EXIT_USAGE;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ValidateArgs) -> ExitCode {
    let path = watchpost_config::default_path(args.config.as_deref());
    match watchpost_config::load(&path) {
        Ok(config) => {
            if let Err(e) = watchpost_engine::build_channels(&config) {
                // A channel's settings hold substituted values: mask them.
                eprintln!("{}", config.secrets.redact(&e.to_string()));
                return ExitCode::from(EXIT_USAGE);
            }
            // Valid but probably not meant: on stderr, before the verdict; still exit 0.
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "ok: {} monitor(s), {} channel(s) in {}",
                config.monitors.len(),
                config.channels.len(),
                path.display()
            );
            // Valid, but only the provider can confirm these: say so.
            for (name, spec) in &config.channels {
                let notes = watchpost_channels::ChannelConfig::from_value(spec.settings.clone())
                    .map(|c| c.notes())
                    .unwrap_or_default();
                for note in notes {
                    println!("note: channel {name:?}: {}", config.secrets.redact(&note));
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in {}", errors.0.len(), path.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
