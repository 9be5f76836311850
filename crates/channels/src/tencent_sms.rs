//! `type: tencent_sms`: a text message through Tencent Cloud SMS (API 3.0, `SendSms` of
//! version 2021-01-11), signed with [TC3-HMAC-SHA256](crate::tc3).
//!
//! ```yaml
//! channels:
//!   oncall-sms:
//!     type: tencent_sms
//!     secret_id: "${TC_ID}"
//!     secret_key: "${TC_KEY}"
//!     sdk_app_id: "1400006666"          # the SMS application (digits)
//!     sign_name: "腾讯云"                # the approved signature, without 【】
//!     template_id: "1110"               # the approved body template (digits)
//!     phones: ["+8613800000000"]        # E.164, 1 to 200, all +86 or none +86
//!     params: ["{{ monitor }}", "{{ status }}"]   # the default: one per {n} of the template
//!     template_text: "监控{1}状态{2}，请及时处理。"  # optional: checks the count of params
//!     param_max_chars: 12               # default 12: each value is cut to this many characters
//!     region: ap-guangzhou              # default
//!     endpoint: "https://sms.tencentcloudapi.com"  # default; a private gateway or a test server
//!     timeout: 10s                      # default, the whole request
//!     ca_file: /etc/watchpost/private-ca.pem       # optional, trusted besides the web PKI
//! ```
//!
//! # Template parameters
//!
//! Tencent sends only approved templates; the alert goes into the template's `{1}`, `{2}`,
//! ... variables. `params` holds one Jinja template per variable, rendered for the alert with
//! the variables of [`crate::template`] (`monitor`, `status` — `故障`/`恢复`/... or
//! `DOWN`/`RESOLVED`/... —, `summary`, `failures`, `at`, ...). The default,
//! `["{{ monitor }}", "{{ status }}"]`, fits a template such as
//! `您的监控{1}当前状态：{2}，请及时处理。`
//!
//! **`kafka_lag` alerts** with the default `params` carry the topic and its lag instead, as the
//! SMS of the original Kafka function did: `{1}` is the topic whose lag broke its limit (the
//! largest when several did, followed by `+N` for the N others: `orders+2`, the name cut to
//! leave room), `{2}` the lag: `积压12.3万` / `lag 123.4k` for a DOWN alert, `仍积压12.3万` /
//! `still 123.4k` for a reminder. A recovery notice comes from a tick where no topic is over
//! its limit, so it keeps `[monitor, status]` (`billing-lag`, `恢复`). A count below 100,000 is shown whole; above, with one decimal in 万/亿 (zh-CN) or k/M/G
//! (en), so both fit 12 characters. The same template (`您的监控{1}当前状态：{2}`) reads
//! `您的监控orders当前状态：积压12.3万`. A `kafka_lag` alert that names no topic (a window
//! status such as `STALL`, `group_lag`, an unreachable cluster) keeps `[monitor, status]`;
//! configured `params` always win (`{{ failures[0].topic }}` is the topic there).
//!
//! Each of `failures` is a condition that failed, with its parts as attributes: for
//! `total 1430ms > 1000ms`, `{{ failures[0].actual }}` is `1430ms`, `{{ failures[0].operand
//! }}` `total` and `{{ failures[0].expected }}` `1000ms` — short values that fit a variable's
//! length limit — while `{{ failures[0] }}` is the whole line (`local: total 1430ms >
//! 1000ms`). Test alerts may have no failures: write `{{ failures[0].actual if failures else
//! '-' }}`.
//!
//! With `template_text` (the approved text, copied from the console) the number of
//! parameters is checked when the config is loaded: its placeholders must be `{1}`..`{n}`
//! without gaps and `n` must equal the length of `params`. Without it the count can only be
//! checked by Tencent, at send time (`FailedOperation.TemplateParamSetNotMatchApprovedTemplate`);
//! [`TencentSmsConfig::notes`] says so, and `watchpost notify CHANNEL` sends a test.
//!
//! Each rendered value is put on one line (runs of whitespace, line breaks included, become
//! one space), an empty value becomes `-`, and a value longer than `param_max_chars`
//! characters is cut, its last kept character replaced by `…`. The default of **12** is
//! Tencent's limit for accounts verified as an individual (error
//! `InvalidParameterValue.TemplateParameterLengthLimit`, "单个模板变量字符数超过12个";
//! 正文模板审核标准, cloud.tencent.com/document/product/382/39023 and
//! tencentcloud.com/zh/document/product/382/40659: "个人认证用户...每个变量取值最多支持12个字。
//! 企业认证用户没有变量取值长度限制"). Enterprise accounts may raise it (the console's
//! template page shows the limit); the whole message, signature included, must stay within
//! 500 characters. Tencent also rejects links in variables: keep URLs in the template text.
//!
//! # Request
//!
//! `POST {endpoint}` with these headers, `Content-Length` and `User-Agent: watchpost/VERSION`:
//!
//! ```text
//! Authorization: TC3-HMAC-SHA256 Credential={secret_id}/{UTC date}/sms/tc3_request, SignedHeaders=content-type;host, Signature={hex}
//! Content-Type: application/json; charset=utf-8
//! Host: sms.tencentcloudapi.com            (the endpoint's host[:port], exactly as signed)
//! X-TC-Action: SendSms
//! X-TC-Version: 2021-01-11
//! X-TC-Timestamp: {Unix seconds}
//! X-TC-Region: ap-guangzhou
//! ```
//!
//! and a compact UTF-8 JSON body, keys in this order:
//!
//! ```json
//! {"PhoneNumberSet":["+8613800000000"],"SmsSdkAppId":"1400006666","SignName":"腾讯云",
//!  "TemplateId":"1110","TemplateParamSet":["homepage","故障"],
//!  "SessionContext":"homepage:1767322800000:down:1767322800000"}
//! ```
//!
//! `SessionContext` is the alert's [`Alert::idempotency_key`] (Tencent echoes it in the answer
//! and in delivery receipts, so a receipt can be traced to its alert); it is left out when
//! longer than Tencent's 511 bytes. The signature covers `Content-Type` and `Host`, over path
//! `/` (API 3.0 is always posted to `/`: a gateway with another path must forward there).
//! The timestamp is taken at each attempt, so a retry is signed afresh.
//!
//! # Answer
//!
//! - HTTP status other than 2xx: 408, 429 and 5xx retryable, the rest fatal.
//! - `{"Response":{"Error":{"Code","Message"},"RequestId"}}`: nothing was sent. Retryable for
//!   `RequestLimitExceeded*` (API rate), `InternalError*` (except `SigVerificationFail`,
//!   `SigFieldMissing`, `RestApiInterfaceNotExist`, `RequestTimeException`),
//!   `ServiceUnavailable`, and the short per-number frequency limits
//!   `LimitExceeded.PhoneNumberThirtySecondLimit` (retry after 30 s),
//!   `LimitExceeded.PhoneNumberOneHourLimit` and `LimitExceeded.DeliveryFrequencyLimit`.
//!   Fatal for everything else: `AuthFailure.*` (a wrong key, or a clock more than five
//!   minutes off), `FailedOperation.*` (unapproved signature or template, wrong parameter
//!   count, sensitive words, empty SMS package, ...), `InvalidParameter*`, `MissingParameter*`,
//!   `UnauthorizedOperation.*`, `UnsupportedOperation.*`, the daily quotas
//!   (`LimitExceeded.*DailyLimit`: retrying the same day can't help), and unknown codes.
//! - Otherwise every `SendStatusSet[i].Code` must be `Ok`: delivered. When no number got the
//!   message, the failure is retryable if any number's code is (the same table); when some
//!   got it and others didn't, the failure is **fatal**, because a retry would send the
//!   message again to those who already have it. The error lists each failed number (masked:
//!   `+86138****0000`) with its code and message.
//! - A 2xx answer that is none of these (not JSON, no `Response`): fatal, since it can't
//!   tell whether anything was sent.
//!
//! Error messages and `Debug` output never contain `secret_key`, the `Authorization` header,
//! or a whole phone number; `secret_id` is shown masked.

use crate::http::{Answer, Endpoint, Redact, default_timeout, prefixed, redact_url, timeout};
use crate::message::{Alert, AlertKind, Locale};
use crate::tc3;
use crate::template::Template;
use crate::{ConfigError, Delivery, SendError};
use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::http::DEFAULT_TIMEOUT;
/// The default `endpoint`.
pub const DEFAULT_ENDPOINT: &str = "https://sms.tencentcloudapi.com";
/// The default `region`.
pub const DEFAULT_REGION: &str = "ap-guangzhou";
/// The default `param_max_chars`: Tencent's per-variable limit for individual accounts.
pub const DEFAULT_PARAM_MAX_CHARS: usize = 12;
/// Tencent's limit on a whole message, signature and variables included (characters).
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Numbers per `SendSms` call.
pub const MAX_PHONES: usize = 200;
/// `X-TC-Action`.
pub const ACTION: &str = "SendSms";
/// `X-TC-Version`.
pub const VERSION: &str = "2021-01-11";
/// The service name in the signature's scope.
pub const SERVICE: &str = "sms";
/// The `Content-Type` sent and signed.
pub const CONTENT_TYPE_VALUE: &str = "application/json; charset=utf-8";
/// `SessionContext` must be shorter than 512 bytes.
const MAX_SESSION_CONTEXT: usize = 511;

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

fn default_region() -> String {
    DEFAULT_REGION.to_string()
}

/// The default `params`, for every alert but a `kafka_lag` one naming topics.
pub const DEFAULT_PARAMS: [&str; 2] = ["{{ monitor }}", "{{ status }}"];

fn default_param_max_chars() -> usize {
    DEFAULT_PARAM_MAX_CHARS
}

/// `{type: tencent_sms, secret_id, secret_key, sdk_app_id, sign_name, template_id, phones,
/// params, template_text, param_max_chars, region, endpoint, timeout, ca_file}` (see the
/// module docs). `Debug` hides the key, masks the SecretId and the phone numbers.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentSmsConfig {
    /// The API key's SecretId (`AKID...`).
    pub secret_id: String,
    /// The API key's SecretKey.
    pub secret_key: String,
    /// The SMS application's SdkAppId (digits; a YAML number is accepted).
    #[serde(deserialize_with = "digits_or_string")]
    pub sdk_app_id: String,
    /// The approved signature's text.
    pub sign_name: String,
    /// The approved body template's id (digits; a YAML number is accepted).
    #[serde(deserialize_with = "digits_or_string")]
    pub template_id: String,
    /// Numbers in E.164 form (`+8613800000000`).
    pub phones: Vec<String>,
    /// One Jinja template per `{n}` variable of the SMS template; `None`: the defaults (two
    /// variables, see the module docs on `kafka_lag` alerts).
    #[serde(default)]
    pub params: Option<Vec<String>>,
    /// The approved template's text, to check the number of `params` offline.
    #[serde(default)]
    pub template_text: Option<String>,
    /// Each rendered parameter is cut to this many characters.
    #[serde(default = "default_param_max_chars")]
    pub param_max_chars: usize,
    /// `X-TC-Region`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Where to post (`https://sms.tencentcloudapi.com`).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The whole request, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// A string, or a non-negative integer taken as its decimal digits.
fn digits_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    match Id::deserialize(d) {
        Ok(Id::Text(s)) => Ok(s),
        Ok(Id::Number(n)) => Ok(n.to_string()),
        Err(_) => Err(serde::de::Error::custom(
            "expected a string of digits such as \"1400006666\"",
        )),
    }
}

impl std::fmt::Debug for TencentSmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phones: Vec<String> = self.phones.iter().map(|p| mask_phone(p)).collect();
        f.debug_struct("TencentSmsConfig")
            .field("secret_id", &mask_secret_id(&self.secret_id))
            .field("secret_key", &"<redacted>")
            .field("sdk_app_id", &self.sdk_app_id)
            .field("sign_name", &self.sign_name)
            .field("template_id", &self.template_id)
            .field("phones", &phones)
            .field("params", &self.params)
            .field("template_text", &self.template_text)
            .field("param_max_chars", &self.param_max_chars)
            .field("region", &self.region)
            .field("endpoint", &redact_url(&self.endpoint))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl TencentSmsConfig {
    /// What `watchpost validate` should tell the operator about settings that are valid but
    /// can't be fully checked offline (one line each, prefixed `tencent_sms:`).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.template_text.is_none() {
            notes.push(format!(
                "tencent_sms: the parameter count of template {} can't be checked offline \
                 ({} param(s) configured); add template_text or run `watchpost notify`",
                self.template_id,
                self.params.as_ref().map_or(DEFAULT_PARAMS.len(), Vec::len)
            ));
        }
        notes
    }
}

/// The `SendSms` request body (key order as Tencent documents it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendSmsBody<'a> {
    #[serde(rename = "PhoneNumberSet")]
    pub phone_number_set: &'a [String],
    #[serde(rename = "SmsSdkAppId")]
    pub sms_sdk_app_id: &'a str,
    #[serde(rename = "SignName")]
    pub sign_name: &'a str,
    #[serde(rename = "TemplateId")]
    pub template_id: &'a str,
    #[serde(rename = "TemplateParamSet")]
    pub template_param_set: Vec<String>,
    #[serde(rename = "SessionContext", skip_serializing_if = "Option::is_none")]
    pub session_context: Option<String>,
}

/// A built channel: everything checked, the endpoint parsed, the templates compiled.
pub struct TencentSms {
    endpoint: Endpoint,
    /// The `Host` header, sent and signed.
    host: String,
    secret_id: String,
    secret_key: String,
    sdk_app_id: String,
    sign_name: String,
    template_id: String,
    phones: Vec<String>,
    params: Vec<Template>,
    /// `params` are the defaults (not configured): a `kafka_lag` alert naming topics gets
    /// [`kafka_params`] instead.
    default_params: bool,
    param_max_chars: usize,
    region: HeaderValue,
    timeout: Duration,
}

impl std::fmt::Debug for TencentSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TencentSms")
            .field("to", &self.endpoint.shown())
            .field("secret_id", &mask_secret_id(&self.secret_id))
            .field("sdk_app_id", &self.sdk_app_id)
            .field("template_id", &self.template_id)
            .field("phones", &self.phones.len())
            .field("params", &self.params.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TencentSms {
    /// Check `config` and build the channel (see the module docs for every rule). Nothing is
    /// sent and no connection is made.
    pub fn new(config: &TencentSmsConfig) -> Result<TencentSms, ConfigError> {
        let err = |m: String| ConfigError(format!("tencent_sms: {m}"));

        check_credential(&config.secret_id, "secret_id")?;
        if config.secret_id.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(err(
                "secret_id: only letters, digits and punctuation (no spaces)".into(),
            ));
        }
        check_credential(&config.secret_key, "secret_key")?;
        check_digits(&config.sdk_app_id, "sdk_app_id", "1400006666")?;
        check_digits(&config.template_id, "template_id", "1110")?;
        let sign_name = config.sign_name.trim();
        if sign_name.is_empty() {
            return Err(err("sign_name: empty (the approved SMS signature)".into()));
        }
        if sign_name.contains(['【', '】', '[', ']']) {
            return Err(err(format!(
                "sign_name: write the signature without brackets ({:?}); Tencent adds 【】",
                sign_name.trim_matches(['【', '】', '[', ']'])
            )));
        }
        check_phones(&config.phones)?;
        if config.region.is_empty()
            || !config
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err(format!(
                "region: {:?} is not a region name such as ap-guangzhou",
                config.region
            )));
        }
        let region = HeaderValue::from_str(&config.region)
            .map_err(|_| err("region: not a valid header value".into()))?;
        if config.param_max_chars == 0 || config.param_max_chars > MAX_MESSAGE_CHARS {
            return Err(err(format!(
                "param_max_chars: must be 1 to {MAX_MESSAGE_CHARS} (got {})",
                config.param_max_chars
            )));
        }

        let endpoint = Endpoint::new(
            &config.endpoint,
            config.ca_file.as_deref(),
            "tencent_sms: endpoint",
        )?;
        if endpoint.target().contains('?') {
            return Err(err(
                "endpoint: a query string is not supported (API 3.0 signs none)".into(),
            ));
        }
        let host = host_header(&config.endpoint).ok_or_else(|| err("endpoint: no host".into()))?;

        let sources: Vec<&str> = match &config.params {
            Some(p) => p.iter().map(String::as_str).collect(),
            None => DEFAULT_PARAMS.to_vec(),
        };
        if let Some(text) = &config.template_text {
            check_placeholders(text, sources.len())?;
        }
        let params = sources
            .iter()
            .enumerate()
            .map(|(i, source)| Template::compile(source, &format!("tencent_sms: params[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;

        let endpoint = endpoint.with_secrets([&config.secret_id, &config.secret_key]);
        Ok(TencentSms {
            endpoint,
            host,
            secret_id: config.secret_id.clone(),
            secret_key: config.secret_key.clone(),
            sdk_app_id: config.sdk_app_id.clone(),
            sign_name: sign_name.to_string(),
            template_id: config.template_id.clone(),
            phones: config.phones.clone(),
            params,
            default_params: config.params.is_none(),
            param_max_chars: config.param_max_chars,
            region,
            timeout: config.timeout,
        })
    }

    /// The `TemplateParamSet` for `alert`: every param rendered, on one line, cut to
    /// `param_max_chars` (see the module docs).
    pub fn params(&self, alert: &Alert, locale: Locale) -> Result<Vec<String>, SendError> {
        if self.default_params
            && let Some(values) = kafka_params(alert, locale, self.param_max_chars)
        {
            return Ok(values);
        }
        self.params
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.render(alert, locale)
                    .map(|v| clean_param(&v, self.param_max_chars))
                    .map_err(|e| SendError::fatal(format!("tencent_sms: params[{i}]: {e}")))
            })
            .collect()
    }

    /// The JSON body posted for `alert`.
    pub fn body(&self, alert: &Alert, locale: Locale) -> Result<Vec<u8>, SendError> {
        let key = alert.idempotency_key();
        let body = SendSmsBody {
            phone_number_set: &self.phones,
            sms_sdk_app_id: &self.sdk_app_id,
            sign_name: &self.sign_name,
            template_id: &self.template_id,
            template_param_set: self.params(alert, locale)?,
            session_context: (key.len() <= MAX_SESSION_CONTEXT).then_some(key),
        };
        Ok(serde_json::to_vec(&body).expect("the body serializes"))
    }

    /// The signed headers and body for `alert` at `now` (the signature's timestamp).
    pub fn request(
        &self,
        alert: &Alert,
        locale: Locale,
        now: DateTime<Utc>,
    ) -> Result<(HeaderMap, Vec<u8>), SendError> {
        let body = self.body(alert, locale)?;
        let timestamp = now.timestamp();
        let signed = tc3::sign(
            &self.secret_id,
            &self.secret_key,
            SERVICE,
            timestamp,
            &[("content-type", CONTENT_TYPE_VALUE), ("host", &self.host)],
            &body,
        );
        let header = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                SendError::fatal("tencent_sms: a request header is not a valid header value")
            })
        };
        let mut headers = HeaderMap::new();
        let mut authorization = header(&signed.authorization)?;
        authorization.set_sensitive(true);
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_VALUE));
        headers.insert(HOST, header(&self.host)?);
        headers.insert(
            HeaderName::from_static("x-tc-action"),
            HeaderValue::from_static(ACTION),
        );
        headers.insert(
            HeaderName::from_static("x-tc-version"),
            HeaderValue::from_static(VERSION),
        );
        headers.insert(
            HeaderName::from_static("x-tc-timestamp"),
            HeaderValue::from(timestamp),
        );
        headers.insert(HeaderName::from_static("x-tc-region"), self.region.clone());
        Ok((headers, body))
    }

    /// Send the alert (one attempt, one new connection) and classify the answer.
    pub async fn send(&self, alert: &Alert, locale: Locale) -> Result<Delivery, SendError> {
        self.send_at(alert, locale, Utc::now()).await
    }

    /// [`TencentSms::send`], signed with the clock reading `now`.
    pub async fn send_at(
        &self,
        alert: &Alert,
        locale: Locale,
        now: DateTime<Utc>,
    ) -> Result<Delivery, SendError> {
        let (headers, body) = self.request(alert, locale, now)?;
        let answer = self
            .endpoint
            .post(None, &headers, body, self.timeout)
            .await
            .map_err(|e| prefixed("tencent_sms", e))?;
        classify(&answer, self.phones.len())
    }
}

impl TencentSms {
    /// The secrets masked in texts from Tencent's answers: `secret_id`, `secret_key`, the
    /// endpoint's path and query (and each request's `Authorization`).
    pub fn redact(&self) -> &Redact {
        self.endpoint.redact()
    }
}

/// `host[:port]` of `url` as [`Endpoint`] sends it (the port only when written).
fn host_header(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

fn check_credential(value: &str, name: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError(format!(
            "tencent_sms: {name}: empty (is its environment variable set?)"
        )));
    }
    if value.trim() != value {
        return Err(ConfigError(format!(
            "tencent_sms: {name}: has leading or trailing whitespace"
        )));
    }
    Ok(())
}

fn check_digits(value: &str, name: &str, example: &str) -> Result<(), ConfigError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError(format!(
            "tencent_sms: {name}: {value:?} is not a number such as \"{example}\""
        )));
    }
    Ok(())
}

/// Whether `phone` is E.164 as Tencent wants it: `+`, then 6 to 15 digits.
pub fn is_e164(phone: &str) -> bool {
    match phone.strip_prefix('+') {
        Some(digits) => {
            (6..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        }
        None => false,
    }
}

fn check_phones(phones: &[String]) -> Result<(), ConfigError> {
    if phones.is_empty() {
        return Err(ConfigError(
            "tencent_sms: phones: empty (at least one number, e.g. \"+8613800000000\")".into(),
        ));
    }
    if phones.len() > MAX_PHONES {
        return Err(ConfigError(format!(
            "tencent_sms: phones: {} numbers, at most {MAX_PHONES} per message",
            phones.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for (i, phone) in phones.iter().enumerate() {
        if !is_e164(phone) {
            return Err(ConfigError(format!(
                "tencent_sms: phones[{i}]: {} is not an E.164 number (+ and the country \
                 code, then the number: 6 to 15 digits in all, no spaces or dashes, e.g. \
                 +8613800000000)",
                mask_phone(phone)
            )));
        }
        if !seen.insert(phone.as_str()) {
            return Err(ConfigError(format!(
                "tencent_sms: phones[{i}]: {} is listed twice",
                mask_phone(phone)
            )));
        }
    }
    let mainland = phones.iter().filter(|p| p.starts_with("+86")).count();
    if mainland != 0 && mainland != phones.len() {
        return Err(ConfigError(
            "tencent_sms: phones: mixes mainland China (+86) and other numbers, which one \
             message can't do (they need different templates); use two channels"
                .into(),
        ));
    }
    Ok(())
}

/// The distinct `{n}` placeholders of an SMS template's text, in ascending order.
pub fn placeholders(text: &str) -> Vec<u32> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && rest[digits.len()..].starts_with('}') {
            if let Ok(n) = digits.parse() {
                found.insert(n);
            }
            rest = &rest[digits.len() + 1..];
        }
    }
    found.into_iter().collect()
}

fn check_placeholders(text: &str, params: usize) -> Result<(), ConfigError> {
    let found = placeholders(text);
    let list = || {
        found
            .iter()
            .map(|n| format!("{{{n}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let contiguous = found.iter().enumerate().all(|(i, &n)| n as usize == i + 1);
    if !contiguous {
        return Err(ConfigError(format!(
            "tencent_sms: template_text: placeholders must be numbered {{1}}, {{2}}, ... \
             without gaps (found {})",
            list()
        )));
    }
    if found.len() != params {
        let listed = if found.is_empty() {
            String::new()
        } else {
            format!(" ({})", list())
        };
        return Err(ConfigError(format!(
            "tencent_sms: template_text has {} placeholder{}{listed} but params has {params}",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
        )));
    }
    Ok(())
}

/// The default parameters of a `kafka_lag` alert whose failures name topics (a topic's lag
/// over its limit): `[TOPIC, LAG]`, each within `max` characters (see the module docs).
/// `None` for any other alert.
pub fn kafka_params(alert: &Alert, locale: Locale, max: usize) -> Option<Vec<String>> {
    if alert.check.as_deref() != Some("kafka_lag") {
        return None;
    }
    let mut topics: Vec<(&str, Option<i64>)> = Vec::new();
    for f in &alert.failures {
        let Some(topic) = f.topic.as_deref() else {
            continue;
        };
        if !topics.iter().any(|(t, _)| *t == topic) {
            topics.push((topic, f.actual.trim().parse().ok()));
        }
    }
    // The largest lag first; a stable sort keeps the configured order among equals.
    topics.sort_by_key(|(_, lag)| std::cmp::Reverse(lag.unwrap_or(i64::MIN)));
    let &(first, lag) = topics.first()?;
    let more = match topics.len() - 1 {
        0 => String::new(),
        n => format!("+{n}"),
    };
    let room = max.saturating_sub(more.chars().count()).max(1);
    let topic = format!("{}{more}", clean_param(first, room));
    let second = match (alert.kind, lag) {
        (AlertKind::Down, Some(lag)) => match locale {
            Locale::ZhCn => format!("积压{}", compact_count(lag, locale)),
            Locale::En => format!("lag {}", compact_count(lag, locale)),
        },
        (AlertKind::Reminder, Some(lag)) => match locale {
            Locale::ZhCn => format!("仍积压{}", compact_count(lag, locale)),
            Locale::En => format!("still {}", compact_count(lag, locale)),
        },
        _ => alert.status_word(locale).to_string(),
    };
    Some(vec![clean_param(&topic, max), clean_param(&second, max)])
}

/// A count in at most 7 characters: as is below 100,000; above, `12.3万` / `4.5亿` (zh-CN)
/// or `123.4k` / `1.2M` / `3.4G` (en), one decimal, `.0` dropped.
pub fn compact_count(n: i64, locale: Locale) -> String {
    if n.abs() < 100_000 {
        return n.to_string();
    }
    let units: &[(f64, &str)] = match locale {
        Locale::ZhCn => &[(1e4, "万"), (1e8, "亿"), (1e12, "万亿")],
        Locale::En => &[(1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")],
    };
    let v = n as f64;
    let (scale, unit) = units
        .iter()
        .rev()
        .find(|(scale, _)| v.abs() >= *scale)
        .copied()
        .unwrap_or(units[0]);
    let shown = format!("{:.1}", v / scale);
    let shown = shown.strip_suffix(".0").unwrap_or(&shown);
    format!("{shown}{unit}")
}

/// One line, `-` when empty, at most `max` characters (the last one `…` when cut).
fn clean_param(value: &str, max: usize) -> String {
    let line = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "-".to_string();
    }
    if line.chars().count() <= max {
        return line;
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `+86138****0000`: the country code and the first digits, and the last four, shown.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let (head, tail) = if chars.len() >= 12 {
        (6, 4)
    } else if chars.len() >= 7 {
        (3, 2)
    } else {
        (1, 0)
    };
    let hidden = chars.len().saturating_sub(head + tail).max(1);
    let mut out: String = chars.iter().take(head).collect();
    out.push_str(&"*".repeat(hidden));
    out.extend(
        chars
            .iter()
            .skip(chars.len().saturating_sub(tail).max(head)),
    );
    out
}

/// `AKID****MPLE`: enough to tell keys apart, not to use one.
fn mask_secret_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 12 {
        return "<redacted>".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Whether retrying can help after Tencent answered `code` (see the module docs), and how
/// long to wait at least.
pub fn retry_for(code: &str) -> Option<Option<Duration>> {
    let (class, _) = code.split_once('.').unwrap_or((code, ""));
    match code {
        "LimitExceeded.PhoneNumberThirtySecondLimit" => Some(Some(Duration::from_secs(30))),
        "LimitExceeded.PhoneNumberOneHourLimit" | "LimitExceeded.DeliveryFrequencyLimit" => {
            Some(None)
        }
        "InternalError.SigVerificationFail"
        | "InternalError.SigFieldMissing"
        | "InternalError.RestApiInterfaceNotExist"
        | "InternalError.RequestTimeException" => None,
        _ => match class {
            "RequestLimitExceeded" | "InternalError" | "ServiceUnavailable" => Some(None),
            _ => None,
        },
    }
}

/// A hint for the operator after a fatal `code`, when there's an obvious one.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AuthFailure.SignatureExpire" | "InternalError.RequestTimeException" => {
            "the machine's clock is more than 5 minutes off"
        }
        "AuthFailure.SecretIdNotFound"
        | "AuthFailure.InvalidSecretId"
        | "AuthFailure.SignatureFailure" => "check secret_id and secret_key",
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate" => {
            "the number of params doesn't match the template's {n} variables"
        }
        "InvalidParameterValue.TemplateParameterLengthLimit" => {
            "a parameter is too long for the account: lower param_max_chars"
        }
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter" => {
            "a parameter contains a link: keep URLs in the template text"
        }
        c if c.starts_with("LimitExceeded.") && c.ends_with("DailyLimit") => {
            "a daily limit: it can be changed in the SMS console"
        }
        _ => return None,
    })
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Response,
}

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "Error")]
    error: Option<ApiError>,
    #[serde(rename = "SendStatusSet")]
    send_status_set: Option<Vec<SendStatus>>,
    #[serde(rename = "RequestId", default)]
    request_id: String,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize)]
struct SendStatus {
    #[serde(rename = "PhoneNumber", default)]
    phone_number: String,
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// Classify the answer to a `SendSms` for `phones` numbers (see the module docs).
fn classify(answer: &Answer, phones: usize) -> Result<Delivery, SendError> {
    if !answer.status.is_success() {
        return answer.by_status().map_err(|e| prefixed("tencent_sms", e));
    }
    let Ok(Envelope { response }) = serde_json::from_slice::<Envelope>(&answer.body) else {
        return Err(SendError::fatal(format!(
            "tencent_sms: not a SendSms answer (HTTP {}): {}",
            answer.status.as_u16(),
            answer.short_body()
        )));
    };
    let request_id = if response.request_id.is_empty() {
        String::new()
    } else {
        format!(" (RequestId {})", answer.text(&response.request_id))
    };
    if let Some(error) = response.error {
        let mut message = format!(
            "tencent_sms: SendSms failed: {}: {}{request_id}",
            answer.text(&error.code),
            answer.text(&error.message)
        );
        return Err(match retry_for(&error.code) {
            Some(retry_after) => SendError::Retryable {
                message,
                retry_after,
            },
            None => {
                if let Some(h) = hint(&error.code) {
                    message.push_str(&format!("; {h}"));
                }
                SendError::Fatal { message }
            }
        });
    }
    let Some(statuses) = response.send_status_set else {
        return Err(SendError::fatal(format!(
            "tencent_sms: SendSms answer has neither Error nor SendStatusSet{request_id}: {}",
            answer.short_body()
        )));
    };
    let failed: Vec<&SendStatus> = statuses.iter().filter(|s| s.code != "Ok").collect();
    let ok = statuses.len() - failed.len();
    if failed.is_empty() && ok >= phones {
        return Ok(Delivery {
            status: Some(answer.status.as_u16()),
            body: format!(
                "SendSms ok: {ok} number{}{request_id}",
                if ok == 1 { "" } else { "s" }
            ),
        });
    }
    let mut details: Vec<String> = failed
        .iter()
        .map(|s| {
            let mut d = format!("{}: {}", mask_phone(&s.phone_number), answer.text(&s.code));
            if !s.message.is_empty() {
                d.push_str(&format!(" ({})", answer.text(&s.message)));
            }
            if let Some(h) = hint(&s.code) {
                d.push_str(&format!("; {h}"));
            }
            d
        })
        .collect();
    if statuses.len() < phones {
        details.push(format!(
            "{} number(s) missing from SendStatusSet",
            phones - statuses.len()
        ));
    }
    let details = details.join("; ");
    if ok > 0 {
        return Err(SendError::fatal(format!(
            "tencent_sms: SendSms reached {ok} of {phones} numbers; not retried, which would \
             send again to those: {details}{request_id}"
        )));
    }
    let message = format!(
        "tencent_sms: SendSms failed for {} number{}: {details}{request_id}",
        phones,
        if phones == 1 { "" } else { "s" }
    );
    let retries: Vec<Option<Duration>> = failed.iter().filter_map(|s| retry_for(&s.code)).collect();
    if retries.is_empty() || statuses.len() < phones {
        Err(SendError::Fatal { message })
    } else {
        Err(SendError::Retryable {
            message,
            retry_after: retries.into_iter().flatten().max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn config() -> TencentSmsConfig {
        TencentSmsConfig {
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE".into(),
            secret_key: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE".into(),
            sdk_app_id: "1400006666".into(),
            sign_name: "腾讯云".into(),
            template_id: "1110".into(),
            phones: vec!["+8618511122233".into()],
            params: None,
            template_text: None,
            param_max_chars: DEFAULT_PARAM_MAX_CHARS,
            region: DEFAULT_REGION.into(),
            endpoint: DEFAULT_ENDPOINT.into(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }

    fn answer(code: u16, body: &str) -> Answer {
        Answer::new(
            StatusCode::from_u16(code).unwrap(),
            HeaderMap::new(),
            body.as_bytes().to_vec(),
        )
    }

    #[test]
    fn the_send_sms_vector_through_the_channel() {
        // The research vector's body is this channel's body for one number and a fixed param.
        let mut c = config();
        c.params = Some(vec!["1234".into()]);
        let sms = TencentSms::new(&c).unwrap();
        let mut alert = Template::samples().remove(0);
        alert.incident_id = "x".repeat(MAX_SESSION_CONTEXT); // too long: no SessionContext
        let now = DateTime::from_timestamp(1551113065, 0).unwrap();
        let (headers, body) = sms.request(&alert, Locale::ZhCn, now).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"PhoneNumberSet":["+8618511122233"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1110","TemplateParamSet":["1234"]}"#
        );
        assert_eq!(
            headers["authorization"],
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/sms/\
             tc3_request, SignedHeaders=content-type;host, \
             Signature=bb0fcf4d14b0c16ddc8ec1fb397a587d0a23e15ea45c543fa58b6a6e01d601ff"
        );
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(headers["host"], "sms.tencentcloudapi.com");
        assert_eq!(headers["content-type"], CONTENT_TYPE_VALUE);
        assert_eq!(headers["x-tc-action"], "SendSms");
        assert_eq!(headers["x-tc-version"], "2021-01-11");
        assert_eq!(headers["x-tc-timestamp"], "1551113065");
        assert_eq!(headers["x-tc-region"], "ap-guangzhou");
        assert_eq!(headers.len(), 7);
    }

    #[test]
    fn session_context_is_the_idempotency_key() {
        let sms = TencentSms::new(&config()).unwrap();
        let alert = Template::samples().remove(0);
        let body: serde_json::Value =
            serde_json::from_slice(&sms.body(&alert, Locale::En).unwrap()).unwrap();
        assert_eq!(body["SessionContext"], alert.idempotency_key());
        assert_eq!(
            body["TemplateParamSet"],
            serde_json::json!(["homepage", "DOWN"])
        );
    }

    #[test]
    fn placeholders_are_counted() {
        assert_eq!(placeholders("监控{1}状态{2}"), vec![1, 2]);
        assert_eq!(placeholders("{1}{1}{2} {x} {} {3"), vec![1, 2]);
        assert_eq!(placeholders("固定文字"), Vec::<u32>::new());
        check_placeholders("监控{1}状态{2}", 2).unwrap();
        check_placeholders("固定文字", 0).unwrap();
        let e = check_placeholders("a{1}b{2}c{3}", 2).unwrap_err();
        assert_eq!(
            e.0,
            "tencent_sms: template_text has 3 placeholders ({1} {2} {3}) but params has 2"
        );
        let e = check_placeholders("a{1}b{3}", 2).unwrap_err();
        assert!(e.0.contains("without gaps (found {1} {3})"), "{e}");
        let e = check_placeholders("固定文字", 2).unwrap_err();
        assert_eq!(
            e.0,
            "tencent_sms: template_text has 0 placeholders but params has 2"
        );
    }

    #[test]
    fn params_are_one_line_and_cut() {
        assert_eq!(clean_param("a\nb\r\n  c\t", 12), "a b c");
        assert_eq!(clean_param("  \n", 12), "-");
        assert_eq!(
            clean_param("订单服务延迟超过阈值请处理", 12),
            "订单服务延迟超过阈值请…"
        );
        assert_eq!(
            clean_param("订单服务延迟超过阈值请处", 12),
            "订单服务延迟超过阈值请处"
        );
        assert_eq!(clean_param("abcdef", 1), "…");
    }

    #[test]
    fn phones() {
        assert!(is_e164("+8613800000000"));
        assert!(is_e164("+447700900123"));
        assert!(!is_e164("8613800000000"));
        assert!(!is_e164("+86 13800000000"));
        assert!(!is_e164("+86-138-0000-0000"));
        assert!(!is_e164("+12345"));
        assert!(!is_e164("+1234567890123456"));
        assert_eq!(mask_phone("+8613800000000"), "+86138****0000");
        assert_eq!(mask_phone("+447700900123"), "+44770***0123");
        assert_eq!(mask_phone("+1234567"), "+12***67");
        assert_eq!(mask_phone(""), "*");
        assert_eq!(mask_phone("12"), "1*");
    }

    #[test]
    fn config_errors() {
        let e = |f: fn(&mut TencentSmsConfig)| {
            let mut c = config();
            f(&mut c);
            TencentSms::new(&c).unwrap_err().0
        };
        assert!(e(|c| c.phones.clear()).contains("phones: empty"));
        let m = e(|c| c.phones.push("+86 13800000000".into()));
        assert!(
            m.starts_with("tencent_sms: phones[1]: ") && m.contains("E.164"),
            "{m}"
        );
        let m = e(|c| c.phones.push("+8618511122233".into()));
        assert!(m.contains("listed twice"), "{m}");
        assert!(!m.contains("8618511122233"), "{m}");
        let m = e(|c| c.phones.push("+447700900123".into()));
        assert!(m.contains("mixes mainland China"), "{m}");
        let m = e(|c| c.phones = (0..201).map(|i| format!("+86138{i:08}")).collect());
        assert!(m.contains("201 numbers, at most 200"), "{m}");
        assert!(e(|c| c.sdk_app_id = "14000x".into()).contains("sdk_app_id: \"14000x\""));
        assert!(e(|c| c.template_id = String::new()).contains("template_id"));
        assert!(e(|c| c.secret_id = String::new()).contains("secret_id: empty"));
        let m = e(|c| c.secret_key = " Gu5t9xGARNpq86cd98joQYCN3EXAMPLE".into());
        assert!(m.contains("secret_key: has leading"), "{m}");
        assert!(!m.contains("Gu5t"), "{m}");
        assert!(e(|c| c.sign_name = "【腾讯云】".into()).contains("without brackets (\"腾讯云\")"));
        assert!(e(|c| c.region = "AP Guangzhou".into()).contains("region"));
        assert!(e(|c| c.param_max_chars = 0).contains("param_max_chars"));
        let m = e(|c| c.params = Some(vec!["{{ monitr }}".into()]));
        assert!(
            m.starts_with("tencent_sms: params[0]: line 1: undefined variable `monitr`"),
            "{m}"
        );
        let m = e(|c| c.template_text = Some("监控{1}状态{2}时间{3}".into()));
        assert_eq!(
            m,
            "tencent_sms: template_text has 3 placeholders ({1} {2} {3}) but params has 2"
        );
        let m = e(|c| c.endpoint = "ftp://sms.example.com".into());
        assert!(m.starts_with("tencent_sms: endpoint: scheme"), "{m}");
        let m = e(|c| c.endpoint = "https://gw.example.com/?token=abc".into());
        assert!(m.contains("query string"), "{m}");
    }

    #[test]
    fn notes_without_template_text() {
        let mut c = config();
        assert_eq!(
            c.notes(),
            vec![
                "tencent_sms: the parameter count of template 1110 can't be checked offline \
                 (2 param(s) configured); add template_text or run `watchpost notify`"
            ]
        );
        c.template_text = Some("监控{1}状态{2}".into());
        assert!(c.notes().is_empty());
    }

    #[test]
    fn debug_hides_the_key() {
        let c = config();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
            "{shown}"
        );
        assert!(
            !shown.contains("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"),
            "{shown}"
        );
        assert!(shown.contains("AKID****MPLE"), "{shown}");
        assert!(shown.contains("+86185****2233"), "{shown}");
        let sms = TencentSms::new(&c).unwrap();
        let shown = format!("{sms:?}");
        assert!(
            !shown.contains("Gu5t9x")
                && !shown.contains("LmPx3EXAMPLE")
                && !shown.contains("krbsJ5"),
            "{shown}"
        );
    }

    #[test]
    fn retry_table() {
        for code in [
            "RequestLimitExceeded",
            "RequestLimitExceeded.IPLimitExceeded",
            "InternalError",
            "InternalError.Timeout",
            "InternalError.SendAndRecvFail",
            "ServiceUnavailable",
            "LimitExceeded.PhoneNumberOneHourLimit",
            "LimitExceeded.DeliveryFrequencyLimit",
        ] {
            assert_eq!(retry_for(code), Some(None), "{code}");
        }
        assert_eq!(
            retry_for("LimitExceeded.PhoneNumberThirtySecondLimit"),
            Some(Some(Duration::from_secs(30)))
        );
        for code in [
            "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire",
            "FailedOperation.InsufficientBalanceInSmsPackage",
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "InvalidParameterValue.IncorrectPhoneNumber",
            "LimitExceeded.PhoneNumberDailyLimit",
            "LimitExceeded.AppDailyLimit",
            "LimitExceeded",
            "InternalError.RequestTimeException",
            "InternalError.SigVerificationFail",
            "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            "MissingParameter.EmptyPhoneNumberSet",
            "SomethingNew",
            "",
        ] {
            assert_eq!(retry_for(code), None, "{code}");
        }
    }

    #[test]
    fn answers() {
        let ok = r#"{"Response":{"SendStatusSet":[{"PhoneNumber":"+8618511122233","Code":"Ok","Message":"send success"}],"RequestId":"r-1"}}"#;
        assert_eq!(
            classify(&answer(200, ok), 1).unwrap(),
            Delivery {
                status: Some(200),
                body: "SendSms ok: 1 number (RequestId r-1)".into()
            }
        );
        // Fewer statuses than numbers: not all delivered.
        let e = classify(&answer(200, ok), 2).unwrap_err();
        assert!(!e.is_retryable() && e.message().contains("missing"), "{e}");

        let e = classify(&answer(200, "<html>ok</html>"), 1).unwrap_err();
        assert!(!e.is_retryable() && e.message().contains("not a SendSms answer"));
        let e = classify(&answer(200, r#"{"Response":{"RequestId":"r"}}"#), 1).unwrap_err();
        assert!(
            !e.is_retryable() && e.message().contains("neither Error"),
            "{e}"
        );

        let e = classify(&answer(503, "busy"), 1).unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(
            e.message(),
            "tencent_sms: HTTP 503 Service Unavailable: busy"
        );
        let e = classify(&answer(403, "no"), 1).unwrap_err();
        assert!(!e.is_retryable());

        let expired = r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureExpire","Message":"expired"},"RequestId":"r-2"}}"#;
        let e = classify(&answer(200, expired), 1).unwrap_err();
        assert_eq!(
            e.message(),
            "tencent_sms: SendSms failed: AuthFailure.SignatureExpire: expired (RequestId r-2); \
             the machine's clock is more than 5 minutes off"
        );
        assert!(!e.is_retryable());

        // All numbers failed, one retryably: retry (nobody got it yet), after 30 s.
        let both = r#"{"Response":{"SendStatusSet":[
            {"PhoneNumber":"+8618511122233","Code":"LimitExceeded.PhoneNumberThirtySecondLimit","Message":"30s"},
            {"PhoneNumber":"+8618511122266","Code":"FailedOperation.PhoneNumberInBlacklist","Message":"bl"}],
            "RequestId":"r-3"}}"#;
        let e = classify(&answer(200, both), 2).unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        assert!(
            e.message()
                .contains("+86185****2233: LimitExceeded.PhoneNumberThirtySecondLimit")
                && e.message()
                    .contains("+86185****2266: FailedOperation.PhoneNumberInBlacklist"),
            "{e}"
        );
        assert!(!e.message().contains("8618511122233"), "{e}");
        // All failed, none retryably: fatal.
        let none = both.replace(
            "LimitExceeded.PhoneNumberThirtySecondLimit",
            "LimitExceeded.PhoneNumberDailyLimit",
        );
        let e = classify(&answer(200, &none), 2).unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.message().contains("daily limit"), "{e}");
    }
}
