//! Prints a sample alert in every rendering: `cargo run -p watchpost-channels --example render`.

use chrono::{TimeDelta, Utc};
use watchpost_channels::{Alert, AlertKind, FailedCondition, Locale, LocationRow, WebhookPayload};
use watchpost_units::{Metric, Unit};

fn main() {
    let at = Utc::now();
    let ms = |name: &'static str, v: f64| Metric::new(name, v, Unit::Ms);
    let row = |location: &str, ok: bool, phases: [f64; 6]| {
        let mut metrics = vec![Metric::new("status", 200.0, Unit::Count)];
        for (name, v) in ["dns", "connect", "tls", "wait", "download", "total"]
            .into_iter()
            .zip(phases)
        {
            metrics.push(ms(name, v));
        }
        LocationRow {
            location: location.into(),
            ok,
            metrics,
            error: None,
            ..LocationRow::default()
        }
    };
    let failed = |location: &str, operand: &str, expected: &str, actual: &str| FailedCondition {
        location: location.into(),
        operand: operand.into(),
        op: ">".into(),
        expected: expected.into(),
        actual: actual.into(),
        text: format!("{operand} {actual} > {expected}"),
        topic: None,
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
        check: Some("http".into()),
        failures: vec![
            failed("浙江湖州[电信]", "total", "1000ms", "3190ms"),
            failed("浙江湖州[电信]", "connect", "300ms", "3050ms"),
            FailedCondition {
                location: "黑龙江哈尔滨[联通]".into(),
                operand: "error".into(),
                actual: "connect timeout: no answer within 2.50s".into(),
                text: "connect timeout: no answer within 2.50s".into(),
                ..FailedCondition::default()
            },
        ],
        message: None,
        columns: [
            "status", "dns", "connect", "tls", "wait", "download", "total",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        locations: vec![
            row("江苏宿迁[电信]", true, [3.0, 61.0, 60.0, 18.0, 81.0, 223.0]),
            row("广东佛山[电信]", true, [1.0, 12.0, 13.5, 0.5, 17.0, 44.0]),
            row(
                "浙江湖州[电信]",
                false,
                [0.2, 3050.0, 65.0, 0.1, 75.0, 3190.0],
            ),
            LocationRow {
                location: "黑龙江哈尔滨[联通]".into(),
                ok: false,
                metrics: vec![ms("dns", 4.0), ms("total", 2504.0)],
                error: Some("connect timeout: no answer within 2.50s".into()),
                ..LocationRow::default()
            },
        ],
        url: Some("https://www.anycodes.cn/".into()),
        timezone: None,
        notes: Vec::new(),
    };
    for locale in [Locale::ZhCn, Locale::En] {
        println!("==== plain ({locale})\n{}", alert.plain(locale));
        println!("==== markdown ({locale})\n{}", alert.markdown(locale));
        println!(
            "==== robot markdown ({locale})\n{}",
            alert.markdown_lite(locale)
        );
    }
    let payload = WebhookPayload::new(&alert, Locale::ZhCn);
    println!(
        "==== webhook payload (zh-CN)\n{}",
        serde_json::to_string_pretty(&payload).unwrap()
    );
    println!("==== stored document\n{}", alert.to_json());
}
