//! A mergeable summary of a metric's values, for rollups: count, min, max, sum, and a
//! log-scale histogram from which percentiles are read with at most ~1% relative error.
//!
//! Values are bucketed by `ceil(log_γ v)` with γ = 1.02 (a bucket spans 2%); a percentile is
//! the middle of its bucket (relative error ≤ (γ − 1)/(γ + 1) < 1%), clamped to [min, max].
//! Zero and negative values share one bucket (reported as the minimum). Two summaries merge
//! by adding counts, so minutes roll up into hours and hours into days without the raw values.
//! Stored as JSON: `{"n","min","max","sum","h":{"INDEX":COUNT,...}}` (`"z"` is the zero
//! bucket), and a summary of one value as that bare number (a monitor checked once a minute
//! has one value per minute: a third of the bytes).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The bucket growth factor.
const GAMMA: f64 = 1.02;

/// The zero (and negative) bucket's key as stored.
const ZERO: &str = "z";

/// The zero (and negative) bucket's index in memory: below every other, as it is read first.
const ZERO_INDEX: i64 = i64::MIN;

/// A metric's values in one rollup bucket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Stored")]
pub struct Summary {
    pub n: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    /// Histogram bucket index → count (stored with the indices as text, [`ZERO`] for
    /// [`ZERO_INDEX`]).
    h: BTreeMap<i64, u64>,
}

/// A stored bucket key as its index: a key this build can't read counts in the zero bucket.
fn index_of(key: &str) -> i64 {
    key.parse().unwrap_or(ZERO_INDEX)
}

/// The histogram as stored: `{"INDEX":COUNT,...}`.
struct StoredHistogram<'a>(&'a BTreeMap<i64, u64>);

impl Serialize for StoredHistogram<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(index, count)| {
            let key = if *index == ZERO_INDEX {
                ZERO.to_string()
            } else {
                index.to_string()
            };
            (key, count)
        }))
    }
}

/// What a stored summary may be: the whole, or one value.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    One(f64),
    Whole {
        n: u64,
        min: f64,
        max: f64,
        sum: f64,
        h: BTreeMap<String, u64>,
    },
}

impl TryFrom<Stored> for Summary {
    type Error = String;
    fn try_from(s: Stored) -> Result<Summary, String> {
        Ok(match s {
            Stored::One(v) => Summary::of(v),
            Stored::Whole {
                n,
                min,
                max,
                sum,
                h,
            } => Summary {
                n,
                min,
                max,
                sum,
                h: h.iter().fold(BTreeMap::new(), |mut h, (key, count)| {
                    *h.entry(index_of(key)).or_default() += count;
                    h
                }),
            },
        })
    }
}

impl Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Whole<'a> {
            n: u64,
            #[serde(serialize_with = "thousandths")]
            min: f64,
            #[serde(serialize_with = "thousandths")]
            max: f64,
            #[serde(serialize_with = "thousandths")]
            sum: f64,
            h: StoredHistogram<'a>,
        }
        if self.n == 1 {
            thousandths(&self.sum, s)
        } else {
            Whole {
                n: self.n,
                min: self.min,
                max: self.max,
                sum: self.sum,
                h: StoredHistogram(&self.h),
            }
            .serialize(s)
        }
    }
}

/// Stored to a thousandth (a microsecond for times): enough, and a third of the bytes.
fn thousandths<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

fn bucket(value: f64) -> i64 {
    if value <= 0.0 || !value.is_finite() {
        ZERO_INDEX
    } else {
        (value.ln() / GAMMA.ln()).ceil() as i64
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

    /// Add one value (as merging `Summary::of(value)`, without building one).
    pub fn add(&mut self, value: f64) {
        self.n += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        *self.h.entry(bucket(value)).or_default() += 1;
    }

    /// Add `other`'s values to these.
    pub fn merge(&mut self, other: &Summary) {
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        for (k, c) in &other.h {
            *self.h.entry(*k).or_default() += c;
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
        let mut seen = 0;
        // The zero bucket first, then by index (the map's order).
        for (&index, &count) in &self.h {
            seen += count;
            if seen >= rank {
                let value = if index == ZERO_INDEX {
                    self.min
                } else {
                    2.0 * GAMMA.powi(index as i32) / (GAMMA + 1.0)
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
        // One value is stored as the number; more as the whole summary; both read back.
        let json = serde_json::to_string(&Summary::of(12.5)).unwrap();
        assert_eq!(json, "12.5");
        assert_eq!(
            serde_json::from_str::<Summary>(&json).unwrap(),
            Summary::of(12.5)
        );
        let two = of(&[1.0, 2.0]);
        let json = serde_json::to_string(&two).unwrap();
        assert!(
            json.starts_with(r#"{"n":2,"min":1.0,"max":2.0,"sum":3.0,"h":"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), two);
        // Bucket keys are stored as text: the index, "z" for the zero bucket.
        let json = serde_json::to_string(&of(&[0.0, 1.0, 1.0])).unwrap();
        assert!(json.ends_with(r#""h":{"z":1,"0":2}}"#), "{json}");
        let read: Summary =
            serde_json::from_str(r#"{"n":3,"min":0,"max":5,"sum":6,"h":{"z":1,"82":2}}"#).unwrap();
        assert_eq!(read.quantile(0.1), Some(0.0));
        assert!((read.quantile(1.0).unwrap() - 5.0).abs() < 0.1);
        // Adding a value is merging its summary.
        let mut added = of(&values[..500]);
        for v in &values[500..] {
            added.add(*v);
        }
        assert_eq!(added, s);
    }
}
