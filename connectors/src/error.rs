//! Connector errors: each says what happened and what the person can do about it.

use std::time::Duration;

/// Everything a connector call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// No credentials for this connection.
    #[error("{connection} is not connected: run `deskhand connect {provider}{account_flag}`")]
    NotConnected {
        connection: String,
        provider: String,
        account_flag: String,
    },
    /// The provider refused the stored refresh token: the person must reconnect.
    #[error("{connection} needs reconnecting ({reason}): run `deskhand connect {provider}{account_flag}`")]
    Stale {
        connection: String,
        provider: String,
        account_flag: String,
        reason: String,
    },
    /// Credentials were refused even after a fresh token.
    #[error("{provider} refused our credentials: {message}")]
    Auth { provider: String, message: String },
    /// Rate limits or quota still exceeded after the retry budget.
    #[error("{provider} rate limit or quota exceeded: {message}{}", retry_hint(.retry_after))]
    Quota {
        provider: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The resource does not exist (or is not shared with the integration).
    #[error("{provider}: not found: {what}")]
    NotFound { provider: String, what: String },
    /// A sync cursor expired (Gmail history 404, Calendar 410): a full resync is needed.
    #[error("{provider}: sync cursor expired, a full resync is required")]
    CursorExpired { provider: String },
    /// Network trouble or server errors that outlasted the retry budget.
    #[error("{provider} unavailable after {attempts} attempts: {message}; try again later")]
    Transient {
        provider: String,
        attempts: u32,
        message: String,
    },
    /// The provider rejected the request (4xx other than auth, quota, not found).
    #[error("{provider} rejected the request (HTTP {status}): {message}")]
    Rejected {
        provider: String,
        status: u16,
        message: String,
    },
    /// The authorization flow did not complete.
    #[error("authorization failed: {0}")]
    OAuth(String),
    /// The secret store could not be used.
    #[error("secret store: {0}")]
    Secrets(String),
    /// The local cache could not be read or written.
    #[error("local cache {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A response did not have the documented shape.
    #[error("{provider} sent an unexpected response: {message}")]
    Protocol { provider: String, message: String },
    /// Settings are missing or wrong.
    #[error("{0}")]
    Config(String),
}

fn retry_hint(after: &Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (the provider asks to wait {}s)", d.as_secs().max(1)),
        None => String::new(),
    }
}

impl ConnectorError {
    /// True when only the person can fix it (reconnect), so retrying is pointless.
    pub fn needs_reconnect(&self) -> bool {
        matches!(
            self,
            ConnectorError::Stale { .. } | ConnectorError::NotConnected { .. }
        )
    }
}

/// Result alias for this crate.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
