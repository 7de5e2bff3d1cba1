//! The JSON-over-HTTPS client Gmail and Notion calls go through: bearer token, optional
//! per-connection rate limit, shared retry policy, and a request counter.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{header::HeaderMap, Method};
use serde::de::DeserializeOwned;
use url::Url;

use crate::connection::Provider;
use crate::error::{ConnectorError, Result};
use crate::retry::{classify, retry_after_secs, with_retries, Attempt, RetryPolicy};
use crate::token::TokenSource;

/// An authenticated API client for one connection.
pub struct ApiClient {
    http: reqwest::Client,
    provider: Provider,
    tokens: Arc<TokenSource>,
    limiter: Option<DefaultDirectRateLimiter>,
    policy: RetryPolicy,
    headers: HeaderMap,
    requests: AtomicU64,
}

impl ApiClient {
    /// A client; `per_second` sets a token bucket (average rate, same burst) when given.
    pub fn new(
        provider: Provider,
        tokens: Arc<TokenSource>,
        policy: RetryPolicy,
        per_second: Option<u32>,
        headers: HeaderMap,
    ) -> Result<ApiClient> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ConnectorError::Config(format!("HTTP client: {e}")))?;
        let limiter = per_second
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct(Quota::per_second(n)));
        Ok(ApiClient {
            http,
            provider,
            tokens,
            limiter,
            policy,
            headers,
            requests: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent so far (retries included).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The token source (to share the connection's tokens with another client).
    pub fn tokens(&self) -> &Arc<TokenSource> {
        &self.tokens
    }

    /// GET `url` and decode the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, url: Url, what: &str) -> Result<T> {
        self.send(Method::GET, url, None, what).await
    }

    /// Sends a request with an optional JSON body and decodes the JSON answer; failures that
    /// may pass (network, 5xx, 429) are retried under the policy.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<T> {
        self.call(method, url, body, what, true).await
    }

    /// Like [`ApiClient::send`], for a request that must not take effect twice (sending a mail).
    /// It is repeated only when it certainly did not reach the provider: a refused connection,
    /// 429 (rate limit) or 401 (after a token refresh). After a dropped connection or a 5xx
    /// it may or may not have taken effect, so it fails saying so instead.
    pub async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<T> {
        self.call(method, url, body, what, false).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        what: &str,
        repeatable: bool,
    ) -> Result<T> {
        with_retries(&self.policy, self.provider, &self.tokens, |token| {
            self.attempt(method.clone(), url.clone(), body, what, token, repeatable)
        })
        .await
    }

    /// One attempt. With `repeatable` false, an outcome that may have taken effect is final.
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        what: &str,
        token: String,
        repeatable: bool,
    ) -> Attempt<T> {
        let req = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .headers(self.headers.clone());
        let req = match body {
            Some(b) => req.json(b),
            None => req,
        };
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let unknown = |message: String| {
            Attempt::Fail(ConnectorError::Transient {
                provider: self.provider.title().into(),
                attempts: 1,
                message: format!(
                    "{what}: {message}; it may or may not have taken effect, so it was not repeated"
                ),
            })
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if repeatable || e.is_connect() => {
                return Attempt::Retry {
                    retry_after: None,
                    quota: false,
                    message: e.without_url().to_string(),
                }
            }
            Err(e) => return unknown(e.without_url().to_string()),
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return match resp.bytes().await {
                // 204 (a delete): nothing to decode, read as JSON null (`()` takes it).
                Ok(b) => match serde_json::from_slice::<T>(if b.is_empty() { b"null" } else { &b })
                {
                    Ok(v) => Attempt::Done(v),
                    Err(e) => Attempt::Fail(ConnectorError::Protocol {
                        provider: self.provider.title().into(),
                        message: format!("{what}: {e}"),
                    }),
                },
                // It succeeded; only its answer was lost.
                Err(e) if !repeatable => unknown(e.without_url().to_string()),
                Err(e) => Attempt::Retry {
                    retry_after: None,
                    quota: false,
                    message: e.without_url().to_string(),
                },
            };
        }
        let retry_after = retry_after_secs(
            resp.headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let body = resp.json::<serde_json::Value>().await.ok();
        match classify(self.provider, status, retry_after, body.as_ref(), what) {
            // 429 and quota answers mean the request was turned away before it did anything.
            Attempt::Retry {
                quota: false,
                message,
                ..
            } if !repeatable => unknown(message),
            other => other,
        }
    }
}
