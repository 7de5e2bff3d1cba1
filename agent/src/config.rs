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
    /// The language model the planner uses.
    #[serde(default)]
    pub model: ModelSection,
    /// The planner: budgets and what a planned job may touch.
    #[serde(default)]
    pub planner: PlannerSection,
    /// MCP servers whose tools planned jobs get.
    #[serde(default)]
    pub mcp: crate::mcp::McpSection,
    /// `[nats]`: TLS and credentials for a NATS queue or hub.
    #[serde(default)]
    pub nats: crate::queue::auth::NatsSection,
    /// `[files]`: folders outside the workspace the person lets skills sort.
    #[serde(default)]
    pub files: FilesSection,
}

/// `[files]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilesSection {
    /// `[[files.granted]]`: a folder outside the workspace and the skills that may sort it.
    #[serde(default)]
    pub granted: Vec<Grant>,
}

/// A folder outside the workspace the person granted to some skills (`files.organize` in them
/// may move files inside it; nothing else may).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The folder: absolute, or `~/…` for one in the home folder.
    pub path: String,
    /// The skills that may sort it, by name (e.g. `organize-folder`).
    pub skills: Vec<String>,
}

impl Grant {
    /// The folder as an absolute path (`~/` from `$HOME`); `None` when it is neither absolute
    /// nor in a known home folder.
    pub fn folder(&self) -> Option<PathBuf> {
        expand_home(&self.path)
    }
}

/// `~/x` → `$HOME/x`; an absolute path as it is; anything else `None`.
pub fn expand_home(path: &str) -> Option<PathBuf> {
    let path = path.trim();
    if let Some(rest) = path.strip_prefix("~/").or((path == "~").then_some("")) {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        return Some(PathBuf::from(home).join(rest));
    }
    let p = PathBuf::from(path);
    p.is_absolute().then_some(p)
}

/// `[model]` in config.toml (the key is never here: environment or keyring).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `anthropic` or `openai` (any OpenAI-compatible server).
    pub provider: Option<String>,
    /// Where it is served (`http://localhost:11434/v1` for Ollama).
    pub base_url: Option<url::Url>,
    /// The model's name.
    pub model: Option<String>,
    /// The most tokens one reply may have.
    pub max_tokens: Option<u32>,
    /// US dollars per million input tokens (with `output_price_per_mtok`, a job's cost is
    /// recorded beside its tokens).
    pub input_price_per_mtok: Option<f64>,
    /// US dollars per million output tokens.
    pub output_price_per_mtok: Option<f64>,
}

/// `[planner]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlannerSection {
    /// Most model turns per job.
    pub max_turns: Option<u32>,
    /// Most input tokens per job, all turns together.
    pub max_input_tokens: Option<u64>,
    /// Most output tokens per job.
    pub max_output_tokens: Option<u64>,
    /// Most seconds per job.
    pub max_seconds: Option<u64>,
    /// Show every planned job's plan for approval before its first consequential call.
    pub show_plan: Option<bool>,
    /// What a planned job may touch (default: read connectors, write reports/**, edit TASKS.md
    /// and MEMORY.md, no browser origin; everything consequential asks).
    pub permissions: Option<crate::guard::Permissions>,
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

/// `over` merged into `base`: tables key by key, any other value replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Config {
    /// The config file's place in a workspace.
    pub fn path(workspace: &Path) -> PathBuf {
        workspace.join(".deskhand").join("config.toml")
    }

    /// The person's own config, below every workspace's: `$XDG_CONFIG_HOME/deskhand/config.toml`
    /// (`~/.config/deskhand/config.toml`). `DESKHAND_USER_CONFIG` names another file, or none
    /// when empty.
    pub fn user_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("DESKHAND_USER_CONFIG") {
            return (!p.is_empty()).then(|| PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("deskhand/config.toml"))
    }

    /// Load the config: the person's own file ([`Config::user_path`]), then the workspace's over
    /// it (a key set in both takes the workspace's value; tables merge). Missing files mean
    /// defaults; each file is checked on its own first, so an error names the file it is in.
    pub fn load(workspace: &Path) -> Result<Config, ConfigError> {
        let files = [Self::user_path(), Some(Self::path(workspace))];
        let mut merged = toml::Table::new();
        let mut last = Self::path(workspace);
        for path in files.into_iter().flatten() {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Read { path, source }),
            };
            Self::parse(&text).map_err(|message| ConfigError::Invalid {
                path: path.clone(),
                message,
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            merge(&mut merged, table);
            last = path;
        }
        if merged.is_empty() {
            return Ok(Config::default());
        }
        let text = toml::to_string(&merged).map_err(|e| ConfigError::Invalid {
            path: last.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: last,
            message: format!("{message} (with the user config merged below it)"),
        })
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
            let nats = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| q.starts_with(s));
            if !(q == "embedded" || nats) {
                return Err(format!(
                    "[agent] queue = {:?}: use \"embedded\", or a NATS URL (nats://, tls://, ws:// \
                     or wss://host:port)",
                    crate::queue::auth::redact(q)
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
        // Names and timeouts now; variables are expanded when the agent starts.
        crate::mcp::check(&c.mcp).map_err(|e| e.to_string())?;
        let m = &c.model;
        match (m.input_price_per_mtok, m.output_price_per_mtok) {
            (None, None) => {}
            (Some(i), Some(o)) if i.is_finite() && o.is_finite() && i >= 0.0 && o >= 0.0 => {}
            (i, o) => {
                return Err(format!(
                    "[model] input_price_per_mtok = {i:?}, output_price_per_mtok = {o:?}: set \
                     both, in US dollars per million tokens (0 or more), or neither"
                ))
            }
        }
        Ok(c)
    }
}

/// Where the planner's model key comes from (`deskhand model status`); never the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// This environment variable (the environment wins over the keyring).
    Env(&'static str),
    /// The OS keyring, put there by `deskhand model set-key`.
    Keyring,
    /// This environment variable holds a key, but it is not sent: the base URL comes from the
    /// workspace's config file and is not the provider's own endpoint.
    Withheld(&'static str),
    /// No key (a local server needs none).
    None,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(v) => write!(f, "environment variable {v}"),
            KeySource::Keyring => f.write_str("OS keyring (deskhand model set-key)"),
            KeySource::Withheld(v) => write!(
                f,
                "none sent: {v} is set, but the base URL comes from the workspace's config file \
                 and is not the provider's endpoint (name it in DESKHAND_MODEL_BASE_URL)"
            ),
            KeySource::None => f.write_str("none"),
        }
    }
}

/// The planner's model, budget and permissions from `[model]`, `[planner]` and the environment
/// (`DESKHAND_MODEL_PROVIDER`, `DESKHAND_MODEL_BASE_URL`, `DESKHAND_MODEL`,
/// `DESKHAND_MODEL_API_KEY`, else `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`); `get` reads a variable.
/// No keyring: see [`planner_env_with`].
pub fn planner_env(
    config: &Config,
    get: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<crate::guard::PlannerEnv> {
    planner_env_with(config, get, |_| None)
}

/// The model settings and where the key came from: the environment first, then `keyring` (asked
/// only when the environment has no key and a key may be sent to the base URL); `None` when no
/// provider and model are configured.
pub fn model_settings(
    config: &Config,
    get: impl Fn(&str) -> Option<String>,
    keyring: impl Fn(deskhand_model::Provider) -> Option<String>,
) -> anyhow::Result<Option<(deskhand_model::ModelConfig, KeySource)>> {
    use deskhand_model::{ApiKey, ModelConfig, Price, Provider};
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let m = &config.model;
    let provider: Option<Provider> = match get("DESKHAND_MODEL_PROVIDER").or(m.provider.clone()) {
        Some(p) => Some(p.parse()?),
        None if get("ANTHROPIC_API_KEY").is_some() => Some(Provider::Anthropic),
        None if get("OPENAI_API_KEY").is_some() => Some(Provider::Openai),
        None => None,
    };
    let name = get("DESKHAND_MODEL").or(m.model.clone());
    let (Some(p), Some(name)) = (provider, name) else {
        return Ok(None);
    };
    let mut c = ModelConfig::new(p, &name);
    // A base URL from the workspace's config file (which a shared or downloaded workspace
    // brings along) gets no key unless it is the provider's own endpoint: a local server
    // needs none, and anything else must be named in the environment.
    let mut key_allowed = true;
    if let Some(u) = get("DESKHAND_MODEL_BASE_URL") {
        c.base_url = url::Url::parse(&u)
            .map_err(|e| anyhow::anyhow!("DESKHAND_MODEL_BASE_URL {u:?}: {e}"))?;
    } else if let Some(u) = &m.base_url {
        key_allowed = u.origin() == c.base_url.origin();
        c.base_url = u.clone();
    }
    if let Some(t) = m.max_tokens {
        c.max_tokens = t;
    }
    if let (Some(i), Some(o)) = (m.input_price_per_mtok, m.output_price_per_mtok) {
        c.price = Some(Price {
            input_per_mtok: i,
            output_per_mtok: o,
        });
    }
    let own = match p {
        Provider::Anthropic => "ANTHROPIC_API_KEY",
        Provider::Openai => "OPENAI_API_KEY",
    };
    let from_env = ["DESKHAND_MODEL_API_KEY", own]
        .into_iter()
        .find_map(|v| get(v).map(|k| (v, k)));
    let source = match from_env {
        Some((v, _)) if !key_allowed => KeySource::Withheld(v),
        Some((v, k)) => {
            c.api_key = Some(ApiKey::new(&k));
            KeySource::Env(v)
        }
        // The keyring's key is not tied to a workspace either: the same rule applies.
        None if !key_allowed => KeySource::None,
        None => match keyring(p).filter(|k| !k.trim().is_empty()) {
            Some(k) => {
                c.api_key = Some(ApiKey::new(&k));
                KeySource::Keyring
            }
            None => KeySource::None,
        },
    };
    if let Some(ms) = get("DESKHAND_MODEL_RETRY_MS").and_then(|v| v.parse().ok()) {
        c.retry.base = std::time::Duration::from_millis(ms);
    }
    Ok(Some((c, source)))
}

/// [`planner_env`], with `keyring` giving the key `deskhand model set-key` stored for a provider
/// when the environment has none.
pub fn planner_env_with(
    config: &Config,
    get: impl Fn(&str) -> Option<String>,
    keyring: impl Fn(deskhand_model::Provider) -> Option<String>,
) -> anyhow::Result<crate::guard::PlannerEnv> {
    let model = model_settings(config, get, keyring)?.map(|(c, _)| c);
    let p = &config.planner;
    let mut budget = deskhand_model::Budget::default();
    if let Some(t) = p.max_turns {
        budget.max_turns = t;
    }
    if let Some(t) = p.max_input_tokens {
        budget.max_input_tokens = t;
    }
    if let Some(t) = p.max_output_tokens {
        budget.max_output_tokens = t;
    }
    if let Some(s) = p.max_seconds {
        budget.max_time = std::time::Duration::from_secs(s);
    }
    let permissions = p
        .permissions
        .clone()
        .unwrap_or_else(|| crate::guard::Permissions {
            connectors: [
                ("gmail".to_string(), crate::guard::Access::Read),
                ("calendar".to_string(), crate::guard::Access::Read),
                ("notion".to_string(), crate::guard::Access::Read),
            ]
            .into_iter()
            .collect(),
            workspace: vec!["reports/**".into(), "TASKS.md".into(), "MEMORY.md".into()],
            ..Default::default()
        });
    Ok(crate::guard::PlannerEnv {
        model,
        budget,
        permissions,
        show_plan: p.show_plan.unwrap_or(false),
        // `${VAR}` in a server's settings may name any of Deskhand's variables (a token for
        // the server), so these are read from the whole environment.
        mcp: crate::mcp::specs(&config.mcp, |k| std::env::var(k).ok())?,
    })
}

#[cfg(test)]
mod layering_tests {
    use super::*;

    #[test]
    fn the_workspace_config_wins_key_by_key_over_the_user_config() {
        let mut base: toml::Table =
            "[browser]\nchrome = \"/usr/bin/chromium\"\nheaded = true\n[agent]\nconcurrency = 2\n"
                .parse()
                .unwrap();
        let over: toml::Table = "[browser]\nchrome = \"/opt/chrome\"\n".parse().unwrap();
        merge(&mut base, over);
        assert_eq!(base["browser"]["chrome"].as_str(), Some("/opt/chrome"));
        assert_eq!(base["browser"]["headed"].as_bool(), Some(true));
        assert_eq!(base["agent"]["concurrency"].as_integer(), Some(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planner_section_sets_model_budget_and_permissions() {
        let c: Config = toml::from_str(
            "[model]\nprovider = \"openai\"\nmodel = \"qwen3\"\nbase_url = \"http://localhost:11434/v1\"\n\
             [planner]\nmax_turns = 3\n[planner.permissions]\nconnectors = { gmail = \"write\" }\n",
        )
        .unwrap();
        let p = planner_env(&c, |_| None).unwrap();
        let m = p.model.unwrap();
        assert_eq!(m.base_url.as_str(), "http://localhost:11434/v1");
        assert!(m.api_key.is_none());
        assert_eq!(p.budget.max_turns, 3);
        assert_eq!(
            p.permissions.connectors.get("gmail"),
            Some(&crate::guard::Access::Write)
        );
        // The environment wins; a key comes only from it.
        let p = planner_env(&c, |k| match k {
            "DESKHAND_MODEL" => Some("other".into()),
            "OPENAI_API_KEY" => Some("sk-x".into()),
            _ => None,
        })
        .unwrap();
        let m = p.model.unwrap();
        assert_eq!(m.model, "other");
        assert!(
            m.api_key.is_none(),
            "a base URL from the config file gets no key from the environment"
        );
        let public: Config =
            toml::from_str("[model]\nprovider = \"openai\"\nmodel = \"gpt\"\n").unwrap();
        let with_key = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-x".to_string()),
            _ => None,
        };
        assert!(planner_env(&public, with_key)
            .unwrap()
            .model
            .unwrap()
            .api_key
            .is_some());
        let named = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-x".to_string()),
            "DESKHAND_MODEL_BASE_URL" => Some("https://proxy.example/v1".to_string()),
            _ => None,
        };
        assert!(planner_env(&c, named)
            .unwrap()
            .model
            .unwrap()
            .api_key
            .is_some());
        assert!(planner_env(&Config::default(), |_| None)
            .unwrap()
            .model
            .is_none());
    }

    #[test]
    fn the_keyring_key_is_used_only_without_an_environment_key_and_prices_are_read() {
        let c = Config::parse(
            "[model]\nprovider = \"anthropic\"\nmodel = \"claude\"\n\
             input_price_per_mtok = 3.0\noutput_price_per_mtok = 15\n",
        )
        .unwrap();
        let asked = std::cell::Cell::new(0);
        let keyring = |p: deskhand_model::Provider| {
            asked.set(asked.get() + 1);
            (p == deskhand_model::Provider::Anthropic).then(|| "sk-ring".to_string())
        };
        let (m, source) = model_settings(&c, |_| None, keyring).unwrap().unwrap();
        assert_eq!(source, KeySource::Keyring);
        assert!(m.api_key.is_some());
        assert_eq!(m.price.unwrap().output_per_mtok, 15.0);
        // The environment wins, and the keyring is not even asked.
        let env = |k: &str| (k == "ANTHROPIC_API_KEY").then(|| "sk-env".to_string());
        let (_, source) = model_settings(&c, env, keyring).unwrap().unwrap();
        assert_eq!(source, KeySource::Env("ANTHROPIC_API_KEY"));
        assert_eq!(asked.get(), 1);
        // A base URL from the file that is not the provider's gets neither key.
        let moved = Config::parse(
            "[model]\nprovider = \"anthropic\"\nmodel = \"claude\"\nbase_url = \"https://proxy.example\"\n",
        )
        .unwrap();
        let (m, source) = model_settings(&moved, |_| None, keyring).unwrap().unwrap();
        assert_eq!((m.api_key, source), (None, KeySource::None));
        let (m, source) = model_settings(&moved, env, keyring).unwrap().unwrap();
        assert_eq!(
            (m.api_key, source),
            (None, KeySource::Withheld("ANTHROPIC_API_KEY"))
        );
        assert_eq!(asked.get(), 1);
        // One price alone, or a negative one, is refused.
        assert!(Config::parse("[model]\ninput_price_per_mtok = 3.0\n")
            .unwrap_err()
            .contains("set both"));
        assert!(
            Config::parse("[model]\ninput_price_per_mtok = -1\noutput_price_per_mtok = 1\n")
                .is_err()
        );
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../docs/config.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.browser.backend.as_deref(), Some("cdp"));
        assert_eq!(c.model.max_tokens, Some(4096));
        // The commented prices parse too, once uncommented.
        let priced = text
            .replace("# input_price_per_mtok", "input_price_per_mtok")
            .replace("# output_price_per_mtok", "output_price_per_mtok");
        assert!(Config::parse(&priced).unwrap().model.input_price_per_mtok == Some(3.0));
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
