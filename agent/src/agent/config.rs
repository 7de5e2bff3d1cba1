//! [`AgentConfig`]: everything the daemon needs to start, built in one place in layers: defaults
//! in code, then the workspace's config file, then the `DESKHAND_*` environment (read once, into
//! [`AgentEnv`]), then the command line ([`AgentFlags`]). `serve`, `skills run`, triggers and the
//! demo build theirs with [`AgentConfig::layered`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::queue::QueueConfig;

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Workspace folder.
    pub workspace: PathBuf,
    /// `embedded` or `nats://host:port`.
    pub queue: String,
    /// Queue behaviour (agent name, lease, dead-letter limit).
    pub queue_config: QueueConfig,
    /// Jobs at once.
    pub concurrency: usize,
    /// Steps at once within a job.
    pub parallel_steps: usize,
    /// How long running jobs may finish on shutdown before they are handed back.
    pub grace: Duration,
    /// Browser settings for browser steps.
    pub browser: deskhand_browser::LaunchOptions,
    /// Connector settings (provider URLs, retry policy, ...).
    pub connectors: deskhand_connectors::Settings,
    /// Where connector secrets are kept.
    pub secret_store: deskhand_connectors::SecretStoreKind,
    /// How often held jobs are checked for a fix.
    pub held_check: Duration,
    /// Hold a sleep inhibitor while jobs run or a schedule is due soon.
    pub keep_awake: bool,
    /// The inhibitor program (default `systemd-inhibit` on PATH).
    pub inhibit_command: Option<PathBuf>,
    /// Longest sleep between schedule checks.
    pub schedule_tick: Duration,
    /// The planner's model, budget and permissions (plain-word jobs).
    pub planner: crate::guard::PlannerEnv,
}

impl AgentConfig {
    /// Defaults for a workspace.
    pub fn new(workspace: PathBuf) -> Self {
        AgentConfig {
            workspace,
            queue: "embedded".into(),
            queue_config: QueueConfig::default(),
            concurrency: 4,
            parallel_steps: 4,
            grace: Duration::from_secs(20),
            browser: deskhand_browser::LaunchOptions::default(),
            connectors: deskhand_connectors::Settings::default(),
            secret_store: deskhand_connectors::SecretStoreKind::Auto,
            held_check: Duration::from_secs(2),
            keep_awake: true,
            inhibit_command: None,
            schedule_tick: Duration::from_secs(30),
            planner: Default::default(),
        }
    }

    /// The config for `workspace`: `flags` over `env` over `config` over the defaults of
    /// [`AgentConfig::new`].
    pub fn layered(
        workspace: &Path,
        config: &Config,
        env: &AgentEnv,
        flags: AgentFlags,
    ) -> anyhow::Result<AgentConfig> {
        let a = &config.agent;
        let mut cfg = AgentConfig::new(workspace.to_path_buf());
        cfg.queue = flags
            .queue
            .or_else(|| a.queue.clone())
            .unwrap_or_else(|| "embedded".into());
        cfg.queue_config = queue_config(config, flags.agent);
        cfg.concurrency = flags
            .concurrency
            .or(a.concurrency)
            .unwrap_or(cfg.concurrency);
        if let Some(g) = a.grace_secs {
            cfg.grace = Duration::from_secs(g);
        }
        cfg.browser = flags.browser;
        cfg.connectors = crate::connect::settings_with(config, env.allow_custom_endpoints)?;
        cfg.secret_store = config.secrets.store.unwrap_or(cfg.secret_store);
        cfg.keep_awake = flags.keep_awake.or(a.keep_awake).unwrap_or(cfg.keep_awake);
        cfg.inhibit_command = env
            .inhibit_command
            .clone()
            .or_else(|| a.inhibit_command.clone());
        if let Some(t) = env.schedule_tick {
            cfg.schedule_tick = t;
        }
        // The keyring is asked only when a model is configured and the environment has no key.
        cfg.planner = crate::config::planner_env_with(
            config,
            |k| env.model.get(k).cloned(),
            |p| crate::model_key::read(workspace, config, p),
        )?;
        Ok(cfg)
    }
}

impl AgentConfig {
    /// The config for running jobs here and now (`skills run`, triggers, the demo): the
    /// environment read now, and [`AgentFlags::run_now`].
    pub fn for_run_now(
        workspace: &Path,
        config: &Config,
        browser: deskhand_browser::LaunchOptions,
    ) -> anyhow::Result<AgentConfig> {
        AgentConfig::layered(
            workspace,
            config,
            &AgentEnv::read(),
            AgentFlags::run_now(browser),
        )
    }
}

/// The `DESKHAND_*` variables the daemon's config reads, read once. (`DESKHAND_QUEUE`,
/// `DESKHAND_AGENT` and `DESKHAND_BACKEND` arrive through the command line's parser, as the
/// flags they stand for; the browser crate reads `DESKHAND_CHROME` and `DESKHAND_CHROMEDRIVER`.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentEnv {
    /// `DESKHAND_INHIBIT_COMMAND`: the sleep inhibitor program (wins over the config file).
    pub inhibit_command: Option<PathBuf>,
    /// `DESKHAND_SCHEDULE_TICK_MS`: longest sleep between schedule checks.
    pub schedule_tick: Option<Duration>,
    /// `DESKHAND_ALLOW_CUSTOM_ENDPOINTS=1`: honour provider URLs set in the workspace's config.
    pub allow_custom_endpoints: bool,
    /// The model variables (`DESKHAND_MODEL*`, `ANTHROPIC_API_KEY`, `OPENAI_API_KEY`).
    pub model: std::collections::BTreeMap<String, String>,
}

/// The environment variables the planner's model settings come from.
const MODEL_VARS: &[&str] = &[
    "DESKHAND_MODEL_PROVIDER",
    "DESKHAND_MODEL_BASE_URL",
    "DESKHAND_MODEL",
    "DESKHAND_MODEL_API_KEY",
    "DESKHAND_MODEL_RETRY_MS",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
];

impl AgentEnv {
    /// Read the process environment.
    pub fn read() -> AgentEnv {
        AgentEnv::from_lookup(|k| std::env::var_os(k))
    }

    /// Read the variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> AgentEnv {
        let text = |k: &str| get(k).and_then(|v| v.into_string().ok());
        AgentEnv {
            inhibit_command: get("DESKHAND_INHIBIT_COMMAND").map(PathBuf::from),
            schedule_tick: text("DESKHAND_SCHEDULE_TICK_MS")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_millis),
            allow_custom_endpoints: text(crate::connect::CUSTOM_ENDPOINTS_ENV).as_deref()
                == Some("1"),
            model: MODEL_VARS
                .iter()
                .filter_map(|k| text(k).map(|v| (k.to_string(), v)))
                .collect(),
        }
    }
}

/// What the command line says; each `None` leaves the choice to the config file or the default.
#[derive(Debug, Clone, Default)]
pub struct AgentFlags {
    /// `--queue` (or `$DESKHAND_QUEUE`): `embedded` or `nats://host:port`.
    pub queue: Option<String>,
    /// `--agent` (or `$DESKHAND_AGENT`): this agent's name.
    pub agent: Option<String>,
    /// `--concurrency`: jobs at once.
    pub concurrency: Option<usize>,
    /// `--keep-awake`.
    pub keep_awake: Option<bool>,
    /// Browser settings, already merged from the command line and the config file.
    pub browser: deskhand_browser::LaunchOptions,
}

impl AgentFlags {
    /// For running jobs here and now (`skills run`, triggers, the demo): no queue server and no
    /// sleep inhibitor, whatever the config file says for the daemon.
    pub fn run_now(browser: deskhand_browser::LaunchOptions) -> AgentFlags {
        AgentFlags {
            queue: Some("embedded".into()),
            keep_awake: Some(false),
            browser,
            ..AgentFlags::default()
        }
    }
}

/// The queue's behaviour from the config file, with `agent` (the command line's name) winning.
pub fn queue_config(config: &Config, agent: Option<String>) -> QueueConfig {
    let a = &config.agent;
    let mut q = QueueConfig::default();
    if let Some(n) = agent.or_else(|| a.name.clone()) {
        q.agent = n;
    }
    if let Some(s) = a.lease_secs {
        q.lease = Duration::from_secs(s);
    }
    if let Some(m) = a.max_deliveries {
        q.max_deliveries = m;
    }
    q.auth = crate::queue::auth::NatsAuth::from(config.nats.clone(), |k| std::env::var(k).ok());
    if let Some(mb) = config.nats.file_limit_mb {
        q.files.file_bytes = mb << 20;
    }
    q.hub_domain = config
        .nats
        .hub_domain
        .clone()
        .filter(|d| !d.trim().is_empty());
    if let Some(days) = config.nats.files_keep_days {
        q.files.keep = Duration::from_secs(days * 24 * 3600);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_env_over_the_file_over_defaults() {
        let file = Config::parse(
            "[agent]\nqueue = \"nats://127.0.0.1:4222\"\nname = \"desk\"\nconcurrency = 2\n\
             grace_secs = 3\nkeep_awake = false\ninhibit_command = \"/bin/file-inhibit\"\n",
        )
        .unwrap();
        let env = AgentEnv::from_lookup(|k| match k {
            "DESKHAND_INHIBIT_COMMAND" => Some("/bin/env-inhibit".into()),
            "DESKHAND_SCHEDULE_TICK_MS" => Some("50".into()),
            _ => None,
        });
        let ws = Path::new("/ws");
        let cfg = AgentConfig::layered(ws, &file, &env, AgentFlags::default()).unwrap();
        assert_eq!(cfg.queue, "nats://127.0.0.1:4222");
        assert_eq!(cfg.queue_config.agent, "desk");
        assert_eq!((cfg.concurrency, cfg.grace), (2, Duration::from_secs(3)));
        assert!(!cfg.keep_awake);
        assert_eq!(cfg.inhibit_command, Some(PathBuf::from("/bin/env-inhibit")));
        assert_eq!(cfg.schedule_tick, Duration::from_millis(50));

        let flags = AgentFlags {
            queue: Some("embedded".into()),
            agent: Some("cli".into()),
            concurrency: Some(7),
            keep_awake: Some(true),
            ..AgentFlags::default()
        };
        let cfg = AgentConfig::layered(ws, &file, &AgentEnv::default(), flags).unwrap();
        assert_eq!(cfg.queue, "embedded");
        assert_eq!(cfg.queue_config.agent, "cli");
        assert_eq!(cfg.concurrency, 7);
        assert!(cfg.keep_awake);
        assert_eq!(
            cfg.inhibit_command,
            Some(PathBuf::from("/bin/file-inhibit"))
        );

        let defaults = AgentConfig::new(ws.to_path_buf());
        let empty = Config::default();
        let cfg =
            AgentConfig::layered(ws, &empty, &AgentEnv::default(), AgentFlags::default()).unwrap();
        assert_eq!(cfg.queue, defaults.queue);
        assert_eq!(cfg.concurrency, defaults.concurrency);
        assert_eq!(cfg.keep_awake, defaults.keep_awake);
        assert_eq!(cfg.schedule_tick, defaults.schedule_tick);

        let run_now =
            AgentConfig::layered(ws, &file, &env, AgentFlags::run_now(Default::default())).unwrap();
        assert_eq!(run_now.queue, "embedded");
        assert!(!run_now.keep_awake);
    }

    #[test]
    fn provider_urls_in_the_file_need_the_environment_to_allow_them() {
        let file =
            Config::parse("[notion]\napi_url = \"https://elsewhere.example/v1/\"\n").unwrap();
        let ws = Path::new("/ws");
        let refused = AgentConfig::layered(ws, &file, &AgentEnv::default(), AgentFlags::default());
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("DESKHAND_ALLOW_CUSTOM_ENDPOINTS"));
        let env =
            AgentEnv::from_lookup(|k| (k == "DESKHAND_ALLOW_CUSTOM_ENDPOINTS").then(|| "1".into()));
        assert!(env.allow_custom_endpoints);
        let cfg = AgentConfig::layered(ws, &file, &env, AgentFlags::default()).unwrap();
        assert_eq!(
            cfg.connectors.endpoints.notion_api.as_str(),
            "https://elsewhere.example/v1/"
        );
    }
}
