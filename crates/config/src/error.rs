//! Config errors: `FILE:LINE:COL: message`, all of them at once.

use crate::secrets::Secrets;
use std::fmt;

/// One problem, at a 1-based line and column of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects errors and warnings for one file, and the `${NAME}` values substituted so far
/// (which are masked in every message at the end).
pub(crate) struct Report<'a> {
    pub file: &'a str,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
    pub secrets: Secrets,
}

/// What a clean report hands over.
pub(crate) struct Finished {
    pub warnings: Vec<ConfigError>,
    pub secrets: Secrets,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str) -> Self {
        Report {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
            secrets: Secrets::new(),
        }
    }

    /// A path the config names, relative to the config file's directory when it is relative
    /// (`ca_file: certs/ca.pem` next to `/etc/watchpost/watchpost.yaml` is
    /// `/etc/watchpost/certs/ca.pem`), whatever the working directory.
    pub fn path(&self, value: &str) -> std::path::PathBuf {
        let path = std::path::Path::new(value);
        match std::path::Path::new(self.file).parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    fn entry(&self, line: u64, column: u64, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: line.max(1),
            column: column.max(1),
            message,
        }
    }

    pub fn at(&mut self, line: u64, column: u64, message: impl Into<String>) {
        let e = self.entry(line, column, message.into());
        self.errors.push(e);
    }

    pub fn warn(&mut self, line: u64, column: u64, message: impl Into<String>) {
        let w = self.entry(line, column, message.into());
        self.warnings.push(w);
    }

    /// Substitute `${NAME}`s in a parsed value, recording each value substituted.
    pub fn interpolate(&mut self, value: &str) -> String {
        crate::env::interpolate_recording(value, &mut self.secrets)
    }

    /// The errors so far (with any substituted value masked), when validation can't go on.
    pub fn into_errors(self) -> ConfigErrors {
        let secrets = self.secrets;
        let mut errors = self.errors;
        for e in &mut errors {
            if let std::borrow::Cow::Owned(masked) = secrets.redact(&e.message) {
                e.message = masked;
            }
        }
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors(errors)
    }

    /// Every error (with any substituted value masked), or the warnings and secrets.
    pub fn finish(self) -> Result<Finished, ConfigErrors> {
        let secrets = self.secrets;
        let mask = |mut list: Vec<ConfigError>| {
            for e in &mut list {
                if let std::borrow::Cow::Owned(masked) = secrets.redact(&e.message) {
                    e.message = masked;
                }
            }
            list.sort_by_key(|e| (e.line, e.column));
            list
        };
        if !self.errors.is_empty() {
            return Err(ConfigErrors(mask(self.errors)));
        }
        let warnings = mask(self.warnings);
        Ok(Finished { warnings, secrets })
    }
}
