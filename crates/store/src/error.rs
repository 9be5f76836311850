use thiserror::Error;

/// Everything the store can report. The store never panics on bad input or a bad file.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The URL names no backend this build has, or a form of it this build can't open.
    /// `url` is the URL redacted by [`crate::redact_url`] (no password, no query); `reason`
    /// says what is wrong.
    #[error("unsupported store URL {url:?}: {reason}")]
    UnsupportedUrl { url: String, reason: String },

    /// The database could not be opened or configured. `path` is the file's path as the URL
    /// gave it, redacted like [`crate::redact_url`]; `message` never quotes the unredacted path.
    #[error("cannot open store {path:?}: {message}")]
    Open { path: String, message: String },

    /// The file's schema is newer than this build knows (a newer watchpost migrated it).
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },

    /// Applying a migration failed; the file is left at the previous version.
    #[error("store migration to schema version {version} failed: {message}")]
    Migration { version: i64, message: String },

    /// Another writer held the database for longer than the busy timeout.
    #[error("store is busy: another writer held the database for longer than the busy timeout")]
    Busy,

    /// A document that must be JSON is not.
    #[error("{what} is not valid JSON: {message}")]
    InvalidJson { what: &'static str, message: String },

    /// An argument the store cannot accept (for example an incident for another monitor).
    #[error("invalid store input: {0}")]
    InvalidInput(String),

    /// A time outside the range the backend can store, or time arithmetic (`now + lease`)
    /// that would leave it.
    #[error("time {0} is outside the store's range (years 1677 to 2262)")]
    TimeOutOfRange(String),

    /// The stored state of `monitor` can't be read as text (invalid UTF-8, or not a text value:
    /// the file was edited by hand or damaged). Only calls about that monitor fail with it;
    /// every other monitor, the outbox and the results work as before. Nothing was written.
    /// A state that is text but not valid JSON is *not* this error: it is handed to `decide`.
    #[error("the stored state of monitor {monitor:?} is unreadable: {message}")]
    UnreadableState { monitor: String, message: String },

    /// `decide` returned an error; nothing was written.
    #[error("transition rejected: {0}")]
    Decide(String),

    /// The outbox item is not leased to this worker: unknown, already delivered or given up, or
    /// claimed by another worker after this worker's lease expired.
    #[error("outbox item {id} is not leased to worker {worker:?}")]
    NotLeased { id: i64, worker: String },

    /// The store was called from inside a `decide` function on the same store.
    #[error("store called from inside a transition's decide function")]
    Reentrant,

    /// A stored row could not be read back as expected.
    #[error("corrupt store row: {0}")]
    Corrupt(String),

    /// Any other database error.
    #[error("store database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Whether the same call may well succeed if made again shortly: another writer held the
    /// database past the busy timeout. Everything else (bad input, a lost lease, a damaged
    /// row, a full disk) is reported at once.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match error.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Database(error.to_string()),
        }
    }
}
