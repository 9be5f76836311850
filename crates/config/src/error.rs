//! Config errors: `FILE:LINE:COL: message`, all of them at once.

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

/// Collects errors for one file.
pub(crate) struct Report<'a> {
    pub file: &'a str,
    pub errors: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str) -> Self {
        Report {
            file,
            errors: Vec::new(),
        }
    }

    pub fn at(&mut self, line: u64, column: u64, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line: line.max(1),
            column: column.max(1),
            message: message.into(),
        });
    }

    pub fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|e| (e.line, e.column));
        Err(ConfigErrors(self.errors))
    }
}
