//! One place that turns settings, the secret store and the cache into working connections:
//! connect, build clients, sync with health tracking (stale / error / ok).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use url::Url;

use crate::cache::Cache;
use crate::calendar::{Calendar, Window};
use crate::connection::{ConnectionId, ConnectionInfo, ConnectionState, Provider};
use crate::error::{ConnectorError, Result};
use crate::gmail::Gmail;
use crate::http::ApiClient;
use crate::notion::{Notion, NOTION_VERSION};
use crate::oauth::OAuthApp;
use crate::retry::RetryPolicy;
use crate::secrets::Secrets;
use crate::sync::{Progress, SyncReport};
use crate::token::{Grant, StoredGrant, TokenSource};

/// The narrowest Google scopes the read-only skills need.
pub const GOOGLE_READ_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/calendar.readonly",
];

/// Provider URLs; production by default, a local fake in tests.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Google authorization endpoint.
    pub google_auth: Url,
    /// Google token endpoint.
    pub google_token: Url,
    /// Gmail `users/me/` base.
    pub gmail: Url,
    /// Root under which `calendar/v3/` lives.
    pub calendar_root: Url,
    /// Notion authorization endpoint.
    pub notion_auth: Url,
    /// Notion token endpoint.
    pub notion_token: Url,
    /// Notion API base (`.../v1/`).
    pub notion_api: Url,
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("static URL")
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            google_auth: url("https://accounts.google.com/o/oauth2/v2/auth"),
            google_token: url("https://oauth2.googleapis.com/token"),
            gmail: url("https://gmail.googleapis.com/gmail/v1/users/me/"),
            calendar_root: url("https://www.googleapis.com/"),
            notion_auth: url("https://api.notion.com/v1/oauth/authorize"),
            notion_token: url("https://api.notion.com/v1/oauth/token"),
            notion_api: url("https://api.notion.com/v1/"),
        }
    }
}

impl Endpoints {
    /// Every endpoint under one origin, at the providers' own paths (for a local fake).
    pub fn under(base: &Url) -> Endpoints {
        let j = |p: &str| base.join(p).expect("static path");
        Endpoints {
            google_auth: j("/o/oauth2/v2/auth"),
            google_token: j("/token"),
            gmail: j("/gmail/v1/users/me/"),
            calendar_root: j("/"),
            notion_auth: j("/v1/oauth/authorize"),
            notion_token: j("/v1/oauth/token"),
            notion_api: j("/v1/"),
        }
    }
}

/// An OAuth client registration: id and (possibly empty) secret.
#[derive(Clone)]
pub struct ClientCredentials {
    /// Client id.
    pub id: String,
    /// Client secret.
    pub secret: Option<String>,
}

/// Everything tunable about connectors.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Provider URLs.
    pub endpoints: Endpoints,
    /// Shared retry policy.
    pub retry: RetryPolicy,
    /// Parallel `messages.get` calls.
    pub gmail_concurrency: usize,
    /// Notion requests per second (token bucket; Notion documents 3 on average).
    pub notion_rate: u32,
    /// Calendars to sync.
    pub calendar_ids: Vec<String>,
    /// Full-sync window.
    pub window: Window,
    /// How long `connect` waits for the browser.
    pub consent_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoints: Endpoints::default(),
            retry: RetryPolicy::default(),
            gmail_concurrency: 16,
            notion_rate: 3,
            calendar_ids: vec!["primary".into()],
            window: Window {
                past_days: 30,
                future_days: 180,
            },
            consent_timeout: Duration::from_secs(300),
        }
    }
}

/// What to sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Gmail messages.
    Gmail,
    /// Calendar events.
    Calendar,
    /// Notion data sources.
    Notion,
}

impl std::str::FromStr for Resource {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "gmail" | "mail" => Ok(Resource::Gmail),
            "calendar" => Ok(Resource::Calendar),
            "notion" => Ok(Resource::Notion),
            o => Err(format!(
                "unknown resource {o:?}: use gmail, calendar or notion"
            )),
        }
    }
}

impl Resource {
    /// The provider serving this resource.
    pub fn provider(self) -> Provider {
        match self {
            Resource::Gmail | Resource::Calendar => Provider::Google,
            Resource::Notion => Provider::Notion,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Gmail => "gmail",
            Resource::Calendar => "calendar",
            Resource::Notion => "notion",
        }
    }
}

/// One resource's sync outcome, for reports and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    /// Connection id.
    pub connection: String,
    /// gmail / calendar:<id> / notion.
    pub resource: String,
    /// The report.
    #[serde(flatten)]
    pub report: SyncReport,
}

/// Connections made live.
pub struct Hub {
    cache: Arc<Cache>,
    secrets: Arc<Secrets>,
    settings: Settings,
    /// One token source per connection, so a long-lived agent refreshes only when tokens expire.
    live: std::sync::Mutex<std::collections::HashMap<ConnectionId, Arc<TokenSource>>>,
}

impl Hub {
    /// A hub over the cache and secret store.
    pub fn new(cache: Arc<Cache>, secrets: Arc<Secrets>, settings: Settings) -> Hub {
        Hub {
            cache,
            secrets,
            settings,
            live: Default::default(),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn app(&self, provider: Provider, client: &ClientCredentials) -> OAuthApp {
        let e = &self.settings.endpoints;
        let (auth_url, token_url) = match provider {
            Provider::Google => (e.google_auth.clone(), e.google_token.clone()),
            Provider::Notion => (e.notion_auth.clone(), e.notion_token.clone()),
        };
        OAuthApp {
            provider,
            client_id: client.id.clone(),
            client_secret: client.secret.clone(),
            auth_url,
            token_url,
            resource: None,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Secrets) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let s = self.secrets.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .map_err(|e| ConnectorError::Secrets(e.to_string()))?
    }

    /// Runs the browser consent flow for `id`; `show` gets the URL to open (or print).
    pub async fn connect(
        &self,
        id: &ConnectionId,
        client: &ClientCredentials,
        extra_scopes: &[String],
        show: impl FnOnce(&Url),
    ) -> Result<ConnectionInfo> {
        let app = self.app(id.provider, client);
        let scopes: Vec<String> = match id.provider {
            Provider::Google => GOOGLE_READ_SCOPES
                .iter()
                .map(|s| s.to_string())
                .chain(extra_scopes.iter().cloned())
                .collect(),
            Provider::Notion => Vec::new(), // Notion grants per shared page, not per scope
        };
        let pending = app.begin(&scopes).await?;
        show(&pending.url);
        let grant = pending.finish(&app, self.settings.consent_timeout).await?;
        let stored = StoredGrant {
            client_id: Some(client.id.clone()),
            client_secret: client.secret.clone(),
            refresh_token: grant.refresh_token.clone(),
            // Without a refresh token the access token is all there is (Notion's non-expiring ones).
            access_token: grant
                .refresh_token
                .is_none()
                .then(|| grant.access_token.clone()),
        };
        if stored.refresh_token.is_none() && id.provider == Provider::Google {
            return Err(ConnectorError::OAuth(
                "Google issued no refresh token; remove Deskhand's access at \
                 https://myaccount.google.com/permissions and connect again"
                    .into(),
            ));
        }
        let key = id.clone();
        self.blocking(move |s| stored.save(s, &key)).await?;
        self.forget_tokens(id);
        let granted = if grant.scopes.is_empty() {
            scopes
        } else {
            grant.scopes
        };
        let identity = match id.provider {
            // The fresh access token serves this one call: no refresh right after consent.
            Provider::Google => self.google_identity(id, &grant.access_token).await.ok(),
            Provider::Notion => grant.identity,
        };
        self.cache
            .upsert_connection(id, identity.as_deref(), &granted)?;
        self.cache.connection(id)?.ok_or_else(|| id.not_connected())
    }

    async fn google_identity(&self, id: &ConnectionId, access_token: &str) -> Result<String> {
        let tokens = TokenSource::new(
            id.clone(),
            Grant::Static(access_token.to_string()),
            self.secrets.clone(),
        );
        Ok(self.gmail_with(Arc::new(tokens))?.profile().await?.0)
    }

    /// Connects Notion with a pasted internal-integration token (checked with one call first).
    pub async fn connect_token(&self, id: &ConnectionId, token: &str) -> Result<ConnectionInfo> {
        if id.provider != Provider::Notion {
            return Err(ConnectorError::Config(
                "only Notion takes a pasted token; Google connects through the browser".into(),
            ));
        }
        let tokens = Arc::new(TokenSource::new(
            id.clone(),
            Grant::Static(token.trim().to_string()),
            self.secrets.clone(),
        ));
        let notion = self.notion_with(tokens)?;
        notion.check().await.map_err(|e| match e {
            ConnectorError::Stale { .. } | ConnectorError::Auth { .. } => ConnectorError::Auth {
                provider: "Notion".into(),
                message: "the token was refused: copy it again from the integration's \
                              settings (it starts with ntn_ or secret_)"
                    .into(),
            },
            e => e,
        })?;
        let stored = StoredGrant {
            access_token: Some(token.trim().to_string()),
            ..StoredGrant::default()
        };
        let key = id.clone();
        self.blocking(move |s| stored.save(s, &key)).await?;
        self.forget_tokens(id);
        self.cache
            .upsert_connection(id, Some("internal integration"), &[])?;
        self.cache.connection(id)?.ok_or_else(|| id.not_connected())
    }

    /// Forgets a connection: its secrets and everything cached for it.
    pub async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        let key = id.secret_key("grant");
        self.blocking(move |s| s.delete(&key)).await?;
        self.forget_tokens(id);
        self.cache.forget_connection(id)
    }

    fn forget_tokens(&self, id: &ConnectionId) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Tokens for a connection, from its stored grant (shared while the hub lives).
    pub async fn tokens(&self, id: &ConnectionId) -> Result<Arc<TokenSource>> {
        if let Some(t) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(t.clone());
        }
        let key = id.clone();
        let stored = self
            .blocking(move |s| StoredGrant::load(s, &key))
            .await?
            .ok_or_else(|| id.not_connected())?;
        let grant = match (&stored.refresh_token, &stored.access_token) {
            (Some(_), _) => Grant::Refresh {
                app: Box::new(self.app(
                    id.provider,
                    &ClientCredentials {
                        id: stored.client_id.clone().unwrap_or_default(),
                        secret: stored.client_secret.clone(),
                    },
                )),
                stored: Box::new(stored),
            },
            (None, Some(t)) => Grant::Static(t.clone()),
            (None, None) => return Err(id.not_connected()),
        };
        let source = Arc::new(TokenSource::new(id.clone(), grant, self.secrets.clone()));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), source.clone());
        Ok(source)
    }

    /// A Gmail client for `id`.
    pub async fn gmail(&self, id: &ConnectionId) -> Result<Gmail> {
        let tokens = self.tokens(id).await?;
        self.gmail_with(tokens)
    }

    fn gmail_with(&self, tokens: Arc<TokenSource>) -> Result<Gmail> {
        let api = ApiClient::new(
            Provider::Google,
            tokens,
            self.settings.retry,
            None,
            HeaderMap::new(),
        )?;
        Ok(Gmail::new(
            Arc::new(api),
            self.settings.endpoints.gmail.clone(),
            self.settings.gmail_concurrency,
        ))
    }

    /// A Calendar client for `id`.
    pub async fn calendar(&self, id: &ConnectionId) -> Result<Calendar> {
        Calendar::new(
            self.settings.endpoints.calendar_root.as_str(),
            self.tokens(id).await?,
            self.settings.retry,
            self.settings.window,
        )
    }

    fn notion_with(&self, tokens: Arc<TokenSource>) -> Result<Notion> {
        let mut headers = HeaderMap::new();
        headers.insert("Notion-Version", HeaderValue::from_static(NOTION_VERSION));
        let api = ApiClient::new(
            Provider::Notion,
            tokens,
            self.settings.retry,
            Some(self.settings.notion_rate),
            headers,
        )?;
        Ok(Notion::new(
            Arc::new(api),
            self.settings.endpoints.notion_api.clone(),
        ))
    }

    /// A Notion client for `id`.
    pub async fn notion(&self, id: &ConnectionId) -> Result<Notion> {
        let tokens = self.tokens(id).await?;
        self.notion_with(tokens)
    }

    /// Fails fast, without touching the network, when `id` is known to need reconnecting.
    pub fn ensure_usable(&self, id: &ConnectionId) -> Result<()> {
        match self.cache.connection(id)? {
            None => Err(id.not_connected()),
            Some(c) if c.state == ConnectionState::Stale => {
                Err(id.stale(c.reason.unwrap_or_else(|| "access was revoked".into())))
            }
            Some(_) => Ok(()),
        }
    }

    /// Records the outcome of a provider call in the connection's health.
    pub fn record<T>(&self, id: &ConnectionId, r: &Result<T>) {
        let (state, reason) = match r {
            Ok(_) => (ConnectionState::Ok, None),
            Err(e) if e.needs_reconnect() => (ConnectionState::Stale, Some(stale_reason(e))),
            Err(e) => (ConnectionState::Error, Some(e.to_string())),
        };
        if let Err(e) = self.cache.set_state(id, state, reason.as_deref()) {
            tracing::warn!(%id, error = %e, "could not record connection health");
        }
    }

    /// Syncs one resource of one connection, tracking health.
    pub async fn sync(
        &self,
        id: &ConnectionId,
        what: Resource,
        progress: &dyn Progress,
    ) -> Result<Vec<SyncOutcome>> {
        if what.provider() != id.provider {
            return Err(ConnectorError::Config(format!(
                "{} is not served by {id}",
                what.as_str()
            )));
        }
        self.ensure_usable(id)?;
        let conn = id.to_string();
        let r = async {
            let mut out = Vec::new();
            match what {
                Resource::Gmail => {
                    let g = self.gmail(id).await?;
                    out.push((
                        "gmail".to_string(),
                        g.sync(&self.cache, &conn, progress).await?,
                    ));
                }
                Resource::Calendar => {
                    let c = self.calendar(id).await?;
                    for cal in &self.settings.calendar_ids {
                        let r = c.sync(&self.cache, &conn, cal, progress).await?;
                        out.push((format!("calendar:{cal}"), r));
                    }
                }
                Resource::Notion => {
                    let n = self.notion(id).await?;
                    out.push((
                        "notion".to_string(),
                        n.sync(&self.cache, &conn, progress).await?,
                    ));
                }
            }
            Ok(out)
        }
        .await;
        if r.as_ref()
            .is_err_and(|e: &ConnectorError| e.needs_reconnect())
        {
            // The fix (`deskhand connect`) may come from another process: reload the grant then.
            self.forget_tokens(id);
        }
        self.record(id, &r);
        Ok(r?
            .into_iter()
            .map(|(resource, report)| SyncOutcome {
                connection: conn.clone(),
                resource,
                report,
            })
            .collect())
    }
}

fn stale_reason(e: &ConnectorError) -> String {
    match e {
        ConnectorError::Stale { reason, .. } => reason.clone(),
        e => e.to_string(),
    }
}
