//! Store URLs: which backend and file they name, and how to show them without their secrets.

use std::path::PathBuf;

use crate::StoreError;

/// What a store URL names.
pub(crate) enum Target {
    Memory,
    File(PathBuf),
}

/// Why `url` is refused, with the URL shown redacted.
fn unsupported(url: &str, reason: &str) -> StoreError {
    StoreError::UnsupportedUrl {
        url: redact_url(url),
        reason: reason.to_string(),
    }
}

pub(crate) fn parse_url(url: &str) -> Result<Target, StoreError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(unsupported(
            url,
            "expected sqlite://PATH, sqlite::memory: or postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB",
        ));
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" {
        return Ok(Target::Memory);
    }
    if path.contains('?') || path.contains('#') {
        return Err(unsupported(
            url,
            "query parameters (?…) and fragments (#…) are not supported: expected sqlite://PATH",
        ));
    }
    if path.is_empty() {
        return Err(unsupported(url, "no file path: expected sqlite://PATH"));
    }
    Ok(Target::File(PathBuf::from(path)))
}

/// Checks that `url` names a store this build can open, without opening it (for a config
/// validator). The same rules as [`crate::open`]; whether the file can be created or read, or
/// the PostgreSQL server reached, is only known when it is opened.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    if crate::postgres::is_postgres_url(url) {
        return crate::postgres::parse(url).map(drop);
    }
    parse_url(url).map(drop)
}

/// `url` in a form safe to show: the scheme, host and path, a password in the userinfo replaced
/// by `***` (`postgres://user:***@host/db`), and the query and fragment left out
/// (`sqlite://x.db?key=secret` shows as `sqlite://x.db`). Every store error that quotes a URL
/// quotes it this way; use it wherever a store URL is printed.
///
/// The rule is deliberately blunt: everything up to the first `@` after the scheme counts as
/// userinfo when it holds a `:`, even if the URL was not meant that way, so an unencoded `/`
/// in a password can't expose it.
pub fn redact_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => match url.find(':') {
            Some(i) => url.split_at(i + 1),
            None => ("", url),
        },
    };
    let rest = match rest.split_once('@') {
        Some((userinfo, after)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{after}"),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    };
    format!("{scheme}{rest}")
}

/// The path part of a `sqlite:` URL, redacted like [`redact_url`]: how an open error names the
/// file.
pub(crate) fn redacted_path(url: &str) -> String {
    let shown = redact_url(url);
    let rest = shown.strip_prefix("sqlite:").unwrap_or(&shown);
    rest.strip_prefix("//").unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(matches!(parse_url("sqlite::memory:"), Ok(Target::Memory)));
        assert!(matches!(parse_url("sqlite://:memory:"), Ok(Target::Memory)));
        let file = |url| match parse_url(url) {
            Ok(Target::File(p)) => p,
            _ => panic!("{url} is not a file URL"),
        };
        assert_eq!(
            file("sqlite:///var/lib/w.db"),
            PathBuf::from("/var/lib/w.db")
        );
        assert_eq!(file("sqlite://data/w.db"), PathBuf::from("data/w.db"));
        assert_eq!(file("sqlite:w.db"), PathBuf::from("w.db"));
        // The SQLite parser refuses a Postgres URL; `check_url` hands it to the Postgres one.
        assert!(matches!(
            parse_url("postgres://x/y"),
            Err(StoreError::UnsupportedUrl { .. })
        ));
        for bad in [
            "sqlite://",
            "sqlite:",
            "w.db",
            "sqlite://w.db?mode=ro",
            "sqlite://w.db#frag",
        ] {
            assert!(
                matches!(parse_url(bad), Err(StoreError::UnsupportedUrl { .. })),
                "{bad}"
            );
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url("sqlite:///var/lib/w.db").is_ok());
        assert!(check_url("postgres://x/y").is_ok());
        assert!(check_url("postgresql://u:pw@db.example.com:5433/w?sslmode=verify-full").is_ok());
        assert!(check_url("postgres://x/y?sslmode=nope").is_err());
        assert!(check_url("mysql://x/y").is_err());
    }

    #[test]
    fn redaction() {
        for (url, shown) in [
            ("postgres://u:s3cret@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:s3cret@h:5432/db?sslmode=require",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("sqlite://x.db?key=s3cret", "sqlite://x.db"),
            ("sqlite:///var/lib/w.db#s3cret", "sqlite:///var/lib/w.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("sqlite:u:s3cret@h/db", "sqlite:u:***@h/db"),
            ("mysql://:s3cret@h", "mysql://:***@h"),
            ("w.db", "w.db"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert_eq!(redacted_path("sqlite://u:s3cret@h/db"), "u:***@h/db");
        assert_eq!(redacted_path("sqlite:/a/b.db"), "/a/b.db");
    }
}
