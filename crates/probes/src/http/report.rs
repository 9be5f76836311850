//! The stable JSON shape of one HTTP check (`watchpost check --json`, docs/contracts.md).
//! Field order and names are a contract: other tools parse this.

use super::HttpResult;
use super::timing::ms;
use crate::error::ProbeError;
use crate::net::tls::TlsInfo;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    pub url: &'a str,
    /// Always `http`.
    pub kind: &'static str,
    pub ok: bool,
    pub status: Option<u16>,
    pub http_version: Option<&'a str>,
    pub remote_addr: Option<String>,
    pub redirects: u32,
    pub timings_ms: TimingsMs,
    pub size_bytes: u64,
    pub speed_bytes_per_sec: f64,
    pub headers: &'a BTreeMap<String, String>,
    pub tls: Option<HttpTls<'a>>,
    pub error: Option<&'a ProbeError>,
}

/// An HTTP check's `tls`: the session facts HTTP has always reported (the `tls` kind reports
/// the whole [`TlsInfo`]).
#[derive(Debug, Serialize)]
pub struct HttpTls<'a> {
    pub version: &'a str,
    pub cert_not_after: Option<&'a str>,
    pub cert_days_left: Option<f64>,
}

impl<'a> HttpTls<'a> {
    pub fn new(tls: &'a TlsInfo) -> Self {
        HttpTls {
            version: &tls.version,
            cert_not_after: tls.cert_not_after.as_deref(),
            cert_days_left: tls.cert_days_left,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TimingsMs {
    pub dns: Option<f64>,
    pub connect: Option<f64>,
    pub tls: Option<f64>,
    pub wait: Option<f64>,
    pub download: Option<f64>,
    pub ttfb: Option<f64>,
    pub total: f64,
}

impl<'a> CheckReport<'a> {
    /// `ok` is the caller's verdict (request succeeded and every expectation held).
    pub fn new(result: &'a HttpResult, ok: bool) -> Self {
        let t = &result.timings;
        CheckReport {
            url: &result.url,
            kind: "http",
            ok,
            status: result.status,
            http_version: result.http_version,
            remote_addr: result.remote_addr.map(|a| a.to_string()),
            redirects: result.redirects,
            timings_ms: TimingsMs {
                dns: t.dns.map(ms),
                connect: t.connect.map(ms),
                tls: t.tls.map(ms),
                wait: t.wait.map(ms),
                download: t.download.map(ms),
                ttfb: t.ttfb.map(ms),
                total: ms(t.total),
            },
            size_bytes: result.size_bytes,
            speed_bytes_per_sec: result.speed_bytes_per_sec(),
            headers: &result.headers,
            tls: result.tls.as_ref().map(HttpTls::new),
            error: result.error.as_ref(),
        }
    }
}
