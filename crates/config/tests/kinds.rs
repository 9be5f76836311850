//! Monitor kinds: each `type:` takes its own keys (a key of another kind is an error at the
//! key), requires its own target key, and has its values validated, every error as
//! FILE:LINE:COL and none quoting a `${VAR}`'s value.

mod common;

use watchpost_config::{AlertPolicy, MonitorKind, parse};
use watchpost_probes::CheckSpec;

fn setup_env() {
    common::set_env_once(&[
        ("WATCHPOST_KT_HOST", "sekrit-host-4242.internal"),
        ("WATCHPOST_KT_BAD_NAME", "bad name sekrit-7"),
        ("WATCHPOST_KT_PORT", "99999"),
        ("WATCHPOST_KT_SERVER", "sekrit-dns.example:53"),
        ("WATCHPOST_KT_RECORD", "SRVSEKRIT"),
    ]);
}

fn all_errors(text: &str) -> Vec<String> {
    setup_env();
    match parse("watchpost.yaml", text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// The errors of `text`.
fn errors(text: &str) -> Vec<String> {
    all_errors(text)
}

/// The table, written out here so the test doesn't check the code against itself.
const TABLE: [(&str, &[&str]); 5] = [
    (
        "http",
        &[
            "url",
            "method",
            "headers",
            "body",
            "insecure",
            "follow_redirects",
            "max_body",
        ],
    ),
    ("tcp", &["address", "send", "expect"]),
    ("tls", &["address", "sni", "insecure"]),
    ("dns", &["query", "record", "server"]),
    (
        "kafka_lag",
        &[
            "bootstrap",
            "group",
            "topics",
            "sasl",
            "tls",
            "source",
            "ckafka",
            "window",
        ],
    ),
];

/// A valid value for each key, as YAML.
fn sample(key: &str) -> &'static str {
    match key {
        "url" => "\"http://127.0.0.1:9/\"",
        "method" => "GET",
        "headers" => "{X-A: b}",
        "body" => "hello",
        "insecure" => "true",
        "follow_redirects" => "true",
        "max_body" => "1KiB",
        "address" => "\"127.0.0.1:9\"",
        "send" => "\"PING\\r\\n\"",
        "expect" => "\"+PONG\"",
        "sni" => "example.com",
        "query" => "example.com",
        "record" => "AAAA",
        "server" => "\"127.0.0.1:53\"",
        "bootstrap" => "\"127.0.0.1:9092\"",
        "group" => "orders-consumer",
        "topics" => "[orders, payments]",
        "sasl" => "{mechanism: SCRAM-SHA-256, username: u, password: p}",
        "tls" => "true",
        "source" => "kafka",
        "ckafka" => "{instance_id: ckafka-1, region: ap-guangzhou, secret_id: a, secret_key: b}",
        "window" => "{samples: 5, min_samples: 2, min_distance: 30s, allowed_lag: 10}",
        other => panic!("no sample for {other}"),
    }
}

/// The keys each kind requires, with a valid value.
fn required_keys(kind: &str) -> Vec<String> {
    let keys: &[&str] = match kind {
        "http" => &["url"],
        "tcp" | "tls" => &["address"],
        "kafka_lag" => &["bootstrap", "group"],
        _ => &["query"],
    };
    keys.iter()
        .map(|key| format!("{key}: {}", sample(key)))
        .collect()
}

fn expected_message(key: &str, kind: &str) -> String {
    let owners: Vec<&str> = TABLE
        .iter()
        .filter(|(_, keys)| keys.contains(&key))
        .map(|(k, _)| *k)
        .collect();
    let a = |k: &str| if k == "http" { "an" } else { "a" };
    let takes = TABLE.iter().find(|(k, _)| *k == kind).unwrap().1.join(", ");
    format!(
        "{key}: is {} {} setting; {} {kind} monitor takes {takes}",
        a(owners[0]),
        owners.join(" and "),
        a(kind)
    )
}

#[test]
fn the_table_is_the_documented_one() {
    for kind in MonitorKind::ALL {
        let (name, keys) = TABLE.iter().find(|(k, _)| *k == kind.as_str()).unwrap();
        assert_eq!(kind.settings(), *keys, "{name}");
    }
    assert_eq!(
        expected_message("url", "tcp"),
        "url: is an http setting; a tcp monitor takes address, send, expect"
    );
}

#[test]
fn every_key_of_another_kind_is_refused_at_its_position() {
    let mut all_keys: Vec<&str> = TABLE
        .iter()
        .flat_map(|(_, keys)| keys.iter().copied())
        .collect();
    all_keys.sort_unstable();
    all_keys.dedup();
    assert_eq!(all_keys.len(), 22);
    let mut checked = 0;
    for (kind, own) in TABLE {
        let required = required_keys(kind);
        for key in all_keys.iter().filter(|k| !own.contains(k)) {
            // Block style: the key on the line after the required ones, column 5.
            let text = format!(
                "monitors:\n  - name: a\n    type: {kind}\n    {}\n    {key}: {}\n",
                required.join("\n    "),
                sample(key)
            );
            let want = format!(
                "watchpost.yaml:{}:5: {}",
                4 + required.len(),
                expected_message(key, kind)
            );
            assert_eq!(errors(&text), [want], "{kind} {key}");
            // Flow style: the key where it is on the line.
            let line = format!(
                "  - {{name: a, type: {kind}, {}, {key}: {}}}",
                required.join(", "),
                sample(key)
            );
            let column = line.find(&format!(", {key}:")).unwrap() + 3;
            let text = format!("monitors:\n{line}\n");
            let want = format!("watchpost.yaml:2:{column}: {}", expected_message(key, kind));
            assert_eq!(errors(&text), [want], "{kind} {key} (flow)");
            checked += 1;
        }
    }
    // Every (kind, key of another kind) pair: 15 for http, 19 each for tcp, tls and dns, 14
    // for kafka_lag.
    assert_eq!(checked, 15 + 19 + 19 + 19 + 14);
}

#[test]
fn foreign_keys_are_refused_even_when_empty_or_invalid_and_all_at_once() {
    let text = r#"monitors:
  - name: a
    type: tcp
    address: "127.0.0.1:9"
    headers: {}
    url: "ftp://not even http"
    record: SRV
  - name: b
    type: http
    url: "http://127.0.0.1:9/"
    send: |
      PING
    sni:
  - name: c
    type: dns
    query: example.com
    max_body: lots
"#;
    let tcp = "a tcp monitor takes address, send, expect";
    let http =
        "an http monitor takes url, method, headers, body, insecure, follow_redirects, max_body";
    assert_eq!(
        errors(text),
        [
            format!("watchpost.yaml:5:5: headers: is an http setting; {tcp}"),
            format!("watchpost.yaml:6:5: url: is an http setting; {tcp}"),
            format!("watchpost.yaml:7:5: record: is a dns setting; {tcp}"),
            format!("watchpost.yaml:11:5: send: is a tcp setting; {http}"),
            format!("watchpost.yaml:13:5: sni: is a tls setting; {http}"),
            "watchpost.yaml:17:5: max_body: is an http setting; a dns monitor takes query, record, server".to_string(),
        ]
    );
    // `sni:` with no value is refused too: the key is written, and it isn't http's.
}

#[test]
fn each_kind_requires_its_target_key_at_the_monitor() {
    let text = r#"monitors:
  - name: h
    type: http
  - name: t
    type: tcp
    send: x
  - name: s
    type: tls
    sni: example.com
  - name: d
    type: dns
    record: MX
"#;
    assert_eq!(
        errors(text),
        [
            "watchpost.yaml:2:11: monitor \"h\": type http needs a `url:`",
            "watchpost.yaml:4:11: monitor \"t\": type tcp needs an `address:` (HOST:PORT)",
            "watchpost.yaml:7:11: monitor \"s\": type tls needs an `address:` (HOST:PORT)",
            "watchpost.yaml:10:11: monitor \"d\": type dns needs a `query:` (the name to resolve)",
        ]
    );
}

#[test]
fn values_are_validated_at_their_position() {
    let text = r#"monitors:
  - name: t1
    type: tcp
    address: "db.example.com:99999"
    expect: ""
  - name: t2
    type: tcp
    address: "::1:6379"
    send: ""
  - name: t3
    type: tcp
    address: db.example.com
  - name: s1
    type: tls
    address: "[::1]"
    sni: 10.0.0.1
  - name: s2
    type: tls
    address: "smtp example.com:465"
    sni: "a..b"
  - name: d1
    type: dns
    query: 1.2.3.4
    record: SRV
    server: dns.google:53
  - name: d2
    type: dns
    query: "exa/mple.com"
    server: "223.5.5.5"
  - name: d3
    type: dns
    query: example.com
    server: "223.5.5.5:0"
"#;
    let hp = "expected HOST:PORT, e.g. db.example.com:5432 or [::1]:5432";
    let want = [
        "watchpost.yaml:4:14: address: the port must be a number from 1 to 65535".to_string(),
        "watchpost.yaml:5:13: expect: is empty: give the text the reply must contain, or remove `expect:`".to_string(),
        "watchpost.yaml:8:14: address: write an IPv6 address in brackets: [::1]:PORT".to_string(),
        "watchpost.yaml:9:11: send: is empty: give the text to send, or remove `send:`".to_string(),
        format!("watchpost.yaml:12:14: address: the port is missing: {hp}"),
        format!("watchpost.yaml:15:14: address: the port is missing after the `]`: {hp}"),
        "watchpost.yaml:16:10: sni: is an IP address; the server name sent in the handshake is a DNS name".to_string(),
        "watchpost.yaml:19:14: address: the host name contains a space, which a host name can't".to_string(),
        "watchpost.yaml:20:10: sni: the host name has an empty label (a leading dot or two dots in a row)".to_string(),
        "watchpost.yaml:23:12: query: is an IP address; give the name to resolve (reverse lookups are not available)".to_string(),
        "watchpost.yaml:24:13: record: \"SRV\" is not a record type watchpost queries (A, AAAA, CNAME, MX, TXT, NS)".to_string(),
        "watchpost.yaml:25:13: server: expected an IP address and a port (IP:PORT, e.g. 223.5.5.5:53 or [2400:3200::1]:53); a name can't be used here".to_string(),
        "watchpost.yaml:28:12: query: the host name contains \"/\", which a host name can't".to_string(),
        "watchpost.yaml:29:13: server: the port is missing (53 for DNS): expected IP:PORT, e.g. 223.5.5.5:53 or [2400:3200::1]:53".to_string(),
        "watchpost.yaml:33:13: server: the port must be a number from 1 to 65535".to_string(),
    ];
    assert_eq!(errors(text), want);
}

#[test]
fn a_valid_monitor_of_each_new_kind_becomes_its_check_spec() {
    let text = r#"monitors:
  - name: redis
    type: tcp
    address: "127.0.0.1:6379"
    send: "PING\r\n"
    expect: "+PONG"
    conditions: ["banner contains \"PONG\""]
  - name: smtps
    type: tls
    address: "[::1]:465"
    sni: smtp.example.com
    conditions: ["cert_days > 14"]
  - name: dns
    type: dns
    query: example.com
    record: aaaa
    server: "127.0.0.1:5353"
    conditions: ["answers contains \"::1\""]
"#;
    setup_env();
    let c = parse("watchpost.yaml", text).unwrap();
    let kinds: Vec<&str> = c.monitors.iter().map(|m| m.check.kind().as_str()).collect();
    assert_eq!(kinds, ["tcp", "tls", "dns"]);
    let CheckSpec::Tcp(tcp) = &c.monitors[0].check else {
        panic!("{:?}", c.monitors[0].check)
    };
    assert_eq!((tcp.host.as_str(), tcp.port), ("127.0.0.1", 6379));
    assert_eq!(tcp.send.as_deref(), Some(&b"PING\r\n"[..]));
    assert_eq!(tcp.expect.as_deref(), Some("+PONG"));
    let CheckSpec::Tls(tls) = &c.monitors[1].check else {
        panic!("{:?}", c.monitors[1].check)
    };
    assert_eq!((tls.host.as_str(), tls.port), ("::1", 465));
    assert_eq!(tls.sni.as_deref(), Some("smtp.example.com"));
    assert!(!tls.insecure);
    let CheckSpec::Dns(dns) = &c.monitors[2].check else {
        panic!("{:?}", c.monitors[2].check)
    };
    assert_eq!(dns.name, "example.com");
    assert_eq!(dns.server, Some("127.0.0.1:5353".parse().unwrap()));
    // Conditions are parsed against the kind's operands; dns keeps its default rcode rule.
    let sources = |i: usize| common::sources(&c, i);
    assert_eq!(sources(0), ["banner contains \"PONG\""]);
    assert_eq!(sources(1), ["cert_days > 14"]);
    assert!(sources(2).contains(&"answers contains \"::1\"".to_string()));
}

#[test]
fn an_operand_the_kind_lacks_is_refused_at_its_column_listing_those_it_has() {
    let text = "monitors:\n  - name: redis\n    type: tcp\n    address: \"127.0.0.1:6379\"\n    conditions: [\"status == 200\"]\n";
    let errors = all_errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("watchpost.yaml:5:19: condition: "),
        "{errors:?}"
    );
    assert!(errors[0].contains("status"), "{errors:?}");
    assert!(
        errors[0].contains("connect"),
        "the tcp operands are listed: {errors:?}"
    );
}

#[test]
fn secrets_never_appear_in_kind_errors() {
    let text = r#"monitors:
  - name: t
    type: tcp
    address: "${WATCHPOST_KT_HOST}:${WATCHPOST_KT_PORT}"
  - name: s
    type: tls
    address: "${WATCHPOST_KT_HOST}:465"
    sni: "${WATCHPOST_KT_BAD_NAME}"
  - name: d
    type: dns
    query: "${WATCHPOST_KT_BAD_NAME}"
    record: "${WATCHPOST_KT_RECORD}"
    server: "${WATCHPOST_KT_SERVER}"
"#;
    let errs = errors(text);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    let want_starts = [
        "watchpost.yaml:4:14: address: the port must be",
        "watchpost.yaml:8:10: sni: the host name contains a space",
        "watchpost.yaml:11:12: query: the host name contains a space",
        "watchpost.yaml:12:13: record: \"${WATCHPOST_KT_RECORD}\" is not a record type",
        "watchpost.yaml:13:13: server: expected an IP address and a port",
    ];
    for (got, want) in errs.iter().zip(want_starts) {
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
    }
    let all = all_errors(text).concat();
    for secret in ["sekrit", "99999", "bad name"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
}

#[test]
fn a_kafka_lag_monitor_is_built_and_its_mistakes_are_named_at_their_position() {
    setup_env();
    let c = parse(
        "w.yaml",
        "monitors:\n  - name: lag\n    type: kafka_lag\n    bootstrap: [\"127.0.0.1:9092\", \"127.0.0.1:9093\"]\n    group: billing\n    topics: [orders]\n    sasl: {mechanism: scram-sha-512, username: u, password: \"${WATCHPOST_KT_HOST}\"}\n    window: {samples: 5, min_samples: 2, min_distance: 1s, allowed_lag: 3}\n    conditions: [\"lag < 1000\", \"status != \\\"STOP\\\"\", \"time_lag < 5m\"]\n",
    )
    .unwrap();
    let m = &c.monitors[0];
    assert_eq!(m.target, "kafka://127.0.0.1:9092,127.0.0.1:9093/billing");
    let CheckSpec::KafkaLag(k) = &m.check else {
        panic!("{:?}", m.check)
    };
    assert_eq!(k.group, "billing");
    assert_eq!(k.topics.as_deref(), Some(&["orders".to_string()][..]));
    assert_eq!((k.window.samples, k.window.min_samples), (5, 2));
    assert_eq!(k.window.allowed_lag, 3);
    let watchpost_probes::kafka::LagSource::Brokers(s) = &k.source else {
        panic!("brokers")
    };
    assert_eq!(
        s.sasl.as_ref().unwrap().password,
        "sekrit-host-4242.internal"
    );
    assert_eq!(m.conditions.len(), 3);

    let text = "monitors:\n  - name: a\n    type: kafka_lag\n    bootstrap: \"nope\"\n    group: g\n    sasl: {mechanism: GSSAPI, username: u, password: p}\n    window: {samples: 1}\n  - name: b\n    type: kafka_lag\n    group: g\n  - name: c\n    type: kafka_lag\n    bootstrap: \"h:1\"\n  - name: d\n    type: kafka_lag\n    source: ckafka\n    bootstrap: \"h:1\"\n    group: g\n    ckafka: {instance_id: i, region: r, secret_id: a, secret_key: \"${WATCHPOST_KT_HOST}\"}\n";
    let errs = errors(text);
    for want in [
        "w.yaml:4:16: bootstrap: \"nope\" is not HOST:PORT",
        "sasl: mechanism \"GSSAPI\" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        "window: the window's samples must be from 2",
        "monitor \"b\": type kafka_lag needs a `bootstrap:`",
        "monitor \"c\": type kafka_lag needs a `group:`",
        "w.yaml:17:16: bootstrap: is for source: kafka",
    ] {
        let want = want.replace("w.yaml", "watchpost.yaml");
        assert!(
            errs.iter().any(|e| e.contains(&want)),
            "{want} not in {errs:#?}"
        );
    }
    assert!(!errs.concat().contains("sekrit"), "{errs:?}");
}

#[test]
fn types_and_their_keys_are_listed_when_the_type_is_unknown() {
    let errs = all_errors("monitors:\n  - name: a\n    type: icmp\n    address: \"h:1\"\n");
    assert_eq!(
        errs,
        ["watchpost.yaml:3:11: unknown value \"icmp\" (one of: http, tcp, tls, dns, kafka_lag)"]
    );
}

#[test]
fn the_alert_policy_is_the_alert_engines() {
    setup_env();
    let c = parse(
        "w.yaml",
        "channels:\n  hook: {type: console}\nmonitors:\n  - name: a\n    type: http\n    url: \"http://127.0.0.1:9/\"\n    alert: {channels: [hook], failure_threshold: 3, success_threshold: 2, send_resolved: false, repeat: 5m}\n  - name: b\n    type: http\n    url: \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    // One type: what config builds is what the engine takes.
    let policy: &watchpost_alerting::AlertPolicy = &c.monitors[0].alert;
    assert_eq!(
        *policy,
        AlertPolicy {
            channels: vec!["hook".into()],
            failure_threshold: 3,
            success_threshold: 2,
            send_resolved: false,
            repeat: Some(std::time::Duration::from_secs(300)),
            quorum: 1,
        }
    );
    assert_eq!(
        c.monitors[1].alert,
        watchpost_alerting::AlertPolicy::default()
    );
}
