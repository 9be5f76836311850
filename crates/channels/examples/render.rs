//! Prints a sample alert in every rendering: `cargo run -p watchpost-channels --example render`.

use chrono::{TimeDelta, Utc};
use watchpost_channels::{Alert, AlertKind, Locale, LocationRow, WebhookPayload};

fn main() {
    let at = Utc::now();
    let row = |location: &str, ok: bool, total: f64, connect: f64, download: f64| LocationRow {
        location: location.into(),
        ok,
        status: Some(200),
        total_ms: Some(total),
        connect_ms: Some(connect),
        download_ms: Some(download),
        error: None,
    };
    let alert = Alert {
        kind: AlertKind::Reminder,
        monitor: "homepage".into(),
        incident_id: format!(
            "homepage:{}",
            (at - TimeDelta::minutes(35)).timestamp_millis()
        ),
        at,
        since: Some(at - TimeDelta::minutes(35)),
        failures: vec![
            "浙江湖州[电信]: total 3190ms > 1000ms".into(),
            "浙江湖州[电信]: connect 3115ms > 300ms".into(),
            "黑龙江哈尔滨[联通]: connect timeout: no answer within 2.50s".into(),
        ],
        locations: vec![
            row("江苏宿迁[电信]", true, 223.0, 121.0, 81.0),
            row("广东佛山[电信]", true, 44.0, 27.0, 17.0),
            row("浙江湖州[电信]", false, 3190.0, 3115.0, 75.0),
            LocationRow {
                location: "黑龙江哈尔滨[联通]".into(),
                ok: false,
                status: None,
                total_ms: None,
                connect_ms: Some(2500.0),
                download_ms: None,
                error: Some("connect timeout: no answer within 2.50s".into()),
            },
        ],
        url: Some("http://www.anycodes.cn/".into()),
        timezone: None,
        notes: Vec::new(),
    };
    for locale in [Locale::ZhCn, Locale::En] {
        println!("==== plain ({locale})\n{}", alert.plain(locale));
        println!("==== markdown ({locale})\n{}", alert.markdown(locale));
    }
    let payload = WebhookPayload::new(&alert, Locale::ZhCn);
    println!(
        "==== webhook payload (zh-CN)\n{}",
        serde_json::to_string_pretty(&payload).unwrap()
    );
}
