//! `type: email`: the alert as an e-mail, sent through an SMTP submission server.
//!
//! ```yaml
//! channels:
//!   ops-mail:
//!     type: email
//!     server: "smtps://smtp.exmail.qq.com:465"   # see "Servers" below
//!     username: svc@example.com                   # optional; with password, both or neither
//!     password: "${SMTP_PASSWORD}"
//!     from: "网站监控 <svc@example.com>"           # a display name may be UTF-8
//!     to: [owner@example.com, "值班 <oncall@example.com>"]   # one address or a list
//!     timeout: 30s                                # default 30s, the whole send
//!     ca_file: /etc/watchpost/relay-ca.pem        # optional, trusted besides the web PKI
//! ```
//!
//! # Servers
//!
//! | `server:` | transport | default port |
//! |---|---|---|
//! | `smtps://HOST[:PORT]` | implicit TLS from the first byte (RFC 8314 submissions) | 465 |
//! | `smtp://HOST[:PORT]` | plaintext greeting, then STARTTLS, **required** | 587 |
//! | `smtp+insecure://HOST[:PORT]` | plaintext throughout: local test servers and relays only | 25 |
//!
//! With `smtp://`, nothing is sent before the upgrade but `EHLO` and `STARTTLS`: a server that
//! does not offer STARTTLS (or a network that strips it) gets no credentials and no mail, and
//! the send fails. TLS is verified against the webpki roots plus `ca_file`; there is no way to
//! turn verification off. `smtp+insecure://` accepts `username`/`password` only when the host is
//! loopback (`localhost`, `127.0.0.0/8`, `::1`), so a password never crosses a network in
//! clear; `ca_file` is refused there since there is no TLS.
//!
//! Everything is checked when the config is loaded: the server URL (no user info, path or
//! query: credentials go in `username`/`password`), every address of `from` and `to` (parsed
//! as RFC 5322 mailboxes), `ca_file`. `Debug` output and error messages never contain the
//! password.
//!
//! # Message
//!
//! `From` and `To` as configured (the envelope is the same addresses), `Subject`:
//! [`Alert::title`] (RFC 2047-encoded when not ASCII), `Date`, and a `multipart/alternative`
//! body with the [`Alert::plain`] rendering and an HTML one ([`html`]: heading, summary,
//! facts, failures and the per-location table), each transfer-encoded so the message is 7-bit.
//! Also:
//!
//! - `Message-ID: <KEY@FROM-DOMAIN>`, built from [`Alert::idempotency_key`]: the same on every
//!   retry of an alert, so a mailbox that already has the message can drop a duplicate (a
//!   retry after the server accepted the mail but the answer was lost).
//! - `X-Watchpost-Idempotency-Key: <the key>`, for filters and scripts.
//! - `References: <INCIDENT@FROM-DOMAIN>` on incident alerts, so mail clients that thread by
//!   reference show an incident's down, reminder and resolved messages together.
//! - `Auto-Submitted: auto-generated` (RFC 3834: vacation responders don't answer) and
//!   `User-Agent: watchpost/VERSION`.
//!
//! # Answer
//!
//! One connection per send (alerts are rare), closed with `QUIT` after the server accepted
//! the message; the whole exchange up to that acceptance is bounded by `timeout`.
//!
//! - Delivered: the server answered 250 to the message data ([`Delivery::body`] holds its
//!   reply, e.g. `250 2.0.0 Ok: queued as 4F2A1`).
//! - [`SendError::Fatal`]: a permanent (5xx) reply at any stage, e.g. `535` authentication
//!   failed or `550` mailbox unavailable — the message names the stage, the SMTP code and the
//!   server's text; a server that offers no STARTTLS on `smtp://`; no AUTH mechanism in common
//!   (watchpost speaks PLAIN and LOGIN).
//! - [`SendError::Retryable`]: a transient (4xx) reply, DNS and connection errors (refused,
//!   reset), TLS handshake failures — certificate errors included, since they are usually
//!   fixed on the server's side (an expired or replaced certificate) without a config change
//!   and the delivery policy gives up after `delivery.max_age` anyway — and no answer within
//!   `timeout`.

use crate::http::{Redact, timeout};
use crate::message::model::{FactKind, Outcome};
use crate::message::{Alert, AlertKind, Locale, one_line};
use crate::{ConfigError, Delivery, SendError};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue, MessageId, References, Subject, UserAgent};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use serde::{Deserialize, Deserializer};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `QUIT` may take after the message was accepted (its answer changes nothing).
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// The custom header carrying [`Alert::idempotency_key`].
pub const IDEMPOTENCY_HEADER: &str = "X-Watchpost-Idempotency-Key";
/// AUTH mechanisms offered, in order of preference. Both send the password, so they are used
/// only over TLS (or to a loopback `smtp+insecure://` server).
const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// `{type: email, server, username, password, from, to, timeout, ca_file}`. `Debug` hides the
/// password.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtps://HOST[:PORT]`, `smtp://HOST[:PORT]` (STARTTLS required) or
    /// `smtp+insecure://HOST[:PORT]` (plaintext, loopback test servers).
    pub server: String,
    /// The AUTH user; with `password`, both or neither.
    #[serde(default)]
    pub username: Option<String>,
    /// The AUTH password (usually `${SMTP_PASSWORD}`).
    #[serde(default)]
    pub password: Option<String>,
    /// The sender: `addr@example.com` or `Display Name <addr@example.com>`.
    pub from: String,
    /// Recipients: one address or a non-empty list.
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// The whole send, from connecting to the server's acceptance of the message.
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// PEM certificates to trust besides the webpki roots (a private relay's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => Ok(vec![s]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "to: expected an e-mail address or a list of them",
        )),
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("server", &redact_server(&self.server))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `scheme://host:port` of a server URL (user info, path and query dropped).
fn redact_server(server: &str) -> String {
    match url::Url::parse(server) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}://<redacted>", u.scheme()),
        },
        Err(_) => "<invalid url>".to_string(),
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://`: STARTTLS, required.
    StartTls,
    /// `smtp+insecure://`: none.
    Plaintext,
}

/// A built e-mail channel: server, TLS, credentials and addresses checked.
pub struct Email {
    security: Security,
    /// What to connect to: a DNS name or an IP literal (no brackets).
    host: String,
    port: u16,
    /// `smtps://host:port`, for messages.
    shown: String,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    /// The password and the forms AUTH sends it in, scrubbed from every server text.
    redact: Redact,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    hello: ClientId,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("server", &self.shown)
            .field("authenticates", &self.credentials.is_some())
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn config_error(message: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("email: {message}"))
}

impl Email {
    /// Check `config` and build the channel (see the module docs for the rules). No
    /// connection is made.
    pub fn new(config: &EmailConfig) -> Result<Email, ConfigError> {
        let url = url::Url::parse(&config.server).map_err(|e| {
            config_error(format!(
                "server: not a valid URL ({e}); expected smtps://HOST[:PORT], \
                 smtp://HOST[:PORT] or smtp+insecure://HOST[:PORT]"
            ))
        })?;
        let (security, default_port) = match url.scheme() {
            "smtps" => (Security::ImplicitTls, 465),
            "smtp" => (Security::StartTls, 587),
            "smtp+insecure" => (Security::Plaintext, 25),
            other => {
                return Err(config_error(format!(
                    "server: scheme {other:?} is not supported (smtps:// for implicit TLS, \
                     smtp:// for STARTTLS, smtp+insecure:// for a local test server)"
                )));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                "server: user info in the URL is not supported; use `username` and `password`",
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(config_error(
                "server: only scheme, host and port are allowed (no path or query)",
            ));
        }
        let (host, ip) = match url.host() {
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(url::Host::Domain(d)) if !d.is_empty() => match d.parse::<IpAddr>() {
                Ok(ip) => (ip.to_string(), Some(ip)),
                Err(_) => {
                    if !d
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    {
                        return Err(config_error(format!(
                            "server: {d:?} is not a host name (write internationalized names \
                             in their xn-- form)"
                        )));
                    }
                    (d.to_ascii_lowercase(), None)
                }
            },
            _ => return Err(config_error("server: no host")),
        };
        let port = url.port().unwrap_or(default_port);
        if port == 0 {
            return Err(config_error("server: port 0"));
        }
        let shown = match ip {
            Some(IpAddr::V6(_)) => format!("{}://[{host}]:{port}", url.scheme()),
            _ => format!("{}://{host}:{port}", url.scheme()),
        };
        let loopback = match ip {
            Some(ip) => ip.is_loopback(),
            None => host == "localhost",
        };

        let credentials = match (&config.username, &config.password) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(config_error(
                    "username without password: give both, or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "password without username: give both, or neither",
                ));
            }
            (Some(u), Some(p)) => {
                if u.is_empty() {
                    return Err(config_error("username: empty"));
                }
                if p.is_empty() {
                    return Err(config_error(
                        "password: empty (is its environment variable set?)",
                    ));
                }
                Some(Credentials::new(u.clone(), p.clone()))
            }
        };
        if security == Security::Plaintext && credentials.is_some() && !loopback {
            return Err(config_error(
                "username/password: smtp+insecure:// would send them in clear; it accepts \
                 credentials only for a loopback host (use smtps:// or smtp://)",
            ));
        }

        let from: Mailbox = config.from.parse().map_err(|e| {
            config_error(format!(
                "from: {:?} is not an e-mail address ({e})",
                config.from
            ))
        })?;
        if config.to.is_empty() {
            return Err(config_error("to: at least one recipient is needed"));
        }
        let to = config
            .to
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.parse::<Mailbox>().map_err(|e| {
                    config_error(format!("to[{i}]: {a:?} is not an e-mail address ({e})"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let tls = match security {
            Security::Plaintext => {
                if let Some(path) = &config.ca_file {
                    return Err(config_error(format!(
                        "ca_file {}: only applies to smtps:// and smtp:// (smtp+insecure:// \
                         has no TLS)",
                        path.display()
                    )));
                }
                None
            }
            Security::ImplicitTls | Security::StartTls => {
                let mut builder = TlsParameters::builder(host.clone())
                    .certificate_store(CertificateStore::WebpkiRoots);
                if let Some(path) = &config.ca_file {
                    let ca_err =
                        |m: String| config_error(format!("ca_file {}: {m}", path.display()));
                    let certs = watchpost_net::load_ca_file(path).map_err(|e| ca_err(e.reason))?;
                    for cert in certs {
                        let cert = Certificate::from_der(cert.to_vec())
                            .map_err(|e| ca_err(e.to_string()))?;
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|e| config_error(format!("TLS setup: {e}")))?,
                )
            }
        };

        Ok(Email {
            security,
            host,
            port,
            shown,
            tls,
            credentials,
            redact: password_redact(config.username.as_deref(), config.password.as_deref()),
            from,
            to,
            timeout: config.timeout,
            hello: ClientId::default(),
        })
    }

    /// The server as `scheme://host:port`.
    pub fn server(&self) -> &str {
        &self.shown
    }

    pub fn security(&self) -> Security {
        self.security
    }

    /// Send the alert (one attempt, one new connection) and classify the outcome.
    pub async fn send(&self, alert: &Alert, locale: Locale) -> Result<Delivery, SendError> {
        let message = self.message(alert, locale)?;
        let raw = message.formatted();
        let exchange = self.deliver(message.envelope(), &raw);
        let (response, mut conn) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(SendError::retryable(format!(
                    "{}: not delivered within {}",
                    self.shown,
                    watchpost_units::format_ms(self.timeout.as_secs_f64() * 1000.0)
                )));
            }
        };
        // The message is accepted: QUIT is a courtesy whose answer changes nothing.
        let _ = tokio::time::timeout(QUIT_GRACE, conn.quit()).await;
        let text: Vec<&str> = response.message().collect();
        Ok(Delivery {
            status: None,
            body: self
                .redact
                .short(format!("{} {}", response.code(), text.join(" ")).as_bytes()),
        })
    }

    /// Connect, secure, authenticate, send: the server's answer to the data and the
    /// still-open connection.
    async fn deliver(
        &self,
        envelope: &lettre::address::Envelope,
        raw: &[u8],
    ) -> Result<
        (
            lettre::transport::smtp::response::Response,
            AsyncSmtpConnection,
        ),
        SendError,
    > {
        let wrapper = match self.security {
            Security::ImplicitTls => self.tls.clone(),
            Security::StartTls | Security::Plaintext => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await
        .map_err(|e| self.failure("connecting", &e))?;

        if self.security == Security::StartTls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(SendError::fatal(format!(
                    "{}: the server does not offer STARTTLS, which smtp:// requires: no \
                     credentials or mail were sent (use smtps:// if the server speaks TLS from \
                     the first byte)",
                    self.shown
                )));
            }
            let tls = self.tls.clone().expect("smtp:// has TLS parameters");
            conn.starttls(tls, &self.hello)
                .await
                .map_err(|e| self.failure("STARTTLS", &e))?;
        }

        if let Some(credentials) = &self.credentials
            && let Err(e) = conn.auth(MECHANISMS, credentials).await
        {
            conn.abort().await;
            return Err(self.failure("AUTH", &e));
        }

        match conn.send(envelope, raw).await {
            Ok(response) => Ok((response, conn)),
            Err(e) => {
                conn.abort().await;
                Err(self.failure("sending", &e))
            }
        }
    }

    /// The e-mail for `alert` (see the module docs).
    pub fn message(&self, alert: &Alert, locale: Locale) -> Result<Message, SendError> {
        let domain = self.from.email.domain();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .header(Subject::from(alert.title(locale)))
            .header(MessageId::from(format!(
                "<{}@{domain}>",
                id_part(&alert.idempotency_key())
            )))
            .header(UserAgent::from(crate::http::USER_AGENT_VALUE.to_string()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER),
                one_line(&alert.idempotency_key()),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_string(),
            ));
        if alert.kind != AlertKind::Test {
            builder = builder.header(References::from(format!(
                "<{}@{domain}>",
                id_part(&alert.incident_id)
            )));
        }
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                alert.plain(locale),
                html(alert, locale),
            ))
            .map_err(|e| SendError::fatal(format!("{}: building the message: {e}", self.shown)))
    }

    /// Name the stage, the SMTP code and text or the network/TLS cause; classify; never show
    /// the password.
    fn failure(&self, stage: &str, e: &lettre::transport::smtp::Error) -> SendError {
        let detail = match e.status() {
            Some(code) => {
                let text = std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                format!("{code} {text}")
            }
            None => describe(e),
        };
        let message = self
            .redact
            .text(&format!("{}: {stage}: {}", self.shown, detail.trim()));
        if e.is_permanent() || e.is_client() {
            SendError::fatal(message)
        } else {
            SendError::retryable(message)
        }
    }

    #[cfg(test)]
    fn for_tests(server: &str) -> Email {
        Email::new(&EmailConfig {
            server: server.into(),
            username: None,
            password: None,
            from: "网站监控 <svc@example.com>".into(),
            to: vec!["owner@example.com".into()],
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        })
        .unwrap()
    }
}

impl Email {
    /// The secrets masked in the server's texts: the password, and the base64 forms AUTH
    /// PLAIN and LOGIN send it in.
    pub fn redact(&self) -> &Redact {
        &self.redact
    }
}

/// The password's forms a server could echo: as is, base64 (AUTH LOGIN) and the base64 of
/// `\0user\0password` (AUTH PLAIN).
fn password_redact(username: Option<&str>, password: Option<&str>) -> Redact {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut r = Redact::new();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        r.add(p);
        r.add(&b64(p));
        if let Some(u) = username {
            r.add(&b64(&format!("\0{u}\0{p}")));
        }
    }
    r
}

/// A lettre error as one line: the TLS error when the cause is one (`TLS handshake: invalid
/// peer certificate: UnknownIssuer`), otherwise the innermost cause that says something.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut last = None;
    while let Some(c) = cause {
        if let Some(tls) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return format!("TLS handshake: {tls}");
        }
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return format!("TLS handshake: {tls}");
        }
        last = Some(c.to_string());
        cause = c.source();
    }
    match last {
        Some(text) if e.is_timeout() => format!("timed out ({text})"),
        Some(text) => text,
        None => e.to_string(),
    }
}

/// Text as the left part of a message id (RFC 5322 dot-atom-text): ASCII letters, digits,
/// `-` and `_` kept, every other byte as `=XX`. Past [`MAX_ID_PART`] characters, the start and
/// a digest of the whole text, so the header stays short and the id unique.
fn id_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            let _ = write!(out, "={b:02X}");
        }
    }
    if out.len() > MAX_ID_PART {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(text.as_bytes());
        out.truncate(MAX_ID_PART - 25);
        out.push('.');
        out.push_str(&hex::encode(&digest[..12]));
    }
    out
}

/// The longest [`id_part`].
const MAX_ID_PART: usize = 128;

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML rendering of an alert: the same content as [`Alert::plain`] — title, summary,
/// facts, failures, the per-location table — with inline styles only (mail clients drop
/// `<style>` blocks). Everything taken from the alert is escaped.
pub fn html(alert: &Alert, locale: Locale) -> String {
    let accent = match alert.kind {
        AlertKind::Down | AlertKind::Reminder => "#c0392b",
        AlertKind::Resolved => "#1e8449",
        AlertKind::Test => "#566573",
    };
    let m = alert.model(locale);
    let title = escape(&m.title);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head><meta charset=\"utf-8\"><title>{title}\
         </title></head>\n<body style=\"font-family: -apple-system, 'Segoe UI', 'PingFang SC', \
         'Microsoft YaHei', sans-serif; font-size: 14px; color: #222;\">\n",
        locale.as_str()
    );
    let _ = writeln!(
        out,
        "<h2 style=\"color: {accent}; margin: 0 0 8px;\">{title}</h2>"
    );
    let _ = writeln!(out, "<p>{}</p>", escape(&m.summary));
    let colon = m.colon();
    for note in &m.notes {
        let _ = writeln!(
            out,
            "<p style=\"padding: 6px 10px; background: #fdf2e9; border-left: 4px solid #e67e22;\">\
             <strong>{}{colon}</strong> {}</p>",
            escape(m.note_label),
            escape(note)
        );
    }

    out.push_str("<table style=\"border-collapse: collapse; margin: 8px 0;\">\n");
    for fact in &m.facts {
        let web = fact.value.starts_with("http://") || fact.value.starts_with("https://");
        let shown = match fact.kind {
            FactKind::Url if web => format!("<a href=\"{0}\">{0}</a>", escape(&fact.value)),
            FactKind::Code => format!("<code>{}</code>", escape(&fact.value)),
            _ => escape(&fact.value),
        };
        let _ = writeln!(
            out,
            "<tr><th style=\"text-align: left; padding: 2px 12px 2px 0; color: #555; \
             font-weight: normal;\">{}</th><td style=\"padding: 2px 0;\">{shown}</td></tr>",
            escape(fact.label)
        );
    }
    out.push_str("</table>\n");

    if let Some(failures) = &m.failures {
        let _ = writeln!(
            out,
            "<h3 style=\"margin: 16px 0 4px;\">{}</h3>\n<ul>",
            escape(failures.heading)
        );
        for item in &failures.items {
            let _ = writeln!(out, "<li><code>{}</code></li>", escape(item));
        }
        out.push_str("</ul>\n");
    }

    if let Some(table) = &m.table {
        let cell = "border: 1px solid #ccc; padding: 4px 8px;";
        let align = |numeric: bool| if numeric { "right" } else { "left" };
        let _ = writeln!(
            out,
            "<h3 style=\"margin: 16px 0 4px;\">{}</h3>",
            escape(table.heading)
        );
        out.push_str("<table style=\"border-collapse: collapse;\">\n<thead><tr>");
        for (label, numeric) in table.header().iter().zip(table.numeric()) {
            let _ = write!(
                out,
                "<th style=\"{cell} text-align: {}; background: #f4f4f4;\">{}</th>",
                align(numeric),
                escape(label)
            );
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        let numeric = table.numeric();
        let verdict = table.verdict_index();
        for row in &table.rows {
            out.push_str("<tr>");
            for (i, text) in row.texts(table).iter().enumerate() {
                // The verdict is coloured: green, red and bold, grey and italic.
                let extra = match row.outcome {
                    _ if i != verdict => "",
                    Outcome::Passed => " color: #1e8449;",
                    Outcome::Failed => " color: #c0392b; font-weight: bold;",
                    Outcome::Missing => " color: #7f8c8d; font-style: italic;",
                };
                let _ = write!(
                    out,
                    "<td style=\"{cell} text-align: {};{extra}\">{}</td>",
                    align(numeric[i]),
                    escape(text)
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_and_its_auth_forms_are_masked() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let r = password_redact(Some("svc@example.com"), Some("pa55w0rd!"));
        let plain = b64("\0svc@example.com\0pa55w0rd!");
        let login = b64("pa55w0rd!");
        let text = format!("535 bad AUTH PLAIN {plain} / LOGIN {login} / pa55w0rd!");
        assert_eq!(
            r.text(&text),
            "535 bad AUTH PLAIN <redacted> / LOGIN <redacted> / <redacted>"
        );
        assert!(password_redact(None, None).is_empty());
    }
    use crate::message::{FailedCondition, LocationRow, samples};

    fn config(server: &str) -> EmailConfig {
        EmailConfig {
            server: server.into(),
            username: Some("svc@example.com".into()),
            password: Some("hunter2-SECRET".into()),
            from: "网站监控 <svc@example.com>".into(),
            to: vec!["owner@example.com".into(), "Ops <ops@example.com>".into()],
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }

    /// The sample down alert with HTML-special characters in its name, failure and URL, and
    /// a failing second location that reached no HTTP phase.
    fn alert() -> Alert {
        let mut a = samples::down();
        a.monitor = "<script>alert(1)</script>".into();
        a.incident_id = "m:1767322800000".into();
        a.failures = vec![FailedCondition {
            operand: "body".into(),
            op: "contains".into(),
            expected: "\"<b>ok</b>\"".into(),
            actual: "missing".into(),
            text: "body contains \"<b>ok</b>\" & more".into(),
            ..Default::default()
        }];
        a.locations.truncate(1);
        a.locations.push(LocationRow {
            location: "广东佛山[电信]".into(),
            ok: false,
            metrics: vec![samples::ms("dns", 4.0), samples::ms("connect", 27.0)],
            error: Some("connect refused: <eof>".into()),
            ..LocationRow::default()
        });
        a.url = Some("https://www.example.com/?a=1&b=\"2\"".into());
        a
    }

    #[test]
    fn servers_and_default_ports() {
        let cases = [
            (
                "smtps://smtp.exmail.qq.com",
                Security::ImplicitTls,
                "smtps://smtp.exmail.qq.com:465",
            ),
            (
                "smtps://SMTP.Example.com:2465/",
                Security::ImplicitTls,
                "smtps://smtp.example.com:2465",
            ),
            (
                "smtp://mail.example.com",
                Security::StartTls,
                "smtp://mail.example.com:587",
            ),
            (
                "smtp://127.0.0.1:2587",
                Security::StartTls,
                "smtp://127.0.0.1:2587",
            ),
            ("smtp://[::1]", Security::StartTls, "smtp://[::1]:587"),
            (
                "smtp+insecure://localhost",
                Security::Plaintext,
                "smtp+insecure://localhost:25",
            ),
            (
                "smtp+insecure://127.0.0.1:1025",
                Security::Plaintext,
                "smtp+insecure://127.0.0.1:1025",
            ),
        ];
        for (server, security, shown) in cases {
            let e = Email::new(&config(server)).unwrap_or_else(|e| panic!("{server}: {e}"));
            assert_eq!(e.security(), security, "{server}");
            assert_eq!(e.server(), shown, "{server}");
            assert_eq!(e.tls.is_some(), security != Security::Plaintext);
        }
        assert_eq!(Email::new(&config("smtp://[::1]:25")).unwrap().host, "::1");
    }

    #[test]
    fn bad_settings_name_the_setting_not_the_secret() {
        let err = |c: &EmailConfig| Email::new(c).unwrap_err().0;
        for (server, expected) in [
            ("http://mail.example.com", "scheme \"http\""),
            ("smtp.example.com:465", "scheme \"smtp.example.com\""),
            ("not a url", "not a valid URL"),
            ("smtps://", "no host"),
            ("smtps://user:pw@mail.example.com", "user info"),
            ("smtps://mail.example.com/path", "no path or query"),
            ("smtps://mail.example.com?x=1", "no path or query"),
            ("smtps://mail.exämple.com", "xn--"),
            ("smtp+insecure://mail.example.com:25", "in clear"),
            ("smtp+insecure://10.0.0.1:25", "in clear"),
        ] {
            let e = err(&config(server));
            assert!(e.starts_with("email: "), "{server}: {e}");
            assert!(e.contains(expected), "{server}: {e}");
            assert!(!e.contains("SECRET") && !e.contains("pw@"), "{e}");
        }

        let mut c = config("smtp+insecure://mail.example.com:25");
        c.username = None;
        c.password = None;
        assert!(Email::new(&c).is_ok(), "no credentials: allowed anywhere");

        let mut c = config("smtps://mail.example.com");
        c.username = None;
        assert!(err(&c).contains("password without username"));
        let mut c = config("smtps://mail.example.com");
        c.password = None;
        assert!(err(&c).contains("username without password"));
        let mut c = config("smtps://mail.example.com");
        c.password = Some(String::new());
        assert!(err(&c).contains("password: empty"));

        let mut c = config("smtps://mail.example.com");
        c.to.clear();
        assert!(err(&c).contains("to: at least one recipient"));
        let mut c = config("smtps://mail.example.com");
        c.to.push("not-an-address".into());
        let e = err(&c);
        assert!(e.contains("to[2]: \"not-an-address\""), "{e}");
        let mut c = config("smtps://mail.example.com");
        c.from = "网站监控 <svc@>".into();
        assert!(err(&c).contains("from: "));

        let mut c = config("smtps://mail.example.com");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(err(&c).contains("ca_file /nonexistent/ca.pem"));
        let mut c = config("smtp+insecure://127.0.0.1:25");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(err(&c).contains("no TLS"));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = config("smtps://mail.example.com");
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("svc@example.com"), "{shown}");
        let e = Email::new(&c).unwrap();
        let shown = format!("{e:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("smtps://mail.example.com:465"), "{shown}");
        let c = config("smtps://u:SECRET@mail.example.com:465/");
        assert!(!format!("{c:?}").contains("SECRET"));
    }

    #[test]
    fn html_escapes_everything_from_the_alert() {
        let html = html(&alert(), Locale::En);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains(
                "<code>body contains &quot;&lt;b&gt;ok&lt;/b&gt;&quot; &amp; more</code>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<a href=\"https://www.example.com/?a=1&amp;b=&quot;2&quot;\">\
                 https://www.example.com/?a=1&amp;b=&quot;2&quot;</a>"
            ),
            "{html}"
        );
        assert!(html.contains("connect refused: &lt;eof&gt;"), "{html}");
        assert!(!html.contains("<eof>"));
    }

    #[test]
    fn html_table_has_a_row_per_location() {
        let html = html(&alert(), Locale::ZhCn);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
        assert!(html.contains("<h3 style=\"margin: 16px 0 4px;\">各地探测</h3>"));
        assert!(html.contains("<h3 style=\"margin: 16px 0 4px;\">失败条件</h3>"));
        let rows: Vec<&str> = html
            .lines()
            .filter(|l| l.starts_with("<tr><td style=\"border"))
            .collect();
        assert_eq!(rows.len(), 2, "{html}");
        let cells = |row: &str| -> Vec<String> {
            row.split("<td")
                .skip(1)
                .map(|c| {
                    let start = c.find('>').unwrap() + 1;
                    let end = c.find("</td>").unwrap();
                    c[start..end].to_string()
                })
                .collect()
        };
        // Every HTTP phase, each in its own column.
        assert_eq!(
            cells(rows[0]),
            [
                "local", "正常", "200", "1.2ms", "0.080ms", "3.4ms", "140ms", "100ms", "251ms", ""
            ]
        );
        assert_eq!(
            cells(rows[1]),
            [
                "广东佛山[电信]",
                "异常",
                "-",
                "4.0ms",
                "27.0ms",
                "-",
                "-",
                "-",
                "-",
                "connect refused: &lt;eof&gt;"
            ]
        );
        assert!(rows[1].contains("text-align: left; color: #c0392b; font-weight: bold;"));
        assert!(rows[0].contains("text-align: right;\">251ms</td>"));
        for label in samples::HTTP_LABELS_ZH {
            assert!(html.contains(&format!(">{label}</th>")), "{label}: {html}");
        }
        let header = html
            .lines()
            .find(|l| l.starts_with("<table style=\"border-collapse: collapse;\">"));
        assert!(header.is_some(), "{html}");
        assert!(html.contains(">位置</th>") && html.contains(">错误</th>"));
    }

    #[test]
    fn html_shows_a_tls_alerts_certificate_days() {
        use crate::message::samples::tls_down;
        let en = html(&tls_down(), Locale::En);
        assert!(en.contains(">Cert days</th>"), "{en}");
        assert!(en.contains("text-align: right;\">9.5d</td>"), "{en}");
        assert!(!en.contains(">Status</th>"), "{en}");
        // A tls:// target is not a web link.
        assert!(!en.contains("<a href"), "{en}");
        let zh = html(&tls_down(), Locale::ZhCn);
        assert!(
            zh.contains(">证书剩余</th>") && zh.contains(">TLS握手</th>"),
            "{zh}"
        );
        assert!(
            zh.contains("<code>local: cert_days 9.5d &gt; 14</code>"),
            "{zh}"
        );
    }

    #[test]
    fn html_without_locations_or_failures() {
        let a = Alert::test("ops-mail", None, samples::at(3, 0, 0));
        let html = html(&a, Locale::En);
        assert!(
            !html.contains("<ul>") && !html.contains("<thead>"),
            "{html}"
        );
        assert!(html.contains("[TEST] ops-mail"));
        assert!(html.contains("This is a test alert from watchpost"));
    }

    #[test]
    fn message_headers() {
        let email = Email::for_tests("smtps://mail.example.com");
        let a = alert();
        let message = email.message(&a, Locale::ZhCn).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.is_ascii(), "7-bit: {raw}");
        let header = |name: &str| {
            raw.lines()
                .find(|l| l.starts_with(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} in {raw}"))
                .to_string()
        };
        assert_eq!(
            header("Message-ID"),
            "Message-ID: <m=3A1767322800000=3Adown=3A1767322800000@example.com>"
        );
        assert_eq!(
            header("X-Watchpost-Idempotency-Key"),
            "X-Watchpost-Idempotency-Key: m:1767322800000:down:1767322800000"
        );
        assert_eq!(
            header("References"),
            "References: <m=3A1767322800000@example.com>"
        );
        assert_eq!(header("Auto-Submitted"), "Auto-Submitted: auto-generated");
        assert!(header("Subject").contains("=?utf-8?"), "{raw}");
        assert!(header("Date").len() > 10);
        assert!(header("Content-Type").contains("multipart/alternative"));
        assert_eq!(
            message.envelope().to().len(),
            1,
            "for_tests has one recipient"
        );
        // The same alert gives the same Message-ID on a retry.
        let again =
            String::from_utf8(email.message(&a, Locale::ZhCn).unwrap().formatted()).unwrap();
        assert!(again.contains(&header("Message-ID")));
        // A test alert has no incident thread.
        let t = Alert::test("x", None, a.at);
        let raw = String::from_utf8(email.message(&t, Locale::En).unwrap().formatted()).unwrap();
        assert!(!raw.contains("References:"), "{raw}");
    }

    #[test]
    fn id_parts() {
        assert_eq!(id_part("a-b_c"), "a-b_c");
        assert_eq!(id_part("a:b c.d"), "a=3Ab=20c=2Ed");
        assert_eq!(id_part("监"), "=E7=9B=91");
        assert_eq!(id_part("=?"), "=3D=3F");
        let long = id_part(&"监控".repeat(100));
        assert_eq!(long.len(), MAX_ID_PART);
        assert!(long.starts_with("=E7=9B=91"), "{long}");
        assert_ne!(long, id_part(&format!("{}x", "监控".repeat(100))));
        assert_eq!(long, id_part(&"监控".repeat(100)));
    }

    #[test]
    fn html_table_shows_region_isp_and_a_missing_location() {
        let cells = |row: &str| -> Vec<String> {
            row.split("<td")
                .skip(1)
                .map(|c| {
                    let start = c.find('>').unwrap() + 1;
                    let end = c.find("</td>").unwrap();
                    c[start..end].to_string()
                })
                .collect()
        };
        let a = samples::multi_location();
        let en = html(&a, Locale::En);
        assert!(
            en.contains(
                "<p>homepage is DOWN. Failing at 1 of 2 reporting locations: hrb-unicom \
                 (1 missing: sh-mobile).</p>"
            ),
            "{en}"
        );
        let rows: Vec<&str> = en
            .lines()
            .filter(|l| l.starts_with("<tr><td style=\"border"))
            .collect();
        assert_eq!(rows.len(), 3, "{en}");
        assert_eq!(
            cells(rows[0])[..5],
            ["gz-telecom", "广东佛山", "电信", "OK", "200"]
        );
        assert_eq!(
            cells(rows[1])[..5],
            ["hrb-unicom", "黑龙江哈尔滨", "-", "FAIL", "200"]
        );
        assert_eq!(
            cells(rows[2]),
            [
                "sh-mobile",
                "上海",
                "移动",
                "MISSING",
                "",
                "",
                "",
                "",
                "",
                "",
                ""
            ]
        );
        // The verdict (fourth cell) is coloured by its outcome; a missing one is neither red
        // nor green.
        assert!(
            rows[2]
                .contains("text-align: left; color: #7f8c8d; font-style: italic;\">MISSING</td>")
        );
        assert!(!rows[2].contains("#c0392b") && !rows[2].contains("#1e8449"));
        assert!(rows[1].contains("color: #c0392b; font-weight: bold;\">FAIL</td>"));
        assert!(rows[0].contains("color: #1e8449;\">OK</td>"));
        assert!(
            en.contains(
                "<th style=\"border: 1px solid #ccc; padding: 4px 8px; text-align: left; \
                 background: #f4f4f4;\">Region</th><th style=\"border: 1px solid #ccc; \
                 padding: 4px 8px; text-align: left; background: #f4f4f4;\">ISP</th>"
            ),
            "{en}"
        );
        let zh = html(&a, Locale::ZhCn);
        assert!(
            zh.contains(">地区</th>") && zh.contains(">运营商</th>"),
            "{zh}"
        );
        assert!(zh.contains("font-style: italic;\">未上报</td>"), "{zh}");
        assert!(
            zh.contains("<p>监控 homepage 发生故障。1/2 个上报地点失败：hrb-unicom（1 个未上报：sh-mobile）。</p>"),
            "{zh}"
        );
    }
}
