//! A mergeable summary of a metric's values, for rollups: count, min, max, sum, and a
//! log-scale histogram from which percentiles are read with at most ~1% relative error.
//!
//! Values are bucketed by `ceil(log_γ v)` with γ = 1.02 (a bucket spans 2%); a percentile is
//! the middle of its bucket (relative error ≤ (γ − 1)/(γ + 1) < 1%), clamped to [min, max].
//! Zero and negative values share one bucket (reported as the minimum). Two summaries merge
//! by adding counts, so minutes roll up into hours and hours into days without the raw values.
//! Stored as JSON: `{"n","min","max","sum","h":{"INDEX":COUNT,...}}` (`"z"` is the zero
//! bucket).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The bucket growth factor.
const GAMMA: f64 = 1.02;

/// The zero (and negative) bucket's key.
const ZERO: &str = "z";

/// A metric's values in one rollup bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    /// Histogram bucket → count.
    h: BTreeMap<String, u64>,
}

fn bucket(value: f64) -> String {
    if value <= 0.0 || !value.is_finite() {
        ZERO.to_string()
    } else {
        (value.ln() / GAMMA.ln()).ceil().to_string()
    }
}

impl Summary {
    /// The summary of one value.
    pub fn of(value: f64) -> Summary {
        let mut h = BTreeMap::new();
        h.insert(bucket(value), 1);
        Summary {
            n: 1,
            min: value,
            max: value,
            sum: value,
            h,
        }
    }

    /// Add `other`'s values to these.
    pub fn merge(&mut self, other: &Summary) {
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        for (k, c) in &other.h {
            *self.h.entry(k.clone()).or_default() += c;
        }
    }

    /// The mean of the values.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The `q` quantile (0..=1) of the values, within ~1%; `None` without values.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.n as f64).ceil() as u64).max(1);
        let mut buckets: Vec<(Option<i64>, u64)> = self
            .h
            .iter()
            .map(|(k, c)| (if k == ZERO { None } else { k.parse().ok() }, *c))
            .collect();
        // The zero bucket first, then by index.
        buckets.sort_by_key(|(i, _)| i.map_or(i64::MIN, |i| i));
        let mut seen = 0;
        for (index, count) in buckets {
            seen += count;
            if seen >= rank {
                let value = match index {
                    None => self.min,
                    Some(i) => 2.0 * GAMMA.powi(i as i32) / (GAMMA + 1.0),
                };
                return Some(value.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Summary {
        let mut s = Summary::of(values[0]);
        for v in &values[1..] {
            s.merge(&Summary::of(*v));
        }
        s
    }

    #[test]
    fn percentiles_within_one_percent_and_merging_equals_summing() {
        let values: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.37).collect();
        let s = of(&values);
        assert_eq!(s.n, 1000);
        assert_eq!(s.min, 0.37);
        assert_eq!(s.max, 370.0);
        for (q, exact) in [(0.5, 185.0), (0.95, 351.5), (0.99, 366.3)] {
            let got = s.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact < 0.011,
                "q{q}: {got} vs {exact}"
            );
        }
        // Two halves merged give the same summary as all at once.
        let mut a = of(&values[..500]);
        a.merge(&of(&values[500..]));
        assert_eq!(a.h, s.h);
        assert_eq!(a.n, s.n);
        assert!((a.sum - s.sum).abs() < 1e-6);
        // Zeros count, and come first.
        let z = of(&[0.0, 0.0, 0.0, 10.0]);
        assert_eq!(z.quantile(0.5), Some(0.0));
        assert!((z.quantile(1.0).unwrap() - 10.0).abs() < 0.1);
        let json = serde_json::to_string(&Summary::of(12.5)).unwrap();
        assert_eq!(
            serde_json::from_str::<Summary>(&json).unwrap(),
            Summary::of(12.5)
        );
    }
}
