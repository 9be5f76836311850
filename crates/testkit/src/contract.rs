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
