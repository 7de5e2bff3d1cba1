//! `deskhand serve`, `deskhand dispatch`, `deskhand jobs …`: the daemon and its clients.

use crate::cli::safe_text::print_json;
use crate::{errln, outln};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use super::BrowserArgs;
use crate::agent::config::AgentEnv;
use crate::agent::{self, Agent, AgentConfig, AgentFlags};
use crate::config::Config;
use crate::job::{Job, JobState};
use crate::queue::{Queue, QueueConfig};
use crate::skills;
use crate::store::Store;

/// Queue options shared by serve and dispatch.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// `embedded` (default) or `nats://host:port`.
    #[arg(long, env = "DESKHAND_QUEUE")]
    pub queue: Option<String>,
    /// Agent name (NATS subjects).
    #[arg(long, env = "DESKHAND_AGENT")]
    pub agent: Option<String>,
    /// NATS: a .creds file (JWT + nkey seed).
    #[arg(long = "queue-creds", value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// NATS: a file holding an nkey seed.
    #[arg(long = "queue-nkey", value_name = "FILE")]
    pub nkey: Option<PathBuf>,
    /// NATS: a user name (its password in $DESKHAND_NATS_PASSWORD).
    #[arg(long = "queue-user", value_name = "NAME")]
    pub user: Option<String>,
    /// NATS: a CA certificate (PEM) to check the server with.
    #[arg(long = "queue-ca", value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

impl QueueArgs {
    fn url(&self, config: &Config) -> String {
        self.queue
            .clone()
            .or_else(|| config.agent.queue.clone())
            .unwrap_or_else(|| "embedded".into())
    }

    fn queue_config(&self, workspace: &Path, config: &Config) -> QueueConfig {
        let mut q = crate::agent::config::queue_config(config, self.agent.clone());
        self.apply(&mut q);
        q.auth.fill_from_store(workspace, config, &self.url(config));
        q
    }

    /// The `--queue-…` flags over what the config says.
    fn apply(&self, q: &mut QueueConfig) {
        let s = &mut q.auth.section;
        if self.creds.is_some() || self.nkey.is_some() || self.user.is_some() {
            // A credential on the command line replaces the config's, of whatever kind.
            s.creds_file = self.creds.clone();
            s.nkey_file = self.nkey.clone();
            s.user = self.user.clone();
        }
        if let Some(ca) = &self.ca {
            s.ca_file = Some(ca.clone());
        }
    }
}

/// `deskhand serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    queue: QueueArgs,
    #[command(flatten)]
    browser: BrowserArgs,
    /// Jobs at once.
    #[arg(long)]
    concurrency: Option<usize>,
    /// API port on 127.0.0.1 (0 = any free port).
    #[arg(long)]
    port: Option<u16>,
    /// Keep the machine awake while jobs run or a schedule is due soon (`--keep-awake=false`).
    #[arg(long, value_name = "BOOL")]
    keep_awake: Option<bool>,
}

/// `deskhand dispatch`.
#[derive(Debug, Args)]
pub struct DispatchArgs {
    /// Skill to run (or give --text).
    skill: Option<String>,
    /// `name=value`, repeatable; values that parse as JSON are used as JSON.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A trigger line instead of a skill, e.g. "/browser.extract url=…".
    #[arg(long, conflicts_with = "skill")]
    text: Option<String>,
    /// Follow the job until it ends (progress bar on a terminal, JSON lines otherwise).
    #[arg(long)]
    wait: bool,
    /// Sign as this paired device (the key `deskhand pair` printed); default: this desktop's own.
    #[arg(long, env = "DESKHAND_DEVICE_KEY", hide_env_values = true)]
    device_key: Option<String>,
    #[command(flatten)]
    queue: QueueArgs,
}

/// `deskhand jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Recent jobs.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// One job with its events.
    Show {
        /// Job id.
        id: String,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Queue a job again with the same skill and parameters (a new id).
    Retry {
        /// Job id.
        id: String,
        #[command(flatten)]
        queue: QueueArgs,
    },
}

/// Run the daemon until SIGINT/SIGTERM.
pub async fn serve(args: ServeArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let flags = AgentFlags {
        queue: args.queue.queue.clone(),
        agent: args.queue.agent.clone(),
        concurrency: args.concurrency,
        keep_awake: args.keep_awake,
        browser: args.browser.launch_options(workspace, config)?,
    };
    let mut cfg = AgentConfig::layered(workspace, config, &AgentEnv::read(), flags)?;
    args.queue.apply(&mut cfg.queue_config);
    cfg.queue_config
        .auth
        .fill_from_store(workspace, config, &cfg.queue);
    // A lock another process held at the same instant is not a reason to give up starting; nor
    // is a hub that cannot be reached yet (a laptop waking before its network): a service waits
    // for it, with backoff, saying so.
    let mut tries = 0;
    let mut wait = Duration::from_secs(1);
    let agent = loop {
        match Agent::start(cfg.clone()).await {
            Err(e) if e.is_busy() && tries < 20 => {
                tries += 1;
                tracing::debug!(error = %e, "state database busy at start; trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) if e.is_unreachable_queue() => {
                errln!("{e}");
                errln!(
                    "waiting for the queue; trying again in {} s (Ctrl-C to stop)",
                    wait.as_secs()
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = tokio::signal::ctrl_c() => anyhow::bail!("stopped while waiting for the queue"),
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            r => break r?,
        }
    };
    let token = crate::api::load_or_create_token(workspace).context("creating the API token")?;
    let port = args.port.or(config.agent.api_port).unwrap_or(7878);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}; is another agent running? (choose another with --port)"))?;
    let addr = listener.local_addr()?;
    let shown_queue = crate::queue::auth::redact(&cfg.queue);
    let info = serde_json::json!({"pid": std::process::id(), "api": format!("http://{addr}"), "queue": shown_queue});
    deskhand_workspace::atomic_write(
        &workspace.join(".deskhand/agent.json"),
        info.to_string().as_bytes(),
    )?;
    let app = crate::api::router(agent.clone(), token.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    // On a hub, the phone's API requests come through it (no inbound port here).
    let hub_api = agent.queue().nats().map(|(client, names)| {
        let (client, subject) = (client.clone(), names.api.clone());
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::hub::api::serve(client, subject, app, stop).await {
                tracing::warn!(error = %e, "the phone cannot reach this agent's API through the hub");
            }
        })
    });
    // The extension's native host reaches the agent on a Unix socket in the workspace.
    let hub = {
        let agent = agent.clone();
        tokio::spawn(async move {
            if let Err(e) = Arc::clone(agent.extension()).serve(agent.clone()).await {
                tracing::warn!(error = %e, "the browser extension cannot connect to this agent");
            }
        })
    };
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await
    });
    errln!(
        "deskhand agent: queue {} · workspace {}",
        shown_queue,
        workspace.display()
    );
    errln!("phone page: http://{addr}/#token={token}");
    errln!("dashboard: http://{addr}/dashboard#token={token}");
    let signals = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            errln!("shutting down: finishing running jobs (or handing them back)…");
            agent.shutdown();
        })
    };
    agent.run().await?;
    signals.abort();
    hub.abort();
    let _ = std::fs::remove_file(crate::extension::hub::socket_path(workspace));
    stop.cancel();
    let _ = server.await;
    if let Some(h) = hub_api {
        let _ = h.await;
    }
    let _ = std::fs::remove_file(workspace.join(".deskhand/agent.json"));
    Ok(())
}

/// Parse `--param name=value` (JSON values when they parse, strings otherwise).
pub(crate) fn parse_params(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut m = Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?} has no '='; write --param name=value"))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        m.insert(k.trim().to_string(), v);
    }
    Ok(m)
}

pub(crate) fn device_id() -> String {
    std::env::var("DESKHAND_DEVICE").unwrap_or_else(|_| {
        format!(
            "cli@{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
        )
    })
}

/// Publish a job; with --wait, follow it.
pub async fn dispatch(args: DispatchArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let store = Store::open(workspace)?;
    let queue = Queue::open(
        &args.queue.url(config),
        &store,
        args.queue.queue_config(workspace, config),
    )
    .await?;
    let params = parse_params(&args.params)?;
    let mut job = Job::new(args.skill.clone().unwrap_or_default(), params, device_id());
    job.skill = args.skill.clone();
    job.text = args.text.clone();
    if let Some(k) = &args.device_key {
        crate::guard::devices::DeviceKey::parse(k)?.sign(&mut job);
    }
    let id = agent::submit(&store, &queue, &skills::Skills::load(workspace), job).await?;
    if !args.wait {
        outln!("{id}")?;
        return Ok(());
    }
    follow(&queue, &store, &id).await
}

async fn follow(queue: &Queue, store: &Store, id: &str) -> anyhow::Result<()> {
    let tty = crate::cli::safe_text::stderr_is_terminal();
    let bar = if tty {
        let b = ProgressBar::new(1);
        b.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_prefix(crate::cli::safe_text::terminal_safe(id).into_owned());
        b.enable_steady_tick(Duration::from_millis(100));
        b
    } else {
        ProgressBar::hidden()
    };
    let mut events = queue.watch(store, id).await?;
    let mut last = None;
    let mut narrator = super::narrate::Narrator::new(bar.clone());
    while let Some(ev) = events.next().await {
        if tty && narrator.event(&ev) {
            continue;
        }
        if tty {
            bar.set_length(ev.steps.max(1) as u64);
            bar.set_position(ev.step as u64);
            bar.set_message(format!(
                "{} {}",
                ev.state.as_str(),
                crate::cli::safe_text::terminal_safe(&ev.message)
            ));
        } else {
            print_json(&ev, false)?;
        }
        let end = ev.is_terminal();
        last = Some(ev);
        if end {
            break;
        }
    }
    narrator.flush();
    bar.finish_and_clear();
    let Some(ev) = last else {
        bail!("lost track of job {id}: the event stream ended early")
    };
    match ev.state {
        JobState::Succeeded => {
            let rec = store.get(id).await.ok();
            if tty {
                errln!("✓ {id} succeeded");
                for o in rec.map(|r| r.outputs).unwrap_or_default() {
                    errln!("  {o}");
                }
            }
            Ok(())
        }
        s => bail!("job {id} {}: {}", s.as_str(), ev.message),
    }
}

/// `deskhand jobs …`.
pub async fn jobs(args: JobsArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let store = Store::open(workspace)?;
    match args.command {
        JobsCommand::List { limit, json } => {
            let jobs = store.list(limit).await?;
            if json {
                print_json(&jobs, false)?;
            } else {
                for j in jobs {
                    outln!(
                        "{}  {:<10} {:<16} {}/{}  {}",
                        j.id,
                        j.state.as_str(),
                        j.skill,
                        j.step,
                        j.steps,
                        j.error.unwrap_or_default()
                    )?;
                }
            }
        }
        JobsCommand::Show { id } => {
            let j = store.get(&id).await?;
            let events = store.events(&id, 0).await?;
            let mut v = serde_json::to_value(&j)?;
            v["events"] = serde_json::to_value(events)?;
            // A planned job: its turns, tokens and (with prices in [model]) cost.
            if let Some(spent) = crate::transcript::spent(workspace, &id) {
                v["spent"] = serde_json::to_value(spent)?;
            }
            print_json(&v, true)?;
        }
        JobsCommand::Cancel { id } => {
            // Ask the running daemon (it can stop a running job); otherwise mark it in the store.
            let state = match daemon_api(workspace) {
                Some((api, token)) => cancel_via_api(&api, &token, &id).await?,
                None => {
                    let s = store.request_cancel(&id).await?;
                    if s.is_terminal() {
                        bail!("job {id} has already ended ({})", s.as_str());
                    }
                    store
                        .transition(&id, crate::job::Transition::Cancel)
                        .await?;
                    "cancelled".to_string()
                }
            };
            outln!("{id} {state}")?;
        }
        JobsCommand::Retry { id, queue } => {
            let old = store.get(&id).await?;
            let prev = Job::from_bytes(&old.envelope)?;
            let mut job = Job::new(
                prev.skill.clone().unwrap_or_default(),
                prev.params.clone(),
                device_id(),
            );
            job.skill = prev.skill;
            job.text = prev.text;
            job.retry_of = Some(prev.id);
            let q = Queue::open(
                &queue.url(config),
                &store,
                queue.queue_config(workspace, config),
            )
            .await?;
            let new_id = agent::submit(&store, &q, &skills::Skills::load(workspace), job).await?;
            outln!("{new_id}")?;
        }
    }
    Ok(())
}

fn daemon_api(workspace: &Path) -> Option<(String, String)> {
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.join(".deskhand/agent.json")).ok()?,
    )
    .ok()?;
    let pid = info["pid"].as_u64()? as u32;
    if !deskhand_browser::process::pid_alive(pid) {
        return None;
    }
    let token = std::fs::read_to_string(workspace.join(".deskhand/api-token")).ok()?;
    Some((info["api"].as_str()?.to_string(), token.trim().to_string()))
}

async fn cancel_via_api(api: &str, token: &str, id: &str) -> anyhow::Result<String> {
    // A tiny HTTP/1.1 request over loopback; the daemon's own API, no extra client needed.
    let addr = api.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .with_context(|| {
            format!("the agent at {api} is not answering; is `deskhand serve` running?")
        })?;
    let req = format!("POST /api/jobs/{id}/cancel HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes()).await?;
    let mut buf = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut buf).await?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(m) = v["error"]["message"].as_str() {
        bail!("{m}");
    }
    Ok(v["state"]
        .as_str()
        .unwrap_or("cancel requested")
        .to_string())
}
