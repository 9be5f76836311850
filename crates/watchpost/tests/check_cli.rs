//! `watchpost check` end to end: the real binary against real local servers.

mod common;

use common::{cli, cli_json, json, keys, stderr, stdout};
use std::net::IpAddr;
use std::time::Duration;
use watchpost_testkit::contract::{CHECK_KEYS, ERROR_KEYS, TIMING_KEYS, TLS_KEYS};
use watchpost_testkit::{DnsServer, HttpServer, TestCa, TlsOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_the_product_shape_and_attributes_the_wait() {
    let server = HttpServer::start(None).await;
    let v = cli_json(&["check", "--json", &server.url("/?wait=200&size=1024")], 0).await;
    assert_eq!(keys(&v), CHECK_KEYS);
    assert_eq!(keys(&v["timings_ms"]), TIMING_KEYS);
    assert_eq!(v["ok"], true);
    assert_eq!(v["status"], 200);
    assert_eq!(v["http_version"], "HTTP/1.1");
    assert_eq!(v["remote_addr"], server.addr.to_string());
    assert_eq!(v["redirects"], 0);
    assert_eq!(v["size_bytes"], 1024);
    assert_eq!(v["headers"]["content-type"], "text/plain");
    assert!(v["tls"].is_null() && v["error"].is_null());
    let t = &v["timings_ms"];
    assert_eq!(t["dns"], 0.0, "an IP literal needs no DNS");
    assert!(t["tls"].is_null(), "plain HTTP has no TLS phase");
    let wait = t["wait"].as_f64().unwrap();
    assert!((190.0..2000.0).contains(&wait), "wait {wait}");
    assert!(t["download"].as_f64().unwrap() < 50.0);
    let sum = ["dns", "connect", "wait"]
        .iter()
        .map(|k| t[*k].as_f64().unwrap())
        .sum::<f64>();
    assert!(
        (sum - t["ttfb"].as_f64().unwrap()).abs() < 0.01,
        "ttfb = dns+connect+wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_trickle_lands_in_download() {
    let server = HttpServer::start(None).await;
    let out = cli(&["check", "--json", &server.url("/?download=300&size=4000")]).await;
    assert_eq!(out.status.code(), Some(0));
    let t = &json(&out)["timings_ms"];
    let download = t["download"].as_f64().unwrap();
    assert!((280.0..2000.0).contains(&download), "download {download}");
    assert!(t["wait"].as_f64().unwrap() < 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_exits_1_with_a_classified_error() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let v = common::check_refused(&url).await;
    assert!(v["status"].is_null());
    assert_eq!(
        v["remote_addr"],
        format!("127.0.0.1:{port}"),
        "the address tried is reported"
    );
    assert_eq!(keys(&v["error"]), ERROR_KEYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_decide_the_exit_code() {
    let server = HttpServer::start(None).await;
    let url = server.url("/?wait=120");
    let pass = cli(&[
        "check",
        &url,
        "--expect",
        "status == 200",
        "--expect",
        "wait >= 100ms",
        "--expect",
        "body contains \"hello\"",
    ])
    .await;
    assert_eq!(pass.status.code(), Some(0), "{}", stdout(&pass));
    assert!(stdout(&pass).contains("PASS"));

    let fail = cli(&[
        "check",
        &url,
        "--expect",
        "total < 50ms",
        "--expect",
        "body contains \"nope\"",
    ])
    .await;
    assert_eq!(fail.status.code(), Some(1));
    let text = stdout(&fail);
    assert!(text.contains("FAIL  total "), "{text}");
    assert!(text.contains("> 50.0ms"), "{text}");
    assert!(
        text.contains("FAIL  body does not contain \"nope\""),
        "{text}"
    );

    // The default expectation is status 200-399.
    let server_error = cli(&["check", &server.url("/?status=500")]).await;
    assert_eq!(server_error.status.code(), Some(1));
    assert!(stdout(&server_error).contains("status 500 > 399"));
    let redirect = cli(&["check", &server.url("/redirect/1")]).await;
    assert_eq!(redirect.status.code(), Some(0), "302 is within 200-399");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_output_is_a_phase_table_with_bars() {
    let server = HttpServer::start(None).await;
    let out = cli(&["check", &server.url("/?wait=100&download=100&size=2000")]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for phase in ["dns", "connect", "tls", "wait", "download", "ttfb", "total"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(phase)),
            "{phase} in {text}"
        );
    }
    let bar = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.matches('█').count())
            .unwrap()
    };
    // wait and download are each about half of the total: bars of similar, large length.
    assert!(bar("wait") >= 15 && bar("download") >= 15, "{text}");
    assert!(text.contains("HTTP/1.1 200"));
    assert!(text.contains("size 2.0KB"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_exits_2_with_one_line() {
    let cases: [&[&str]; 8] = [
        &["check", "not a url"],
        &["check", "ftp://example.test/"],
        &["check", "http://127.0.0.1:1/", "--expect", "total < 800"],
        &["check", "http://127.0.0.1:1/", "--expect", "colour == red"],
        &["check", "http://127.0.0.1:1/", "--resolve", "nonsense"],
        &["check", "http://127.0.0.1:1/", "--timeout", "soon"],
        &["check", "http://127.0.0.1:1/", "-H", "no colon"],
        &["check", "http://127.0.0.1:1/", "--no-such-flag"],
    ];
    for args in cases {
        common::usage_error(args).await;
    }
    let out = cli(&["check", "http://127.0.0.1:1/", "--expect", "total < 800"]).await;
    assert!(stderr(&out).contains("add a unit"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_cacert_resolve_and_insecure() {
    let ca = TestCa::new("cli test CA");
    let dir = std::env::temp_dir().join(format!("watchpost-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let leaf = ca.leaf(&["site.test"]);
    let server = HttpServer::start(Some(TlsOptions {
        config: leaf.server_config(&[b"http/1.1"]),
        handshake_delay: Duration::from_millis(150),
        stall: false,
    }))
    .await;
    let port = server.addr.port();
    let url = format!("https://site.test:{port}/");
    let pin = format!("site.test:{port}:127.0.0.1");

    let v = cli_json(
        &[
            "check",
            "--json",
            &url,
            "--resolve",
            &pin,
            "--cacert",
            ca_file.to_str().unwrap(),
        ],
        0,
    )
    .await;
    assert_eq!(v["tls"]["version"], "TLSv1.3");
    assert_eq!(keys(&v["tls"]), TLS_KEYS);
    let days = v["tls"]["cert_days_left"].as_f64().unwrap();
    assert!((88.0..91.0).contains(&days), "{days}");
    let tls = v["timings_ms"]["tls"].as_f64().unwrap();
    assert!((140.0..2000.0).contains(&tls), "tls {tls}");
    assert_eq!(v["timings_ms"]["dns"], 0.0, "--resolve skips DNS");

    // Without the CA: an unknown issuer, in the tls phase; --insecure accepts it.
    let v = cli_json(&["check", "--json", &url, "--resolve", &pin], 1).await;
    assert_eq!(v["error"]["phase"], "tls");
    assert_eq!(v["error"]["kind"], "certificate");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown issuer")
    );
    let insecure = cli(&["check", "--json", "--insecure", &url, "--resolve", &pin]).await;
    assert_eq!(insecure.status.code(), Some(0), "{}", stdout(&insecure));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_body_redirects_and_dns_server() {
    let server = HttpServer::start(None).await;
    let out = cli(&[
        "check",
        &server.url("/echo"),
        "-H",
        "X-Probe: yes",
        "-d",
        "payload=1",
        "--expect",
        "body contains \"POST /echo\"",
        "--expect",
        "body contains \"x-probe: yes\"",
        "--expect",
        "body contains \"payload=1\"",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let put = cli(&[
        "check",
        &server.url("/echo"),
        "-X",
        "PUT",
        "--expect",
        "body contains \"PUT /echo\"",
    ])
    .await;
    assert_eq!(put.status.code(), Some(0), "{}", stdout(&put));

    let followed = cli(&[
        "check",
        "--json",
        "--follow-redirects",
        &server.url("/redirect/3"),
    ])
    .await;
    let v = json(&followed);
    assert_eq!(v["redirects"], 3);
    assert_eq!(v["status"], 200);

    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let dns = DnsServer::start(&[("shop.test", ip)], Duration::from_millis(120), false).await;
    let url = format!("http://shop.test:{}/", server.addr.port());
    let v = cli_json(
        &[
            "check",
            "--json",
            &url,
            "--dns-server",
            &dns.addr.to_string(),
        ],
        0,
    )
    .await;
    let d = v["timings_ms"]["dns"].as_f64().unwrap();
    assert!((110.0..2000.0).contains(&d), "dns {d}");
    assert_eq!(v["remote_addr"], server.addr.to_string());
    let missing = format!("http://nope.test:{}/", server.addr.port());
    let out = cli(&[
        "check",
        "--json",
        &missing,
        "--dns-server",
        &dns.addr.to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "nxdomain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_beyond_the_maximum_exit_2_never_crash() {
    let huge = "99999999999999999999999d";
    let phase = format!("dns={huge}");
    let cases: [&[&str]; 5] = [
        &["check", "--timeout", huge, "http://127.0.0.1:1/"],
        &["check", "--timeout", "3650.5d", "http://127.0.0.1:1/"],
        &["check", "--phase-timeout", &phase, "http://127.0.0.1:1/"],
        &[
            "check",
            "--phase-timeout",
            "connect=1e400s",
            "http://127.0.0.1:1/",
        ],
        &[
            "check",
            "--max-body",
            "99999999999999999999GB",
            "http://127.0.0.1:1/",
        ],
    ];
    for args in cases {
        common::usage_error(args).await;
    }
    let out = cli(&["check", "--timeout", huge, "http://127.0.0.1:1/"]).await;
    assert!(
        stderr(&out).contains("is longer than the maximum, 3650d (10 years)"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["check", "--phase-timeout", &phase, "http://127.0.0.1:1/"]).await;
    assert!(
        stderr(&out).contains(
            "invalid --phase-timeout: \"99999999999999999999999d\" is longer than the maximum"
        ),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_and_oversized_requests_are_refused() {
    let out = cli(&["check", "http://admin:hunter2@127.0.0.1:1/"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end(),
        "watchpost: invalid URL: credentials in the URL are not sent; use headers: {Authorization: ...} with a ${VAR}"
    );
    assert!(stdout(&out).is_empty());
    let long = format!("http://127.0.0.1:1/{}", "a".repeat(9000));
    let out = cli(&["check", &long]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end(),
        "watchpost: invalid URL: the URL is 9019 bytes long; the limit is 8 KiB (8192 bytes)"
    );
    let header = format!("X-Big: {}", "h".repeat(9000));
    let out = cli(&["check", "-H", &header, "http://127.0.0.1:1/"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end(),
        "watchpost: invalid header: the header line is 9007 bytes long; the limit is 8 KiB (8192 bytes)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_keep_the_default_status_unless_they_name_status() {
    let server = HttpServer::start(None).await;
    let unavailable = server.url("/?status=503");
    // A fast 503 with only a timing expectation: the default status rule still fails it.
    let out = cli(&["check", &unavailable, "--expect", "total < 10s"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL  status 503 > 399"), "{text}");
    assert!(!text.contains("FAIL  total"), "{text}");
    let as_json = cli(&["check", "--json", &unavailable, "--expect", "total < 10s"]).await;
    assert_eq!(as_json.status.code(), Some(1));
    assert_eq!(json(&as_json)["ok"], false);
    // Naming status replaces the default: expecting the 503 passes.
    let expected = cli(&["check", &unavailable, "--expect", "status == 503"]).await;
    assert_eq!(expected.status.code(), Some(0), "{}", stdout(&expected));
    // A passing check lists the default with the expectation.
    let ok = cli(&["check", &server.url("/"), "--expect", "total < 10s"]).await;
    assert_eq!(ok.status.code(), Some(0));
    assert!(
        stdout(&ok).contains("PASS  status >= 200, status <= 399, total < 10s"),
        "{}",
        stdout(&ok)
    );
}
