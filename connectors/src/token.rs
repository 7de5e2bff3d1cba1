//! Access tokens for one connection: refreshed shortly before they expire and once after a 401.
//! A refused refresh makes the connection stale; transient failures never do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::connection::ConnectionId;
use crate::error::{ConnectorError, Result};
use crate::oauth::{OAuthApp, RefreshError};
use crate::secrets::Secrets;

/// Refresh this long before the provider's expiry (at most half the lifetime), so a request
/// never carries a dying token.
const EARLY: Duration = Duration::from_secs(60);

/// What the secret store keeps for one connection (one entry, JSON): the client and its grant.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct StoredGrant {
    /// OAuth client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Long-lived OAuth grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// A token that does not expire (Notion internal integration, or Notion OAuth without refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

impl StoredGrant {
    /// Reads the grant of `id`; `None` when the connection was never made.
    pub fn load(secrets: &Secrets, id: &ConnectionId) -> Result<Option<StoredGrant>> {
        match secrets.get(&id.secret_key("grant"))? {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json).map(Some).map_err(|_| {
                ConnectorError::Secrets(format!("the stored grant of {id} is damaged; reconnect"))
            }),
        }
    }

    /// Writes the grant of `id`.
    pub fn save(&self, secrets: &Secrets, id: &ConnectionId) -> Result<()> {
        let json =
            serde_json::to_string(self).map_err(|e| ConnectorError::Secrets(e.to_string()))?;
        secrets.set(&id.secret_key("grant"), &json)
    }
}

/// How a connection proves itself.
pub enum Grant {
    /// A token that does not expire (Notion internal integration).
    Static(String),
    /// An OAuth refresh token; rotated tokens are written back to the secret store.
    Refresh {
        /// The client that owns the grant.
        app: Box<OAuthApp>,
        /// The stored grant (client and refresh token).
        stored: Box<StoredGrant>,
    },
}

struct Access {
    token: String,
    /// When to refresh: shortly before the provider's expiry.
    refresh_at: Option<Instant>,
}

/// Hands out valid access tokens for one connection.
pub struct TokenSource {
    id: ConnectionId,
    grant: Grant,
    secrets: Arc<Secrets>,
    current: tokio::sync::Mutex<Option<Access>>,
    rotated: std::sync::Mutex<Option<String>>,
    refreshes: AtomicU64,
}

impl TokenSource {
    /// A source for `id` using `grant`.
    pub fn new(id: ConnectionId, grant: Grant, secrets: Arc<Secrets>) -> TokenSource {
        TokenSource {
            id,
            grant,
            secrets,
            current: tokio::sync::Mutex::new(None),
            rotated: std::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
        }
    }

    /// The connection this source serves.
    pub fn id(&self) -> &ConnectionId {
        &self.id
    }

    /// How many refreshes this source made (for benchmarks and tests).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// A token good for at least a minute.
    pub async fn access_token(&self) -> Result<String> {
        let mut cur = self.current.lock().await;
        if let Some(a) = cur.as_ref() {
            if a.refresh_at.is_none_or(|t| t > Instant::now()) {
                return Ok(a.token.clone());
            }
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cur = Some(fresh);
        Ok(token)
    }

    /// After a 401 with `rejected`: refresh once, unless a parallel request already did.
    pub async fn refresh_after_rejection(&self, rejected: &str) -> Result<()> {
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|a| a.token != rejected) {
            return Ok(());
        }
        if let Grant::Static(_) = self.grant {
            return Err(self.id.stale("the token was refused"));
        }
        *cur = Some(self.fetch().await?);
        Ok(())
    }

    async fn fetch(&self) -> Result<Access> {
        let (app, stored) = match &self.grant {
            Grant::Static(t) => {
                return Ok(Access {
                    token: t.clone(),
                    refresh_at: None,
                })
            }
            Grant::Refresh { app, stored } => (app, stored),
        };
        let refresh = self
            .rotated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .or_else(|| stored.refresh_token.clone())
            .ok_or_else(|| self.id.not_connected())?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        match app.refresh(&refresh).await {
            Ok(g) => {
                if let Some(rotated) = g.refresh_token.filter(|r| *r != refresh) {
                    // Providers that rotate refresh tokens void the old one: keep the new one.
                    let mut next = (**stored).clone();
                    next.refresh_token = Some(rotated.clone());
                    let secrets = self.secrets.clone();
                    let id = self.id.clone();
                    tokio::task::spawn_blocking(move || next.save(&secrets, &id))
                        .await
                        .map_err(|e| ConnectorError::Secrets(e.to_string()))??;
                    *self.rotated.lock().unwrap_or_else(|p| p.into_inner()) = Some(rotated);
                }
                Ok(Access {
                    token: g.access_token,
                    refresh_at: g.expires_in.map(|d| Instant::now() + d - EARLY.min(d / 2)),
                })
            }
            Err(RefreshError::Refused(why)) => {
                // Another process (`deskhand connect`, or a rotation) may have stored a newer
                // grant since this one was loaded: try that before calling the connection stale.
                let secrets = self.secrets.clone();
                let id = self.id.clone();
                let newer = tokio::task::spawn_blocking(move || StoredGrant::load(&secrets, &id))
                    .await
                    .ok()
                    .and_then(|r| r.ok().flatten())
                    .and_then(|g| g.refresh_token)
                    .filter(|r| *r != refresh);
                match newer {
                    Some(r) => {
                        *self.rotated.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
                        match app.refresh(&r).await {
                            Ok(g) => Ok(Access {
                                token: g.access_token,
                                refresh_at: g
                                    .expires_in
                                    .map(|d| Instant::now() + d - EARLY.min(d / 2)),
                            }),
                            Err(RefreshError::Refused(why)) => Err(self.id.stale(why)),
                            Err(RefreshError::Transient(why)) => Err(ConnectorError::Transient {
                                provider: self.id.provider.title().into(),
                                attempts: 1,
                                message: format!("token refresh: {why}"),
                            }),
                        }
                    }
                    None => Err(self.id.stale(why)),
                }
            }
            Err(RefreshError::Transient(why)) => Err(ConnectorError::Transient {
                provider: self.id.provider.title().into(),
                attempts: 1,
                message: format!("token refresh: {why}"),
            }),
        }
    }
}
