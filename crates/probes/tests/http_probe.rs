//! Integration tests for the HTTP probe against real local servers (watchpost-testkit):
//! per-phase timings with injected delays, TLS with a test CA, DNS through a local responder,
//! classified failures, redirects, HTTP/2 and the JSON report shape.
//!
//! Every server listens on 127.0.0.1; no test contacts any other address.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchpost_probes::http::{
    CheckReport, ErrorKind, HttpProber, HttpRequest, HttpResult, MAX_REDIRECTS, Phase,
    ProberOptions, ResolveOverride, Timings,
};
use watchpost_testkit::{
    DnsServer, H2Server, HttpServer, Receiver, Reply, Seen, TestCa, TlsOptions,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn prober() -> HttpProber {
    HttpProber::new(ProberOptions::default()).expect("prober")
}

fn prober_with(ca: Option<&TestCa>, nameserver: Option<SocketAddr>) -> HttpProber {
    HttpProber::new(ProberOptions {
        extra_roots: ca.map(|ca| vec![ca.cert_der.clone()]).unwrap_or_default(),
        nameservers: nameserver.map(|ns| vec![ns]),
    })
    .expect("prober")
}

fn get(url: &str) -> HttpRequest {
    HttpRequest::get(url).expect("valid request")
}

/// `https://localhost:PORT{path}` pinned to 127.0.0.1 (as `--resolve localhost:PORT:127.0.0.1`).
fn localhost_https(port: u16, path: &str) -> HttpRequest {
    let mut req = get(&format!("https://localhost:{port}{path}"));
    req.resolve.push(
        format!("localhost:{port}:127.0.0.1")
            .parse::<ResolveOverride>()
            .expect("resolve override"),
    );
    req
}

fn tls(config: Arc<rustls::ServerConfig>) -> TlsOptions {
    TlsOptions {
        config,
        handshake_delay: Duration::ZERO,
        stall: false,
    }
}

async fn https_server(config: Arc<rustls::ServerConfig>) -> HttpServer {
    HttpServer::start(Some(tls(config))).await
}

/// A port with nothing listening on it: bind, note the port, close.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[track_caller]
fn assert_ok(r: &HttpResult) {
    assert!(
        r.error.is_none(),
        "expected success for {}, got {:?}",
        r.url,
        r.error
    );
}

#[track_caller]
fn assert_failed(r: &HttpResult, phase: Phase, kind: ErrorKind) -> String {
    let err = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected {phase} {kind} for {}, got success: {r:?}", r.url));
    assert_eq!(
        (err.phase, err.kind),
        (phase, kind),
        "unexpected error for {}: {err}",
        r.url
    );
    assert!(!err.message.is_empty(), "empty message for {err:?}");
    err.message.clone()
}

#[track_caller]
fn assert_between(what: &str, d: Option<Duration>, low: Duration, high: Duration) {
    let d = d.unwrap_or_else(|| panic!("{what} was not measured"));
    assert!(
        d >= low && d < high,
        "{what} = {d:?}, expected in [{low:?}, {high:?})"
    );
}

/// The phase identities for a completed single check: ttfb = dns+connect+tls+wait and
/// total = ttfb + download (marks are cut at shared instants, so equal up to rounding).
#[track_caller]
fn assert_phases_add_up(t: &Timings) {
    let tol = Duration::from_micros(1);
    let sum = t.dns.unwrap() + t.connect.unwrap() + t.tls.unwrap_or_default() + t.wait.unwrap();
    let ttfb = t.ttfb.expect("ttfb");
    assert!(
        ttfb.abs_diff(sum) <= tol,
        "ttfb {ttfb:?} != phases {sum:?} ({t:?})"
    );
    assert!(t.total >= ttfb, "total {:?} < ttfb {ttfb:?}", t.total);
    let with_download = ttfb + t.download.expect("download");
    assert!(
        t.total.abs_diff(with_download) <= tol,
        "total {:?} != ttfb + download {with_download:?} ({t:?})",
        t.total
    );
}

// ---------------------------------------------------------------------------------------------
// 1, 2: wait and download
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_delay_is_wait() {
    let srv = HttpServer::start(None).await;
    let r = prober().check(&get(&srv.url("/?wait=200"))).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.http_version, Some("HTTP/1.1"));
    assert_eq!(r.remote_addr, Some(srv.addr));
    assert_eq!(r.body.as_ref(), b"hello from watchpost testkit\n");
    assert_eq!(r.size_bytes, r.body.len() as u64);
    let t = r.timings;
    assert_eq!(t.dns, Some(Duration::ZERO), "IP literal: no lookup");
    assert_eq!(t.tls, None, "plain HTTP has no TLS phase");
    assert_between("connect", t.connect, Duration::ZERO, ms(100));
    assert_between("wait", t.wait, ms(190), ms(2000));
    assert_between("download", t.download, Duration::ZERO, ms(50));
    assert_phases_add_up(&t);
    assert!(t.total >= ms(190));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_trickle_is_download() {
    let srv = HttpServer::start(None).await;
    let r = prober()
        .check(&get(&srv.url("/?download=300&size=2000")))
        .await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.size_bytes, 2000);
    assert_eq!(r.body.len(), 2000);
    assert!(r.body.starts_with(b"watchpost testkit body "));
    let t = r.timings;
    assert_between("download", t.download, ms(280), ms(2000));
    assert_between("wait", t.wait, Duration::ZERO, ms(100));
    assert_phases_add_up(&t);
    // ~2000 bytes over ~300 ms.
    let speed = r.speed_bytes_per_sec();
    assert!(speed > 500.0 && speed < 7500.0, "speed {speed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_reported_not_judged() {
    let srv = HttpServer::start(None).await;
    let r = prober().check(&get(&srv.url("/?status=503"))).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(503));
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("text/plain")
    );
}

// ---------------------------------------------------------------------------------------------
// 3: HTTPS with a test CA
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_valid_certificate_with_resolve_override() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1", "secure.test"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let port = srv.addr.port();

    let r = prober_with(Some(&ca), None)
        .check(&localhost_https(port, "/?wait=200"))
        .await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.http_version, Some("HTTP/1.1"));
    assert_eq!(r.remote_addr, Some(srv.addr));
    let t = r.timings;
    assert_eq!(t.dns, Some(Duration::ZERO), "--resolve skips the lookup");
    assert_between("tls", t.tls, Duration::from_nanos(1), ms(1000));
    assert_between("wait", t.wait, ms(190), ms(2000));
    assert_between("download", t.download, Duration::ZERO, ms(50));
    assert_phases_add_up(&t);
    let info = r.tls.as_ref().expect("tls info");
    assert_eq!(info.version, "TLSv1.3");
    let days = info.cert_days_left.expect("cert_days_left");
    assert!((89.5..=90.1).contains(&days), "cert_days_left {days}");
    let not_after = info.cert_not_after.as_deref().expect("cert_not_after");
    assert!(not_after.ends_with('Z'), "not RFC 3339 UTC: {not_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_valid_certificate_via_dns_and_ip_literal() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1", "secure.test"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let port = srv.addr.port();
    let dns = DnsServer::start(&[("secure.test", LOCALHOST)], Duration::ZERO, false).await;
    let prober = prober_with(Some(&ca), Some(dns.addr));

    // A name looked up through the local DNS server, verified against the SAN.
    let r = prober
        .check(&get(&format!("https://secure.test:{port}/")))
        .await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.remote_addr, Some(srv.addr));
    assert!(
        r.timings.dns.unwrap() > Duration::ZERO,
        "a real lookup took place"
    );
    assert!(r.timings.tls.unwrap() > Duration::ZERO);
    assert_eq!(r.tls.as_ref().unwrap().version, "TLSv1.3");
    assert_phases_add_up(&r.timings);

    // An IP literal is verified against the IP SAN (and needs no lookup).
    let r = prober
        .check(&get(&format!("https://127.0.0.1:{port}/")))
        .await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.timings.dns, Some(Duration::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_expired_certificate() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.expired_leaf(&["localhost", "127.0.0.1"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let port = srv.addr.port();
    let prober = prober_with(Some(&ca), None);

    let r = prober.check(&localhost_https(port, "/")).await;
    let msg = assert_failed(&r, Phase::Tls, ErrorKind::Certificate);
    assert!(msg.contains("expired"), "message: {msg}");
    assert_eq!(r.status, None);
    assert!(r.timings.tls.is_some(), "the failed phase shows its time");
    assert_eq!(r.timings.wait, None, "later phases were never reached");

    let mut insecure = localhost_https(port, "/");
    insecure.insecure = true;
    let r = prober.check(&insecure).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    let days = r.tls.as_ref().unwrap().cert_days_left.unwrap();
    assert!((-1.1..=-0.9).contains(&days), "expired yesterday: {days}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_wrong_host() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["other.test"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let port = srv.addr.port();
    let prober = prober_with(Some(&ca), None);

    let r = prober.check(&localhost_https(port, "/")).await;
    let msg = assert_failed(&r, Phase::Tls, ErrorKind::Certificate);
    assert!(msg.contains("name mismatch"), "message: {msg}");

    let mut insecure = localhost_https(port, "/");
    insecure.insecure = true;
    let r = prober.check(&insecure).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_unknown_issuer() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let port = srv.addr.port();
    // The CA is not trusted: only the webpki roots.
    let prober = prober();

    let r = prober.check(&localhost_https(port, "/")).await;
    let msg = assert_failed(&r, Phase::Tls, ErrorKind::Certificate);
    assert!(msg.contains("unknown issuer"), "message: {msg}");

    let mut insecure = localhost_https(port, "/");
    insecure.insecure = true;
    let r = prober.check(&insecure).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.tls.as_ref().unwrap().version, "TLSv1.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_body_phases_and_failures() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let port = srv.addr.port();
    let prober = prober_with(Some(&ca), None);

    // Session tickets sent after the handshake are not the response's first byte.
    let r = prober
        .check(&localhost_https(port, "/?download=300&size=2000"))
        .await;
    assert_ok(&r);
    assert_eq!(r.size_bytes, 2000);
    assert_between("download", r.timings.download, ms(280), ms(2000));
    assert_between("wait", r.timings.wait, Duration::ZERO, ms(100));
    assert_phases_add_up(&r.timings);

    let r = prober.check(&localhost_https(port, "/reset")).await;
    assert_failed(&r, Phase::Download, ErrorKind::Reset);
    assert_eq!(r.status, Some(200));

    let r = prober.check(&localhost_https(port, "/close")).await;
    assert_failed(&r, Phase::Wait, ErrorKind::Closed);

    let r = prober.check(&localhost_https(port, "/garbage")).await;
    assert_failed(&r, Phase::Wait, ErrorKind::Malformed);
}

// ---------------------------------------------------------------------------------------------
// 4: TLS handshake delay and stall
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_delay_is_tls() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let srv = HttpServer::start(Some(TlsOptions {
        handshake_delay: ms(200),
        ..tls(leaf.server_config(&[b"http/1.1"]))
    }))
    .await;
    let r = prober_with(Some(&ca), None)
        .check(&localhost_https(srv.addr.port(), "/"))
        .await;
    assert_ok(&r);
    let t = r.timings;
    assert_between("tls", t.tls, ms(190), ms(2000));
    assert_between("connect", t.connect, Duration::ZERO, ms(100));
    assert_between("wait", t.wait, Duration::ZERO, ms(100));
    assert_phases_add_up(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_stall_times_out_in_tls() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let srv = HttpServer::start(Some(TlsOptions {
        stall: true,
        ..tls(leaf.server_config(&[b"http/1.1"]))
    }))
    .await;
    let mut req = localhost_https(srv.addr.port(), "/");
    req.timeouts.tls = Some(ms(300));
    let started = Instant::now();
    let r = prober_with(Some(&ca), None).check(&req).await;
    let elapsed = started.elapsed();
    let msg = assert_failed(&r, Phase::Tls, ErrorKind::Timeout);
    assert!(msg.contains("tls"), "message: {msg}");
    assert_between("tls", r.timings.tls, ms(290), ms(2000));
    assert!(r.timings.connect.is_some());
    assert_eq!(r.timings.wait, None);
    assert_eq!(r.timings.ttfb, None);
    assert!(
        elapsed < ms(2000) && elapsed < req.timeouts.total / 4,
        "returned after {elapsed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5: DNS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_delay_is_dns_and_connects_to_the_answer() {
    let srv = HttpServer::start(None).await;
    let dns = DnsServer::start(&[("bench.test", LOCALHOST)], ms(150), false).await;
    let url = format!("http://bench.test:{}/", srv.addr.port());
    let r = prober_with(None, Some(dns.addr)).check(&get(&url)).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    assert_eq!(
        r.remote_addr,
        Some(SocketAddr::new(LOCALHOST, srv.addr.port()))
    );
    let t = r.timings;
    assert_between("dns", t.dns, ms(140), ms(2000));
    assert_between("connect", t.connect, Duration::ZERO, ms(100));
    assert_phases_add_up(&t);

    // No answer is cached between checks: the next check pays the lookup again.
    let r = prober_with(None, Some(dns.addr)).check(&get(&url)).await;
    assert_ok(&r);
    assert_between("second dns", r.timings.dns, ms(140), ms(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_unknown_name_is_nxdomain() {
    let dns = DnsServer::start(&[("bench.test", LOCALHOST)], Duration::ZERO, false).await;
    let port = closed_port().await;
    let r = prober_with(None, Some(dns.addr))
        .check(&get(&format!("http://nowhere.test:{port}/")))
        .await;
    let msg = assert_failed(&r, Phase::Dns, ErrorKind::Nxdomain);
    assert!(msg.contains("nowhere.test"), "message: {msg}");
    assert!(r.timings.dns.is_some());
    assert_eq!(r.timings.connect, None);
    assert_eq!(r.remote_addr, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_silent_server_times_out() {
    let dns = DnsServer::start(&[("bench.test", LOCALHOST)], Duration::ZERO, true).await;
    let port = closed_port().await;
    let mut req = get(&format!("http://bench.test:{port}/"));
    req.timeouts.dns = Some(ms(500));
    let started = Instant::now();
    let r = prober_with(None, Some(dns.addr)).check(&req).await;
    let elapsed = started.elapsed();
    assert_failed(&r, Phase::Dns, ErrorKind::Timeout);
    assert_between("dns", r.timings.dns, ms(490), ms(2000));
    assert!(elapsed < ms(2000), "returned after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_literal_has_zero_dns() {
    let srv = HttpServer::start(None).await;
    // A name server that never answers: an IP literal must not ask it.
    let dns = DnsServer::start(&[], Duration::ZERO, true).await;
    let r = prober_with(None, Some(dns.addr))
        .check(&get(&srv.url("/")))
        .await;
    assert_ok(&r);
    assert_eq!(r.timings.dns, Some(Duration::ZERO));
}

// ---------------------------------------------------------------------------------------------
// 6: classified failures, limits, redirects, HTTP/2, request shape
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_connect_refused() {
    let port = closed_port().await;
    let r = prober()
        .check(&get(&format!("http://127.0.0.1:{port}/")))
        .await;
    let msg = assert_failed(&r, Phase::Connect, ErrorKind::Refused);
    assert!(msg.contains("refused"), "message: {msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "message: {msg}");
    assert_eq!(
        r.remote_addr,
        Some(SocketAddr::new(LOCALHOST, port)),
        "the address tried"
    );
    assert_eq!(r.timings.dns, Some(Duration::ZERO));
    assert!(r.timings.connect.is_some());
    assert_eq!(r.timings.wait, None);
    assert_eq!(r.status, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_is_download_reset() {
    let srv = HttpServer::start(None).await;
    let r = prober().check(&get(&srv.url("/reset"))).await;
    assert_failed(&r, Phase::Download, ErrorKind::Reset);
    assert_eq!(r.status, Some(200), "the head arrived before the reset");
    assert!(r.timings.wait.is_some());
    assert!(r.timings.download.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_wait_malformed() {
    let srv = HttpServer::start(None).await;
    let r = prober().check(&get(&srv.url("/garbage"))).await;
    assert_failed(&r, Phase::Wait, ErrorKind::Malformed);
    assert_eq!(r.status, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_without_answer_is_wait_closed() {
    let srv = HttpServer::start(None).await;
    let r = prober().check(&get(&srv.url("/close"))).await;
    assert_failed(&r, Phase::Wait, ErrorKind::Closed);
    assert_eq!(r.status, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_with_wait_timeout_is_wait_timeout() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/stall"));
    req.timeouts.wait = Some(ms(300));
    let started = Instant::now();
    let r = prober().check(&req).await;
    let elapsed = started.elapsed();
    assert_failed(&r, Phase::Wait, ErrorKind::Timeout);
    assert_between("wait", r.timings.wait, ms(290), ms(2000));
    assert!(elapsed < ms(2000), "returned after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_cap_is_download_too_large() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/?size=5000"));
    req.max_body = 1000;
    let r = prober().check(&req).await;
    assert_failed(&r, Phase::Download, ErrorKind::TooLarge);
    assert!(
        r.body.len() <= 1000,
        "read {} bytes past the cap",
        r.body.len()
    );

    // At the cap exactly is fine.
    let mut req = get(&srv.url("/?size=1000"));
    req.max_body = 1000;
    let r = prober().check(&req).await;
    assert_ok(&r);
    assert_eq!(r.size_bytes, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_followed_and_counted() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/redirect/3"));
    req.follow_redirects = true;
    let r = prober().check(&req).await;
    assert_ok(&r);
    assert_eq!(r.redirects, 3);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.body.as_ref(), b"arrived\n");
    assert!(
        r.final_url.ends_with("/redirect/0"),
        "final {}",
        r.final_url
    );
    assert!(r.url.ends_with("/redirect/3"), "url {}", r.url);
    // Phases are summed over the four hops: ttfb is still their sum, and total (wall clock,
    // start to the last byte) also covers the short gaps between hops.
    let t = r.timings;
    let sum = t.dns.unwrap() + t.connect.unwrap() + t.wait.unwrap();
    assert!(
        t.ttfb.unwrap().abs_diff(sum) <= Duration::from_micros(1),
        "{t:?}"
    );
    assert_eq!(t.tls, None);
    let phases = t.ttfb.unwrap() + t.download.unwrap();
    assert!(t.total >= phases && t.total - phases < ms(100), "{t:?}");
    assert!(t.connect.unwrap() > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_not_followed_by_default() {
    let srv = HttpServer::start(None).await;
    let r = prober().check(&get(&srv.url("/redirect/3"))).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(302));
    assert_eq!(r.redirects, 0);
    assert_eq!(
        r.headers.get("location").map(String::as_str),
        Some("/redirect/2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loop_is_too_many_redirects() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/loop"));
    req.follow_redirects = true;
    let r = prober().check(&req).await;
    assert_failed(&r, Phase::Wait, ErrorKind::TooManyRedirects);
    assert_eq!(r.redirects, MAX_REDIRECTS);
    assert_eq!(r.status, Some(302));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_alpn() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let srv = H2Server::start(leaf.server_config(&[b"h2"])).await;
    let r = prober_with(Some(&ca), None)
        .check(&localhost_https(srv.addr.port(), "/"))
        .await;
    assert_ok(&r);
    assert_eq!(r.http_version, Some("HTTP/2"));
    assert_eq!(r.status, Some(200));
    assert_eq!(r.body.as_ref(), b"h2 ok\n");
    assert_eq!(r.tls.as_ref().unwrap().version, "TLSv1.3");
    assert_phases_add_up(&r.timings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_shows_method_headers_and_body() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/echo"))
        .method("POST")
        .unwrap()
        .header_line("X-Watchpost-Test: hello there")
        .unwrap()
        .header_line("User-Agent: custom-agent/1")
        .unwrap();
    req.body = bytes_of("ping=1&pong=2");
    let r = prober().check(&req).await;
    assert_ok(&r);
    assert_eq!(r.status, Some(200));
    let echo = String::from_utf8_lossy(&r.body).into_owned();
    let lower = echo.to_ascii_lowercase();
    assert!(echo.starts_with("POST /echo\n"), "echo: {echo}");
    assert!(
        lower.contains("x-watchpost-test: hello there\r\n"),
        "echo: {echo}"
    );
    assert!(
        lower.contains("user-agent: custom-agent/1\r\n") && !lower.contains("watchpost/"),
        "a user header replaces the default one: {echo}"
    );
    assert!(lower.contains("content-length: 13\r\n"), "echo: {echo}");
    assert!(
        lower.contains(&format!("host: {}\r\n", srv.addr)),
        "echo: {echo}"
    );
    assert!(echo.ends_with("\r\n\r\nping=1&pong=2"), "echo: {echo}");

    // A plain GET sends the default headers and no body.
    let r = prober().check(&get(&srv.url("/echo"))).await;
    let echo = String::from_utf8_lossy(&r.body).to_ascii_lowercase();
    assert!(echo.starts_with("get /echo\n"), "echo: {echo}");
    assert!(echo.contains("user-agent: watchpost/"), "echo: {echo}");
    assert!(echo.ends_with("\r\n\r\n"), "echo: {echo}");
}

fn bytes_of(s: &'static str) -> bytes::Bytes {
    bytes::Bytes::from_static(s.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// 7: the JSON shape
// ---------------------------------------------------------------------------------------------

/// A JSON object with its keys in document order (serde_json's `Value` sorts them).
#[derive(Debug)]
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn get(&self, key: &str) -> &Value {
        &self
            .0
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no key {key}"))
            .1
    }
}

/// Keys of the nested object at `key`, in document order.
fn nested_keys(json: &str, key: &str) -> Vec<String> {
    // Re-serializing a `Value` would lose the order: read the object from the text itself.
    let start = json
        .find(&format!("\"{key}\":{{"))
        .unwrap_or_else(|| panic!("no object {key} in {json}"))
        + key.len()
        + 3;
    let mut de = serde_json::Deserializer::from_str(&json[start..]);
    let obj = Ordered::deserialize(&mut de).unwrap();
    obj.keys().into_iter().map(String::from).collect()
}

use watchpost_testkit::contract::{CHECK_KEYS as TOP_KEYS, ERROR_KEYS, TIMING_KEYS, TLS_KEYS};

fn report_json(r: &HttpResult, ok: bool) -> (String, Ordered) {
    let json = serde_json::to_string(&CheckReport::new(r, ok)).unwrap();
    let top: Ordered = serde_json::from_str(&json).unwrap();
    assert_eq!(top.keys(), TOP_KEYS, "top-level keys of {json}");
    assert_eq!(
        nested_keys(&json, "timings_ms"),
        TIMING_KEYS,
        "timings of {json}"
    );
    (json, top)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_plain_http() {
    let srv = HttpServer::start(None).await;
    let url = srv.url("/?wait=20&size=1024");
    let r = prober().check(&get(&url)).await;
    assert_ok(&r);
    let (json, top) = report_json(&r, true);
    assert_eq!(top.get("url"), &Value::from(url.as_str()));
    assert_eq!(top.get("ok"), &Value::Bool(true));
    assert_eq!(top.get("status"), &Value::from(200));
    assert_eq!(top.get("http_version"), &Value::from("HTTP/1.1"));
    assert_eq!(top.get("remote_addr"), &Value::from(srv.addr.to_string()));
    assert_eq!(top.get("redirects"), &Value::from(0));
    assert_eq!(top.get("size_bytes"), &Value::from(1024));
    assert!(top.get("speed_bytes_per_sec").is_f64());
    assert_eq!(
        top.get("headers")["content-type"],
        Value::from("text/plain")
    );
    assert_eq!(top.get("tls"), &Value::Null);
    assert_eq!(top.get("error"), &Value::Null);
    let t = top.get("timings_ms");
    assert_eq!(t["dns"], Value::from(0.0));
    assert_eq!(t["tls"], Value::Null);
    for k in ["connect", "wait", "download", "ttfb", "total"] {
        assert!(t[k].is_f64(), "timings_ms.{k} in {json}");
    }
    let f = |k: &str| t[k].as_f64().unwrap();
    assert!(f("wait") >= 19.0, "wait {}", f("wait"));
    // Rounded to the microsecond each, so the identity holds to a few µs.
    let sum = f("dns") + f("connect") + f("wait");
    assert!(
        (f("ttfb") - sum).abs() < 0.005,
        "ttfb {} vs {sum}",
        f("ttfb")
    );
    assert!(f("total") >= f("ttfb"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_failure_has_error_object() {
    let port = closed_port().await;
    let r = prober()
        .check(&get(&format!("http://127.0.0.1:{port}/")))
        .await;
    let (json, top) = report_json(&r, false);
    assert_eq!(top.get("ok"), &Value::Bool(false));
    assert_eq!(top.get("status"), &Value::Null);
    assert_eq!(top.get("http_version"), &Value::Null);
    // Nothing answered; the address reported is the one that was tried.
    assert_eq!(
        top.get("remote_addr"),
        &Value::from(format!("127.0.0.1:{port}"))
    );
    assert_eq!(nested_keys(&json, "error"), ERROR_KEYS);
    let err = top.get("error");
    assert_eq!(err["phase"], Value::from("connect"));
    assert_eq!(err["kind"], Value::from("refused"));
    assert!(err["message"].as_str().unwrap().contains("refused"));
    let t = top.get("timings_ms");
    assert_eq!(t["wait"], Value::Null);
    assert_eq!(t["download"], Value::Null);
    assert_eq!(t["ttfb"], Value::Null);
    assert!(t["connect"].is_f64());
    assert!(t["total"].is_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_https_has_tls_object() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let srv = https_server(leaf.server_config(&[b"http/1.1"])).await;
    let r = prober_with(Some(&ca), None)
        .check(&localhost_https(srv.addr.port(), "/"))
        .await;
    assert_ok(&r);
    let (json, top) = report_json(&r, true);
    assert_eq!(nested_keys(&json, "tls"), TLS_KEYS);
    let tls = top.get("tls");
    assert_eq!(tls["version"], Value::from("TLSv1.3"));
    let not_after = tls["cert_not_after"].as_str().unwrap();
    assert!(
        not_after.len() == 20 && not_after.ends_with('Z') && not_after.as_bytes()[10] == b'T',
        "cert_not_after {not_after}"
    );
    let days = tls["cert_days_left"].as_f64().unwrap();
    assert!((89.5..=90.1).contains(&days), "cert_days_left {days}");
    assert!(top.get("timings_ms")["tls"].as_f64().unwrap() > 0.0);
    assert_eq!(top.get("error"), &Value::Null);
}

// ---------------------------------------------------------------------------------------------
// 8: the overall deadline
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_deadline_bounds_a_stalled_check() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/stall"));
    req.timeouts.total = ms(500);
    let started = Instant::now();
    let r = prober().check(&req).await;
    let elapsed = started.elapsed();
    let msg = assert_failed(&r, Phase::Wait, ErrorKind::Timeout);
    assert!(msg.contains("deadline"), "message: {msg}");
    assert!(
        elapsed >= ms(490) && elapsed < ms(1500),
        "returned after {elapsed:?}"
    );
    assert_between("total", Some(r.timings.total), ms(490), ms(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_deadline_wins_over_a_longer_phase_limit() {
    let srv = HttpServer::start(None).await;
    let mut req = get(&srv.url("/?download=3000&size=100"));
    req.timeouts.total = ms(500);
    req.timeouts.download = Some(ms(5000));
    let started = Instant::now();
    let r = prober().check(&req).await;
    let elapsed = started.elapsed();
    assert_failed(&r, Phase::Download, ErrorKind::Timeout);
    assert!(elapsed < ms(1500), "returned after {elapsed:?}");
    assert!(r.body.len() < 100, "partial body {}", r.body.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_when_the_listen_queue_is_full() {
    // A listener that never accepts, with a backlog of 1: once its accept queue is full, the
    // kernel drops further SYNs, so a new connection hangs in the connect phase.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(ms(200), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let mut req = get(&format!("http://{addr}/"));
    req.timeouts.connect = Some(ms(300));
    let started = Instant::now();
    let r = prober().check(&req).await;
    let msg = assert_failed(&r, Phase::Connect, ErrorKind::Timeout);
    assert!(msg.contains("connect timed out"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "returned after the phase limit"
    );
    assert_between("connect", r.timings.connect, ms(290), ms(1500));
    assert_eq!(r.timings.dns, Some(Duration::ZERO));
    assert!(r.timings.tls.is_none() && r.timings.wait.is_none());
    assert_eq!(r.remote_addr, Some(addr), "the address tried is reported");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_failure_when_the_server_does_not_speak_tls() {
    // An https:// URL to a server that answers the ClientHello with plain HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let r = prober().check(&get(&format!("https://{addr}/"))).await;
    let msg = assert_failed(&r, Phase::Tls, ErrorKind::Handshake);
    assert!(msg.starts_with("TLS handshake failed"), "{msg}");
    assert!(
        r.timings.tls.is_some(),
        "the time spent is in the tls phase"
    );
    assert!(r.timings.wait.is_none());
}

// ---------------------------------------------------------------------------------------------
// 9: credentials and redirects (the class of curl CVE-2022-27776)
// ---------------------------------------------------------------------------------------------

const CREDENTIALS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// A GET of `url` that follows redirects, with credentials and one harmless header.
fn with_credentials(url: &str) -> HttpRequest {
    let mut req = get(url)
        .header_line("Authorization: Bearer s3cret-token")
        .unwrap()
        .header_line("Cookie: session=s3cret-cookie")
        .unwrap()
        .header_line("Proxy-Authorization: Basic s3cret-proxy")
        .unwrap()
        .header_line("X-Harmless: kept")
        .unwrap();
    req.follow_redirects = true;
    req
}

fn redirect_to(location: &str) -> Reply {
    Reply::status(302, "").header("location", location)
}

#[track_caller]
fn assert_credentials(seen: &Seen, present: bool) {
    for name in CREDENTIALS {
        assert_eq!(
            seen.headers.contains_key(name),
            present,
            "{name} on {} {}: {:?}",
            seen.method,
            seen.uri,
            seen.headers
        );
    }
    assert_eq!(
        seen.headers.get("x-harmless").map(|v| v.as_bytes()),
        Some(&b"kept"[..]),
        "other headers always follow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_port_drops_credentials() {
    let mut second = Receiver::start(vec![Reply::status(200, "landed")]).await;
    let mut first = Receiver::start(vec![redirect_to(&second.url("/landing"))]).await;
    let r = prober()
        .check(&with_credentials(&first.url("/start")))
        .await;
    assert_ok(&r);
    assert_eq!((r.status, r.redirects), (Some(200), 1));
    assert_eq!(r.body.as_ref(), b"landed");
    assert_eq!(r.final_url, second.url("/landing"));
    let seen = first.next().await;
    assert_credentials(&seen, true);
    assert_eq!(seen.header("authorization"), "Bearer s3cret-token");
    // Same host (127.0.0.1), another port: another origin.
    let seen = second.next().await;
    assert_eq!(seen.uri, "/landing");
    assert_credentials(&seen, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_http_on_the_same_host_and_port_drops_credentials() {
    let ca = TestCa::new("watchpost test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    // One port speaking both: only the scheme changes.
    let mut rx = Receiver::start_dual(
        vec![Reply::status(200, "unused")],
        leaf.server_config(&[b"http/1.1"]),
    )
    .await;
    rx.script(vec![
        redirect_to(&rx.plain_url("/in-clear")),
        Reply::status(200, "plain"),
    ]);
    let r = prober_with(Some(&ca), None)
        .check(&with_credentials(&rx.url("/secure")))
        .await;
    assert_ok(&r);
    assert_eq!((r.status, r.redirects), (Some(200), 1));
    assert_eq!(r.body.as_ref(), b"plain");
    assert!(
        r.final_url.starts_with("http://127.0.0.1:"),
        "{}",
        r.final_url
    );
    let seen = rx.next().await;
    assert_eq!(seen.uri, "/secure");
    assert_credentials(&seen, true);
    let seen = rx.next().await;
    assert_eq!(seen.uri, "/in-clear");
    assert_credentials(&seen, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_redirects_keep_credentials() {
    let mut rx = Receiver::start(vec![Reply::status(200, "unused")]).await;
    // A relative Location, then an absolute one naming the same origin.
    rx.script(vec![
        redirect_to("/second"),
        redirect_to(&rx.url("/third")),
        Reply::status(200, "done"),
    ]);
    let r = prober().check(&with_credentials(&rx.url("/first"))).await;
    assert_ok(&r);
    assert_eq!((r.status, r.redirects), (Some(200), 2));
    for path in ["/first", "/second", "/third"] {
        let seen = rx.next().await;
        assert_eq!(seen.uri, path);
        assert_credentials(&seen, true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stay_dropped_when_the_chain_comes_back() {
    let mut home = Receiver::start(vec![Reply::status(200, "unused")]).await;
    let mut away = Receiver::start(vec![redirect_to(&home.url("/back"))]).await;
    home.script(vec![
        redirect_to(&away.url("/away")),
        Reply::status(200, "home again"),
    ]);
    let r = prober().check(&with_credentials(&home.url("/start"))).await;
    assert_ok(&r);
    assert_eq!(r.redirects, 2);
    assert_credentials(&home.next().await, true);
    assert_credentials(&away.next().await, false);
    let back = home.next().await;
    assert_eq!(back.uri, "/back");
    assert_credentials(&back, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_in_a_location_is_never_followed_nor_reported() {
    let mut second = Receiver::start(vec![Reply::status(200, "landed")]).await;
    let target = format!("http://mallory:pa55word@{}/landing", second.addr);
    let mut first = Receiver::start(vec![redirect_to(&target)]).await;
    let r = prober()
        .check(&with_credentials(&first.url("/start")))
        .await;
    assert_ok(&r);
    assert_eq!(r.final_url, second.url("/landing"));
    assert!(!r.final_url.contains("mallory") && !r.final_url.contains("pa55word"));
    let _ = first.next().await;
    let seen = second.next().await;
    assert_eq!(seen.header("host"), second.addr.to_string());
    assert_credentials(&seen, false);

    // Same origin with user info: the credentials the user gave stay, the user info goes.
    let mut rx = Receiver::start(vec![Reply::status(200, "unused")]).await;
    rx.script(vec![
        redirect_to(&format!("http://mallory:pa55word@{}/next", rx.addr)),
        Reply::status(200, "ok"),
    ]);
    let r = prober().check(&with_credentials(&rx.url("/start"))).await;
    assert_ok(&r);
    assert_eq!(r.final_url, rx.url("/next"));
    let _ = rx.next().await;
    let seen = rx.next().await;
    assert_credentials(&seen, true);
    assert_eq!(seen.header("authorization"), "Bearer s3cret-token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_in_the_checked_url_is_not_reported() {
    let srv = HttpServer::start(None).await;
    let r = prober()
        .check(&get(&format!("http://user:pw-secret@{}/echo", srv.addr)))
        .await;
    assert_ok(&r);
    assert!(!r.url.contains("pw-secret"), "{}", r.url);
    assert!(!r.final_url.contains("pw-secret"), "{}", r.final_url);
    assert_eq!(r.url, srv.url("/echo"));
}

// ---------------------------------------------------------------------------------------------
// 10: huge values
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_timeouts_do_not_overflow() {
    let srv = HttpServer::start(None).await;
    for huge in [
        Duration::from_secs(3650 * 86_400),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let mut req = get(&srv.url("/?wait=10"));
        req.timeouts.total = huge;
        req.timeouts.dns = Some(huge);
        req.timeouts.connect = Some(huge);
        req.timeouts.wait = Some(huge);
        req.timeouts.download = Some(huge);
        let r = prober().check(&req).await;
        assert_ok(&r);
        assert_eq!(r.status, Some(200));
    }
    // A huge total with a short phase limit: the phase limit still applies.
    let mut req = get(&srv.url("/stall"));
    req.timeouts.total = Duration::MAX;
    req.timeouts.wait = Some(ms(200));
    let r = prober().check(&req).await;
    assert_failed(&r, Phase::Wait, ErrorKind::Timeout);
}
