//! The YAML shape, as serde sees it: every field the user can write, with spans where
//! validation needs to point at a value. Nothing here is checked beyond its type.

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

/// A mapping in file order with each key's position, for mappings whose keys are names the
/// user chose (channels, locations, headers): errors about a name point at the name. Duplicate
/// keys are refused by the YAML reader before this sees them.
#[derive(Debug)]
pub struct Keyed<V>(pub Vec<(S<String>, V)>);

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Keyed<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyedVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for KeyedVisitor<V> {
            type Value = Keyed<V>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of names to settings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keyed<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<S<String>, V>()? {
                    entries.push(entry);
                }
                Ok(Keyed(entries))
            }
        }

        deserializer.deserialize_map(KeyedVisitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub timezone: Option<S<String>>,
    pub storage: Option<S<String>>,
    pub locale: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub concurrency: Option<S<u32>>,
    pub delivery: Option<RawDelivery>,
    #[serde(default)]
    pub channels: Keyed<S<serde_json::Value>>,
    #[serde(default)]
    pub locations: Keyed<RawLocation>,
    #[serde(default)]
    pub monitors: Vec<RawMonitor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Give a notification up (keeping it, with its last error) after retrying this long.
    pub max_age: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocation {
    pub region: Option<String>,
    pub isp: Option<String>,
    pub token: Option<String>,
}

/// The monitor kinds: a closed set. Kind-specific fields are checked in validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorKind {
    Http,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub kind: S<MonitorKind>,
    // http
    pub url: Option<S<String>>,
    pub method: Option<S<String>>,
    #[serde(default)]
    pub headers: Keyed<S<String>>,
    pub body: Option<String>,
    pub insecure: Option<bool>,
    pub follow_redirects: Option<bool>,
    pub max_body: Option<S<String>>,
    // every kind
    pub schedule: Option<S<String>>,
    pub every: Option<S<String>>,
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub locations: Vec<S<String>>,
    #[serde(default)]
    pub conditions: Vec<S<String>>,
    pub alert: Option<RawAlert>,
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    #[serde(default)]
    pub channels: Vec<S<String>>,
    pub failure_threshold: Option<S<u32>>,
    pub success_threshold: Option<S<u32>>,
    pub send_resolved: Option<bool>,
    pub repeat: Option<S<String>>,
    pub quorum: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub start: S<String>,
    pub duration: S<String>,
    pub timezone: Option<S<String>>,
}
