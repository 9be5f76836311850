//! The typed model of a message: what an alert says, in one locale, before any format.
//!
//! Every renderer lays this out in its own format; none reads another renderer's output, and
//! none finds a part by its position or its translated label — facts carry a [`FactKind`],
//! table columns a numeric flag, rows their [`Outcome`], region, ISP, cells and error
//! separately.

use super::texts::{Texts, metric_label};
use super::{Alert, AlertKind, Locale, human_duration, one_line};

/// One alert, ready to lay out.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: AlertKind,
    pub locale: Locale,
    /// `[DOWN] homepage` / `【故障】homepage`.
    pub title: String,
    /// What happened: `homepage is DOWN.`, with several locations followed by which fail
    /// ([`Alert::locations_sentence`]).
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

/// The per-location table: a location column, region and ISP columns when some row has
/// one, a verdict column, one column per metric, and an error column when some row has an
/// error.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `Locations` / `各地探测`.
    pub heading: &'static str,
    /// `Location` / `位置`.
    pub location_label: &'static str,
    /// `Region` / `地区`, when some row has a region (None: no region column).
    pub region_label: Option<&'static str>,
    /// `ISP` / `运营商`, when some row has an ISP (None: no ISP column).
    pub isp_label: Option<&'static str>,
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

/// How a location fared in the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It reported and passed its conditions.
    Passed,
    /// It reported and failed them.
    Failed,
    /// It did not report: neither passed nor failed.
    Missing,
}

/// One location.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The location's name, one line.
    pub location: String,
    /// Where it is (`广东佛山`), one line; None when unknown.
    pub region: Option<String>,
    /// Its network (`电信`), one line; None when unknown.
    pub isp: Option<String>,
    pub outcome: Outcome,
    /// `OK` / `FAIL` / `MISSING` (`正常` / `异常` / `未上报`).
    pub verdict: &'static str,
    /// One per column: the value as people read it (`27.0ms`, `200`, `9.5d`), None when not
    /// measured here (always None for a missing location).
    pub cells: Vec<Option<String>>,
    /// The probe's error, one line.
    pub error: Option<String>,
}

impl Table {
    /// Every label of the header in order: location, region, ISP, verdict, the metrics,
    /// error (region, ISP and error only when the table has them).
    pub fn header(&self) -> Vec<String> {
        let mut h = vec![self.location_label.to_string()];
        h.extend(self.region_label.map(str::to_string));
        h.extend(self.isp_label.map(str::to_string));
        h.push(self.verdict_label.to_string());
        h.extend(self.columns.iter().map(|c| c.label.clone()));
        h.extend(self.error_label.map(str::to_string));
        h
    }

    /// Whether each header column is numeric (see [`Table::header`]).
    pub fn numeric(&self) -> Vec<bool> {
        let mut n = vec![false; self.verdict_index() + 1];
        n.extend(self.columns.iter().map(|c| c.numeric));
        if self.error_label.is_some() {
            n.push(false);
        }
        n
    }

    /// The position of the verdict in [`Table::header`] (and in [`Row::texts`]).
    pub fn verdict_index(&self) -> usize {
        1 + usize::from(self.region_label.is_some()) + usize::from(self.isp_label.is_some())
    }
}

impl Row {
    /// Every cell of the row as text, in [`Table::header`]'s order: `-` for an unknown
    /// region or ISP and for a value not measured, empty metric cells for a missing
    /// location, empty for no error.
    pub fn texts(&self, table: &Table) -> Vec<String> {
        self.texts_with(table, |s| s.to_string())
    }

    /// [`Row::texts`], the free text (location, region, ISP, error) passed through `free`
    /// (an escape); the verdict and the values are ours.
    pub fn texts_with(&self, table: &Table, free: impl Fn(&str) -> String) -> Vec<String> {
        let known = |v: &Option<String>| v.as_deref().map(&free).unwrap_or_else(|| "-".into());
        let mut out = vec![free(&self.location)];
        if table.region_label.is_some() {
            out.push(known(&self.region));
        }
        if table.isp_label.is_some() {
            out.push(known(&self.isp));
        }
        out.push(self.verdict.to_string());
        let missing = self.outcome == Outcome::Missing;
        out.extend(self.cells.iter().map(|c| match c {
            Some(v) => v.clone(),
            None if missing => String::new(),
            None => "-".into(),
        }));
        if table.error_label.is_some() {
            out.push(self.error.as_deref().map(&free).unwrap_or_default());
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
/// order first seen; in both cases only those some row that reported has.
fn column_names(alert: &Alert) -> Vec<String> {
    let reported = || alert.locations.iter().filter(|l| !l.missing);
    let present = |name: &str| reported().any(|l| l.metric(name).is_some());
    let mut names: Vec<String> = Vec::new();
    if alert.columns.is_empty() {
        for l in reported() {
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
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(one_line)
            .filter(|v: &String| !v.is_empty())
    };
    let rows: Vec<Row> = alert
        .locations
        .iter()
        .map(|l| {
            let outcome = if l.missing {
                Outcome::Missing
            } else if l.ok {
                Outcome::Passed
            } else {
                Outcome::Failed
            };
            let missing = outcome == Outcome::Missing;
            Row {
                location: one_line(&l.location),
                region: text(&l.region),
                isp: text(&l.isp),
                outcome,
                verdict: match outcome {
                    Outcome::Passed => t.ok,
                    Outcome::Failed => t.fail,
                    Outcome::Missing => t.missing,
                },
                cells: names
                    .iter()
                    .map(|n| l.metric(n).filter(|_| !missing).map(|m| m.display()))
                    .collect(),
                error: l.error.as_deref().map(one_line).filter(|_| !missing),
            }
        })
        .collect();
    let with_error = rows.iter().any(|r| r.error.is_some());
    let with_region = rows.iter().any(|r| r.region.is_some());
    let with_isp = rows.iter().any(|r| r.isp.is_some());
    Some(Table {
        heading: t.locations,
        location_label: t.location,
        region_label: with_region.then_some(t.region),
        isp_label: with_isp.then_some(t.isp),
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

    #[test]
    fn a_missing_location_is_its_own_outcome_with_no_values() {
        let mut a = multi_location();
        // Whatever a missing row carries, it shows no value and no error.
        a.locations[2].metrics = vec![ms("total", 9.0)];
        a.locations[2].error = Some("stale".into());
        a.locations[2].ok = true;
        let table = a.model(Locale::En).table.unwrap();
        let outcomes: Vec<Outcome> = table.rows.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            [Outcome::Passed, Outcome::Failed, Outcome::Missing]
        );
        assert_eq!(table.rows[2].verdict, "MISSING");
        assert!(table.rows[2].cells.iter().all(Option::is_none));
        assert_eq!(table.rows[2].error, None);
        assert_eq!(table.error_label, None);
        assert_eq!(table.region_label, Some("Region"));
        assert_eq!(table.isp_label, Some("ISP"));
        assert_eq!(table.verdict_index(), 3);
        assert_eq!(table.rows[1].isp, None);
        let zh = a.model(Locale::ZhCn).table.unwrap();
        assert_eq!(
            (zh.region_label, zh.isp_label, zh.rows[2].verdict),
            (Some("地区"), Some("运营商"), "未上报")
        );
        // A single-location alert has neither column.
        let single = tls_down().model(Locale::En).table.unwrap();
        assert_eq!((single.region_label, single.isp_label), (None, None));
        assert_eq!(single.verdict_index(), 1);
        // A blank region is no region.
        let mut b = tls_down();
        b.locations[0].region = Some("  ".into());
        assert_eq!(b.model(Locale::En).table.unwrap().region_label, None);
    }

    #[test]
    fn columns_come_from_the_locations_that_reported() {
        let mut a = multi_location();
        a.columns.clear();
        a.locations[2].metrics = vec![ms("query", 1.0)];
        let table = a.model(Locale::En).table.unwrap();
        assert!(table.columns.iter().all(|c| c.name != "query"));
    }
}
