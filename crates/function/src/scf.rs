//! Tencent SCF custom runtime: the `bootstrap` process talks to the runtime API at
//! `http://$SCF_RUNTIME_API:$SCF_RUNTIME_API_PORT`:
//!
//! 1. `POST /runtime/init/ready` once, when the engine is set up (the cold start is over);
//! 2. then for ever: `GET /runtime/invocation/next` (the event, no timeout: it waits for the
//!    next trigger), run it, and `POST /runtime/invocation/response` with the JSON summary —
//!    or `POST /runtime/invocation/error` when watchpost could not do its job (a check it could
//!    not run, a store that failed) or the event was refused. Unlike Lambda there is no
//!    request id in the paths: one invocation at a time per instance.
//!
//! SCF does not tell a custom runtime its configured timeout, so the invocation's budget is
//! `--deadline` (set it to the function's timeout). The loop ends with an error when the
//! runtime API fails or goes away.

use crate::{FunctionError, Invoker};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// Where the SCF runtime API is.
#[derive(Debug, Clone)]
pub struct ScfApi {
    /// `HOST:PORT`.
    pub authority: String,
}

impl ScfApi {
    /// From `SCF_RUNTIME_API` (host) and `SCF_RUNTIME_API_PORT`; `env` reads a variable.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<ScfApi, FunctionError> {
        let host = env("SCF_RUNTIME_API")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                FunctionError::Setup(
                    "--runtime scf needs SCF_RUNTIME_API (set by SCF for a custom runtime)".into(),
                )
            })?;
        let port = env("SCF_RUNTIME_API_PORT").filter(|v| !v.is_empty());
        let authority = match port {
            Some(port) => {
                let port: u16 = port.parse().map_err(|_| {
                    FunctionError::Setup(format!("SCF_RUNTIME_API_PORT {port:?} is not a port"))
                })?;
                if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            // A host already carrying its port.
            None => host,
        };
        Ok(ScfApi { authority })
    }

    fn error(&self, message: impl Into<String>) -> FunctionError {
        FunctionError::RuntimeApi {
            api: self.authority.clone(),
            message: message.into(),
        }
    }

    /// One request on a fresh connection; the answer's body when its status is 2xx.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, FunctionError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| self.error(format!("cannot connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.error(format!("cannot start HTTP: {e}")))?;
        let driver = tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, &self.authority);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.error(format!("cannot build the request: {e}")))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.error(format!("{method} {path}: {e}")))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.error(format!("{method} {path}: reading the answer: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(self.error(format!("{method} {path} answered {status}")));
            }
            Ok(body)
        }
        .await;
        driver.abort();
        result
    }
}

/// Say ready, then serve invocations until the runtime API fails.
pub async fn run(invoker: &Invoker, api: &ScfApi) -> Result<(), FunctionError> {
    api.call(Method::POST, "/runtime/init/ready", Some(b"{}".to_vec()))
        .await?;
    tracing::info!("SCF runtime ready (runtime API {})", api.authority);
    loop {
        let event = api
            .call(Method::GET, "/runtime/invocation/next", None)
            .await?;
        let invocation = invoker.invoke(&event, None).await;
        let answer = serde_json::to_vec(&invoker.answer(&invocation)).unwrap_or_default();
        let path = if invocation.failed() {
            if let crate::Invocation::Refused(e) = &invocation {
                tracing::error!(
                    "{}",
                    invoker.generation.config.secrets.redact(&e.to_string())
                );
            }
            "/runtime/invocation/error"
        } else {
            "/runtime/invocation/response"
        };
        api.call(Method::POST, path, Some(answer)).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_address_from_the_environment() {
        let env = |h: &'static str, p: &'static str| {
            move |name: &str| match name {
                "SCF_RUNTIME_API" => Some(h.to_string()),
                "SCF_RUNTIME_API_PORT" => Some(p.to_string()),
                _ => None,
            }
        };
        assert_eq!(
            ScfApi::from_env(env("127.0.0.1", "9001"))
                .unwrap()
                .authority,
            "127.0.0.1:9001"
        );
        assert_eq!(
            ScfApi::from_env(env("::1", "9001")).unwrap().authority,
            "[::1]:9001"
        );
        assert_eq!(
            ScfApi::from_env(env("127.0.0.1:9001", ""))
                .unwrap()
                .authority,
            "127.0.0.1:9001"
        );
        assert!(ScfApi::from_env(env("127.0.0.1", "x")).is_err());
        assert!(ScfApi::from_env(|_| None).is_err());
    }
}
