//! Phase timings. Marks are taken as instants relative to one start (as curl does) and each
//! phase is the difference between two consecutive marks, so phases always add up:
//! `ttfb = dns + connect + tls + wait` and `total = ttfb + download` for a single hop.

use std::time::{Duration, Instant};

/// Durations of each phase. `None` means the phase did not happen (`tls` on plain HTTP) or was
/// never reached because an earlier phase failed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    pub wait: Option<Duration>,
    pub download: Option<Duration>,
    pub ttfb: Option<Duration>,
    pub total: Duration,
}

impl Timings {
    /// Add another hop's phases (redirects): each phase is summed, `None + x = x`.
    pub(crate) fn add_hop(&mut self, hop: &Timings) {
        fn sum(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                (a, b) => a.or(b),
            }
        }
        self.dns = sum(self.dns, hop.dns);
        self.connect = sum(self.connect, hop.connect);
        self.tls = sum(self.tls, hop.tls);
        self.wait = sum(self.wait, hop.wait);
        self.download = sum(self.download, hop.download);
        self.ttfb = match (self.dns, self.connect, self.wait) {
            (Some(d), Some(c), Some(w)) if hop.ttfb.is_some() => Some(
                d.saturating_add(c)
                    .saturating_add(self.tls.unwrap_or_default())
                    .saturating_add(w),
            ),
            _ => None,
        };
    }
}

/// Marks taken during one hop. Each `Option<Instant>` is set when its phase completes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    pub start: Instant,
    pub dns_done: Option<Instant>,
    pub connected: Option<Instant>,
    pub tls_done: Option<Instant>,
    pub first_byte: Option<Instant>,
    pub last_byte: Option<Instant>,
}

impl Marks {
    pub fn new(start: Instant) -> Self {
        Marks {
            start,
            dns_done: None,
            connected: None,
            tls_done: None,
            first_byte: None,
            last_byte: None,
        }
    }

    /// Turn marks into phase durations. `end` is when the hop finished (successfully or not):
    /// the phase that was in progress at `end` gets the time spent in it, so a stalled phase
    /// shows where the time went even when it failed.
    pub fn timings(&self, tls_used: bool, end: Instant) -> Timings {
        let mut t = Timings {
            total: end.saturating_duration_since(self.start),
            ..Timings::default()
        };
        let mut prev = self.start;
        // Walk the phases in order: completed ones get their span, the first incomplete one
        // gets `end - prev`, later ones stay None.
        let steps: [(Option<Instant>, bool); 5] = [
            (self.dns_done, true),
            (self.connected, true),
            (self.tls_done, tls_used),
            (self.first_byte, true),
            (self.last_byte, true),
        ];
        let mut spans: [Option<Duration>; 5] = [None; 5];
        for (i, (mark, applies)) in steps.iter().enumerate() {
            if !applies {
                continue;
            }
            match mark {
                Some(m) => {
                    spans[i] = Some(m.saturating_duration_since(prev));
                    prev = *m;
                }
                None => {
                    spans[i] = Some(end.saturating_duration_since(prev));
                    break;
                }
            }
        }
        [t.dns, t.connect, t.tls, t.wait, t.download] = spans;
        t.ttfb = self
            .first_byte
            .map(|fb| fb.saturating_duration_since(self.start));
        if let Some(last) = self.last_byte {
            t.total = last.saturating_duration_since(self.start);
        }
        t
    }
}

/// Milliseconds as a float, rounded to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 1_000.0).round() / 1_000.0
}
