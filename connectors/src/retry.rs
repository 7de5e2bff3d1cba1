//! The retry policy every provider shares: exponential backoff with jitter, `Retry-After`
//! honoured, and caps on both attempts and total time.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::connection::Provider;
use crate::error::{ConnectorError, Result};
use crate::token::TokenSource;

/// How hard to retry transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff step in milliseconds; doubles each attempt.
    pub base_delay_ms: u64,
    /// Longest single wait in milliseconds.
    pub max_delay_ms: u64,
    /// Give up once this much time (ms) has passed since the first attempt.
    pub max_total_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay_ms: 500,
            max_delay_ms: 32_000,
            max_total_ms: 120_000,
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `attempt + 1`: the server's `Retry-After` when given, else
    /// exponential backoff with "equal jitter" (half fixed, half random) so parallel
    /// clients spread out.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(Duration::from_millis(self.max_total_ms));
        }
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay_ms);
        let half = exp / 2;
        Duration::from_millis(half + fastrand::u64(0..=half.max(1)))
    }
}

/// What one attempt came to.
pub(crate) enum Attempt<T> {
    /// Finished; no more attempts.
    Done(T),
    /// 401: the access token was refused.
    Unauthorized(String),
    /// Worth trying again (network, 5xx, 429, 403 rate limit).
    Retry {
        retry_after: Option<Duration>,
        quota: bool,
        message: String,
    },
    /// Not worth trying again.
    Fail(ConnectorError),
}

/// Runs `op` with a fresh access token until it succeeds or the policy gives up.
/// A 401 triggers one token refresh that does not count as an attempt.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    provider: Provider,
    tokens: &TokenSource,
    mut op: F,
) -> Result<T>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    let mut refreshed = false;
    loop {
        attempt += 1;
        let (token, outcome) = match tokens.access_token().await {
            Ok(t) => (t.clone(), op(t).await),
            // A refresh that failed for network or server reasons is retried like any call.
            Err(ConnectorError::Transient { message, .. }) => (
                String::new(),
                Attempt::Retry {
                    retry_after: None,
                    quota: false,
                    message,
                },
            ),
            Err(e) => return Err(e),
        };
        match outcome {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Unauthorized(message) => {
                if refreshed {
                    return Err(ConnectorError::Auth {
                        provider: provider.title().into(),
                        message,
                    });
                }
                refreshed = true;
                attempt -= 1;
                tokens.refresh_after_rejection(&token).await?;
            }
            Attempt::Retry {
                retry_after,
                quota,
                message,
            } => {
                let wait = policy.delay(attempt, retry_after);
                let out_of_time =
                    started.elapsed() + wait > Duration::from_millis(policy.max_total_ms);
                if attempt >= policy.max_attempts || out_of_time {
                    return Err(if quota {
                        ConnectorError::Quota {
                            provider: provider.title().into(),
                            message,
                            retry_after,
                        }
                    } else {
                        ConnectorError::Transient {
                            provider: provider.title().into(),
                            attempts: attempt,
                            message,
                        }
                    });
                }
                tracing::debug!(%provider, attempt, wait_ms = wait.as_millis() as u64, %message, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Reads a `Retry-After` header given in seconds (the form Google and Notion send).
pub(crate) fn retry_after_secs(value: Option<&str>) -> Option<Duration> {
    value?
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Sorts an HTTP failure into retry, refresh or give up; `body` is the parsed JSON error if any.
pub(crate) fn classify<T>(
    provider: Provider,
    status: u16,
    retry_after: Option<Duration>,
    body: Option<&serde_json::Value>,
    what: &str,
) -> Attempt<T> {
    let message = error_message(body).unwrap_or_else(|| format!("HTTP {status}"));
    let name = provider.title().to_string();
    match status {
        401 => Attempt::Unauthorized(message),
        429 | 529 | 500 | 502 | 503 | 504 => Attempt::Retry {
            retry_after,
            quota: status == 429 || status == 529,
            message: format!("HTTP {status}: {message}"),
        },
        403 if is_rate_limit(body) => Attempt::Retry {
            retry_after,
            quota: true,
            message: format!("HTTP 403: {message}"),
        },
        404 => Attempt::Fail(ConnectorError::NotFound {
            provider: name,
            what: what.to_string(),
        }),
        410 => Attempt::Fail(ConnectorError::CursorExpired { provider: name }),
        _ => Attempt::Fail(ConnectorError::Rejected {
            provider: name,
            status,
            message,
        }),
    }
}

/// Google signals per-user rate limits as 403 with these reasons.
fn is_rate_limit(body: Option<&serde_json::Value>) -> bool {
    let Some(errors) = body
        .and_then(|b| b.pointer("/error/errors"))
        .and_then(|e| e.as_array())
    else {
        return false;
    };
    errors.iter().any(|e| {
        matches!(
            e.get("reason").and_then(|r| r.as_str()),
            Some("rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded")
        )
    })
}

/// The human part of a Google, Notion or OAuth error body.
pub(crate) fn error_message(body: Option<&serde_json::Value>) -> Option<String> {
    let b = body?;
    let s = b
        .pointer("/error/message")
        .or_else(|| b.get("message"))
        .or_else(|| b.get("error_description"))
        .or_else(|| b.get("error").filter(|e| e.is_string()))?;
    s.as_str().map(|s| s.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay_ms: 100,
            max_delay_ms: 1000,
            max_total_ms: 60_000,
        };
        for attempt in 1..10 {
            let full = (100u64 << (attempt - 1)).min(1000);
            for _ in 0..50 {
                let d = p.delay(attempt, None).as_millis() as u64;
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d} not in [{}, {full}]",
                    full / 2
                );
            }
        }
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn failures_are_sorted_by_kind() {
        let rate: serde_json::Value = serde_json::json!({"error":{"code":403,"message":"Rate Limit Exceeded","errors":[{"reason":"rateLimitExceeded"}]}});
        let scope: serde_json::Value = serde_json::json!({"error":{"code":403,"message":"Insufficient Permission","errors":[{"reason":"insufficientPermissions"}]}});
        let g = Provider::Google;
        assert!(matches!(
            classify::<()>(g, 403, None, Some(&rate), "x"),
            Attempt::Retry { quota: true, .. }
        ));
        assert!(matches!(
            classify::<()>(g, 403, None, Some(&scope), "x"),
            Attempt::Fail(ConnectorError::Rejected { status: 403, .. })
        ));
        assert!(matches!(
            classify::<()>(g, 401, None, None, "x"),
            Attempt::Unauthorized(_)
        ));
        assert!(matches!(
            classify::<()>(g, 503, None, None, "x"),
            Attempt::Retry { quota: false, .. }
        ));
        assert!(matches!(
            classify::<()>(Provider::Notion, 529, None, None, "x"),
            Attempt::Retry { quota: true, .. }
        ));
        assert!(matches!(
            classify::<()>(g, 404, None, None, "x"),
            Attempt::Fail(ConnectorError::NotFound { .. })
        ));
        assert!(matches!(
            classify::<()>(g, 410, None, None, "x"),
            Attempt::Fail(ConnectorError::CursorExpired { .. })
        ));
        assert_eq!(retry_after_secs(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after_secs(Some("soon")), None);
        assert_eq!(retry_after_secs(Some("1e30")), None);
        assert_eq!(retry_after_secs(Some("-1")), None);
    }
}
