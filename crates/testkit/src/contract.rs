//! The JSON shapes that docs/contracts.md fixes, written down once for every test that checks them.

/// Keys of `watchpost check --json`, in order.
pub const CHECK_KEYS: [&str; 13] = [
    "url",
    "kind",
    "ok",
    "status",
    "http_version",
    "remote_addr",
    "redirects",
    "timings_ms",
    "size_bytes",
    "speed_bytes_per_sec",
    "headers",
    "tls",
    "error",
];
/// Keys of `timings_ms`, in order.
pub const TIMING_KEYS: [&str; 7] = ["dns", "connect", "tls", "wait", "download", "ttfb", "total"];
/// Keys of `error`.
pub const ERROR_KEYS: [&str; 3] = ["phase", "kind", "message"];
/// Keys of `tls`.
pub const TLS_KEYS: [&str; 3] = ["version", "cert_not_after", "cert_days_left"];

/// Keys of `watchpost check --json` for a tcp check, in order (README, "`watchpost check`").
pub const TCP_CHECK_KEYS: [&str; 7] = [
    "url",
    "kind",
    "ok",
    "remote_addr",
    "timings_ms",
    "banner",
    "error",
];
/// Keys of a tcp check's `timings_ms`, in order.
pub const TCP_TIMING_KEYS: [&str; 3] = ["dns", "connect", "total"];
/// Keys of `watchpost check --json` for a tls check, in order.
pub const TLS_CHECK_KEYS: [&str; 7] = [
    "url",
    "kind",
    "ok",
    "remote_addr",
    "timings_ms",
    "tls",
    "error",
];
/// Keys of a tls check's `timings_ms`, in order.
pub const TLS_TIMING_KEYS: [&str; 4] = ["dns", "connect", "tls", "total"];
/// Keys of `watchpost check --json` for a dns check, in order.
pub const DNS_CHECK_KEYS: [&str; 8] = [
    "url",
    "kind",
    "ok",
    "server",
    "rcode",
    "answers",
    "timings_ms",
    "error",
];
/// Keys of a dns check's `timings_ms`, in order.
pub const DNS_TIMING_KEYS: [&str; 2] = ["query", "total"];

/// A JSON object's keys, in order, to compare with the lists above. Panics when `v` is not an
/// object.
/// Keys of one monitor in `watchpost once --json`, in order.
pub const ONCE_KEYS: [&str; 7] = [
    "name",
    "ok",
    "at",
    "state",
    "notifications",
    "observations",
    "error",
];
/// Keys of a monitor that ran, in `watchpost once --due --json`, in order.
pub const ONCE_DUE_RAN_KEYS: [&str; 8] = [
    "name",
    "ok",
    "at",
    "state",
    "notifications",
    "observations",
    "error",
    "skipped",
];
/// Keys of a monitor that was not due, in `watchpost once --due --json`, in order.
pub const ONCE_NOT_DUE_KEYS: [&str; 8] = [
    "name",
    "ok",
    "skipped",
    "fired",
    "next",
    "notifications",
    "observations",
    "error",
];

pub fn keys(v: &serde_json::Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}
