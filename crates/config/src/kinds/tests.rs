//! The per-kind settings as validated values, and their targets. (Errors and their positions
//! through the public `parse` are in tests/kinds.rs.)

use super::*;
use crate::raw::RawConfig;

fn setup_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test that reads the environment calls this first, and Once blocks them
    // until it is done, so no other thread reads the environment while it is written.
    ONCE.call_once(|| unsafe {
        std::env::set_var("WATCHPOST_UNIT_HOST", "db-secret-7731.internal");
        std::env::set_var("WATCHPOST_UNIT_PORT", "6379");
        std::env::set_var("WATCHPOST_UNIT_AUTH", "AUTH hunter2-sekrit\r\n");
        std::env::set_var("WATCHPOST_UNIT_RECORD", "txt");
        std::env::set_var("WATCHPOST_UNIT_SERVER", "127.0.0.53:5353");
    });
}

/// The monitor's settings and target, and the values substituted from `${VAR}`s.
fn with_secrets(monitor: &str) -> (CheckSettings, String, crate::Secrets) {
    setup_env();
    let raw: RawConfig = serde_saphyr::from_str(&format!("monitors:\n  - {monitor}\n")).unwrap();
    let mut r = Report::new("t.yaml");
    let out = settings(&mut r, &raw.monitors[0]);
    let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{monitor}: {errors:?}");
    let (s, target) = out.unwrap();
    (s, target, r.secrets)
}

fn one(monitor: &str) -> (CheckSettings, String) {
    let (s, target, _) = with_secrets(monitor);
    (s, target)
}

#[test]
fn tcp_settings_and_target() {
    let (s, target) = one("{name: a, type: tcp, address: \"db.example.com:5432\"}");
    match s {
        CheckSettings::Tcp {
            host,
            port,
            send,
            expect,
        } => {
            assert_eq!((host.as_str(), port), ("db.example.com", 5432));
            assert_eq!((send, expect), (None, None));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(target, "tcp://db.example.com:5432");

    let (s, target) = one(
        "{name: a, type: tcp, address: \"[::1]:6379\", send: \"PING\\r\\n\", expect: \"+PONG\"}",
    );
    let CheckSettings::Tcp {
        host,
        port,
        send,
        expect,
    } = s
    else {
        panic!()
    };
    assert_eq!((host.as_str(), port), ("::1", 6379));
    assert_eq!(send.as_deref(), Some("PING\r\n"));
    assert_eq!(expect.as_deref(), Some("+PONG"));
    assert_eq!(target, "tcp://[::1]:6379");
    assert_eq!(
        one("{name: a, type: tcp, address: \"127.0.0.1:1\"}")
            .0
            .kind(),
        MonitorKind::Tcp
    );
}

#[test]
fn values_come_from_the_environment_and_targets_keep_the_names() {
    let (s, target, secrets) = with_secrets(
        "{name: a, type: tcp, address: \"${WATCHPOST_UNIT_HOST}:${WATCHPOST_UNIT_PORT}\", send: \"${WATCHPOST_UNIT_AUTH}\", expect: \"+OK\"}",
    );
    // Every value substituted is recorded, so it is masked wherever it would be shown.
    assert_eq!(
        secrets.redact("db-secret-7731.internal said AUTH hunter2-sekrit\r\n"),
        "${WATCHPOST_UNIT_HOST} said ${WATCHPOST_UNIT_AUTH}"
    );
    let CheckSettings::Tcp {
        host, port, send, ..
    } = s
    else {
        panic!()
    };
    assert_eq!((host.as_str(), port), ("db-secret-7731.internal", 6379));
    assert_eq!(send.as_deref(), Some("AUTH hunter2-sekrit\r\n"));
    assert_eq!(
        target,
        "tcp://${WATCHPOST_UNIT_HOST}:${WATCHPOST_UNIT_PORT}"
    );

    let (s, target) = one(
        "{name: a, type: tls, address: \"${WATCHPOST_UNIT_HOST}:465\", sni: \"${WATCHPOST_UNIT_HOST}\"}",
    );
    let CheckSettings::Tls {
        host, port, sni, ..
    } = s
    else {
        panic!()
    };
    assert_eq!((host.as_str(), port), ("db-secret-7731.internal", 465));
    assert_eq!(sni.as_deref(), Some("db-secret-7731.internal"));
    assert_eq!(
        target,
        "tls://${WATCHPOST_UNIT_HOST}:465?sni=${WATCHPOST_UNIT_HOST}"
    );

    let (s, target) = one(
        "{name: a, type: dns, query: \"${WATCHPOST_UNIT_HOST}\", record: \"${WATCHPOST_UNIT_RECORD}\", server: \"${WATCHPOST_UNIT_SERVER}\"}",
    );
    let CheckSettings::Dns {
        name,
        record,
        server,
    } = s
    else {
        panic!()
    };
    assert_eq!(name, "db-secret-7731.internal");
    assert_eq!(record, "TXT");
    assert_eq!(server, Some("127.0.0.53:5353".parse().unwrap()));
    assert_eq!(
        target,
        "dns://${WATCHPOST_UNIT_HOST}?type=${WATCHPOST_UNIT_RECORD}&server=${WATCHPOST_UNIT_SERVER}"
    );
}

#[test]
fn tls_settings_and_target() {
    let (s, target) = one("{name: a, type: tls, address: \"smtp.example.com:465\"}");
    let CheckSettings::Tls {
        host, port, sni, ..
    } = s
    else {
        panic!()
    };
    assert_eq!((host.as_str(), port, sni), ("smtp.example.com", 465, None));
    assert_eq!(target, "tls://smtp.example.com:465");
    let (s, target) =
        one("{name: a, type: tls, address: \"10.0.0.5:8883\", sni: Mqtt.Example.com}");
    let CheckSettings::Tls {
        host, port, sni, ..
    } = s
    else {
        panic!()
    };
    assert_eq!((host.as_str(), port), ("10.0.0.5", 8883));
    assert_eq!(sni.as_deref(), Some("mqtt.example.com"), "lower case");
    assert_eq!(
        target, "tls://10.0.0.5:8883?sni=Mqtt.Example.com",
        "as written"
    );
}

#[test]
fn dns_settings_defaults_and_target() {
    let (s, target) = one("{name: a, type: dns, query: example.com}");
    let CheckSettings::Dns {
        name,
        record,
        server,
    } = s
    else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), record.as_str(), server),
        ("example.com", "A", None)
    );
    assert_eq!(target, "dns://example.com?type=A");
    for (written, want) in [
        ("a", "A"),
        ("aaaa", "AAAA"),
        ("Cname", "CNAME"),
        ("MX", "MX"),
        ("txt", "TXT"),
        ("NS", "NS"),
    ] {
        let (s, target) = one(&format!(
            "{{name: a, type: dns, query: _dmarc.example.com., record: {written}, server: \"[::1]:5353\"}}"
        ));
        let CheckSettings::Dns {
            name,
            record,
            server,
        } = s
        else {
            panic!()
        };
        assert_eq!(name, "_dmarc.example.com.");
        assert_eq!(record, want);
        assert_eq!(server, Some("[::1]:5353".parse().unwrap()));
        assert_eq!(
            target,
            format!("dns://_dmarc.example.com.?type={want}&server=[::1]:5353")
        );
    }
    // International names are queried in their ASCII form, shown as written.
    let (s, target) = one("{name: a, type: dns, query: bücher.example}");
    let CheckSettings::Dns { name, .. } = s else {
        panic!()
    };
    assert_eq!(name, "xn--bcher-kva.example");
    assert_eq!(target, "dns://bücher.example?type=A");
}

#[test]
fn http_settings_are_as_before() {
    let (s, target) = one(
        "{name: a, type: http, url: \"http://127.0.0.1:9/x\", method: POST, body: hi, insecure: true, follow_redirects: true, max_body: 1KiB, headers: {X-A: b}}",
    );
    let CheckSettings::Http(req) = s else {
        panic!()
    };
    assert_eq!(req.url.as_str(), "http://127.0.0.1:9/x");
    assert_eq!(req.method.as_str(), "POST");
    assert_eq!(&req.body[..], b"hi");
    assert!(req.insecure && req.follow_redirects);
    assert_eq!(req.max_body, 1024);
    assert_eq!(req.headers.len(), 1);
    assert_eq!(target, "http://127.0.0.1:9/x");
}

#[test]
fn host_port_forms() {
    for (text, host_want, port_want) in [
        ("db.example.com:5432", "db.example.com", 5432),
        ("DB.Example.COM:1", "db.example.com", 1),
        ("127.0.0.1:65535", "127.0.0.1", 65535),
        ("[::1]:53", "::1", 53),
        ("[2001:DB8::1]:443", "2001:db8::1", 443),
        ("localhost:80", "localhost", 80),
        ("bücher.example:443", "xn--bcher-kva.example", 443),
        ("_svc.example.com.:7", "_svc.example.com.", 7),
    ] {
        assert_eq!(
            host_port(text),
            Ok((host_want.to_string(), port_want)),
            "{text}"
        );
    }
    for (text, want) in [
        ("db.example.com", "the port is missing"),
        ("db.example.com:", "the port is missing"),
        ("db.example.com:0", "from 1 to 65535"),
        ("db.example.com:65536", "from 1 to 65535"),
        ("db.example.com:+80", "from 1 to 65535"),
        ("db.example.com:http", "from 1 to 65535"),
        ("db.example.com:99999999999999999999", "from 1 to 65535"),
        (":80", "the host name is empty"),
        ("::1:53", "in brackets: [::1]:PORT"),
        ("[::1]", "the port is missing after the `]`"),
        ("[::1]53", "the port is missing after the `]`"),
        ("[::1:53", "no closing `]`"),
        ("[::g]:53", "not a valid IPv6 address"),
        ("[127.0.0.1]:53", "not a valid IPv6 address"),
        ("a b:1", "contains a space"),
        ("a/b:1", "contains \"/\""),
        ("user@host:1", "contains \"@\""),
        ("ho%73t:1", "contains \"%\""),
        ("tab\there:1", "contains \"\\t\""),
        ("1.2.3:80", "not a valid IPv4 address"),
        ("a..b:1", "empty label"),
        (".a:1", "empty label"),
    ] {
        let got = host_port(text).unwrap_err();
        assert!(got.contains(want), "{text:?}: {got}");
    }
    let label = "x".repeat(64);
    assert!(
        host_port(&format!("{label}.example:1"))
            .unwrap_err()
            .contains("longer than 63")
    );
    let name = format!("{}x", "abcdefghi.".repeat(26));
    assert!(
        host_port(&format!("{name}:1"))
            .unwrap_err()
            .contains("longer than 253")
    );
    let fits = format!("{}abc", "abcdefghi.".repeat(25));
    assert_eq!(fits.len(), 253);
    assert!(host_port(&format!("{fits}:1")).is_ok());
}

#[test]
fn server_forms() {
    assert_eq!(
        server_value("223.5.5.5:53"),
        Ok("223.5.5.5:53".parse().unwrap())
    );
    assert_eq!(
        server_value("[::1]:5353"),
        Ok("[::1]:5353".parse().unwrap())
    );
    for (text, want) in [
        ("223.5.5.5", "the port is missing (53 for DNS)"),
        ("[::1]", "the port is missing"),
        ("::1", "the port is missing"),
        ("223.5.5.5:0", "from 1 to 65535"),
        ("223.5.5.5:70000", "from 1 to 65535"),
        ("[::1]:x", "from 1 to 65535"),
        ("dns.google:53", "a name can't be used here"),
        ("", "a name can't be used here"),
    ] {
        let got = server_value(text).unwrap_err();
        assert!(got.contains(want), "{text:?}: {got}");
    }
}

#[test]
fn foreign_key_messages_name_the_owner_and_the_keys_taken() {
    assert_eq!(
        foreign_key_message("url", MonitorKind::Tcp),
        "url: is an http setting; a tcp monitor takes address, send, expect"
    );
    assert_eq!(
        foreign_key_message("address", MonitorKind::Dns),
        "address: is a tcp and tls setting; a dns monitor takes query, record, server"
    );
    assert_eq!(
        foreign_key_message("send", MonitorKind::Http),
        "send: is a tcp setting; an http monitor takes url, method, headers, body, insecure, follow_redirects, max_body"
    );
    assert_eq!(
        foreign_key_message("query", MonitorKind::Tls),
        "query: is a dns setting; a tls monitor takes address, sni, insecure"
    );
}

#[test]
fn every_kind_specific_key_belongs_to_a_kind_and_is_read() {
    // The table and the raw fields agree: every key of the table is a field the YAML reader
    // knows (a monitor with all of them parses), and every field it reports is in the table.
    let all = "{name: a, type: http, url: \"http://127.0.0.1:9/\", method: GET, headers: {}, body: x, insecure: false, follow_redirects: false, max_body: 1KiB, address: \"h:1\", send: x, expect: y, sni: h, query: h, record: A, server: \"127.0.0.1:53\", bootstrap: [\"h:1\"], group: g, topics: [t], sasl: {mechanism: PLAIN, username: u, password: p}, tls: {ca_file: x, insecure: true}, source: kafka, ckafka: {instance_id: i, region: r, secret_id: a, secret_key: b}, window: {samples: 3}}";
    let raw: RawConfig = serde_saphyr::from_str(&format!("monitors:\n  - {all}\n")).unwrap();
    let written: Vec<&str> = raw.monitors[0]
        .settings_written()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut table: Vec<&str> = MonitorKind::ALL
        .into_iter()
        .flat_map(|k| k.settings().iter().copied())
        .collect();
    table.sort_unstable();
    table.dedup();
    let mut sorted = written.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, table);
}
