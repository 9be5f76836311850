//! The values substituted from `${NAME}`, and masking them in any text.
//!
//! Every `${NAME}` the config substitutes (in channels, URLs, headers, bodies, tokens, storage)
//! is recorded here as (NAME, value). [`Secrets::redact`] replaces each value found in a text
//! with `${NAME}`, so output, logs, stored results and alert messages show what the config
//! says rather than what the environment holds. A value is found as written and in the forms it
//! takes on the way out: percent-encoded as it would appear inside a URL (path, query,
//! userinfo, fragment, form encoding, or every non-alphanumeric byte encoded) and escaped inside
//! a JSON string.
//!
//! Values shorter than [`Secrets::MIN_MASKED_CHARS`] characters are recorded but not masked:
//! masking `1` or `on` would garble every number and word in the text while hiding nothing
//! worth hiding. Such values are not secrets in any useful sense.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::borrow::Cow;
use std::sync::OnceLock;

/// The values of `${NAME}`s substituted into a config. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets {
    /// (name, value), in the order first substituted, without repeats.
    entries: Vec<(String, String)>,
    /// Built on the first `redact`, rebuilt after `add`.
    matcher: OnceLock<Option<Matcher>>,
}

#[derive(Clone)]
struct Matcher {
    automaton: AhoCorasick,
    /// For each pattern of `automaton`, the `${NAME}` that replaces it.
    replacements: Vec<String>,
}

impl Secrets {
    /// Values with fewer characters than this are not masked (see the module docs).
    pub const MIN_MASKED_CHARS: usize = 4;

    /// No values recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `${name}` was substituted with `value`.
    pub fn add(&mut self, name: &str, value: &str) {
        if self.entries.iter().any(|(n, v)| n == name && v == value) {
            return;
        }
        self.entries.push((name.to_string(), value.to_string()));
        self.matcher = OnceLock::new();
    }

    /// The (name, value) pairs recorded, in the order first substituted.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value substituted for `${name}` (the first one, if it had several).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when no `${NAME}` was substituted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names substituted, in the order first seen (a name appears once per distinct value).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// `text` with every recorded value (of at least [`Self::MIN_MASKED_CHARS`] characters),
    /// and each of its encoded forms, replaced by `${NAME}`. Where values overlap the longest
    /// match wins. Borrows `text` when there is nothing to mask.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(matcher) = self.matcher.get_or_init(|| self.build()) else {
            return Cow::Borrowed(text);
        };
        if !matcher.automaton.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in matcher.automaton.find_iter(text) {
            out.push_str(&text[last..m.start()]);
            out.push_str(&matcher.replacements[m.pattern().as_usize()]);
            last = m.end();
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    fn build(&self) -> Option<Matcher> {
        let mut patterns: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.entries {
            if value.chars().count() < Self::MIN_MASKED_CHARS {
                continue;
            }
            for form in forms(value) {
                if form.chars().count() >= Self::MIN_MASKED_CHARS
                    && !patterns.iter().any(|(p, _)| *p == form)
                {
                    patterns.push((form, format!("${{{name}}}")));
                }
            }
        }
        if patterns.is_empty() {
            return None;
        }
        // Longest first, so that on equal starts the longer value is the one masked.
        patterns.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::NoncontiguousNFA))
            .build(patterns.iter().map(|(p, _)| p.as_str()))
            .ok()?;
        Some(Matcher {
            automaton,
            replacements: patterns.into_iter().map(|(_, r)| r).collect(),
        })
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The names say which variables were used; the values never leave.
        f.debug_struct("Secrets")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// `value` as written and as it appears once encoded in a URL or a JSON string.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    if let Ok(json) = serde_json::to_string(value) {
        out.push(json[1..json.len() - 1].to_string());
    }
    out.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    out.push(utf8_percent_encode(value, NON_ALPHANUMERIC).to_string());
    // The url crate's own encodings, per part of a URL.
    if let Ok(mut u) = url::Url::parse("http://host/") {
        u.set_query(Some(value));
        out.extend(u.query().map(str::to_string));
        u.set_fragment(Some(value));
        out.extend(u.fragment().map(str::to_string));
        if u.set_username(value).is_ok() {
            out.push(u.username().to_string());
        }
        if u.set_password(Some(value)).is_ok() {
            out.extend(u.password().map(str::to_string));
        }
        out.push(path_form(&mut u, value));
    }
    out
}

/// `value` as the url crate writes it in a path, segment by segment (a special scheme reads a
/// backslash as a slash; dot segments are left as they are).
fn path_form(u: &mut url::Url, value: &str) -> String {
    value
        .replace('\\', "/")
        .split('/')
        .map(|segment| {
            if segment.is_empty() || segment == "." || segment == ".." {
                return segment.to_string();
            }
            u.set_path(segment);
            u.path().trim_start_matches('/').to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::new();
        for (n, v) in pairs {
            s.add(n, v);
        }
        s
    }

    #[test]
    fn masks_values_and_their_encoded_forms() {
        let s = secrets(&[("TOKEN", "p@ss w/rd?&=#ü"), ("KEY", "hunter2")]);
        assert_eq!(
            s.redact("key=hunter2 and p@ss w/rd?&=#ü"),
            "key=${KEY} and ${TOKEN}"
        );
        // Query, form, userinfo, path and JSON forms.
        let mut u = url::Url::parse("http://user@example.com/a").unwrap();
        u.set_password(Some("p@ss w/rd?&=#ü")).unwrap();
        u.set_query(Some("t=p@ss w/rd?&=#ü"));
        let shown = s.redact(u.as_str());
        assert!(!shown.contains("rd"), "{shown}");
        assert!(shown.contains("${TOKEN}"), "{shown}");
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("t", "p@ss w/rd?&=#ü")
            .finish();
        assert_eq!(s.redact(&form), "t=${TOKEN}");
        let json = serde_json::json!({"t": "x\"p@ss w/rd?&=#ü"}).to_string();
        assert!(!s.redact(&json).contains("rd"), "{json}");
        let mut p = url::Url::parse("http://example.com/").unwrap();
        p.set_path("/files/p@ss w/rd?&=#ü/x");
        assert!(!s.redact(p.as_str()).contains("rd"), "{p}");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_longest_value_wins_and_short_values_are_kept() {
        let s = secrets(&[("SHORT", "abcd"), ("LONG", "abcdefgh"), ("TINY", "1")]);
        assert_eq!(s.redact("abcdefgh abcd 1"), "${LONG} ${SHORT} 1");
        assert!(!s.is_empty());
        assert!(Secrets::new().is_empty());
        assert_eq!(secrets(&[("TINY", "on")]).redact("on and on"), "on and on");
    }

    #[test]
    fn debug_never_shows_values() {
        let s = secrets(&[("TOKEN", "s3cret-value")]);
        let shown = format!("{s:?}");
        assert!(shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn adding_after_a_redact_is_seen() {
        let mut s = secrets(&[("A", "first-secret")]);
        assert_eq!(s.redact("first-secret"), "${A}");
        s.add("B", "second-secret");
        assert_eq!(s.redact("second-secret"), "${B}");
    }
}
