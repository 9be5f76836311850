//! The server's side of probe locations: who a request comes from (its bearer token), what a
//! location is assigned, and taking a push of observations in (validated, cleaned of secrets,
//! stored idempotently). The web layer turns [`Refused`] into its HTTP status.

use super::wire::{
    Accepted, Assignment, Batch, MAX_FUTURE, MAX_ITEMS, MAX_OBSERVATIONS, MAX_REPORT_BYTES,
    MAX_TEXT_BYTES, Refused, VERSION, WireObservation, fnv_hex, same_secret,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use watchpost_config::Config;
use watchpost_store::ObservationRow;

/// The location whose token `authorization` (an `Authorization` header's value) carries.
/// Every declared token is compared, each in constant time, so the answer's timing says
/// nothing about which token came close.
pub fn authorize<'c>(config: &'c Config, authorization: Option<&str>) -> Result<&'c str, Refused> {
    let unauthorized = |why: &str| Refused::new(401, why);
    let Some(value) = authorization else {
        return Err(unauthorized(
            "missing Authorization: Bearer TOKEN (the location's token)",
        ));
    };
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    else {
        return Err(unauthorized("Authorization must be Bearer TOKEN"));
    };
    let token = token.trim().as_bytes();
    let mut found = None;
    for (name, spec) in &config.locations {
        let Some(expected) = spec.token.as_deref().filter(|t| !t.is_empty()) else {
            continue;
        };
        if same_secret(expected.as_bytes(), token) && found.is_none() {
            found = Some(name.as_str());
        }
    }
    found.ok_or_else(|| unauthorized("the token is not one of a declared location"))
}

/// The monitors `location` runs, cut from the config's text (see [`Assignment::config`]).
pub fn assignment(config: &Config, location: &str) -> Result<Assignment, Refused> {
    let internal = |e: String| Refused::new(500, format!("cannot build the assignment: {e}"));
    let raw: serde_json::Value =
        serde_saphyr::from_str(&config.text).map_err(|e| internal(e.to_string()))?;
    let assigned: BTreeSet<&str> = config
        .monitors
        .iter()
        .filter(|m| m.locations.iter().any(|l| l == location))
        .map(|m| m.name.as_str())
        .collect();
    let mut monitors = Vec::new();
    if let Some(list) = raw.get("monitors").and_then(|m| m.as_array()) {
        for m in list {
            let Some(obj) = m.as_object() else { continue };
            let named = obj.get("name").and_then(|n| n.as_str());
            if !named.is_some_and(|n| assigned.contains(n)) {
                continue;
            }
            let mut obj = obj.clone();
            for key in ["locations", "alert", "maintenance"] {
                obj.remove(key);
            }
            monitors.push(serde_json::Value::Object(obj));
        }
    }
    let mut doc = serde_json::Map::new();
    doc.insert("timezone".into(), config.timezone.name().into());
    doc.insert("monitors".into(), monitors.into());
    let text = serde_json::to_string_pretty(&doc).map_err(|e| internal(e.to_string()))?;
    let mut env = BTreeMap::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if let Some(value) = config.secrets.value(name) {
            env.insert(name.to_string(), value.to_string());
        }
        rest = &after[end + 1..];
    }
    let mut parts = vec![location, text.as_str()];
    for (k, v) in &env {
        parts.push(k);
        parts.push(v);
    }
    Ok(Assignment {
        v: VERSION,
        location: location.to_string(),
        generation: fnv_hex(&parts),
        config: text,
        env,
    })
}

/// The generation of `location`'s assignment (empty when it can't be built).
pub fn generation(config: &Config, location: &str) -> String {
    assignment(config, location)
        .map(|a| a.generation)
        .unwrap_or_default()
}

/// A push from `location` (already authorized): parsed and checked field by field, every
/// string cleaned of the config's secrets. Returns the rows to store and the count of
/// observations the agent said it dropped.
pub fn read_batch(
    config: &Config,
    location: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(Vec<ObservationRow>, u64), Refused> {
    let bad = |why: String| Refused::new(400, why);
    let batch: Batch<WireObservation> = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not a batch of observations: {e}")))?;
    if batch.v != VERSION {
        return Err(bad(format!(
            "v: unknown version {} (this server reads {VERSION})",
            batch.v
        )));
    }
    if batch.location != location {
        return Err(Refused::new(
            401,
            format!(
                "the token is not location {:?}'s (a location reports only for itself)",
                batch.location
            ),
        ));
    }
    if batch.observations.len() > MAX_OBSERVATIONS {
        return Err(bad(format!(
            "observations: {} in one push, at most {MAX_OBSERVATIONS}",
            batch.observations.len()
        )));
    }
    let latest = now + chrono::Duration::from_std(MAX_FUTURE).unwrap_or_default();
    let mut rows = Vec::with_capacity(batch.observations.len());
    for (i, o) in batch.observations.iter().enumerate() {
        let field = |name: &str| format!("observations[{i}].{name}");
        let Some(index) = config.monitors.iter().position(|m| m.name == o.monitor) else {
            return Err(Refused::new(
                403,
                format!(
                    "{}: no monitor {:?} is assigned to location {location:?}",
                    field("monitor"),
                    o.monitor
                ),
            ));
        };
        let monitor = &config.monitors[index];
        if !monitor.locations.iter().any(|l| l == location) {
            return Err(Refused::new(
                403,
                format!(
                    "{}: monitor {:?} is not assigned to location {location:?}",
                    field("monitor"),
                    o.monitor
                ),
            ));
        }
        if o.slot > latest || o.at > latest {
            return Err(bad(format!(
                "{}: more than {} in the future",
                field(if o.slot > latest { "slot" } else { "at" }),
                crate::human_duration(MAX_FUTURE)
            )));
        }
        let job = crate::daemon::job(config, index);
        if !job.fires_at(o.slot) {
            return Err(bad(format!(
                "{}: {} is not a tick of monitor {:?}'s schedule",
                field("slot"),
                o.slot.to_rfc3339(),
                o.monitor
            )));
        }
        if o.failures.len() > MAX_ITEMS || o.metrics.len() > MAX_ITEMS {
            return Err(bad(format!(
                "{}: at most {MAX_ITEMS} failures and {MAX_ITEMS} metrics",
                field("failures")
            )));
        }
        let long = o
            .failures
            .iter()
            .flat_map(|f| [&f.text, &f.actual, &f.expected, &f.operand, &f.op])
            .map(String::as_str)
            .chain(o.error.as_deref())
            .chain(o.metrics.iter().map(|m| m.name.as_ref()))
            .any(|t| t.len() > MAX_TEXT_BYTES);
        if long {
            return Err(bad(format!(
                "{}: a text longer than {MAX_TEXT_BYTES} bytes",
                field("failures")
            )));
        }
        if o.metrics.iter().any(|m| !m.value.is_finite()) {
            return Err(bad(format!(
                "{}: a value is not a number",
                field("metrics")
            )));
        }
        if o.report.get().len() > MAX_REPORT_BYTES {
            return Err(bad(format!(
                "{}: longer than {MAX_REPORT_BYTES} bytes",
                field("report")
            )));
        }
        let mut clean = o.clone();
        for f in &mut clean.failures {
            f.location = location.to_string();
        }
        let text = serde_json::to_string(&clean)
            .map_err(|e| Refused::new(500, format!("internal error: {e}")))?;
        rows.push(ObservationRow {
            monitor: o.monitor.clone(),
            location: location.to_string(),
            slot: o.slot,
            at: o.at,
            ok: o.ok,
            data: config.secrets.redact(&text).into_owned(),
        });
    }
    Ok((rows, batch.dropped))
}

/// Store a read batch ([`read_batch`]) on the blocking pool; the answer for the agent.
pub async fn store_batch(
    store: std::sync::Arc<dyn watchpost_store::Store>,
    config: &Config,
    location: &str,
    rows: Vec<ObservationRow>,
) -> Result<Accepted, Refused> {
    let now = Utc::now();
    let recorded = tokio::task::spawn_blocking(move || store.record_observations(&rows, now))
        .await
        .map_err(|e| Refused::new(500, format!("internal error: {e}")))?
        .map_err(|e| {
            Refused::new(
                503,
                config
                    .secrets
                    .redact(&format!("cannot store the observations: {e}"))
                    .into_owned(),
            )
        })?;
    Ok(Accepted {
        stored: recorded.stored,
        duplicates: recorded.duplicates,
        generation: generation(config, location),
    })
}
