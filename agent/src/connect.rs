//! Connector wiring: config and environment turned into the connectors crate's settings, the
//! secret store and the cache of a workspace.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deskhand_connectors::calendar::Window;
use deskhand_connectors::{
    Cache, ClientCredentials, Endpoints, Hub, Provider, SecretStoreKind, Secrets, Settings,
};

use crate::config::Config;

/// The cache file of a workspace.
pub fn cache_path(workspace: &Path) -> PathBuf {
    workspace.join(".deskhand").join("cache.db")
}

/// Opens the workspace's cache (no secrets needed: reads work offline and without a keyring).
pub fn open_cache(workspace: &Path) -> anyhow::Result<Arc<Cache>> {
    Ok(Arc::new(Cache::open(&cache_path(workspace))?))
}

/// Environment variable that allows provider URLs other than the real ones (tests, a proxy).
pub const CUSTOM_ENDPOINTS_ENV: &str = "DESKHAND_ALLOW_CUSTOM_ENDPOINTS";

/// Connector settings from config (every value has a default).
///
/// Provider URLs in the workspace's config are honoured only with `DESKHAND_ALLOW_CUSTOM_ENDPOINTS=1`
/// in the environment: the keyring's grants are not tied to a workspace, so a config shipped inside
/// a cloned folder must not be able to send them to another host.
pub fn settings(config: &Config) -> anyhow::Result<Settings> {
    settings_with(
        config,
        std::env::var(CUSTOM_ENDPOINTS_ENV).as_deref() == Ok("1"),
    )
}

/// [`settings`], with the environment's `DESKHAND_ALLOW_CUSTOM_ENDPOINTS=1` already read.
pub fn settings_with(config: &Config, allow_custom: bool) -> anyhow::Result<Settings> {
    let g = &config.google;
    let n = &config.notion;
    let custom = [
        &g.auth_url,
        &g.token_url,
        &g.gmail_url,
        &g.calendar_url,
        &n.auth_url,
        &n.token_url,
        &n.api_url,
    ]
    .iter()
    .any(|u| u.is_some());
    if custom && !allow_custom {
        anyhow::bail!(
            "the workspace config sets provider URLs ([google]/[notion] *_url); your tokens would \
             be sent there. Remove them, or set {CUSTOM_ENDPOINTS_ENV}=1 if you trust this config"
        );
    }
    let d = Settings::default();
    let e = Endpoints::default();
    Ok(Settings {
        endpoints: Endpoints {
            google_auth: g.auth_url.clone().unwrap_or(e.google_auth),
            google_token: g.token_url.clone().unwrap_or(e.google_token),
            gmail: g.gmail_url.clone().unwrap_or(e.gmail),
            calendar_root: g.calendar_url.clone().unwrap_or(e.calendar_root),
            notion_auth: n.auth_url.clone().unwrap_or(e.notion_auth),
            notion_token: n.token_url.clone().unwrap_or(e.notion_token),
            notion_api: n.api_url.clone().unwrap_or(e.notion_api),
        },
        retry: config.retry,
        gmail_concurrency: g.concurrency.unwrap_or(d.gmail_concurrency),
        notion_rate: n.requests_per_second.unwrap_or(d.notion_rate),
        calendar_ids: g.calendars.clone().unwrap_or(d.calendar_ids),
        window: Window {
            past_days: g.past_days.unwrap_or(d.window.past_days),
            future_days: g.future_days.unwrap_or(d.window.future_days),
        },
        consent_timeout: d.consent_timeout,
    })
}

/// Opens the secret store the config names.
pub fn open_secrets(workspace: &Path, config: &Config) -> anyhow::Result<Arc<Secrets>> {
    let kind = config.secrets.store.unwrap_or(SecretStoreKind::Auto);
    Ok(Arc::new(Secrets::open(kind, &workspace.join(".deskhand"))?))
}

/// Cache, secrets and settings together.
pub fn open_hub(workspace: &Path, config: &Config) -> anyhow::Result<Hub> {
    Ok(Hub::new(
        open_cache(workspace)?,
        open_secrets(workspace, config)?,
        settings(config)?,
    ))
}

/// The OAuth client for `provider`: id from env or config, secret from env or `secret`.
pub fn client_credentials(
    provider: Provider,
    config: &Config,
    id_flag: Option<String>,
    secret: Option<String>,
) -> anyhow::Result<ClientCredentials> {
    let (env_id, env_secret, cfg_id) = match provider {
        Provider::Google => (
            "DESKHAND_GOOGLE_CLIENT_ID",
            "DESKHAND_GOOGLE_CLIENT_SECRET",
            config.google.client_id.clone(),
        ),
        Provider::Notion => (
            "DESKHAND_NOTION_CLIENT_ID",
            "DESKHAND_NOTION_CLIENT_SECRET",
            config.notion.client_id.clone(),
        ),
    };
    let id = id_flag
        .or_else(|| std::env::var(env_id).ok())
        .or(cfg_id)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no OAuth client id for {}: set [{}] client_id in .deskhand/config.toml, {env_id}, \
                 or pass --client-id{}",
                provider.title(),
                provider.as_str(),
                if provider == Provider::Notion {
                    " (or paste an internal integration token with --token-stdin)"
                } else {
                    ""
                }
            )
        })?;
    let secret = secret
        .or_else(|| std::env::var(env_secret).ok())
        .filter(|s| !s.is_empty());
    Ok(ClientCredentials { id, secret })
}
