//! The tcp, tls and dns kinds against real local servers: a TCP listener with a banner, a
//! closed port, TLS servers with valid, expired, self-signed and wrong-host certificates, and a
//! UDP DNS responder (answers, NXDOMAIN, silence, garbage). Conditions are evaluated on the
//! observations as monitors and `watchpost check` do.

use rustls::pki_types::PrivatePkcs8KeyDer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use watchpost_conditions::Condition;
use watchpost_probes::dns::{DnsCheck, RecordType};
use watchpost_probes::tcp::TcpCheck;
use watchpost_probes::tls::TlsCheck;
use watchpost_probes::{
    CheckKind, CheckSpec, Detail, ErrorKind, Observation, Phase, ProberOptions, Probes,
};
use watchpost_testkit::contract::{
    CHECK_KEYS, DNS_CHECK_KEYS, TLS_CHECK_KEYS, TLS_TIMING_KEYS, keys,
};
use watchpost_testkit::{DnsBehaviour, DnsServer, Guard, Leaf, TestCa, Zone};

fn probes() -> Probes {
    Probes::new(ProberOptions::default()).unwrap()
}

fn metric(o: &Observation, name: &str) -> f64 {
    o.metric(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", o.metrics))
        .value
}

fn names(o: &Observation) -> Vec<&str> {
    o.metrics.iter().map(|m| m.name.as_ref()).collect()
}

/// Parse `texts` for the observation's kind, with its defaults, and judge.
fn judge(o: &Observation, texts: &[&str]) -> Vec<String> {
    let conditions: Vec<Condition> = texts
        .iter()
        .map(|t| Condition::parse(t, o.kind.operands()).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect();
    o.judge(&o.kind.with_defaults(conditions))
        .into_iter()
        .map(|f| f.text)
        .collect()
}

fn error_of(o: &Observation) -> (Phase, ErrorKind) {
    let e = o
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error: {o:?}"));
    (e.phase, e.kind)
}

// ---------------------------------------------------------------- TCP

/// A server that answers `PING\r\n` with `+PONG\r\n`, anything else with `-ERR unknown\r\n`,
/// says nothing to a client that says nothing, and holds the connection.
async fn redis_like() -> (SocketAddr, Guard) {
    watchpost_testkit::pong_server(([127, 0, 0, 1], 0).into(), Duration::from_secs(5)).await
}

fn tcp(addr: SocketAddr, send: Option<&str>, expect: Option<&str>) -> CheckSpec {
    CheckSpec::Tcp(TcpCheck {
        host: addr.ip().to_string(),
        port: addr.port(),
        send: send.map(|s| s.as_bytes().to_vec()),
        expect: expect.map(str::to_string),
        timeout: Duration::from_millis(800),
    })
}

#[tokio::test]
async fn tcp_connects_and_checks_the_banner() {
    let (addr, _server) = redis_like().await;
    let probes = probes();

    let plain = probes.run(&tcp(addr, None, None)).await;
    assert!(plain.error.is_none(), "{plain:?}");
    assert_eq!(plain.kind, CheckKind::Tcp);
    assert_eq!(plain.url, format!("tcp://{addr}"));
    assert_eq!(names(&plain), ["dns", "connect", "total"]);
    assert_eq!(metric(&plain, "dns"), 0.0, "an IP literal needs no lookup");
    assert!(metric(&plain, "connect") < 500.0);
    assert!(metric(&plain, "total") >= metric(&plain, "connect"));
    assert!(judge(&plain, &["connect < 500ms", "total < 1s"]).is_empty());

    let pong = probes
        .run(&tcp(addr, Some("PING\r\n"), Some("+PONG")))
        .await;
    assert!(pong.error.is_none(), "{pong:?}");
    let Detail::Tcp {
        remote_addr,
        banner,
    } = &pong.detail
    else {
        panic!("tcp detail")
    };
    assert_eq!(*remote_addr, Some(addr));
    assert_eq!(banner.as_deref(), Some("+PONG\r\n"));
    assert!(judge(&pong, &["banner contains \"PONG\""]).is_empty());
    assert_eq!(
        judge(&pong, &["banner contains \"HELLO\""]),
        ["banner does not contain \"HELLO\""]
    );

    // The wrong reply: a mismatch in phase banner, with what arrived.
    let wrong = probes
        .run(&tcp(addr, Some("HELLO\r\n"), Some("+PONG")))
        .await;
    assert_eq!(error_of(&wrong), (Phase::Banner, ErrorKind::Timeout));
    assert!(
        wrong
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("-ERR unknown"),
        "{wrong:?}"
    );

    // Silence: a timeout in phase banner, within the check's deadline.
    let started = Instant::now();
    let silent = probes.run(&tcp(addr, None, Some("+PONG"))).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(error_of(&silent), (Phase::Banner, ErrorKind::Timeout));
    assert!(metric(&silent, "total") >= 700.0, "{silent:?}");
    let report = silent.report(false);
    assert_eq!(report["error"]["phase"], "banner");
    assert_eq!(report["error"]["kind"], "timeout");
}

#[tokio::test]
async fn tcp_banner_mismatch_when_the_server_closes() {
    // Closed right after the greeting.
    let (addr, _server) =
        watchpost_testkit::greeter(([127, 0, 0, 1], 0).into(), b"220 smtp.test ESMTP\r\n").await;
    let probes = probes();
    let greeted = probes.run(&tcp(addr, None, Some("220 "))).await;
    assert!(greeted.error.is_none(), "{greeted:?}");
    let other = probes.run(&tcp(addr, None, Some("+PONG"))).await;
    assert_eq!(error_of(&other), (Phase::Banner, ErrorKind::Mismatch));
    let e = other.error.as_ref().unwrap();
    assert!(
        e.message
            .contains("expected \"+PONG\", got \"220 smtp.test"),
        "{e}"
    );
    assert_eq!(
        judge(&other, &[])[0],
        "banner mismatch: expected \"+PONG\", got \"220 smtp.test ESMTP\\r\\n\""
    );
}

#[tokio::test]
async fn tcp_closed_port_is_refused_in_connect() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let o = probes()
        .run(&tcp(addr, Some("PING\r\n"), Some("+PONG")))
        .await;
    assert_eq!(error_of(&o), (Phase::Connect, ErrorKind::Refused));
    assert_eq!(names(&o), ["dns", "connect", "total"]);
    let report = o.report(false);
    assert_eq!(report["kind"], "tcp");
    assert_eq!(report["remote_addr"], addr.to_string());
    assert!(report["banner"].is_null());
    let failures = o.judge(&[]);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].operand, "error");
    assert!(
        failures[0].actual.starts_with("connect refused: "),
        "{failures:?}"
    );
}

// ---------------------------------------------------------------- TLS

/// A TLS server presenting `leaf`: it completes handshakes and then holds the connection.
async fn tls_server(leaf: &Leaf) -> (SocketAddr, Guard) {
    watchpost_testkit::tls_endpoint(([127, 0, 0, 1], 0).into(), leaf.server_config(&[])).await
}

fn tls(addr: SocketAddr, sni: &str, insecure: bool) -> CheckSpec {
    CheckSpec::Tls(TlsCheck {
        host: addr.ip().to_string(),
        port: addr.port(),
        sni: Some(sni.to_string()),
        insecure,
        timeout: Duration::from_secs(5),
    })
}

fn tls_info(o: &Observation) -> &watchpost_probes::tls::TlsInfo {
    match &o.detail {
        Detail::Tls { tls: Some(t), .. } => t,
        other => panic!("no TLS info: {other:?}"),
    }
}

#[tokio::test]
async fn tls_valid_certificate_from_an_extra_root() {
    let ca = TestCa::new("kinds test CA");
    let leaf = ca.leaf(&["site.test"]);
    let (addr, _server) = tls_server(&leaf).await;
    let probes = Probes::new(ProberOptions {
        extra_roots: vec![ca.cert_der.clone()],
        nameservers: None,
    })
    .unwrap();
    let o = probes.run(&tls(addr, "site.test", false)).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(names(&o), ["dns", "connect", "tls", "total", "cert_days"]);
    let days = metric(&o, "cert_days");
    assert!((88.0..91.0).contains(&days), "{days}");
    assert!(metric(&o, "tls") > 0.0);
    let info = tls_info(&o);
    assert!(info.verified);
    assert_eq!(info.verify_error, None);
    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.subject.as_deref(), Some("CN=site.test"));
    assert_eq!(info.issuer.as_deref(), Some("CN=kinds test CA"));
    assert!(
        judge(
            &o,
            &[
                "cert_days > 14",
                "verified == true",
                "version == \"TLSv1.3\"",
                "tls < 1s"
            ]
        )
        .is_empty()
    );
    assert_eq!(
        judge(&o, &["cert_days > 100"]),
        [format!("cert_days {days} < 100")]
    );
    let report = o.report(true);
    assert_eq!(keys(&report), TLS_CHECK_KEYS);
    assert_eq!(keys(&report["timings_ms"]), TLS_TIMING_KEYS);
    assert_eq!(report["url"], format!("tls://{addr}?sni=site.test"));
    assert_eq!(report["tls"]["verified"], true);
    assert_eq!(report["tls"]["cert_days_left"], days);
}

#[tokio::test]
async fn tls_expired_untrusted_and_wrong_host_are_certificate_errors_with_facts() {
    let ca = TestCa::new("kinds test CA");
    let probes = Probes::new(ProberOptions {
        extra_roots: vec![ca.cert_der.clone()],
        nameservers: None,
    })
    .unwrap();

    // Expired yesterday: the handshake completes, the days are negative, the check fails.
    let expired = ca.expired_leaf(&["site.test"]);
    let (addr, _s1) = tls_server(&expired).await;
    let o = probes.run(&tls(addr, "site.test", false)).await;
    assert_eq!(error_of(&o), (Phase::Tls, ErrorKind::Certificate));
    assert!(
        o.error.as_ref().unwrap().message.contains("expired"),
        "{o:?}"
    );
    assert!(metric(&o, "cert_days") < 0.0);
    let info = tls_info(&o);
    assert!(!info.verified);
    assert!(info.verify_error.as_deref().unwrap().contains("expired"));
    assert!(metric(&o, "tls") > 0.0, "the handshake was timed");
    // insecure: recorded, not an error; conditions decide.
    let o = probes.run(&tls(addr, "site.test", true)).await;
    assert!(o.error.is_none(), "{o:?}");
    assert!(!tls_info(&o).verified);
    let failures = judge(&o, &["cert_days > 14", "verified == true"]);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].starts_with("cert_days -"), "{failures:?}");

    // Self-signed: an unknown issuer.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["site.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "site.test");
    let cert = params.self_signed(&key).unwrap();
    let (addr, _s2) = tls_server(&Leaf {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    })
    .await;
    let o = probes.run(&tls(addr, "site.test", false)).await;
    assert_eq!(error_of(&o), (Phase::Tls, ErrorKind::Certificate));
    assert!(
        o.error.as_ref().unwrap().message.contains("unknown issuer"),
        "{o:?}"
    );
    assert_eq!(tls_info(&o).issuer.as_deref(), Some("CN=site.test"));

    // A valid certificate for another name.
    let other = ca.leaf(&["other.test"]);
    let (addr, _s3) = tls_server(&other).await;
    let o = probes.run(&tls(addr, "site.test", false)).await;
    assert_eq!(error_of(&o), (Phase::Tls, ErrorKind::Certificate));
    assert!(
        o.error.as_ref().unwrap().message.contains("name mismatch"),
        "{o:?}"
    );
    let report = o.report(false);
    assert_eq!(report["error"]["kind"], "certificate");
    assert_eq!(report["tls"]["verified"], false);
    assert!(report["timings_ms"]["tls"].as_f64().unwrap() > 0.0);
    // Asked for the name it has, it verifies.
    let o = probes.run(&tls(addr, "other.test", false)).await;
    assert!(o.error.is_none(), "{o:?}");
}

#[tokio::test]
async fn tls_on_a_plain_tcp_port_is_a_handshake_error() {
    let (addr, _server) = redis_like().await;
    let o = probes().run(&tls(addr, "site.test", false)).await;
    let (phase, kind) = error_of(&o);
    assert_eq!(phase, Phase::Tls);
    assert_eq!(kind, ErrorKind::Handshake, "{o:?}");
    assert!(o.metric("cert_days").is_none());
}

// ---------------------------------------------------------------- DNS

/// A UDP name server: `shop.test` has A 1.2.3.4 and 5.6.7.8, TXT "v=spf1 -all" and MX
/// "10 mx.shop.test."; any other name is NXDOMAIN.
async fn name_server(behaviour: DnsBehaviour) -> DnsServer {
    let zone = Zone::new()
        .address("shop.test", [1, 2, 3, 4].into())
        .address("shop.test", [5, 6, 7, 8].into())
        .txt("shop.test", "v=spf1 -all")
        .mx("shop.test", 10, "mx.shop.test.");
    DnsServer::serve(([127, 0, 0, 1], 0).into(), zone, behaviour).await
}

const ANSWER: DnsBehaviour = DnsBehaviour::Answer {
    delay: Duration::ZERO,
};

fn dns(name: &str, record: RecordType, server: SocketAddr) -> CheckSpec {
    CheckSpec::Dns(DnsCheck {
        name: name.to_string(),
        record,
        server: Some(server),
        timeout: Duration::from_millis(600),
    })
}

fn answers(o: &Observation) -> (Option<&str>, Vec<&str>) {
    match &o.detail {
        Detail::Dns { rcode, answers, .. } => (
            rcode.as_deref(),
            answers.iter().map(String::as_str).collect(),
        ),
        other => panic!("dns detail: {other:?}"),
    }
}

#[tokio::test]
async fn dns_answers_a_txt_and_mx() {
    let ns = name_server(ANSWER).await;
    let server = ns.addr;
    let probes = probes();
    let a = probes.run(&dns("shop.test", RecordType::A, server)).await;
    assert!(a.error.is_none(), "{a:?}");
    assert_eq!(answers(&a), (Some("NOERROR"), vec!["1.2.3.4", "5.6.7.8"]));
    assert_eq!(names(&a), ["query", "total"]);
    assert!(metric(&a, "query") < 500.0);
    assert!(
        judge(
            &a,
            &[
                "answers contains \"1.2.3.4\"",
                "answers == \"5.6.7.8\"",
                "rcode == \"NOERROR\"",
                "query < 500ms"
            ]
        )
        .is_empty()
    );
    assert_eq!(
        judge(&a, &["answers contains \"9.9.9.9\""]),
        ["answers does not contain \"9.9.9.9\""]
    );
    let report = a.report(true);
    assert_eq!(keys(&report), DNS_CHECK_KEYS);
    assert_eq!(report["kind"], "dns");
    assert_eq!(
        report["url"],
        format!("dns://shop.test?type=A&server={server}")
    );
    assert_eq!(report["answers"][0], "1.2.3.4");
    assert_eq!(report["server"], server.to_string());

    let txt = probes.run(&dns("shop.test", RecordType::Txt, server)).await;
    assert_eq!(answers(&txt), (Some("NOERROR"), vec!["v=spf1 -all"]));
    assert!(judge(&txt, &["answers contains \"spf1\""]).is_empty());
    let mx = probes.run(&dns("Shop.Test.", RecordType::Mx, server)).await;
    assert_eq!(answers(&mx), (Some("NOERROR"), vec!["10 mx.shop.test."]));
}

#[tokio::test]
async fn dns_nxdomain_is_an_observation_the_default_condition_fails() {
    let ns = name_server(ANSWER).await;
    let server = ns.addr;
    let o = probes().run(&dns("nope.test", RecordType::A, server)).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(answers(&o), (Some("NXDOMAIN"), vec![]));
    assert_eq!(judge(&o, &[]), ["rcode \"NXDOMAIN\" != \"NOERROR\""]);
    let failures = o.judge(&CheckKind::Dns.with_defaults(vec![]));
    assert_eq!(failures[0].actual, "NXDOMAIN");
    assert_eq!(failures[0].expected, "NOERROR");
    // Naming rcode replaces the default.
    assert!(judge(&o, &["rcode == \"NXDOMAIN\""]).is_empty());
}

#[tokio::test]
async fn dns_silence_times_out_and_garbage_is_malformed() {
    let ns = name_server(DnsBehaviour::Silent).await;
    let silent = ns.addr;
    let started = Instant::now();
    let o = probes().run(&dns("shop.test", RecordType::A, silent)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(error_of(&o), (Phase::Query, ErrorKind::Timeout));
    assert!(metric(&o, "query") >= 550.0, "{o:?}");
    assert_eq!(answers(&o), (None, vec![]));
    let report = o.report(false);
    assert_eq!(report["error"]["phase"], "query");
    assert!(report["rcode"].is_null());

    let ns2 = name_server(DnsBehaviour::Garbage).await;
    let garbage = ns2.addr;
    let o = probes()
        .run(&dns("shop.test", RecordType::A, garbage))
        .await;
    assert_eq!(error_of(&o), (Phase::Query, ErrorKind::Malformed));
    assert!(
        o.error
            .as_ref()
            .unwrap()
            .message
            .contains("not a DNS message")
    );
}

#[tokio::test]
async fn dns_without_a_server_asks_the_configured_one() {
    let ns = name_server(ANSWER).await;
    let server = ns.addr;
    let probes = Probes::new(ProberOptions {
        extra_roots: Vec::new(),
        nameservers: Some(vec![server]),
    })
    .unwrap();
    let spec = CheckSpec::parse_target("dns://shop.test?type=A").unwrap();
    let o = probes.run(&spec).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(answers(&o).1, ["1.2.3.4", "5.6.7.8"]);
    assert_eq!(o.report(true)["server"], server.to_string());
}

// ---------------------------------------------------------------- HTTP as an observation

#[tokio::test]
async fn http_observations_keep_the_http_report_and_operands() {
    let server = watchpost_testkit::HttpServer::start(None).await;
    let spec = CheckSpec::parse_target(&server.url("/?status=503")).unwrap();
    let o = probes().run(&spec).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(metric(&o, "status"), 503.0);
    // The default status rule stays in front unless a condition names status.
    assert_eq!(judge(&o, &["total < 10s"]), ["status 503 > 399"]);
    assert!(judge(&o, &["status == 503"]).is_empty());
    let report = o.report(false);
    assert_eq!(keys(&report), CHECK_KEYS);
    assert_eq!(report["kind"], "http");
    assert!(report["timings_ms"]["tls"].is_null());
    assert_eq!(report["timings_ms"]["dns"], 0.0);

    // The observation's report is exactly the HTTP prober's own report.
    let CheckSpec::Http(request) = &spec else {
        panic!("http")
    };
    for (request, ok) in [
        (request.clone(), true),
        (
            watchpost_probes::http::HttpRequest::get("http://127.0.0.1:1/").unwrap(),
            false,
        ),
    ] {
        let result = probes().http().check(&request).await;
        let direct =
            serde_json::to_value(watchpost_probes::http::CheckReport::new(&result, ok)).unwrap();
        assert_eq!(Observation::from(result).report(ok), direct);
    }
    assert!(
        judge(
            &o,
            &[
                "status == 503",
                "body contains \"hello\"",
                "header.content-type contains \"text\""
            ]
        )
        .is_empty()
    );
}

#[tokio::test]
async fn dns_to_a_closed_port_is_refused() {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let o = probes().run(&dns("shop.test", RecordType::A, server)).await;
    // Loopback answers a closed UDP port with ICMP port unreachable.
    assert_eq!(error_of(&o), (Phase::Query, ErrorKind::Refused), "{o:?}");
}

#[tokio::test]
async fn tcp_and_tls_resolve_names_with_the_shared_resolver() {
    let ip = "127.0.0.1".parse().unwrap();
    let ns = DnsServer::start(&[("svc.test", ip)], Duration::from_millis(60), false).await;
    let (addr, _server) = redis_like().await;
    let probes = Probes::new(ProberOptions {
        extra_roots: Vec::new(),
        nameservers: Some(vec![ns.addr]),
    })
    .unwrap();
    let spec = CheckSpec::parse_target(&format!("tcp://svc.test:{}", addr.port())).unwrap();
    let o = probes.run(&spec).await;
    assert!(o.error.is_none(), "{o:?}");
    assert!(metric(&o, "dns") >= 50.0, "{o:?}");
    let Detail::Tcp { remote_addr, .. } = &o.detail else {
        panic!("tcp")
    };
    assert_eq!(*remote_addr, Some(addr));
    let missing = CheckSpec::parse_target(&format!("tcp://nope.test:{}", addr.port())).unwrap();
    let o = probes.run(&missing).await;
    assert_eq!(error_of(&o), (Phase::Dns, ErrorKind::Nxdomain));
    assert_eq!(names(&o), ["dns", "total"]);

    let tls_missing = CheckSpec::parse_target(&format!("tls://nope.test:{}", addr.port())).unwrap();
    let o = probes.run(&tls_missing).await;
    assert_eq!(error_of(&o), (Phase::Dns, ErrorKind::Nxdomain));
}
