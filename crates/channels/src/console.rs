//! `type: console`: prints each alert's plain rendering to stdout (to stderr under
//! `watchpost once --json`, whose stdout is the JSON). For trying a config out, for
//! `watchpost once` under cron (the output lands in cron's mail or the function's log), and
//! for the demo.

use crate::{Alert, Delivery, Locale, SendError};
use serde::Deserialize;
use std::io::Write;
use std::sync::Mutex;

/// `{type: console}` — no settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {}

/// Writes alerts to a sink (stdout unless a test gives another one), each followed by a blank
/// line. Writes from concurrent sends don't interleave.
pub struct Console {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Console")
    }
}

impl Console {
    pub fn stdout() -> Console {
        Console::with_sink(std::io::stdout())
    }

    /// For commands whose stdout is machine-readable (`once --json`).
    pub fn stderr() -> Console {
        Console::with_sink(std::io::stderr())
    }

    pub fn with_sink(sink: impl Write + Send + 'static) -> Console {
        Console {
            sink: Mutex::new(Box::new(sink)),
        }
    }

    /// Write the alert's title and plain body. An I/O error is retryable.
    pub async fn send(&self, alert: &Alert, locale: Locale) -> Result<Delivery, SendError> {
        self.send_many(std::slice::from_ref(alert), locale).await
    }

    /// Write each alert's plain rendering, in order, in one write.
    pub async fn send_many(&self, alerts: &[Alert], locale: Locale) -> Result<Delivery, SendError> {
        let mut text = String::new();
        for alert in alerts {
            text.push_str(&alert.plain(locale));
            text.push('\n');
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        sink.write_all(text.as_bytes())
            .and_then(|()| sink.flush())
            .map_err(|e| SendError::retryable(format!("console: {e}")))?;
        Ok(Delivery::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlertKind;
    use crate::message::samples::{at, failed, ms};
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn alert() -> Alert {
        Alert {
            kind: AlertKind::Down,
            monitor: "homepage".into(),
            incident_id: "homepage:1".into(),
            at: at(3, 0, 0),
            since: None,
            check: Some("tcp".into()),
            failures: vec![failed("local", "connect", "<", "100ms", "250ms")],
            message: None,
            columns: vec!["dns".into(), "connect".into(), "total".into()],
            locations: vec![crate::LocationRow {
                location: "local".into(),
                ok: false,
                metrics: vec![ms("dns", 1.5), ms("connect", 250.0), ms("total", 251.5)],
                error: None,
                ..crate::LocationRow::default()
            }],
            url: Some("tcp://db.example.com:5432".into()),
            timezone: None,
            notes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn prints_the_plain_rendering() {
        let buf = Buf::default();
        let console = Console::with_sink(buf.clone());
        let a = alert();
        assert_eq!(
            console.send(&a, Locale::ZhCn).await.unwrap(),
            Delivery::default()
        );
        console.send(&a, Locale::En).await.unwrap();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            format!("{}\n{}\n", a.plain(Locale::ZhCn), a.plain(Locale::En))
        );
        assert!(out.starts_with("【故障】homepage\n"));
        assert!(out.contains("  - local: connect 250ms < 100ms\n"));
        // A tcp alert's own metrics.
        assert!(
            out.contains(
                "位置   结果  DNS解析  连接耗时  总耗时\nlocal  异常    1.5ms     250ms   252ms\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "Location  Result    DNS  Connect  Total\nlocal     FAIL    1.5ms    250ms  252ms\n"
            ),
            "{out}"
        );
    }

    #[tokio::test]
    async fn a_write_error_is_retryable() {
        let console = Console::with_sink(Broken);
        let e = console.send(&alert(), Locale::En).await.unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert!(e.message().starts_with("console: "), "{e}");
    }
}
