//! `watchpost notify CHANNEL [-c FILE] [--message TEXT]`: send one clearly marked test alert
//! through one configured channel, now, and print what the far end answered. Exit 0 when it
//! was delivered, 1 when the channel reported an error (the provider's code and message are
//! printed), 2 for usage and config errors (an unknown channel name included).
//!
//! Nothing is written to the store and nothing is retried: this is for checking keys,
//! signatures, templates and network paths before an incident depends on them. What the far
//! end answered is printed with every `${VAR}` value masked (a provider that echoes the request
//! would otherwise quote the key back).

use crate::EXIT_USAGE;
use chrono::Utc;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use watchpost_channels::{Alert, SendError};

#[derive(Args, Debug)]
pub struct NotifyArgs {
    /// The channel's name under `channels:`.
    pub channel: String,
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Text shown in the test alert's body.
    #[arg(long)]
    pub message: Option<String>,
}

pub fn run(args: NotifyArgs) -> ExitCode {
    let path = watchpost_config::default_path(args.config.as_deref());
    let config = match super::load_config(&path, false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(spec) = config.channels.get(&args.channel) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        eprintln!(
            "watchpost: no channel {:?} in {} ({})",
            args.channel,
            path.display(),
            if known.is_empty() {
                "it defines no channels".to_string()
            } else {
                format!("defined: {}", known.join(", "))
            }
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let channel = match watchpost_engine::build_channel(&config, &args.channel, spec) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rt = match crate::tokio_runtime(false, crate::BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut alert = Alert::test(args.channel.clone(), args.message, Utc::now());
    alert.timezone = Some(config.timezone.name().to_string());
    let locale = watchpost_engine::locale(&config);
    let kind = channel.kind();
    eprintln!(
        "sending a test alert through {:?} ({kind}) ...",
        args.channel
    );
    match rt.block_on(channel.send(&alert, locale)) {
        Ok(delivery) => {
            let body = config.secrets.redact(&delivery.body).into_owned();
            let answer = match (delivery.status, body.is_empty()) {
                (Some(s), false) => format!("HTTP {s}: {body}"),
                (Some(s), true) => format!("HTTP {s}"),
                (None, false) => body,
                (None, true) => "ok".to_string(),
            };
            println!("delivered to {:?} ({kind}): {answer}", args.channel);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let class = match &e {
                SendError::Retryable { .. } => "temporary; alerts would be retried",
                SendError::Fatal { .. } => "permanent; fix the channel's settings",
            };
            eprintln!(
                "failed to deliver to {:?} ({kind}): {} ({class})",
                args.channel,
                config.secrets.redact(e.message())
            );
            ExitCode::FAILURE
        }
    }
}
