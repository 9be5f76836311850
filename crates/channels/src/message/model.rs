//! The typed model of a message: what an alert says, in one locale, before any format.
//!
//! Every renderer lays this out in its own format; none reads another renderer's output, and
//! none finds a part by its position or its translated label — facts carry a [`FactKind`],
//! table columns a numeric flag, rows their verdict, cells and error separately.

use super::texts::{Texts, metric_label};
use super::{Alert, AlertKind, Locale, human_duration, one_line};

/// One alert, ready to lay out.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: AlertKind,
    pub locale: Locale,
    /// `[DOWN] homepage` / `【故障】homepage`.
    pub title: String,
    /// One sentence: `homepage is DOWN.`
    pub summary: String,
    /// The word in front of each note (`Note` / `注意`).
    pub note_label: &'static str,
    /// watchpost's own remarks, one line each.
    pub notes: Vec<String>,
    /// Time, down since, duration, URL, incident.
    pub facts: Vec<Fact>,
    /// The failed conditions (or a test alert's message); None when there is nothing to list.
    pub failures: Option<Failures>,
    /// The per-location table; None without locations.
    pub table: Option<Table>,
}

/// A labelled value.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub label: &'static str,
    /// One line.
    pub value: String,
    pub kind: FactKind,
}

/// How a fact's value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// Words and times.
    Text,
    /// What the monitor checks: a link when it is http(s).
    Url,
    /// An identifier (the incident): monospace.
    Code,
}

/// The list of failed conditions under its heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Failures {
    /// `Failing conditions` / `Was failing` / `Message` (a test alert's).
    pub heading: &'static str,
    /// One line each: `LOCATION: total 1430ms > 1000ms`.
    pub items: Vec<String>,
}

/// The per-location table: a location column, a verdict column, one column per metric, and
/// an error column when some row has an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `Locations` / `各地探测`.
    pub heading: &'static str,
    /// `Location` / `位置`.
    pub location_label: &'static str,
    /// `Result` / `结果`.
    pub verdict_label: &'static str,
    /// The metric columns, in order.
    pub columns: Vec<Column>,
    /// `Error` / `错误`, when some row has an error (None: no error column).
    pub error_label: Option<&'static str>,
    pub rows: Vec<Row>,
}

/// One metric column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The metric's name (`connect`).
    pub name: String,
    /// Its label in the locale (`Connect` / `连接耗时`).
    pub label: String,
    /// Right-aligned (every metric is a number).
    pub numeric: bool,
}

/// One location.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The location's name, one line.
    pub location: String,
    pub ok: bool,
    /// `OK` / `FAIL` (`正常` / `异常`).
    pub verdict: &'static str,
    /// One per column: the value as people read it (`27.0ms`, `200`, `9.5d`), None when not
    /// measured here.
    pub cells: Vec<Option<String>>,
    /// The probe's error, one line.
    pub error: Option<String>,
}

impl Table {
    /// Every label of the header in order: location, verdict, the metrics, error.
    pub fn header(&self) -> Vec<String> {
        let mut h = vec![
            self.location_label.to_string(),
            self.verdict_label.to_string(),
        ];
        h.extend(self.columns.iter().map(|c| c.label.clone()));
        h.extend(self.error_label.map(str::to_string));
        h
    }

    /// Whether each header column is numeric (see [`Table::header`]).
    pub fn numeric(&self) -> Vec<bool> {
        let mut n = vec![false, false];
        n.extend(self.columns.iter().map(|c| c.numeric));
        if self.error_label.is_some() {
            n.push(false);
        }
        n
    }
}

impl Row {
    /// Every cell of the row as text, in [`Table::header`]'s order; `-` for a value not
    /// measured, empty for no error.
    pub fn texts(&self, table: &Table) -> Vec<String> {
        let mut out = vec![self.location.clone(), self.verdict.to_string()];
        out.extend(
            self.cells
                .iter()
                .map(|c| c.clone().unwrap_or_else(|| "-".into())),
        );
        if table.error_label.is_some() {
            out.push(self.error.clone().unwrap_or_default());
        }
        out
    }
}

impl Message {
    /// The model of `alert` in `locale`.
    pub fn of(alert: &Alert, locale: Locale) -> Message {
        let t = Texts::of(locale);
        Message {
            kind: alert.kind,
            locale,
            title: alert.title(locale),
            summary: alert.summary(locale),
            note_label: t.note,
            notes: alert.notes.iter().map(|n| one_line(n)).collect(),
            facts: facts(alert, locale),
            failures: failures(alert, locale),
            table: table(alert, locale),
        }
    }

    /// The colon after a label in this locale.
    pub fn colon(&self) -> &'static str {
        Texts::of(self.locale).colon
    }
}

fn facts(alert: &Alert, locale: Locale) -> Vec<Fact> {
    let t = Texts::of(locale);
    let fact = |label, value, kind| Fact { label, value, kind };
    let mut facts = vec![fact(t.time, alert.local_time(alert.at), FactKind::Text)];
    if let Some(since) = alert.since {
        facts.push(fact(t.since, alert.local_time(since), FactKind::Text));
        if matches!(alert.kind, AlertKind::Reminder | AlertKind::Resolved) {
            facts.push(fact(
                t.duration,
                human_duration(alert.at - since, locale),
                FactKind::Text,
            ));
        }
    }
    if let Some(url) = &alert.url {
        facts.push(fact(t.url, one_line(url), FactKind::Url));
    }
    if alert.kind != AlertKind::Test {
        facts.push(fact(
            t.incident,
            one_line(&alert.incident_id),
            FactKind::Code,
        ));
    }
    facts
}

fn failures(alert: &Alert, locale: Locale) -> Option<Failures> {
    let t = Texts::of(locale);
    let (heading, items): (&'static str, Vec<String>) = match alert.kind {
        AlertKind::Test => {
            let mut items: Vec<String> = alert
                .message
                .iter()
                .map(|m| one_line(m))
                .filter(|m| !m.is_empty())
                .collect();
            items.extend(alert.failures.iter().map(|f| f.line()));
            (t.message, items)
        }
        AlertKind::Down | AlertKind::Reminder => {
            (t.failing, alert.failures.iter().map(|f| f.line()).collect())
        }
        AlertKind::Resolved => (
            t.was_failing,
            alert.failures.iter().map(|f| f.line()).collect(),
        ),
    };
    (!items.is_empty()).then_some(Failures { heading, items })
}

/// The metric names shown as columns: the alert's list, or every metric of the rows in the
/// order first seen; in both cases only those some row has.
fn column_names(alert: &Alert) -> Vec<String> {
    let present = |name: &str| alert.locations.iter().any(|l| l.metric(name).is_some());
    let mut names: Vec<String> = Vec::new();
    if alert.columns.is_empty() {
        for l in &alert.locations {
            for m in &l.metrics {
                if !names.iter().any(|n| *n == m.name) {
                    names.push(m.name.to_string());
                }
            }
        }
    } else {
        for c in &alert.columns {
            if present(c) && !names.contains(c) {
                names.push(c.clone());
            }
        }
    }
    names
}

fn table(alert: &Alert, locale: Locale) -> Option<Table> {
    if alert.locations.is_empty() {
        return None;
    }
    let t = Texts::of(locale);
    let names = column_names(alert);
    let columns = names
        .iter()
        .map(|name| Column {
            name: name.clone(),
            label: metric_label(name, locale).into_owned(),
            numeric: true,
        })
        .collect();
    let rows = alert
        .locations
        .iter()
        .map(|l| Row {
            location: one_line(&l.location),
            ok: l.ok,
            verdict: if l.ok { t.ok } else { t.fail },
            cells: names
                .iter()
                .map(|n| l.metric(n).map(|m| m.display()))
                .collect(),
            error: l.error.as_deref().map(one_line),
        })
        .collect();
    let with_error = alert.locations.iter().any(|l| l.error.is_some());
    Some(Table {
        heading: t.locations,
        location_label: t.location,
        verdict_label: t.result,
        columns,
        error_label: with_error.then_some(t.error),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::super::samples::*;
    use super::*;

    #[test]
    fn http_columns_in_the_kinds_order_and_only_those_measured() {
        let m = down().model(Locale::En);
        let table = m.table.unwrap();
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "status", "dns", "connect", "tls", "wait", "download", "total"
            ]
        );
        assert_eq!(table.rows[2].cells[0], None, "no status without a response");
        assert_eq!(table.rows[2].cells[1].as_deref(), Some("2.1ms"));
        assert_eq!(table.error_label, Some("Error"));
        let mut plain_http = down();
        for l in &mut plain_http.locations {
            l.metrics.retain(|m| m.name != "tls");
        }
        let table = plain_http.model(Locale::ZhCn).table.unwrap();
        assert!(table.columns.iter().all(|c| c.name != "tls"));
        assert_eq!(table.columns[1].label, "DNS解析");
    }

    #[test]
    fn without_columns_every_metric_in_order() {
        let mut a = tls_down();
        a.columns.clear();
        let table = a.model(Locale::En).table.unwrap();
        let labels: Vec<&str> = table.columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["DNS", "Connect", "TLS", "Total", "Cert days"]);
        assert_eq!(table.error_label, None);
    }

    #[test]
    fn facts_are_typed() {
        let m = down().model(Locale::En);
        let kinds: Vec<(&str, FactKind)> = m.facts.iter().map(|f| (f.label, f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("Time", FactKind::Text),
                ("Down since", FactKind::Text),
                ("URL", FactKind::Url),
                ("Incident", FactKind::Code)
            ]
        );
    }
}
