//! `watchpost check` with tcp://, tls:// and dns:// targets: the real binary against real local
//! servers (a TCP listener with a banner, a closed port, TLS with a test CA, a UDP name server).

mod common;

use common::{cli, cli_json, free_port, json, keys, stdout};
use std::net::IpAddr;
use std::time::Duration;
use watchpost_testkit::contract::{
    DNS_CHECK_KEYS, DNS_TIMING_KEYS, TCP_CHECK_KEYS, TCP_TIMING_KEYS, TLS_CHECK_KEYS,
    TLS_TIMING_KEYS,
};
use watchpost_testkit::{DnsServer, HttpServer, TestCa, TlsOptions, pong_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_with_a_banner_and_a_closed_port() {
    // Answers `PING\r\n` with `+PONG\r\n` and keeps the connection open.
    let (addr, server) = pong_server(([127, 0, 0, 1], 0).into(), Duration::from_secs(5)).await;
    let target = format!("tcp://{addr}");
    let v = cli_json(
        &[
            "check",
            "--json",
            &target,
            "--send",
            "PING\\r\\n",
            "--banner",
            "+PONG",
            "--expect",
            "banner contains \"PONG\"",
            "--expect",
            "connect < 1s",
        ],
        0,
    )
    .await;
    assert_eq!(keys(&v), TCP_CHECK_KEYS);
    assert_eq!(keys(&v["timings_ms"]), TCP_TIMING_KEYS);
    assert_eq!(v["kind"], "tcp");
    assert_eq!(v["url"], target);
    assert_eq!(v["ok"], true);
    assert_eq!(v["banner"], "+PONG\r\n");
    assert_eq!(v["remote_addr"], addr.to_string());
    assert_eq!(v["timings_ms"]["dns"], 0.0);

    let human = cli(&[
        "check",
        &target,
        "--send",
        "PING\\r\\n",
        "--banner",
        "+PONG",
    ])
    .await;
    assert_eq!(human.status.code(), Some(0));
    let text = stdout(&human);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("connect")),
        "{text}"
    );
    assert!(text.contains("banner \"+PONG\\r\\n\""), "{text}");
    assert!(text.contains("PASS"), "{text}");

    // Silence until the deadline: a banner timeout.
    let v = cli_json(
        &[
            "check",
            "--json",
            "--timeout",
            "400ms",
            &target,
            "--banner",
            "+PONG",
        ],
        1,
    )
    .await;
    assert_eq!(v["error"]["phase"], "banner");
    assert_eq!(v["error"]["kind"], "timeout");
    server.stop().await;

    let port = free_port();
    let closed = format!("tcp://127.0.0.1:{port}");
    common::check_refused(&closed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_days_verification_and_sni() {
    let ca = TestCa::new("cli kinds CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let leaf = ca.leaf(&["site.test"]);
    let server = HttpServer::start(Some(TlsOptions {
        config: leaf.server_config(&[b"http/1.1"]),
        handshake_delay: Duration::from_millis(0),
        stall: false,
    }))
    .await;
    let target = format!("tls://{}", server.addr);
    let ca_path = ca_file.to_str().unwrap();

    let v = cli_json(
        &[
            "check",
            "--json",
            &target,
            "--sni",
            "site.test",
            "--cacert",
            ca_path,
            "--expect",
            "cert_days > 14",
        ],
        0,
    )
    .await;
    assert_eq!(keys(&v), TLS_CHECK_KEYS);
    assert_eq!(keys(&v["timings_ms"]), TLS_TIMING_KEYS);
    assert_eq!(v["kind"], "tls");
    assert_eq!(v["tls"]["verified"], true);
    assert_eq!(v["tls"]["subject"], "CN=site.test");
    assert_eq!(v["tls"]["issuer"], "CN=cli kinds CA");
    let days = v["tls"]["cert_days_left"].as_f64().unwrap();
    assert!((88.0..91.0).contains(&days), "{days}");

    // The same from the URL's ?sni=, and a condition the certificate fails.
    let with_sni = format!("{target}?sni=site.test");
    let out = cli(&[
        "check",
        &with_sni,
        "--cacert",
        ca_path,
        "--expect",
        "cert_days > 100",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL  cert_days "), "{text}");
    assert!(text.contains("< 100"), "{text}");
    assert!(text.contains("chain verified"), "{text}");

    // Without the CA: unknown issuer, a certificate error in phase tls, facts still there.
    let v = cli_json(&["check", "--json", &target, "--sni", "site.test"], 1).await;
    assert_eq!(v["error"]["phase"], "tls");
    assert_eq!(v["error"]["kind"], "certificate");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown issuer")
    );
    assert_eq!(v["tls"]["verified"], false);
    assert!(v["tls"]["cert_days_left"].as_f64().unwrap() > 80.0);
    // --insecure: the verification is reported, the check passes.
    let v = cli_json(
        &[
            "check",
            "--json",
            "--insecure",
            &target,
            "--sni",
            "site.test",
        ],
        0,
    )
    .await;
    assert_eq!(v["tls"]["verified"], false);
    assert!(
        v["tls"]["verify_error"]
            .as_str()
            .unwrap()
            .contains("unknown issuer")
    );
    // The wrong name, with the CA trusted.
    let out = cli(&[
        "check",
        "--json",
        &target,
        "--sni",
        "other.test",
        "--cacert",
        ca_path,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name mismatch")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_nxdomain_and_silence() {
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let dns = DnsServer::start(&[("shop.test", ip)], Duration::from_millis(0), false).await;
    let target = format!("dns://shop.test?type=A&server={}", dns.addr);
    let v = cli_json(
        &[
            "check",
            "--json",
            &target,
            "--expect",
            "answers contains \"10.1.2.3\"",
            "--expect",
            "query < 1s",
        ],
        0,
    )
    .await;
    assert_eq!(keys(&v), DNS_CHECK_KEYS);
    assert_eq!(keys(&v["timings_ms"]), DNS_TIMING_KEYS);
    assert_eq!(v["kind"], "dns");
    assert_eq!(v["rcode"], "NOERROR");
    assert_eq!(v["answers"], serde_json::json!(["10.1.2.3"]));
    assert_eq!(v["server"], dns.addr.to_string());
    let human = cli(&["check", &target]).await;
    assert_eq!(human.status.code(), Some(0));
    let text = stdout(&human);
    assert!(text.contains("answer \"10.1.2.3\""), "{text}");
    assert!(text.contains("PASS  rcode == \"NOERROR\""), "{text}");

    // NXDOMAIN: an answer, which the default condition fails.
    let missing = format!("dns://nope.test?type=A&server={}", dns.addr);
    let out = cli(&["check", &missing]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL  rcode \"NXDOMAIN\" != \"NOERROR\""),
        "{}",
        stdout(&out)
    );
    let out = cli(&["check", &missing, "--expect", "rcode == \"NXDOMAIN\""]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A name server that never answers: a timeout in phase query, within the deadline.
    let silent = DnsServer::start(&[], Duration::from_millis(0), true).await;
    let quiet = format!("dns://shop.test?server={}", silent.addr);
    let started = std::time::Instant::now();
    let out = cli(&["check", "--json", "--timeout", "500ms", &quiet]).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["error"]["phase"], "query");
    assert_eq!(v["error"]["kind"], "timeout");
    assert!(v["rcode"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_and_flags_exit_2_with_one_line() {
    let cases: [(&[&str], &str); 8] = [
        (&["check", "tcp://127.0.0.1"], "a port is required"),
        (&["check", "dns://a.test?type=SRV"], "unknown record type"),
        (&["check", "gopher://a.test/"], "unsupported target scheme"),
        (
            &["check", "tcp://127.0.0.1:1", "-H", "A: b"],
            "-H/--header applies to http(s) checks, not tcp",
        ),
        (
            &["check", "tcp://127.0.0.1:1", "--expect", "status == 200"],
            "unknown operand \"status\", the kind has: dns, connect, total, banner",
        ),
        (
            &["check", "dns://a.test", "--expect", "answers > 5ms"],
            "needs a number",
        ),
        (
            &["check", "tls://127.0.0.1:1", "--send", "x"],
            "--send applies to tcp",
        ),
        (
            &["check", "https://127.0.0.1:1/", "--sni", "x"],
            "--sni does not apply",
        ),
    ];
    for (args, needle) in cases {
        let err = common::usage_error(args).await;
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
