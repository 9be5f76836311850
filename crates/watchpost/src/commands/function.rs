//! `watchpost function`: watchpost as a serverless function (Tencent SCF, AWS Lambda, or an
//! HTTP-invoked platform: Alibaba FC, SCF web functions, Cloud Run, Knative). The runtimes
//! are `watchpost_function`'s; this command reads the arguments and the config, says loudly
//! once per cold start when the store won't keep state, starts the runtime and maps how it
//! ended to an exit code (2 usage or config, 3 the runtime API went away or failed).

use crate::{EXIT_INTERNAL, EXIT_USAGE};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use watchpost_engine::{Engine, Generation};
use watchpost_function::{Budget, Invoker, Runtime};

/// Blocking threads for store calls in a function: an invocation runs a handful of monitors,
/// and every thread costs resident memory (its stack and malloc arena) that a 64 MB function
/// pays for (BENCHMARKS.md section 7).
const FUNCTION_BLOCKING_THREADS: usize = 4;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RuntimeArg {
    /// Lambda if AWS_LAMBDA_RUNTIME_API is set, SCF if SCF_RUNTIME_API is, else http.
    Auto,
    /// Tencent SCF custom runtime (SCF_RUNTIME_API, SCF_RUNTIME_API_PORT).
    Scf,
    /// AWS Lambda custom runtime (AWS_LAMBDA_RUNTIME_API).
    Lambda,
    /// An HTTP server on $PORT (default 9000): POST /invoke (Alibaba FC), POST /, GET /healthz.
    Http,
}

#[derive(Args, Debug)]
pub struct FunctionArgs {
    /// Config file (default: $WATCHPOST_CONFIG, then ./watchpost.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Which platform protocol to speak.
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: RuntimeArg,
    /// The longest an invocation may take (the function's timeout, e.g. 20s): SCF and FC don't
    /// tell it; with Lambda the smaller of this and Lambda's deadline counts.
    #[arg(long, value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Be a probe agent for this location (declared on the server) instead of running the
    /// config: each invocation checks the location's monitors once and pushes the results to
    /// --server. No config file is read.
    #[arg(long, requires = "server", conflicts_with = "config")]
    pub location: Option<String>,
    /// With --location: the central watchpost's base URL.
    #[arg(long, env = "WATCHPOST_SERVER", requires = "location")]
    pub server: Option<String>,
    /// With --location: the location's token (better: the environment).
    #[arg(long, env = "WATCHPOST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    watchpost_units::parse_duration(text).map_err(|e| e.to_string())
}

pub fn run(args: FunctionArgs) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let runtime = match args.runtime {
        RuntimeArg::Auto => Runtime::detect(env),
        RuntimeArg::Scf => Runtime::Scf,
        RuntimeArg::Lambda => Runtime::Lambda,
        RuntimeArg::Http => Runtime::Http,
    };
    // Everything a runtime needs from its environment is checked before any I/O.
    let scf = match runtime {
        Runtime::Scf => match watchpost_function::scf::ScfApi::from_env(env) {
            Ok(api) => Some(api),
            Err(e) => {
                eprintln!("watchpost: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        _ => None,
    };
    if runtime == Runtime::Lambda {
        let missing = watchpost_function::lambda::missing_env(env);
        if !missing.is_empty() {
            eprintln!(
                "watchpost: --runtime lambda needs {} (set by Lambda)",
                missing.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let port = match runtime {
        Runtime::Http => match watchpost_function::http::port(env) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("watchpost: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        _ => 0,
    };
    let path = watchpost_config::default_path(args.config.as_deref());
    let agent = match agent(&args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let config = if agent.is_some() {
        // An agent's work comes from its server; its own store holds nothing.
        match watchpost_config::parse("--location", "storage: \"sqlite::memory:\"\nmonitors: []\n")
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_INTERNAL);
            }
        }
    } else {
        match super::load_config(&path, true) {
            Ok(c) => c,
            Err(code) => return code,
        }
    };
    if agent.is_none()
        && let Some(warning) = watchpost_function::persistence::check(&config.storage).warning()
    {
        // Loud on purpose, once per cold start: every invocation of this instance shares it.
        tracing::warn!("{}", "!".repeat(78));
        tracing::warn!("{}", config.secrets.redact(&warning));
        tracing::warn!("{}", "!".repeat(78));
    }
    let generation = match Generation::build(config) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let engine = match Engine::open(
        &generation.config,
        format!("function-{}", std::process::id()),
    ) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    if runtime == Runtime::Scf && args.deadline.is_none() {
        tracing::warn!(
            "SCF does not tell a custom runtime its timeout: pass --deadline (the function's \
             timeout, e.g. --deadline 20s) so checks and notifications finish before SCF stops \
             the function"
        );
    }
    let rt = match crate::tokio_runtime(false, FUNCTION_BLOCKING_THREADS) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let invoker = Arc::new(Invoker {
        engine,
        generation,
        config_path: path,
        budget: Budget {
            limit: args.deadline,
        },
        agent,
    });
    tracing::info!("watchpost function: runtime {}", runtime.name());
    let ended = rt.block_on(async {
        match runtime {
            Runtime::Scf => {
                let api = scf.expect("checked above");
                watchpost_function::scf::run(&invoker, &api).await
            }
            Runtime::Lambda => watchpost_function::lambda::run(invoker).await,
            Runtime::Http => {
                let addr = std::net::SocketAddr::from(([0, 0, 0, 0], port));
                watchpost_function::http::run(invoker, addr, shutdown()).await
            }
        }
    });
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// The probe agent of `--location`, when given (its token from `--token` or
/// `WATCHPOST_TOKEN`).
fn agent(
    args: &FunctionArgs,
) -> Result<Option<Arc<watchpost_engine::agent::FunctionAgent>>, ExitCode> {
    let Some(location) = &args.location else {
        return Ok(None);
    };
    let Some(token) = args.token.as_deref().filter(|t| !t.trim().is_empty()) else {
        eprintln!(
            "watchpost: --location needs the location's token in WATCHPOST_TOKEN (or --token)"
        );
        return Err(ExitCode::from(EXIT_USAGE));
    };
    let options = watchpost_engine::agent::AgentOptions {
        server: args.server.clone().unwrap_or_default(),
        token: token.to_string(),
        location: location.clone(),
        buffer_dir: PathBuf::new(),
        buffer_max: 0,
        ca_file: None,
    };
    let probes = match watchpost_probes::Probes::new(watchpost_probes::ProberOptions::default()) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("watchpost: cannot set up the probes: {e}");
            return Err(ExitCode::from(EXIT_INTERNAL));
        }
    };
    match watchpost_engine::agent::FunctionAgent::new(&options, probes) {
        Ok(a) => Ok(Some(Arc::new(a))),
        Err(e) => {
            eprintln!("watchpost: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// SIGTERM (the platform stopping the instance) or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: signal received");
}
