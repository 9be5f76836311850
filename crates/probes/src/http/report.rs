//! The stable JSON shape of one check (`watchpost check --json`, PRODUCT.md). Field order and
//! names are a contract: other tools parse this.

use super::HttpResult;
use super::error::ProbeError;
use super::timing::ms;
use super::tls::TlsInfo;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    pub url: &'a str,
    pub ok: bool,
    pub status: Option<u16>,
    pub http_version: Option<&'a str>,
    pub remote_addr: Option<String>,
    pub redirects: u32,
    pub timings_ms: TimingsMs,
    pub size_bytes: u64,
    pub speed_bytes_per_sec: f64,
    pub headers: &'a BTreeMap<String, String>,
    pub tls: Option<&'a TlsInfo>,
    pub error: Option<&'a ProbeError>,
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
            tls: result.tls.as_ref(),
            error: result.error.as_ref(),
        }
    }
}
