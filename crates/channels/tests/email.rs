//! The e-mail channel against a real SMTP server: aiosmtpd (PyPI), run by `smtp_server.py`
//! on 127.0.0.1 — plaintext, STARTTLS and implicit TLS with a certificate from a test CA,
//! AUTH with one user. The server reports what it received as JSON lines.
//!
//! The Python comes from `WATCHPOST_PYTHON`, else `.venv/bin/python` at the workspace root
//! (scripts/test.sh creates that venv and installs aiosmtpd). When the server can't be
//! started, a test prints `SKIP` and passes — unless `CI=true`, where it fails.

mod common;

use base64::Engine;
use common::{build, pem_file, try_build};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::NamedTempFile;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use watchpost_channels::{Alert, AlertKind, Channel, ChannelConfig, Locale, SendError};
use watchpost_testkit::TestCa;

const USER: &str = "svc@example.com";
const PASSWORD: &str = "pa55-SECRET-word";

/// A test CA's files, and a leaf for localhost / 127.0.0.1, on disk for Python.
struct Certs {
    cert: NamedTempFile,
    key: NamedTempFile,
    ca: NamedTempFile,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Certs {
    fn new() -> Certs {
        let ca = TestCa::new("watchpost smtp test CA");
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
        let chain: String = leaf.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        Certs {
            cert: pem_file(&chain),
            key: pem_file(&pem("PRIVATE KEY", leaf.key.secret_der())),
            ca: pem_file(&ca.cert_pem),
        }
    }
}

/// How to run the server.
#[derive(Default)]
struct Options<'a> {
    mode: &'a str,
    certs: Option<&'a Certs>,
    auth: bool,
    reject: Vec<&'a str>,
    defer: Vec<&'a str>,
}

impl<'a> Options<'a> {
    /// `mode` with AUTH for [`USER`], and TLS with `certs` when given.
    fn auth(mode: &'a str, certs: Option<&'a Certs>) -> Options<'a> {
        Options {
            mode,
            certs,
            auth: true,
            ..Options::default()
        }
    }
}

/// A running `smtp_server.py`; killed when dropped.
struct SmtpServer {
    _child: Child,
    port: u16,
    events: mpsc::UnboundedReceiver<Value>,
    /// Every event received so far.
    seen: Vec<Value>,
}

fn python() -> PathBuf {
    match std::env::var_os("WATCHPOST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    }
}

/// The server can't run here: fail under CI, skip otherwise.
fn unavailable(why: String) -> Option<SmtpServer> {
    let test = std::thread::current()
        .name()
        .unwrap_or("email test")
        .to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: can't start the aiosmtpd test server (CI=true, so this fails rather than \
             skips): {why}\nRun scripts/test.sh (it creates .venv with aiosmtpd) or set \
             WATCHPOST_PYTHON to a Python that has aiosmtpd."
        );
    }
    eprintln!("SKIP {test}: can't start the aiosmtpd test server: {why}");
    None
}

impl SmtpServer {
    async fn start(options: Options<'_>) -> Option<SmtpServer> {
        let python = python();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut command = Command::new(&python);
        command.arg(&script).args(["--mode", options.mode]);
        if let Some(c) = options.certs {
            command
                .arg("--cert")
                .arg(c.cert.path())
                .arg("--key")
                .arg(c.key.path());
        }
        if options.auth {
            command.args(["--user", USER, "--password", PASSWORD]);
        }
        for a in &options.reject {
            command.args(["--reject", a]);
        }
        for a in &options.defer {
            command.args(["--defer", a]);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return unavailable(format!("running {}: {e}", python.display())),
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            tokio::spawn(async move {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text).await;
                stderr.lock().unwrap().push_str(&text);
            });
        }
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("smtp_server.py printed {line:?}: {e}"));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(30), events.recv()).await;
        match first {
            Ok(Some(event)) if event["event"] == "ready" => Some(SmtpServer {
                port: event["port"].as_u64().unwrap() as u16,
                _child: child,
                events,
                seen: Vec::new(),
            }),
            Ok(Some(other)) => panic!("smtp_server.py: expected ready, got {other}"),
            Ok(None) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let err = stderr.lock().unwrap().trim().to_string();
                let last = err.lines().last().unwrap_or("no output").to_string();
                unavailable(format!("{} exited: {last}", python.display()))
            }
            Err(_) => unavailable("not listening within 30s".into()),
        }
    }

    /// The next event named `kind` (up to 10s), keeping every event in `seen`.
    async fn next(&mut self, kind: &str) -> Value {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} event within 10s; saw {:?}", self.seen))
                .expect("smtp_server.py running");
            self.seen.push(event.clone());
            if event["event"] == kind {
                return event;
            }
        }
    }

    /// `scheme://127.0.0.1:port` of this server.
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn saw(&self, kind: &str) -> Vec<&Value> {
        self.seen.iter().filter(|e| e["event"] == kind).collect()
    }
}

/// The shared down alert, its failure in Chinese.
fn alert() -> Alert {
    let mut a = common::alert(AlertKind::Down);
    a.failures = vec![common::failed(
        "广东佛山[电信]",
        "总耗时",
        ">",
        "1000ms",
        "1430ms",
    )];
    a
}

/// The channel config the tests vary.
fn settings(server: String, certs: Option<&Certs>, password: Option<&str>) -> Value {
    let mut s = json!({
        "type": "email",
        "server": server,
        "from": "网站监控 <svc@example.com>",
        "to": ["owner@example.com", "值班 <oncall@example.com>"],
        "timeout": "10s",
    });
    if let Some(c) = certs {
        s["ca_file"] = json!(c.ca.path());
    }
    if let Some(p) = password {
        s["username"] = json!(USER);
        s["password"] = json!(p);
    }
    s
}

fn channel(settings: Value) -> Channel {
    let channel = build(settings);
    assert_eq!(channel.kind(), "email");
    assert!(!channel.merges());
    channel
}

fn part<'a>(message: &'a Value, content_type: &str) -> &'a str {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .unwrap_or_else(|| panic!("no {content_type} part in {message}"))["text"]
        .as_str()
        .unwrap()
}

/// The checks every delivered alert passes, whatever the transport.
fn assert_delivered_message(message: &Value) {
    assert_eq!(message["mail_from"], "svc@example.com");
    assert_eq!(
        message["rcpt_tos"],
        json!(["owner@example.com", "oncall@example.com"])
    );
    assert_eq!(message["subject"], "【故障】homepage");
    assert_eq!(message["from_display_name"], "网站监控");
    assert_eq!(message["from_header"], "网站监控 <svc@example.com>");
    assert_eq!(
        message["to"],
        json!(["owner@example.com", "值班 <oncall@example.com>"])
    );
    assert_eq!(message["content_type"], "multipart/alternative");
    let headers = &message["headers"];
    assert_eq!(
        headers["message-id"],
        "<homepage=3A1767322800000=3Adown=3A1767322800000@example.com>"
    );
    assert_eq!(
        headers["x-watchpost-idempotency-key"],
        "homepage:1767322800000:down:1767322800000"
    );
    assert_eq!(headers["auto-submitted"], "auto-generated");
    assert!(headers["date"].as_str().is_some_and(|d| d.len() > 10));
    // The raw message is 7-bit: the subject is RFC 2047-encoded, the bodies transfer-encoded.
    let raw = message["raw"].as_str().unwrap();
    assert!(raw.is_ascii());
    assert!(!raw.contains("故障"));
    assert!(raw.contains("Subject: =?utf-8?"), "{raw}");

    let plain = part(message, "text/plain");
    assert!(plain.contains("监控 homepage 发生故障。"), "{plain}");
    assert!(
        plain.contains("广东佛山[电信]: 总耗时 1430ms > 1000ms"),
        "{plain}"
    );
    assert!(
        plain.contains(
            "广东佛山[电信]  异常     200   12.0ms    27.0ms   55.0ms    1319ms    17.0ms  1430ms"
        ),
        "{plain}"
    );
    let html = part(message, "text/html");
    assert!(html.contains("<h2"), "{html}");
    assert!(html.contains("【故障】homepage</h2>"), "{html}");
    assert!(
        html.contains("<code>广东佛山[电信]: 总耗时 1430ms &gt; 1000ms</code>"),
        "{html}"
    );
    assert!(html.contains(">广东佛山[电信]</td>"), "{html}");
    assert!(html.contains(">1430ms</td>"), "{html}");
    assert!(
        html.contains("<a href=\"https://www.example.com/\">"),
        "{html}"
    );
}

#[tokio::test]
async fn smtps_with_auth_delivers_a_multipart_utf8_message() {
    let certs = Certs::new();
    let Some(mut server) = SmtpServer::start(Options::auth("smtps", Some(&certs))).await else {
        return;
    };
    let ch = channel(settings(server.url("smtps"), Some(&certs), Some(PASSWORD)));
    let delivery = ch.send(&alert(), Locale::ZhCn).await.unwrap();
    assert_eq!(delivery.status, None);
    assert!(
        delivery.body.starts_with("250 ") && delivery.body.contains("WATCHPOST1"),
        "{delivery:?}"
    );

    let auth = server.next("auth").await;
    assert_eq!(auth["login"], USER);
    assert_eq!(auth["ok"], true);
    let message = server.next("message").await;
    assert_eq!(message["tls"], "TLSv1.3");
    assert_delivered_message(&message);
    let closed = server.next("closed").await;
    assert_eq!(closed["tls"], "TLSv1.3");
}

#[tokio::test]
async fn starttls_with_auth_delivers() {
    let certs = Certs::new();
    let Some(mut server) = SmtpServer::start(Options::auth("starttls", Some(&certs))).await else {
        return;
    };
    // By name this time: the certificate is for localhost too.
    let ch = channel(settings(
        format!("smtp://localhost:{}", server.port),
        Some(&certs),
        Some(PASSWORD),
    ));
    ch.send(&alert(), Locale::ZhCn).await.unwrap();
    assert_eq!(server.next("auth").await["ok"], true);
    let message = server.next("message").await;
    assert_eq!(message["tls"], "TLSv1.3", "upgraded before the message");
    assert_delivered_message(&message);
}

#[tokio::test]
async fn smtp_without_starttls_sends_no_credentials_and_no_mail() {
    // A plaintext server that offers AUTH in clear: smtp:// must refuse it.
    let Some(mut server) = SmtpServer::start(Options::auth("plain", None)).await else {
        return;
    };
    let ch = channel(settings(server.url("smtp"), None, Some(PASSWORD)));
    let e = ch.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.message().contains("STARTTLS"), "{e}");
    assert!(!e.message().contains(PASSWORD), "{e}");
    // The session ended without AUTH or a message.
    let closed = server.next("closed").await;
    assert_eq!(closed["tls"], Value::Null);
    assert!(server.saw("auth").is_empty(), "{:?}", server.seen);
    assert!(server.saw("message").is_empty(), "{:?}", server.seen);
}

#[tokio::test]
async fn insecure_plaintext_to_loopback_delivers_with_auth() {
    let Some(mut server) = SmtpServer::start(Options::auth("plain", None)).await else {
        return;
    };
    let ch = channel(settings(server.url("smtp+insecure"), None, Some(PASSWORD)));
    ch.send(&alert(), Locale::ZhCn).await.unwrap();
    assert_eq!(server.next("auth").await["ok"], true);
    let message = server.next("message").await;
    assert_eq!(message["tls"], Value::Null);
    assert_delivered_message(&message);

    // Without credentials, too; and in English.
    let ch = channel(settings(server.url("smtp+insecure"), None, None));
    ch.send(&alert(), Locale::En).await.unwrap();
    let message = server.next("message").await;
    assert_eq!(message["subject"], "[DOWN] homepage");
    assert!(part(&message, "text/plain").contains("homepage is DOWN."));
}

#[tokio::test]
async fn wrong_password_is_fatal_with_the_smtp_code() {
    let certs = Certs::new();
    let Some(mut server) = SmtpServer::start(Options::auth("smtps", Some(&certs))).await else {
        return;
    };
    let wrong = "wrong-SECRET-pw";
    let ch = channel(settings(server.url("smtps"), Some(&certs), Some(wrong)));
    let e = ch.send(&alert(), Locale::ZhCn).await.unwrap_err();
    let SendError::Fatal { message } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("AUTH: 535"), "{message}");
    assert!(
        message.starts_with(&format!("smtps://127.0.0.1:{}: ", server.port)),
        "{message}"
    );
    assert!(
        !message.contains(wrong) && !message.contains("SECRET"),
        "{message}"
    );
    assert_eq!(server.next("auth").await["ok"], false);
    server.next("closed").await;
    assert!(server.saw("message").is_empty());
}

#[tokio::test]
async fn rejected_recipient_is_fatal_and_deferred_is_retryable() {
    let certs = Certs::new();
    let Some(mut server) = SmtpServer::start(Options {
        mode: "starttls",
        certs: Some(&certs),
        auth: true,
        reject: vec!["owner@example.com"],
        defer: vec!["later@example.com"],
    })
    .await
    else {
        return;
    };
    let ch = channel(settings(server.url("smtp"), Some(&certs), Some(PASSWORD)));
    let e = ch.send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.message().contains("sending: 550"), "{e}");
    assert!(e.message().contains("mailbox unavailable"), "{e}");
    server.next("closed").await;

    let mut s = settings(server.url("smtp"), Some(&certs), Some(PASSWORD));
    s["to"] = json!(["later@example.com"]);
    let e = channel(s).send(&alert(), Locale::ZhCn).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("sending: 451"), "{e}");
    server.next("closed").await;
    assert!(server.saw("message").is_empty());
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for scheme in ["smtps", "smtp", "smtp+insecure"] {
        let ch = channel(settings(format!("{scheme}://127.0.0.1:{port}"), None, None));
        let e = ch.send(&alert(), Locale::En).await.unwrap_err();
        assert!(e.is_retryable(), "{scheme}: {e:?}");
        assert!(
            e.message()
                .starts_with(&format!("{scheme}://127.0.0.1:{port}: connecting: ")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_silent_server_times_out_as_retryable() {
    // Accepts and never greets: the whole send is bounded by `timeout`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut s = settings(format!("smtp+insecure://127.0.0.1:{port}"), None, None);
    s["timeout"] = json!("300ms");
    let started = std::time::Instant::now();
    let e = channel(s).send(&alert(), Locale::En).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("not delivered within 300ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_retryable_tls_error() {
    let certs = Certs::new();
    let Some(server) = SmtpServer::start(Options::auth("smtps", Some(&certs))).await else {
        return;
    };
    // No ca_file: the test CA is not among the webpki roots.
    let ch = channel(settings(server.url("smtps"), None, Some(PASSWORD)));
    let e = ch.send(&alert(), Locale::En).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("TLS handshake"), "{e}");
    assert!(e.message().contains("certificate"), "{e}");

    // STARTTLS too: the upgrade fails, and no AUTH follows it.
    drop(server);
    let Some(mut server) = SmtpServer::start(Options::auth("starttls", Some(&certs))).await else {
        return;
    };
    let ch = channel(settings(server.url("smtp"), None, Some(PASSWORD)));
    let e = ch.send(&alert(), Locale::En).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.message().contains("STARTTLS: TLS handshake"), "{e}");
    server.next("closed").await;
    assert!(server.saw("auth").is_empty(), "{:?}", server.seen);
}

#[test]
fn config_errors() {
    let err = |s: Value| try_build(s).unwrap_err().0;
    let base = || settings("smtps://smtp.example.com".into(), None, Some(PASSWORD));

    let mut s = base();
    s["server"] = json!("imap://mail.example.com");
    let e = err(s);
    assert!(e.contains("scheme \"imap\" is not supported"), "{e}");
    let mut s = base();
    s["to"] = json!([]);
    assert!(err(s).contains("to: at least one recipient"));
    let mut s = base();
    s["to"] = json!(["owner@example.com", "owner at example.com"]);
    let e = err(s);
    assert!(e.contains("to[1]: \"owner at example.com\""), "{e}");
    let mut s = base();
    s["from"] = json!("<svc@>");
    assert!(err(s).contains("from:"));
    let mut s = base();
    s.as_object_mut().unwrap().remove("username");
    let e = err(s);
    assert!(e.contains("password without username"), "{e}");
    assert!(!e.contains(PASSWORD));
    let mut s = base();
    s["server"] = json!("smtp+insecure://mail.example.com:25");
    let e = err(s);
    assert!(e.contains("in clear"), "{e}");
    let mut s = base();
    s["to"] = json!(5);
    assert!(err(s).contains("to: expected an e-mail address or a list"));
    let mut s = base();
    s["tls"] = json!(false);
    assert!(err(s).contains("unknown field `tls`"));
    let mut s = base();
    s["timeout"] = json!("0s");
    assert!(err(s).contains("timeout"));
    let mut s = base();
    s.as_object_mut().unwrap().remove("to");
    assert!(err(s).contains("missing field `to`"));

    // One address for `to` is accepted; the timeout defaults to 30s.
    let mut s = base();
    s["to"] = json!("owner@example.com");
    s.as_object_mut().unwrap().remove("timeout");
    let config = ChannelConfig::from_value(s).unwrap();
    let ChannelConfig::Email(c) = &config else {
        panic!("{config:?}")
    };
    assert_eq!(c.to, ["owner@example.com"]);
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert_eq!(config.kind(), "email");

    // Debug output of the config and the built channel never shows the password.
    let shown = format!("{config:?}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("SECRET"),
        "{shown}"
    );
    assert!(shown.contains("smtps://smtp.example.com"), "{shown}");
    let built = config.build().unwrap();
    let shown = format!("{built:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}
