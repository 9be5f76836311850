//! The tcp, tls and dns monitor kinds through the real binary: each one, against a real local
//! server, goes DOWN when its target breaks and RESOLVED when it comes back, and the webhook
//! carries the kind's own metrics and the failed condition as data (`failures[0].actual`).

mod common;

use common::{alerts, once_report, server, watchpost, write_config};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use watchpost_testkit::{DnsServer, Guard, TestCa, tls_endpoint};

/// Wait until `addr` (UDP) can be bound again: a stopped responder's socket closes when its
/// last task has ended.
async fn udp_free(addr: SocketAddr) {
    for _ in 0..100 {
        if std::net::UdpSocket::bind(addr).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} stays bound");
}

/// The names of the metrics on the alert's first location row.
fn metric_names(alert: &Value) -> Vec<String> {
    alert["locations"][0]["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("no metrics in {alert}"))
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// A TCP service that answers `PING\r\n` with `+PONG\r\n` and closes, on `addr` (port 0:
/// any).
async fn pong_server(addr: SocketAddr) -> (SocketAddr, Guard) {
    watchpost_testkit::pong_server(addr, Duration::ZERO).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_monitor_alerts_on_a_closed_port_and_resolves_when_it_listens_again() {
    let hook = server(200).await;
    let (addr, pong) = pong_server("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: cache\n    type: tcp\n    address: \"{addr}\"\n    send: \"PING\\r\\n\"\n    expect: \"+PONG\"\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr
        ),
    );
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["kind"], "tcp");
    assert_eq!(check["banner"].as_str().map(str::trim), Some("+PONG"));
    assert!(check["timings_ms"]["connect"].as_f64().is_some(), "{check}");

    // The port closes: DOWN, naming the refused connection.
    pong.stop().await;
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let down = &sent[0];
    assert_eq!(down["kind"], "down");
    assert_eq!(down["version"], 2);
    assert_eq!(down["failures"][0]["operand"], "error");
    let actual = down["failures"][0]["actual"].as_str().unwrap();
    assert!(actual.contains("connect"), "{actual}");
    assert_eq!(down["failures"][0]["location"], "local");

    // It listens again (same port): RESOLVED, with the kind's metrics on the row.
    let (_again, _task) = pong_server(addr).await;
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["kind"], "resolved");
    let names = metric_names(&sent[1]);
    for name in ["dns", "connect", "total"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_monitor_fails_when_the_banner_is_not_the_expected_one() {
    let hook = server(200).await;
    let (addr, _pong) = pong_server("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: cache\n    type: tcp\n    address: \"{addr}\"\n    send: \"PING\\r\\n\"\n    expect: \"+OK\"\n    timeout: 2s\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr
        ),
    );
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let error = &report[0]["observations"][0]["check"]["error"];
    assert_eq!(error["phase"], "banner", "{report}");
    let down = &alerts(&hook)[0];
    let text = down["failures"][0]["text"].as_str().unwrap();
    assert!(text.contains("+OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_monitor_alerts_on_a_certificate_about_to_expire_and_resolves_on_renewal() {
    let hook = server(200).await;
    let ca = TestCa::new("kinds test CA");
    // Five days left: `cert_days > 14` fails.
    let short = ca.leaf_with_validity(&["localhost"], -1, 5);
    let (addr, old) = tls_endpoint("127.0.0.1:0".parse().unwrap(), short.server_config(&[])).await;
    let dir = tempfile::tempdir().unwrap();
    // The test CA is not a public root: `insecure: true` keeps the unverified chain from
    // failing the check; the certificate's lifetime is still read and judged.
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: mqtt-tls\n    type: tls\n    address: \"127.0.0.1:{}\"\n    sni: localhost\n    insecure: true\n    conditions: [\"cert_days > 14\"]\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr,
            addr.port()
        ),
    );
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["kind"], "tls");
    assert_eq!(check["tls"]["verified"], false, "{check}");
    let down = &alerts(&hook)[0];
    assert_eq!(down["kind"], "down");
    let failure = &down["failures"][0];
    assert_eq!(failure["operand"], "cert_days", "{down}");
    assert_eq!(failure["op"], ">");
    assert_eq!(failure["expected"], "14");
    let days: f64 = failure["actual"]
        .as_str()
        .unwrap()
        .trim_end_matches('d')
        .parse()
        .unwrap_or_else(|_| panic!("{failure}"));
    assert!((3.0..=6.0).contains(&days), "{failure}");
    let names = metric_names(down);
    for name in ["connect", "tls", "cert_days"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }

    // Renewed: 90 days left.
    old.stop().await;
    let (_addr, _new) = tls_endpoint(addr, ca.leaf(&["localhost"]).server_config(&[])).await;
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    let sent = alerts(&hook);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["kind"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_monitor_refuses_an_unverified_chain_unless_insecure() {
    let hook = server(200).await;
    let ca = TestCa::new("untrusted CA");
    let (addr, _task) = tls_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        ca.leaf(&["localhost"]).server_config(&[]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: smtps\n    type: tls\n    address: \"127.0.0.1:{}\"\n    sni: localhost\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr,
            addr.port()
        ),
    );
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["error"]["phase"], "tls", "{check}");
    assert_eq!(check["error"]["kind"], "certificate", "{check}");
    assert_eq!(check["tls"]["verified"], false, "{check}");
    assert!(
        check["tls"]["cert_days_left"]
            .as_f64()
            .is_some_and(|d| d > 80.0),
        "the lifetime is read even when the chain is not trusted: {check}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_monitor_alerts_when_the_answer_changes_or_the_server_is_silent() {
    let hook = server(200).await;
    let good = DnsServer::start(
        &[("shop.test", "10.0.0.7".parse().unwrap())],
        Duration::ZERO,
        false,
    )
    .await;
    let dns_addr = good.addr;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "channels:\n  hook: {{type: webhook, url: \"http://{}/alerts\"}}\nmonitors:\n  - name: shop-dns\n    type: dns\n    query: shop.test\n    record: A\n    server: \"{dns_addr}\"\n    timeout: 1s\n    conditions: ['answers contains \"10.0.0.7\"']\n    alert: {{channels: [hook], failure_threshold: 1}}\n",
            hook.addr
        ),
    );
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    let check = &report[0]["observations"][0]["check"];
    assert_eq!(check["kind"], "dns");
    assert_eq!(check["rcode"], "NOERROR");
    assert_eq!(check["answers"][0], "10.0.0.7", "{check}");

    // The record moves: DOWN, the failed condition carrying what was answered.
    drop(good);
    udp_free(dns_addr).await;
    let _moved = DnsServer::start_on(
        dns_addr,
        &[("shop.test", "10.0.0.8".parse().unwrap())],
        Duration::ZERO,
        false,
    )
    .await;
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    let down = &alerts(&hook)[0];
    assert_eq!(down["kind"], "down");
    assert_eq!(down["failures"][0]["operand"], "answers", "{down}");
    assert!(
        down["failures"][0]["actual"]
            .as_str()
            .unwrap()
            .contains("10.0.0.8"),
        "{down}"
    );
    assert!(metric_names(down).iter().any(|n| n == "query"));
    drop(_moved);
    udp_free(dns_addr).await;

    // Back: RESOLVED.
    let _back = DnsServer::start_on(
        dns_addr,
        &[("shop.test", "10.0.0.7".parse().unwrap())],
        Duration::ZERO,
        false,
    )
    .await;
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(alerts(&hook)[1]["kind"], "resolved");
    drop(_back);
    udp_free(dns_addr).await;

    // Silence: a timeout, classified, within the monitor's timeout.
    let _silent = DnsServer::start_on(dns_addr, &[], Duration::ZERO, true).await;
    let started = std::time::Instant::now();
    let (report, code) = once_report(&config).await;
    assert_eq!(code, Some(1), "{report}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let error = &report[0]["observations"][0]["check"]["error"];
    assert_eq!(error["kind"], "timeout", "{report}");
    assert_eq!(alerts(&hook)[2]["kind"], "down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_of_another_kind_and_an_operand_the_kind_lacks_are_refused_at_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "monitors:\n  - name: cache\n    type: tcp\n    address: \"127.0.0.1:6379\"\n    url: \"http://127.0.0.1/\"\n    conditions: [\"status == 200\"]\n",
    );
    let c = config.display().to_string();
    let out = watchpost(&["validate", "-c", &c], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("watchpost.yaml:6:5: url: is an http setting"),
        "{err}"
    );
    assert!(err.contains("watchpost.yaml:7:"), "{err}");
    assert!(err.contains("status"), "{err}");
    assert!(
        err.contains("connect"),
        "the operands a tcp monitor has are listed: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_once_table_shows_each_kinds_own_measurements() {
    let web = common::echo_server(200).await;
    let (pong, _guard) = pong_server("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "monitors:\n  - name: site\n    type: http\n    url: \"http://{web}/\"\n  - name: cache\n    type: tcp\n    address: \"{pong}\"\n"
        ),
    );
    let out = watchpost(&["once", "-c", config.to_str().unwrap()], &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_string()
    };
    let site = line("site ");
    assert!(site.contains("PASS"), "{site}");
    assert!(site.contains("status 200"), "{site}");
    assert!(site.contains(" total "), "{site}");
    let cache = line("cache ");
    assert!(cache.contains("PASS"), "{cache}");
    assert!(cache.contains("connect "), "{cache}");
    assert!(
        !cache.contains("status"),
        "a tcp check has no HTTP status: {cache}"
    );
    assert!(text.starts_with("monitor "), "{text}");
}
