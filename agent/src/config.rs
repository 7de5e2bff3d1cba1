//! Configuration in layers: defaults in code, then `.deskhand/config.toml` in the workspace, then
//! `DESKHAND_*` environment variables (applied by the CLI and the browser crate).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Browser settings.
    #[serde(default)]
    pub browser: BrowserConfig,
    /// Agent and queue settings.
    #[serde(default)]
    pub agent: AgentSection,
    /// Where connection secrets are kept.
    #[serde(default)]
    pub secrets: SecretsSection,
    /// Google (Gmail, Calendar) connector.
    #[serde(default)]
    pub google: GoogleSection,
    /// Notion connector.
    #[serde(default)]
    pub notion: NotionSection,
    /// Retry policy for provider calls.
    #[serde(default)]
    pub retry: deskhand_connectors::RetryPolicy,
}

/// `[secrets]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// auto (OS keyring), secret-service, keyutils, or file (needs `DESKHAND_SECRETS_KEY`).
    pub store: Option<deskhand_connectors::SecretStoreKind>,
}

/// `[google]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GoogleSection {
    /// OAuth client id of a Desktop-app client (`$DESKHAND_GOOGLE_CLIENT_ID` wins).
    pub client_id: Option<String>,
    /// Authorization endpoint.
    pub auth_url: Option<url::Url>,
    /// Token endpoint.
    pub token_url: Option<url::Url>,
    /// Gmail `users/me/` base URL.
    pub gmail_url: Option<url::Url>,
    /// Root URL under which `calendar/v3/` lives.
    pub calendar_url: Option<url::Url>,
    /// Parallel message downloads (default 16).
    pub concurrency: Option<usize>,
    /// Calendars to sync (default `["primary"]`).
    pub calendars: Option<Vec<String>>,
    /// Days of past events a full sync keeps (default 30).
    pub past_days: Option<i64>,
    /// Days of future events a full sync keeps (default 180).
    pub future_days: Option<i64>,
}

/// `[notion]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotionSection {
    /// OAuth client id of a public integration (`$DESKHAND_NOTION_CLIENT_ID` wins).
    pub client_id: Option<String>,
    /// Authorization endpoint.
    pub auth_url: Option<url::Url>,
    /// Token endpoint.
    pub token_url: Option<url::Url>,
    /// API base URL (`.../v1/`).
    pub api_url: Option<url::Url>,
    /// Requests per second (default 3, Notion's documented average).
    pub requests_per_second: Option<u32>,
}

/// `[agent]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// `embedded` (default, no server) or `nats://host:port` (`$DESKHAND_QUEUE` wins).
    pub queue: Option<String>,
    /// This agent's name (NATS subjects `deskhand.<name>.…`); default `default`.
    pub name: Option<String>,
    /// Jobs at once (default 4).
    pub concurrency: Option<usize>,
    /// Port of the local API on 127.0.0.1 (default 7878; 0 = any free port).
    pub api_port: Option<u16>,
    /// Seconds a delivery is leased before another agent may take it (default 30).
    pub lease_secs: Option<u64>,
    /// Deliveries before a job is dead-lettered (default 5).
    pub max_deliveries: Option<u32>,
    /// Seconds running jobs may finish on shutdown (default 20).
    pub grace_secs: Option<u64>,
    /// Hold a sleep inhibitor while jobs run or a schedule is due within minutes (default true).
    pub keep_awake: Option<bool>,
    /// The inhibitor program (default `systemd-inhibit` from PATH; `$DESKHAND_INHIBIT_COMMAND` wins).
    pub inhibit_command: Option<PathBuf>,
}

/// `[browser]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserConfig {
    /// Chromium binary (`$DESKHAND_CHROME` wins).
    pub chrome: Option<PathBuf>,
    /// chromedriver binary (`$DESKHAND_CHROMEDRIVER` wins).
    pub chromedriver: Option<PathBuf>,
    /// `cdp` or `webdriver`.
    pub backend: Option<String>,
    /// Persistent profile folder (relative paths are relative to the workspace).
    pub profile: Option<PathBuf>,
    /// Seconds an action waits for its element.
    pub action_timeout_secs: Option<u64>,
    /// Seconds a page may take to load.
    pub navigation_timeout_secs: Option<u64>,
}

/// Problems loading config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column from the TOML parser).
        message: String,
    },
}

impl Config {
    /// The config file's place in a workspace.
    pub fn path(workspace: &Path) -> PathBuf {
        workspace.join(".deskhand").join("config.toml")
    }

    /// Load the workspace's config; a missing file means defaults.
    pub fn load(workspace: &Path) -> Result<Config, ConfigError> {
        let path = Self::path(workspace);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text).map_err(|message| ConfigError::Invalid { path, message })
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(b) = &c.browser.backend {
            b.parse::<deskhand_browser::Backend>()
                .map_err(|e| e.to_string())?;
        }
        if c.browser.action_timeout_secs == Some(0) || c.browser.navigation_timeout_secs == Some(0)
        {
            return Err("timeouts must be at least 1 second".into());
        }
        c.browser.chrome = c.browser.chrome.filter(|p| !p.as_os_str().is_empty());
        if let Some(q) = &c.agent.queue {
            if !(q == "embedded" || q.starts_with("nats://")) {
                return Err(format!(
                    "[agent] queue = {q:?}: use \"embedded\" or \"nats://host:port\""
                ));
            }
        }
        if c.agent.concurrency == Some(0)
            || c.agent.lease_secs == Some(0)
            || c.agent.max_deliveries == Some(0)
        {
            return Err(
                "[agent] concurrency, lease_secs and max_deliveries must be at least 1".into(),
            );
        }
        if let Some(n) = &c.agent.name {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(format!(
                    "[agent] name = {n:?}: use letters, digits, '-' and '_'"
                ));
            }
        }
        if c.google.concurrency == Some(0) || c.notion.requests_per_second == Some(0) {
            return Err(
                "[google] concurrency and [notion] requests_per_second must be at least 1".into(),
            );
        }
        if c.retry.max_attempts == 0 {
            return Err("[retry] max_attempts must be at least 1".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../docs/config.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.browser.backend.as_deref(), Some("cdp"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Config::parse("[browser]\nchrom = \"/x\"\n")
            .unwrap_err()
            .contains("chrom"));
        assert!(Config::parse("[browser]\nbackend = \"selenium\"\n")
            .unwrap_err()
            .contains("selenium"));
        assert!(Config::parse("[browser]\naction_timeout_secs = 0\n").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }
}
