//! The HTTP runtime, for platforms that invoke a function over HTTP:
//!
//! - Alibaba FC custom runtime: `POST /invoke` with the event as the body (a timer trigger's
//!   `{"triggerTime","triggerName","payload"}`); a failed invocation is answered with status
//!   404 and the header `x-fc-status: 404`, a successful one with 200 and `x-fc-status: 200`.
//!   `POST /initialize` (the optional initializer) answers 200.
//! - Tencent SCF web functions, Google Cloud Run with Cloud Scheduler, Knative PingSource:
//!   `POST /` with the event (or nothing) as the body; 200 with the summary, 400 for an event
//!   that is refused, 500 when watchpost could not do its job (the summary says what).
//! - `GET /healthz`: 200 `ok` while the process serves.
//!
//! One invocation runs at a time; others wait for it. The listener is the engine's bounded
//! one ([`watchpost_engine::web::serve`]), with a connection lifetime long enough for an
//! invocation.

use crate::{FunctionError, Invocation, Invoker};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The port to listen on: `$PORT` (Cloud Run, Knative, SCF web functions), then
/// `$FC_SERVER_PORT` (Alibaba FC), else 9000 (FC's and SCF web functions' default).
pub fn port(env: impl Fn(&str) -> Option<String>) -> Result<u16, FunctionError> {
    for name in ["PORT", "FC_SERVER_PORT"] {
        if let Some(value) = env(name).filter(|v| !v.is_empty()) {
            return value.parse().map_err(|_| {
                FunctionError::Setup(format!("{name} {value:?} is not a port number"))
            });
        }
    }
    Ok(9000)
}

struct App {
    invoker: Arc<Invoker>,
    /// One invocation at a time.
    running: tokio::sync::Mutex<()>,
}

/// The routes.
pub fn app(invoker: Arc<Invoker>) -> Router {
    let app = Arc::new(App {
        invoker,
        running: tokio::sync::Mutex::new(()),
    });
    Router::new()
        .route("/invoke", axum::routing::post(fc_invoke))
        .route("/initialize", axum::routing::post(initialize))
        .route("/", axum::routing::post(invoke))
        .route("/healthz", axum::routing::get(healthz))
        .with_state(app)
}

/// Listen on `addr` (all interfaces in a function: the platform connects from outside) and
/// serve until `shutdown` resolves.
pub async fn run(
    invoker: Arc<Invoker>,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), FunctionError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| FunctionError::Listen { addr, source })?;
    tracing::info!("HTTP runtime listening on {addr} (POST /invoke, POST /, GET /healthz)");
    let limits = watchpost_engine::web::Limits {
        max_connections: 32,
        header_timeout: Duration::from_secs(10),
        // FC and Cloud Run allow invocations of several minutes.
        max_lifetime: Duration::from_secs(3600),
    };
    watchpost_engine::web::serve(listener, app(invoker), limits, shutdown).await;
    Ok(())
}

const JSON: (HeaderName, &str) = (header::CONTENT_TYPE, "application/json");

async fn run_one(app: &App, body: &[u8]) -> (Invocation, String) {
    let _one = app.running.lock().await;
    let invocation = app.invoker.invoke(body, None).await;
    if let Invocation::Refused(e) = &invocation {
        tracing::error!(
            "{}",
            app.invoker.generation.config.secrets.redact(&e.to_string())
        );
    }
    let answer = format!("{}\n", app.invoker.answer(&invocation));
    (invocation, answer)
}

async fn fc_invoke(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> (StatusCode, [(HeaderName, &'static str); 2], String) {
    let (invocation, answer) = run_one(&app, &body).await;
    let fc_status = HeaderName::from_static("x-fc-status");
    if invocation.failed() {
        (StatusCode::NOT_FOUND, [JSON, (fc_status, "404")], answer)
    } else {
        (StatusCode::OK, [JSON, (fc_status, "200")], answer)
    }
}

async fn invoke(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> (StatusCode, [(HeaderName, &'static str); 1], String) {
    let (invocation, answer) = run_one(&app, &body).await;
    let status = match &invocation {
        Invocation::Refused(_) => StatusCode::BAD_REQUEST,
        Invocation::Ran(s) if s.watchpost_failed => StatusCode::INTERNAL_SERVER_ERROR,
        Invocation::Ran(_) | Invocation::Agent(Ok(_)) => StatusCode::OK,
        Invocation::Agent(Err(_)) => StatusCode::BAD_GATEWAY,
    };
    (status, [JSON], answer)
}

async fn initialize() -> StatusCode {
    StatusCode::OK
}

async fn healthz() -> &'static str {
    "ok\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_from_port_then_fc_then_9000() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(port(env(&[])).unwrap(), 9000);
        assert_eq!(port(env(&[("FC_SERVER_PORT", "9100")])).unwrap(), 9100);
        assert_eq!(
            port(env(&[("PORT", "8080"), ("FC_SERVER_PORT", "9100")])).unwrap(),
            8080
        );
        assert!(port(env(&[("PORT", "http")])).is_err());
    }
}
