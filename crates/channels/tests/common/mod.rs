//! What the channel integration tests share: sample alerts, building a channel from its JSON
//! settings, and PEM files on disk.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::io::Write;
use watchpost_channels::{Alert, AlertKind, Channel, ChannelConfig, ConfigError, LocationRow};

/// 2026-01-02 at `h:m:s` UTC, the day of every sample alert.
pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, h, m, s).unwrap()
}

/// A down alert with two locations, one of them Chinese, its times shown in Asia/Shanghai
/// (UTC+8).
pub fn alert(kind: AlertKind) -> Alert {
    Alert {
        kind,
        monitor: "homepage".into(),
        incident_id: "homepage:1767322800000".into(),
        at: at(3, 0, 0),
        since: Some(at(2, 55, 0)),
        failures: vec!["广东佛山[电信]: total 1430ms > 1000ms".into()],
        locations: vec![
            LocationRow {
                location: "local".into(),
                ok: true,
                status: Some(200),
                total_ms: Some(250.8),
                connect_ms: Some(0.08),
                download_ms: Some(100.2),
                error: None,
            },
            LocationRow {
                location: "广东佛山[电信]".into(),
                ok: false,
                status: Some(200),
                total_ms: Some(1430.0),
                connect_ms: Some(27.0),
                download_ms: Some(17.0),
                error: None,
            },
        ],
        url: Some("https://www.example.com/".into()),
        // Human-readable times in messages are in this zone; machine fields stay UTC.
        timezone: Some("Asia/Shanghai".into()),
        notes: Vec::new(),
    }
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
        .map(|i| format!("{}: 连接被拒绝，目标端口无响应", location_name(i)))
        .collect();
    a.locations = (0..n)
        .map(|i| LocationRow {
            location: location_name(i),
            ok: false,
            status: None,
            total_ms: None,
            connect_ms: Some(3.5 + i as f64),
            download_ms: None,
            error: Some("连接被拒绝：对端重置了连接（connection reset by peer）".into()),
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
