//! What the channel integration tests share: sample alerts, building a channel from its JSON
//! settings, and PEM files on disk.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::io::Write;
use watchpost_channels::{
    Alert, AlertKind, Channel, ChannelConfig, ConfigError, FailedCondition, LocationRow,
};
use watchpost_units::{Metric, Unit};

/// 2026-01-02 at `h:m:s` UTC, the day of every sample alert.
pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, h, m, s).unwrap()
}

/// `name` in milliseconds.
pub fn ms(name: &'static str, v: f64) -> Metric {
    Metric::new(name, v, Unit::Ms)
}

/// An HTTP row's metrics: status, then dns, connect, tls, wait, download, total.
pub fn http_metrics(status: u16, phases: [f64; 6]) -> Vec<Metric> {
    let mut m = vec![Metric::new("status", f64::from(status), Unit::Count)];
    for (name, v) in ["dns", "connect", "tls", "wait", "download", "total"]
        .into_iter()
        .zip(phases)
    {
        m.push(ms(name, v));
    }
    m
}

/// The HTTP kind's table columns.
pub fn http_columns() -> Vec<String> {
    [
        "status", "dns", "connect", "tls", "wait", "download", "total",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A failed condition `OPERAND ACTUAL OP EXPECTED` at `location`.
pub fn failed(
    location: &str,
    operand: &str,
    op: &str,
    expected: &str,
    actual: &str,
) -> FailedCondition {
    FailedCondition {
        location: location.into(),
        operand: operand.into(),
        op: op.into(),
        expected: expected.into(),
        actual: actual.into(),
        text: format!("{operand} {actual} {op} {expected}"),
        topic: None,
    }
}

/// A down HTTP alert with two locations, one of them Chinese, its times shown in
/// Asia/Shanghai (UTC+8).
pub fn alert(kind: AlertKind) -> Alert {
    Alert {
        kind,
        monitor: "homepage".into(),
        incident_id: "homepage:1767322800000".into(),
        at: at(3, 0, 0),
        since: Some(at(2, 55, 0)),
        check: Some("http".into()),
        failures: vec![failed("广东佛山[电信]", "total", ">", "1000ms", "1430ms")],
        message: None,
        columns: http_columns(),
        locations: vec![
            LocationRow {
                location: "local".into(),
                ok: true,
                metrics: http_metrics(200, [1.2, 0.08, 3.4, 140.5, 100.2, 250.8]),
                error: None,
                ..LocationRow::default()
            },
            LocationRow {
                location: "广东佛山[电信]".into(),
                ok: false,
                metrics: http_metrics(200, [12.0, 27.0, 55.0, 1319.0, 17.0, 1430.0]),
                error: None,
                ..LocationRow::default()
            },
        ],
        url: Some("https://www.example.com/".into()),
        // Human-readable times in messages are in this zone; machine fields stay UTC.
        timezone: Some("Asia/Shanghai".into()),
        notes: Vec::new(),
    }
}

/// A down tls alert: the certificate of an SMTPS port expires in 9.5 days.
pub fn tls_alert() -> Alert {
    let mut a = alert(AlertKind::Down);
    a.monitor = "smtps".into();
    a.incident_id = "smtps:1767322800000".into();
    a.check = Some("tls".into());
    a.url = Some("tls://mail.example.com:465".into());
    a.failures = vec![failed("local", "cert_days", ">", "14", "9.5d")];
    a.columns = ["connect", "tls", "total", "cert_days"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.locations = vec![LocationRow {
        location: "local".into(),
        ok: false,
        metrics: vec![
            ms("dns", 0.9),
            ms("connect", 11.0),
            ms("tls", 35.2),
            ms("total", 47.1),
            Metric::new("cert_days", 9.5, Unit::Days),
        ],
        error: None,
        ..LocationRow::default()
    }];
    a
}

/// [`alert`] down, with `&` in its URL's query (for channels that escape it).
pub fn down_with_query() -> Alert {
    let mut a = alert(AlertKind::Down);
    a.url = Some("https://www.example.com/?a=1&b=2".into());
    a
}

/// A name for the `i`-th of many Chinese probe locations.
pub fn location_name(i: usize) -> String {
    const CITIES: [&str; 8] = [
        "黑龙江哈尔滨",
        "广东佛山",
        "内蒙古呼和浩特",
        "新疆乌鲁木齐",
        "广西壮族自治区南宁",
        "西藏拉萨",
        "四川成都",
        "上海浦东新区",
    ];
    const ISPS: [&str; 3] = ["电信", "联通", "移动"];
    format!("{}[{}]探测点{i:02}", CITIES[i % 8], ISPS[i % 3])
}

/// A down alert from `n` Chinese locations, each failing with a long Chinese error.
pub fn many_locations(n: usize) -> Alert {
    let mut a = alert(AlertKind::Down);
    a.monitor = "订单服务接口".into();
    a.failures = (0..n)
        .map(|i| FailedCondition {
            location: location_name(i),
            operand: "error".into(),
            actual: "连接被拒绝，目标端口无响应".into(),
            text: "连接被拒绝，目标端口无响应".into(),
            ..FailedCondition::default()
        })
        .collect();
    a.locations = (0..n)
        .map(|i| LocationRow {
            location: location_name(i),
            ok: false,
            metrics: vec![ms("dns", 1.0), ms("total", 3.5 + i as f64)],
            error: Some("连接被拒绝：对端重置了连接（connection reset by peer）".into()),
            ..LocationRow::default()
        })
        .collect();
    a
}

/// Three alerts for one merged message: two down, one resolved.
pub fn three() -> Vec<Alert> {
    let mut b = alert(AlertKind::Down);
    b.monitor = "api".into();
    b.incident_id = "api:1767322800000".into();
    let mut c = alert(AlertKind::Resolved);
    c.monitor = "cdn".into();
    c.incident_id = "cdn:1767322800000".into();
    vec![alert(AlertKind::Down), b, c]
}

/// Build a channel from its settings (`type` included), checking that the config reports
/// that type.
pub fn build(settings: Value) -> Channel {
    let kind = settings["type"].as_str().expect("a type").to_string();
    let config = ChannelConfig::from_value(settings).unwrap();
    assert_eq!(config.kind(), kind);
    config.build().unwrap()
}

/// Parse and build a channel from its settings, for tests of configuration errors.
pub fn try_build(settings: Value) -> Result<Channel, ConfigError> {
    ChannelConfig::from_value(settings).and_then(|c| c.build())
}

/// `settings` with the keys of `extra` added or replaced.
pub fn with(mut settings: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    settings
}

/// `text` (a PEM certificate or key) in a temporary file, removed when dropped.
pub fn pem_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}
