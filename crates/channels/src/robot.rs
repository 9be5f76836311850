//! What the chat-robot channels ([`crate::wecom`], [`crate::dingtalk`], [`crate::feishu`])
//! share: reading the provider's JSON error code out of an answer, posting the parts of a
//! split message in order, checking mobile numbers, and an injectable clock for signatures.

use crate::http::{Answer, Endpoint, Redact, prefixed, with_message};
use crate::{ConfigError, Delivery, SendError};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

/// The time used for request signatures (DingTalk, Feishu); tests set a fixed one.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// What a provider's error code means.
pub(crate) enum Verdict {
    Delivered,
    /// Try again (not before the duration, when given; else the answer's `Retry-After`).
    Retry(Option<Duration>),
    Fatal,
}

/// `(errcode, errmsg)` of a WeCom or DingTalk answer, for [`classify`].
pub(crate) fn errcode(v: &serde_json::Value) -> Option<(i64, String)> {
    let code = v.get("errcode")?.as_i64()?;
    let message = v.get("errmsg").and_then(|m| m.as_str()).unwrap_or("");
    Some((code, message.to_string()))
}

/// Classify a robot's answer. Statuses that say "try again" (408, 429, 5xx) win; otherwise the
/// JSON code decides (`code` reads `(code, message)` out of the body; providers answer errors
/// with 200 or with 400, always with the code). An answer without a code: a non-2xx status
/// decides by itself; a 2xx is *retryable*, because the robot always answers JSON, so
/// something else (a proxy, a captive portal, a misrouted gateway) answered, and whether the
/// robot got the message is unknown: a possible duplicate is better than a lost alert.
pub(crate) fn classify(
    kind: &str,
    answer: &Answer,
    code: impl Fn(&serde_json::Value) -> Option<(i64, String)>,
    verdict: impl Fn(i64, &str) -> Verdict,
) -> Result<Delivery, SendError> {
    let status = answer.status.as_u16();
    let retry_status = status == 408 || status == 429 || answer.status.is_server_error();
    if retry_status {
        return answer.by_status().map_err(|e| prefixed(kind, e));
    }
    let Some((code, message)) = answer.json().as_ref().and_then(code) else {
        if answer.status.is_success() {
            return Err(SendError::Retryable {
                message: format!(
                    "{kind}: HTTP {status} with an unexpected body (not the robot's JSON): {}",
                    answer.short_body()
                ),
                retry_after: None,
            });
        }
        return answer.by_status().map_err(|e| prefixed(kind, e));
    };
    let message = answer.text(&message);
    match verdict(code, &message) {
        Verdict::Delivered if answer.status.is_success() => Ok(answer.delivery()),
        Verdict::Delivered => answer.by_status().map_err(|e| prefixed(kind, e)),
        Verdict::Retry(after) => Err(SendError::Retryable {
            message: format!("{kind}: errcode {code}: {message}"),
            retry_after: after.or_else(|| answer.retry_after()),
        }),
        Verdict::Fatal => Err(SendError::fatal(format!(
            "{kind}: errcode {code}: {message}"
        ))),
    }
}

/// Post `messages` (JSON bodies) in order, each with the extra `query` (a signature) when
/// given, one new connection each, stopping at the first failure. `secrets` (a signature in
/// the bodies) are masked in texts from the answers, besides the endpoint's own. The delivery is the last
/// answer's. When message k of n fails after earlier ones went through, the error says so:
/// the send as a whole failed and a retry sends every part again, so the group may see the
/// first parts twice (better than an alert cut short).
pub(crate) async fn post_all(
    kind: &str,
    endpoint: &Endpoint,
    timeout: Duration,
    query: Option<&str>,
    secrets: &Redact,
    messages: &[serde_json::Value],
    classify: impl Fn(&Answer) -> Result<Delivery, SendError>,
) -> Result<Delivery, SendError> {
    let n = messages.len();
    let mut delivered = Delivery::default();
    for (i, message) in messages.iter().enumerate() {
        let body = serde_json::to_vec(message).expect("JSON serializes");
        let result = match endpoint
            .post_with(query, &HeaderMap::new(), body, timeout, secrets)
            .await
        {
            Ok(answer) => classify(&answer),
            Err(e) => Err(prefixed(kind, e)),
        };
        match result {
            Ok(d) => delivered = d,
            Err(e) if n == 1 => return Err(e),
            Err(e) => {
                let k = i + 1;
                let before = match i {
                    0 => String::new(),
                    1 => format!(" (message 1 of {n} was delivered; a retry sends all {n} again)"),
                    _ => format!(
                        " (messages 1-{i} of {n} were delivered; a retry sends all {n} again)"
                    ),
                };
                let rest = format!("{kind}: ");
                return Err(with_message(e, |m| {
                    let m = m.strip_prefix(&rest).unwrap_or(m);
                    format!("{kind}: message {k} of {n}: {m}{before}")
                }));
            }
        }
    }
    Ok(delivered)
}

/// Check mobile numbers for @-mentions: digits with an optional leading `+` (6 to 15 digits,
/// E.164's longest), or `@all` where `all_allowed`.
pub(crate) fn check_mobiles(
    mobiles: &[String],
    setting: &str,
    all_allowed: bool,
) -> Result<(), ConfigError> {
    for m in mobiles {
        if m == "@all" {
            if all_allowed {
                continue;
            }
            return Err(ConfigError(format!(
                "{setting}: \"@all\" is not a mobile number (use at_all: true)"
            )));
        }
        let digits = m.strip_prefix('+').unwrap_or(m);
        if !(6..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            let also = if all_allowed { " or \"@all\"" } else { "" };
            return Err(ConfigError(format!(
                "{setting}: {m:?} is not a mobile number (6 to 15 digits, optionally with a \
                 leading +){also}"
            )));
        }
    }
    Ok(())
}

/// A configured signing secret: when given, not empty (an unset variable substituted as "").
pub(crate) fn check_secret(secret: &Option<String>, setting: &str) -> Result<(), ConfigError> {
    match secret {
        Some(s) if s.trim().is_empty() => Err(ConfigError(format!(
            "{setting}: is empty; remove it to send unsigned"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles() {
        let ok = |v: &[&str], all| {
            check_mobiles(
                &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "x: mentions",
                all,
            )
        };
        ok(&["13800001111", "+8613800001111", "@all"], true).unwrap();
        let e = ok(&["1380000111a"], true).unwrap_err();
        assert!(
            e.0.starts_with("x: mentions: \"1380000111a\" is not a mobile"),
            "{e}"
        );
        assert!(e.0.contains("\"@all\""), "{e}");
        assert!(ok(&["12345"], true).is_err());
        assert!(ok(&["1234567890123456"], true).is_err());
        assert!(ok(&["+"], true).is_err());
        assert!(ok(&["138 0000 1111"], true).is_err());
        let e = ok(&["@all"], false).unwrap_err();
        assert!(e.0.contains("at_all"), "{e}");
    }

    #[test]
    fn secrets() {
        check_secret(&None, "x: secret").unwrap();
        check_secret(&Some("SECabc".into()), "x: secret").unwrap();
        let e = check_secret(&Some(" ".into()), "x: secret").unwrap_err();
        assert_eq!(e.0, "x: secret: is empty; remove it to send unsigned");
    }
}
