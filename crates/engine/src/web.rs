//! The daemon's HTTP side: its routes ([`app`]: `/healthz`) and its listener ([`serve`]),
//! bounded so that no client can take what the checks need: at
//! most [`Limits::max_connections`] connections at once (further ones wait in the kernel's
//! accept queue, holding none of our file descriptors), a request's head must arrive within
//! [`Limits::header_timeout`] (an idle keep-alive connection is closed after it), and no
//! connection lives longer than [`Limits::max_lifetime`]. The only module that knows about
//! axum and hyper's server side.

use crate::Generation;
use crate::health::Health;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use watchpost_store::Store;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub max_lifetime: Duration,
}

impl Limits {
    /// At most 256 connections, or a quarter of the open-files limit if that is smaller (the
    /// rest is for checks, the store and channels); 10 s for a request head; 60 s per
    /// connection.
    pub fn for_open_files(limit: u64) -> Limits {
        let quarter = usize::try_from(limit / 4).unwrap_or(usize::MAX);
        Limits {
            max_connections: quarter.clamp(8, 256),
            header_timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(60),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; connections still open then are
/// closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Take a permit before accepting: when all are in use, new clients wait in the
        // kernel's queue instead of costing us a file descriptor each.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!("web listener: cannot accept a connection: {e}");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.max_lifetime, conn).await;
        });
        // Reap finished connections so the set doesn't grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    pub health: Arc<Health>,
    pub store: Arc<dyn Store>,
    pub generation: Arc<RwLock<Arc<Generation>>>,
    /// Where ingest tells waiting ticks that observations arrived.
    pub hub: Arc<crate::locations::Hub>,
}

/// The daemon's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/api/v1/status", axum::routing::get(api_status))
        .route("/metrics", axum::routing::get(metrics))
        .route(
            "/api/v1/monitors/{name}/history",
            axum::routing::get(api_history),
        )
        .route(
            "/api/v1/ingest",
            axum::routing::post(api_ingest).layer(axum::extract::DefaultBodyLimit::max(
                crate::locations::wire::MAX_BODY_BYTES,
            )),
        )
        .route(
            "/api/v1/agent/assignment",
            axum::routing::post(api_assignment),
        )
        .with_state(state)
}

pub(crate) fn current(generation: &RwLock<Arc<Generation>>) -> Arc<Generation> {
    generation.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A JSON reply.
type JsonReply =
    Result<([(axum::http::header::HeaderName, &'static str); 1], String), (StatusCode, String)>;

/// `read` (a store read run on the blocking pool) as a reply: its document as JSON with every
/// secret masked, `503` when the store failed, `500` when the task did.
fn json_reply<T: serde::Serialize>(
    read: Result<Result<T, watchpost_store::StoreError>, tokio::task::JoinError>,
    secrets: &watchpost_config::Secrets,
) -> JsonReply {
    match read {
        Ok(Ok(value)) => {
            let mut doc = serde_json::to_value(&value).unwrap_or_default();
            crate::pipeline::redact_json(&mut doc, secrets);
            Ok((
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                format!("{doc}\n"),
            ))
        }
        Ok(Err(e)) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            secrets
                .redact(&format!("cannot read the store: {e}\n"))
                .into_owned(),
        )),
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}\n"),
        )),
    }
}

/// `GET /api/v1/status`: the document of `watchpost status --json` (`crate::status`), for
/// the config running now; `503` with the reason when the store can't be read.
async fn api_status(State(app): State<AppState>) -> JsonReply {
    let generation = current(&app.generation);
    let store = app.store.clone();
    let g = generation.clone();
    let report = tokio::task::spawn_blocking(move || {
        crate::status::status(store.as_ref(), &g.config, chrono::Utc::now(), None)
    })
    .await;
    json_reply(report, &generation.config.secrets)
}

/// `GET /api/v1/monitors/NAME/history?since=24h&step=1m`: the monitor's minutes (`step=1m`,
/// the default) or hours (`1h`) since that long ago (default 24h), from the rollups; `404` for
/// a monitor not in the config, `400` for a bad parameter.
async fn api_history(
    State(app): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> JsonReply {
    let generation = current(&app.generation);
    if !generation.config.monitors.iter().any(|m| m.name == name) {
        return Err((StatusCode::NOT_FOUND, format!("no monitor {name:?}\n")));
    }
    let bad = |m: String| (StatusCode::BAD_REQUEST, format!("{m}\n"));
    let (mut since, mut step) = (
        std::time::Duration::from_secs(86_400),
        watchpost_store::Step::Minute,
    );
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "since" => {
                since =
                    watchpost_units::parse_duration(&v).map_err(|e| bad(format!("since: {e}")))?;
            }
            "step" => {
                step = match &*v {
                    "1m" => watchpost_store::Step::Minute,
                    "1h" => watchpost_store::Step::Hour,
                    other => return Err(bad(format!("step: {other:?} is not 1m or 1h"))),
                };
            }
            other => return Err(bad(format!("unknown parameter {other:?} (since, step)"))),
        }
    }
    let from = chrono::Duration::from_std(since)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .ok_or_else(|| bad("since: too long ago".into()))?;
    let store = app.store.clone();
    let history = tokio::task::spawn_blocking(move || {
        crate::status::history(store.as_ref(), &name, step, from)
    })
    .await;
    json_reply(history, &generation.config.secrets)
}

/// A refusal as a reply: its status and reason (one line).
fn refused(r: crate::locations::wire::Refused) -> (StatusCode, String) {
    (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        format!("{}\n", r.reason),
    )
}

fn authorization(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// `POST /api/v1/ingest`: a probe agent's push of observations (docs/locations.md). `401`
/// for a missing or wrong token or another location's; `403` when a monitor is not assigned
/// to the location; `413` for a body over 4 MiB; `400` naming the field for anything
/// malformed. Nothing of a refused push is stored; a re-sent one is stored once.
async fn api_ingest(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<JsonReply, (StatusCode, String)> {
    use crate::locations::server;
    let generation = current(&app.generation);
    let config = &generation.config;
    let location = server::authorize(config, authorization(&headers)).map_err(refused)?;
    let (rows, dropped) =
        server::read_batch(config, location, &body, Utc::now()).map_err(refused)?;
    if dropped > 0 {
        tracing::warn!(
            "location {location}: its agent dropped {dropped} observation(s) (its buffer was full)"
        );
    }
    let accepted = server::store_batch(app.store.clone(), config, location, rows)
        .await
        .map_err(refused)?;
    app.hub.arrived(location, accepted.stored, dropped);
    Ok(Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("{}\n", serde_json::to_string(&accepted).unwrap_or_default()),
    )))
}

/// `POST /api/v1/agent/assignment`: the monitors the token's location runs
/// ([`crate::locations::wire::Assignment`]); `401` as for ingest.
async fn api_assignment(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<JsonReply, (StatusCode, String)> {
    use crate::locations::server;
    let generation = current(&app.generation);
    let config = &generation.config;
    let location = server::authorize(config, authorization(&headers)).map_err(refused)?;
    if let Some(named) = headers
        .get(crate::locations::wire::LOCATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|n| *n != location)
    {
        return Err(refused(crate::locations::wire::Refused::new(
            401,
            format!("the token is not location {named:?}'s"),
        )));
    }
    let assignment = server::assignment(config, location).map_err(refused)?;
    Ok(Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&assignment).unwrap_or_default(),
    )))
}

/// `GET /metrics`: the Prometheus text format (`crate::metrics`), secrets masked.
async fn metrics(
    State(app): State<AppState>,
) -> (
    StatusCode,
    [(axum::http::header::HeaderName, &'static str); 1],
    String,
) {
    let generation = current(&app.generation);
    let (store, g, scheduler, hub) = (
        app.store.clone(),
        generation.clone(),
        app.health.scheduler(),
        app.hub.clone(),
    );
    let page = tokio::task::spawn_blocking(move || {
        crate::metrics::render(
            store.as_ref(),
            &g,
            scheduler.as_deref(),
            &hub,
            chrono::Utc::now(),
        )
    })
    .await;
    let content_type = [(
        axum::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )];
    match page {
        Ok(page) => (
            StatusCode::OK,
            content_type,
            generation.config.secrets.redact(&page).into_owned(),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            content_type,
            format!("# internal error: {e}\n"),
        ),
    }
}

/// `/healthz`: `200 ok` while the scheduler loop ticks, the last store commit succeeded, no
/// check was left unrun for lack of resources lately and the oldest undelivered notification
/// is younger than 10 minutes; otherwise `503` with one reason per line.
async fn healthz(State(app): State<AppState>) -> (StatusCode, String) {
    let store = app.store.clone();
    let oldest = tokio::task::spawn_blocking(move || store.oldest_undelivered()).await;
    let secrets = current(&app.generation).config.secrets.clone();
    let mut extra = Vec::new();
    let oldest = match oldest {
        Ok(Ok(Some(p))) => Some((
            p.created_at,
            format!(
                "monitor {:?} → channel {:?}, {} attempt(s){}",
                p.monitor,
                p.channel,
                p.attempts,
                p.last_error
                    .map(|e| format!(", last error: {}", secrets.redact(&e)))
                    .unwrap_or_default()
            ),
        )),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            extra.push(format!(
                "the store cannot be read: {}",
                secrets.redact(&e.to_string())
            ));
            None
        }
        Err(e) => {
            extra.push(format!("the store cannot be read: {e}"));
            None
        }
    };
    let mut problems = app.health.problems(Utc::now(), oldest);
    problems.extend(extra);
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        let mut body = String::from("unhealthy\n");
        for p in problems {
            body.push_str("- ");
            body.push_str(&p);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
