//! AWS Lambda (a custom runtime, `provided.al2023`, the binary as `bootstrap`): the
//! `lambda_runtime` crate runs the Runtime API loop (`AWS_LAMBDA_RUNTIME_API`, `GET
//! /2018-06-01/runtime/invocation/next`, `POST …/{request id}/response` or `…/error`); each
//! event — an EventBridge scheduled event, or a rule's constant input such as
//! `{"monitors":["homepage"]}` — is one invocation, bounded by the deadline Lambda gives in
//! the invocation's context (and `--deadline` when smaller).
//!
//! An invocation in which watchpost could not do its job, or whose event was refused, is
//! reported through `…/error` with the summary (or the reason) as the error message, so it
//! shows as a failed invocation; a monitor that fails is a successful invocation whose
//! summary says so (the alert is its output).

use crate::{FunctionError, Invocation, Invoker};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// Run the Lambda loop until the Runtime API fails. `lambda_runtime` reads its settings
/// from the environment Lambda sets (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`); the caller checks they
/// are there ([`missing_env`]) because the crate panics without them.
pub async fn run(invoker: Arc<Invoker>) -> Result<(), FunctionError> {
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let invoker = invoker.clone();
        async move { handle(&invoker, event).await }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| FunctionError::Lambda(e.to_string()))
}

/// The environment variables `lambda_runtime` needs that are not set.
pub fn missing_env(env: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
    ]
    .into_iter()
    .filter(|name| env(name).is_none_or(|v| v.is_empty()))
    .collect()
}

async fn handle(invoker: &Invoker, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let platform = instant_of(event.context.deadline());
    let invocation = match crate::event::Event::from_value(&event.payload) {
        Ok(parsed) => invoker.run(parsed, platform).await,
        Err(e) => Invocation::Refused(e),
    };
    let answer = invoker.answer(&invocation);
    if invocation.failed() {
        let error_type = match &invocation {
            Invocation::Refused(_) => "watchpost.BadEvent",
            Invocation::Ran(_) => "watchpost.NotRun",
            Invocation::Agent(_) => "watchpost.NotPushed",
        };
        return Err(Diagnostic {
            error_type: error_type.into(),
            error_message: answer.to_string(),
        });
    }
    Ok(answer)
}

/// A wall-clock deadline as an instant of tokio's clock (now, when it has passed).
fn instant_of(deadline: SystemTime) -> Option<tokio::time::Instant> {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Some(tokio::time::Instant::now() + left)
}
