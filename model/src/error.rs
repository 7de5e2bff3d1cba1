//! What a model call can fail with; each message says what to do, and none carries the key.

use std::time::Duration;

use crate::ModelConfig;

/// A failed model call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The server refused the key (or wanted one).
    #[error(
        "the model server refused the API key ({message}); set DESKHAND_MODEL_API_KEY (or \
         ANTHROPIC_API_KEY / OPENAI_API_KEY), or run `deskhand model set-key`"
    )]
    Auth {
        /// What the server said.
        message: String,
    },
    /// No such model (or endpoint) at that server.
    #[error(
        "model {model:?} was not found at {base} ({message}); check [model] model in the config \
         or DESKHAND_MODEL, and the base URL"
    )]
    NotFound {
        /// The configured model.
        model: String,
        /// The configured base URL.
        base: String,
        /// What the server said.
        message: String,
    },
    /// Too many requests, still after the retries.
    #[error("the model server is rate limiting us ({message}); try again later")]
    RateLimited {
        /// What the server said.
        message: String,
        /// How long it asked to wait.
        retry_after: Option<Duration>,
    },
    /// The server is overloaded or failing (529, 5xx), still after the retries.
    #[error("the model server is unavailable (HTTP {status}: {message}); try again later")]
    Unavailable {
        /// The status.
        status: u16,
        /// What the server said.
        message: String,
        /// How long it asked to wait.
        retry_after: Option<Duration>,
    },
    /// The server refused the request itself (a bad tool schema, too long a conversation).
    #[error("the model server refused the request (HTTP {status}: {message})")]
    Rejected {
        /// The status.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the model server at {base} ({message}); is it running, and is the base URL right?")]
    Network {
        /// The configured base URL.
        base: String,
        /// What failed.
        message: String,
    },
    /// The reply did not follow the protocol.
    #[error("the model server sent an answer that does not follow its protocol: {0}")]
    Protocol(String),
    /// The settings are wrong.
    #[error("{0}")]
    Config(String),
}

impl ModelError {
    /// The error for an HTTP error status.
    pub(crate) fn from_status(
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        cfg: &ModelConfig,
    ) -> ModelError {
        match status {
            401 | 403 => ModelError::Auth { message },
            404 => ModelError::NotFound {
                model: cfg.model.clone(),
                base: cfg.base_url.to_string(),
                message,
            },
            429 => ModelError::RateLimited {
                message,
                retry_after,
            },
            500..=599 => ModelError::Unavailable {
                status,
                message,
                retry_after,
            },
            _ => ModelError::Rejected { status, message },
        }
    }

    /// The error for a request that never got an answer.
    pub(crate) fn network(e: &reqwest::Error, cfg: &ModelConfig) -> ModelError {
        // reqwest's message can hold the URL; ours has no key in it, but say only what failed.
        let message = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection refused or failed".to_string()
        } else {
            e.to_string()
        };
        ModelError::Network {
            base: cfg.base_url.to_string(),
            message,
        }
    }

    /// Worth another try.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. }
                | ModelError::Unavailable { .. }
                | ModelError::Network { .. }
        )
    }

    /// How long the server asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::RateLimited { retry_after, .. }
            | ModelError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The same error, saying how many attempts were made when there were several.
    pub(crate) fn after(self, attempts: u32) -> ModelError {
        if attempts < 2 {
            return self;
        }
        let more = |m: String| format!("{m}; {attempts} attempts");
        match self {
            ModelError::RateLimited {
                message,
                retry_after,
            } => ModelError::RateLimited {
                message: more(message),
                retry_after,
            },
            ModelError::Unavailable {
                status,
                message,
                retry_after,
            } => ModelError::Unavailable {
                status,
                message: more(message),
                retry_after,
            },
            ModelError::Network { base, message } => ModelError::Network {
                base,
                message: more(message),
            },
            other => other,
        }
    }
}
