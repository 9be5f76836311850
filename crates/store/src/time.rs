//! Times as INTEGER nanoseconds since the Unix epoch, and the arithmetic on them. Nothing here
//! panics: out-of-range inputs are [`StoreError::TimeOutOfRange`] or saturate, as documented
//! per function.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::StoreError;

/// `t` as nanoseconds since the epoch; [`StoreError::TimeOutOfRange`] outside 1677–2262.
pub(crate) fn to_db(t: DateTime<Utc>) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::TimeOutOfRange(t.to_rfc3339()))
}

/// Every `i64` is a valid time, so reading never fails.
pub(crate) fn from_db(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

pub(crate) fn opt_from_db(nanos: Option<i64>) -> Option<DateTime<Utc>> {
    nanos.map(from_db)
}

/// `d` in nanoseconds, saturating at `i64::MAX`.
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A stored nanosecond count as a duration; a negative count (a damaged row) reads as zero.
pub(crate) fn duration_from_db(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// `t + d`, or [`StoreError::TimeOutOfRange`] when that leaves the storable range.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>, StoreError> {
    let sum = TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .ok_or_else(|| StoreError::TimeOutOfRange(format!("{} + {d:?}", t.to_rfc3339())))?;
    to_db(sum)?;
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_never_panic() {
        assert!(to_db(DateTime::<Utc>::MAX_UTC).is_err());
        assert!(to_db(DateTime::<Utc>::MIN_UTC).is_err());
        assert_eq!(from_db(i64::MIN).timestamp_nanos_opt(), Some(i64::MIN));
        assert_eq!(from_db(i64::MAX).timestamp_nanos_opt(), Some(i64::MAX));
        assert_eq!(nanos(Duration::MAX), i64::MAX);
        assert_eq!(nanos(Duration::from_secs(2)), 2_000_000_000);
        assert_eq!(duration_from_db(-5), Duration::ZERO);
        assert_eq!(
            duration_from_db(i64::MAX),
            Duration::from_nanos(i64::MAX as u64)
        );
        let late = from_db(i64::MAX - 1);
        assert!(matches!(
            add(late, Duration::from_secs(1)),
            Err(StoreError::TimeOutOfRange(_))
        ));
        assert!(matches!(
            add(DateTime::<Utc>::MAX_UTC, Duration::MAX),
            Err(StoreError::TimeOutOfRange(_))
        ));
        assert!(add(DateTime::<Utc>::MAX_UTC, Duration::ZERO).is_err());
        assert_eq!(
            add(from_db(0), Duration::from_secs(3)).unwrap(),
            from_db(3_000_000_000)
        );
    }
}
