//! Command-line parsing and dispatch. One file per subcommand; logic lives in the library crates.
//!
//! Every line the CLI prints goes through [`safe_text`] (`outln!`, `errln!`, `print_json`): text
//! from jobs, pages, mail, files and skills must not reach a terminal with its control
//! characters (issue 14). Raw `println!` fails clippy here.

// A raw print would bypass the terminal-safety rule: see safe_text.rs.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use deskhand_browser::{Backend, LaunchOptions};

use crate::config::Config;

pub mod approvals;
pub mod audit;
pub mod bench;
pub mod browse;
pub mod connect;
pub mod dashboard;
#[cfg(feature = "demo")]
pub mod demo;
pub mod devices;
pub mod doctor;
pub mod eval;
pub mod extension;
pub mod hub;
pub mod jobs;
pub mod mcp;
pub mod model;
mod narrate;
pub mod plugins;
pub mod safe_text;
pub mod schedule;
pub mod secrets;
pub mod service;
pub mod skills;
pub mod undo;
pub mod workspace;

/// Deskhand: a local-first desktop agent.
#[derive(Debug, Parser)]
#[command(name = "deskhand", version, about, propagate_version = true)]
pub struct Cli {
    /// Workspace folder: results, TASKS.md, dashboard.html and the agent's state (.deskhand/).
    #[arg(long, global = true, env = "DESKHAND_WORKSPACE")]
    pub workspace: Option<PathBuf>,
    /// More logging (-v debug, -vv trace). RUST_LOG wins if set.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive a browser: fill forms, extract data, scroll, click, screenshot.
    Browse(browse::BrowseArgs),
    /// Run the bundled demo: fill the sample sign-up form and extract the sample shop into reports/.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Run the agent daemon: consume jobs, run them, serve the local API and phone page.
    Serve(jobs::ServeArgs),
    /// Serve Deskhand's actions to an MCP client (Claude Desktop, Claude Code…) on stdio.
    Mcp(mcp::McpArgs),
    /// Ask in plain words: the configured language model plans it over the guarded actions.
    Ask(skills::AskArgs),
    /// Plugins in the Claude Code format: install from a folder, git or a marketplace; list,
    /// show, update, remove, enable, disable.
    Plugins(plugins::PluginsArgs),
    /// Run the agent as a service of your session: a systemd user unit, or a launchd agent.
    Service(service::ServiceArgs),
    /// A NATS hub between your phone and this desktop: `deskhand hub key` (docs/hub.md).
    Hub(hub::HubArgs),
    /// Check what Deskhand needs here (Chromium, keyring, queue, extension, model, disk): ok,
    /// warn or fail, each with its fix.
    Doctor(doctor::DoctorArgs),
    /// The language model: store or forget its API key (OS keyring), show what is configured.
    Model(model::ModelArgs),
    /// Score the configured model: run a suite of tasks (YAML) as planned jobs and check them.
    Eval(eval::EvalArgs),
    /// Send a job to the agent (and, with --wait, follow it to the end).
    Dispatch(jobs::DispatchArgs),
    /// List, show, cancel or retry jobs.
    Jobs(jobs::JobsArgs),
    /// Connect Google (Gmail, Calendar) or Notion: browser sign-in, secrets in the OS keyring.
    Connect(connect::ConnectArgs),
    /// Forget a connection: its secrets and cached data.
    Disconnect(connect::DisconnectArgs),
    /// List connections: account, scopes, state (ok / stale / error), last sync.
    Connections(connect::ConnectionsArgs),
    /// Bring the local cache up to date (only changes after the first sync).
    Sync(connect::SyncArgs),
    /// Search cached mail.
    Mail(connect::MailArgs),
    /// Show the cached calendar.
    Calendar(connect::CalendarArgs),
    /// Query cached Notion data sources.
    Notion(connect::NotionArgs),
    /// Put back what a job changed in the workspace.
    Undo(undo::UndoArgs),
    /// Jobs with the workspace files they created or changed.
    History(undo::HistoryArgs),
    /// The audit log: verify its hash chain, show entries.
    Audit(audit::AuditArgs),
    /// Consequential actions waiting for you: list, approve ID, refuse ID.
    Approvals(approvals::ApprovalsArgs),
    /// The Chrome extension: install it and its native host, see whether it is connected.
    Extension(extension::ExtensionArgs),
    /// The native messaging host the browser starts for the extension (not for people).
    #[command(hide = true)]
    NativeHost(extension::NativeHostArgs),
    /// Secret values for forms, filled by name on their own sites only: set, list, forget.
    Secrets(secrets::SecretsArgs),
    /// Pair a device: it gets a key to sign the jobs it sends (shown once).
    Pair(devices::PairArgs),
    /// Paired devices: list, revoke ID.
    Devices(devices::DevicesArgs),
    /// Skills: list, show, run now, install a bundle, trust.
    Skills(skills::SkillsArgs),
    /// Run skills on a schedule: add, list, pause, resume, remove, runs.
    Schedule(schedule::ScheduleArgs),
    /// TASKS.md: list, add, done, move.
    Tasks(workspace::TasksArgs),
    /// The live dashboard of the running agent: its address (with the token), `--open` to open it.
    Dashboard(dashboard::DashboardArgs),
    /// MEMORY.md: add, show.
    Memory(workspace::MemoryArgs),
    /// `deskhand /status-report [k=v ...]`: run a skill by its trigger.
    #[command(external_subcommand)]
    Trigger(Vec<String>),
    /// Benchmarks (see bench/run.sh for the side-by-side comparison).
    #[command(hide = true)]
    Bench(bench::BenchArgs),
}

/// Browser options shared by every command that starts one.
#[derive(Debug, Clone, Args)]
pub struct BrowserArgs {
    /// cdp (default) or webdriver.
    #[arg(long, env = "DESKHAND_BACKEND")]
    pub backend: Option<Backend>,
    /// Chromium binary (default: $DESKHAND_CHROME, config, /usr/bin/chromium).
    #[arg(long)]
    pub chrome: Option<PathBuf>,
    /// Persistent profile folder, to reuse a logged-in session (default: a fresh temp profile).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Seconds an action waits for its element.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Show the browser window (needs a display).
    #[arg(long)]
    pub headed: bool,
}

impl BrowserArgs {
    /// Merge command line over config over defaults.
    pub fn launch_options(
        &self,
        workspace: &std::path::Path,
        config: &Config,
    ) -> anyhow::Result<LaunchOptions> {
        let b = &config.browser;
        let backend = match (&self.backend, &b.backend) {
            (Some(x), _) => *x,
            (None, Some(s)) => s.parse()?,
            (None, None) => Backend::Cdp,
        };
        let mut o = LaunchOptions {
            backend,
            ..LaunchOptions::default()
        };
        o.chrome = b.chrome.clone();
        o.chrome_override = self.chrome.clone();
        o.chromedriver = b.chromedriver.clone();
        o.profile = self
            .profile
            .clone()
            .or_else(|| b.profile.as_ref().map(|p| workspace.join(p)));
        o.headless = !self.headed;
        if let Some(t) = self.timeout.or(b.action_timeout_secs) {
            o.action_timeout = Duration::from_secs(t);
        }
        if let Some(t) = b.navigation_timeout_secs {
            o.navigation_timeout = Duration::from_secs(t);
        }
        Ok(o)
    }
}

/// The workspace folder: --workspace, $DESKHAND_WORKSPACE, or ~/Deskhand.
pub fn workspace(cli: &Cli) -> PathBuf {
    cli.workspace.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join("Deskhand")
    })
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ws = workspace(&cli);
    let config = Config::load(&ws)?;
    match cli.command {
        Command::Browse(a) => browse::run(a, &ws, &config).await,
        #[cfg(feature = "demo")]
        Command::Demo(a) => demo::run(a, &ws, &config).await,
        Command::Bench(a) => bench::run(a, &ws, &config).await,
        Command::Serve(a) => jobs::serve(a, &ws, &config).await,
        Command::Dispatch(a) => jobs::dispatch(a, &ws, &config).await,
        Command::Jobs(a) => jobs::jobs(a, &ws, &config).await,
        Command::Connect(a) => connect::connect(a, &ws, &config).await,
        Command::Disconnect(a) => connect::disconnect(a, &ws, &config).await,
        Command::Connections(a) => connect::connections(a, &ws),
        Command::Sync(a) => connect::sync(a, &ws, &config).await,
        Command::Mail(a) => connect::mail(a, &ws),
        Command::Calendar(a) => connect::calendar(a, &ws),
        Command::Notion(a) => connect::notion(a, &ws),
        Command::Skills(a) => skills::run(a, &ws, &config).await,
        Command::Audit(a) => audit::run(a, &ws),
        Command::Approvals(a) => approvals::run(a, &ws).await,
        Command::Secrets(a) => secrets::run(a, &ws, &config),
        Command::Extension(a) => extension::run(a, &ws).await,
        Command::NativeHost(a) => extension::native_host(a, &ws).await,
        Command::Pair(a) => devices::pair(a, &ws, &config),
        Command::Devices(a) => devices::devices(a, &ws),
        Command::Undo(a) => undo::undo(a, &ws, &config).await,
        Command::History(a) => undo::history(a, &ws).await,
        Command::Schedule(a) => schedule::run(a, &ws),
        Command::Tasks(a) => workspace::tasks(a, &ws),
        Command::Dashboard(a) => dashboard::run(a, &ws),
        Command::Mcp(a) => mcp::run(a, &ws, &config).await,
        Command::Ask(a) => skills::ask(a, &ws, &config).await,
        Command::Plugins(a) => plugins::run(a, &ws),
        Command::Service(a) => service::run(a, &ws),
        Command::Hub(a) => hub::run(a),
        Command::Doctor(a) => doctor::run(a, &ws, &config).await,
        Command::Model(a) => model::run(a, &ws, &config),
        Command::Eval(a) => eval::run(a, &ws, &config).await,
        Command::Memory(a) => workspace::memory(a, &ws),
        Command::Trigger(words) => {
            if !words.first().is_some_and(|w| w.starts_with('/')) {
                anyhow::bail!(
                    "unknown command {:?}; `deskhand --help` lists the commands, and `deskhand /NAME` runs a skill by its trigger",
                    words.first().map(String::as_str).unwrap_or_default()
                );
            }
            skills::trigger(words, &ws, &config).await
        }
    }
}
