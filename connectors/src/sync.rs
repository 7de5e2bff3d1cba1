//! What a sync reports, and how it reports progress while it runs.

use serde::Serialize;

/// Progress callbacks; the CLI draws bars, the agent sends events.
pub trait Progress: Send + Sync {
    /// A new stage begins, with its item count when known.
    fn stage(&self, name: &str, total: Option<u64>);
    /// `n` more items of the current stage are done.
    fn advance(&self, n: u64);
}

/// Progress that goes nowhere.
pub struct Quiet;

impl Progress for Quiet {
    fn stage(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
}

/// The outcome of one provider's sync.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// True when everything was fetched again (first sync or expired cursor).
    pub full: bool,
    /// Items fetched and stored.
    pub fetched: usize,
    /// Items whose metadata changed in place (labels).
    pub updated: usize,
    /// Items removed.
    pub deleted: usize,
    /// HTTP requests made, retries included.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
    /// Anything the person should know (e.g. why a full resync happened).
    pub note: Option<String>,
}
