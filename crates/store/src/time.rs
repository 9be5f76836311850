//! Times as INTEGER nanoseconds since the Unix epoch.

use chrono::{DateTime, Utc};

use crate::StoreError;

pub(crate) fn to_db(t: DateTime<Utc>) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::TimeOutOfRange(t.to_rfc3339()))
}

pub(crate) fn from_db(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

pub(crate) fn opt_from_db(nanos: Option<i64>) -> Option<DateTime<Utc>> {
    nanos.map(from_db)
}
