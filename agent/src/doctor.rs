//! `deskhand doctor` (issue 18): one line per thing Deskhand needs — ok, warn or fail — with
//! the command that fixes it. Each check is a function of what it looks at, so the CLI can run
//! them all and a test can run one.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::agent::config::AgentEnv;
use crate::config::{Config, KeySource};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, with a limit worth knowing.
    Warn,
    /// Something Deskhand needs is missing or broken.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked (`chromium`).
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The command or setting that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: fix.map(String::from),
    }
}

/// How to install Chromium here.
const INSTALL_CHROMIUM: &str = "sudo apt-get install -y chromium (Debian/Ubuntu), or install \
     Google Chrome and set DESKHAND_CHROME to it";

/// Chromium: found, and it runs.
pub fn chromium(config: &Config) -> Check {
    let path = match deskhand_browser::find_chrome(config.browser.chrome.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            return check(
                "chromium",
                Status::Fail,
                e.to_string(),
                Some(INSTALL_CHROMIUM),
            )
        }
    };
    match std::process::Command::new(&path).arg("--version").output() {
        Ok(o) if o.status.success() => check(
            "chromium",
            Status::Ok,
            format!(
                "{} at {}",
                String::from_utf8_lossy(&o.stdout).trim(),
                path.display()
            ),
            None,
        ),
        Ok(o) => check(
            "chromium",
            Status::Fail,
            format!(
                "{} does not run: {}",
                path.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Some(INSTALL_CHROMIUM),
        ),
        Err(e) => check(
            "chromium",
            Status::Fail,
            format!("{} does not run: {e}", path.display()),
            Some(INSTALL_CHROMIUM),
        ),
    }
}

/// Chromium's renderer sandbox: on, unless running as root or told not to.
pub fn sandbox() -> Check {
    match deskhand_browser::sandbox_disabled() {
        None => check(
            "sandbox",
            Status::Ok,
            "Chromium runs with its renderer sandbox",
            None,
        ),
        Some(why) => check(
            "sandbox",
            Status::Warn,
            format!("Chromium runs without its sandbox: {why}"),
            Some("run Deskhand as an ordinary user, and unset DESKHAND_CHROMIUM_NO_SANDBOX"),
        ),
    }
}

/// ChromeDriver: needed only by the WebDriver backend.
pub fn chromedriver(config: &Config) -> Check {
    match deskhand_browser::find_chromedriver(config.browser.chromedriver.as_deref()) {
        Ok(p) => check("chromedriver", Status::Ok, p.display().to_string(), None),
        Err(e) => check(
            "chromedriver",
            Status::Warn,
            format!("{e} (only `--backend webdriver` needs it)"),
            Some("sudo apt-get install -y chromium-driver"),
        ),
    }
}

/// The secret store (the OS keyring, or the encrypted file).
pub fn keyring(workspace: &Path, config: &Config) -> Check {
    match crate::connect::open_secrets(workspace, config) {
        Ok(s) => match s.get("deskhand-doctor/probe") {
            Ok(_) => check("keyring", Status::Ok, s.describe().to_string(), None),
            Err(e) => check(
                "keyring",
                Status::Fail,
                format!("{} cannot be read: {e}", s.describe()),
                Some("unlock the keyring (log in to the desktop), or set [secrets] store = \"file\" with DESKHAND_SECRETS_KEY"),
            ),
        },
        Err(e) => check(
            "keyring",
            Status::Fail,
            e.to_string(),
            Some("start a Secret Service (GNOME Keyring, KeePassXC), or set [secrets] store = \"file\" with DESKHAND_SECRETS_KEY"),
        ),
    }
}

/// The queue: the embedded one, or a NATS server that answers and has JetStream.
pub async fn queue(workspace: &Path, config: &Config) -> Check {
    let url = std::env::var("DESKHAND_QUEUE")
        .ok()
        .filter(|q| !q.is_empty())
        .or_else(|| config.agent.queue.clone())
        .unwrap_or_else(|| "embedded".into());
    if url == "embedded" || url.is_empty() {
        return check(
            "queue",
            Status::Ok,
            "the embedded queue (SQLite in .deskhand/)",
            None,
        );
    }
    let fix =
        Some("start the NATS server (nats-server -js), or fix [agent] queue / DESKHAND_QUEUE");
    // What is shown never carries a password or token from the URL.
    let raw = url;
    let url = crate::queue::auth::redact(&raw);
    let mut auth = crate::agent::config::queue_config(config, None).auth;
    auth.fill_from_store(workspace, config, &raw);
    let (options, bare) = match auth.connect_options(&raw).await {
        Ok(o) => o,
        Err(why) => {
            return check(
                "queue",
                Status::Fail,
                format!("{url}: {why}"),
                Some("fix [nats] in the config, or the --queue-… flags"),
            )
        }
    };
    let connect = options
        .connection_timeout(Duration::from_secs(3))
        .connect(bare.as_str());
    let client = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return check("queue", Status::Fail, format!("{url}: {e}"), fix),
        Err(_) => {
            return check(
                "queue",
                Status::Fail,
                format!("{url}: no answer in 5 s"),
                fix,
            )
        }
    };
    let js = async_nats::jetstream::new(client);
    match tokio::time::timeout(Duration::from_secs(5), js.query_account()).await {
        Ok(Ok(_)) => check("queue", Status::Ok, format!("{url}, JetStream on"), None),
        Ok(Err(e)) => check(
            "queue",
            Status::Fail,
            format!("{url} answers, but JetStream does not: {e}"),
            Some("run nats-server with -js (version 2.10 or later, for KV)"),
        ),
        Err(_) => check(
            "queue",
            Status::Fail,
            format!("{url}: JetStream did not answer in 5 s"),
            fix,
        ),
    }
}

/// The extension's native messaging host.
pub fn native_host(workspace: &Path) -> Check {
    match crate::extension::install::installed_manifest(workspace) {
        Some(_) => check(
            "extension",
            Status::Ok,
            "the native messaging host is installed",
            None,
        ),
        None => check(
            "extension",
            Status::Warn,
            "the browser extension's native host is not installed (jobs in your own tabs need it)",
            Some("deskhand extension install"),
        ),
    }
}

/// The language model for plain-word requests.
pub fn model(workspace: &Path, config: &Config, env: &AgentEnv) -> Check {
    let settings = crate::config::model_settings(
        config,
        |k| env.model.get(k).cloned(),
        |p| crate::model_key::read(workspace, config, p),
    );
    match settings {
        Err(e) => check(
            "model",
            Status::Fail,
            e.to_string(),
            Some("fix [model] in .deskhand/config.toml"),
        ),
        Ok(None) => check(
            "model",
            Status::Warn,
            "no model configured: plain-word requests and plugin commands will not run",
            Some(
                "set [model] provider and model (see docs/agent.md), then `deskhand model set-key`",
            ),
        ),
        Ok(Some((m, source))) => {
            let public = url::Url::parse(m.provider.default_base_url()).ok();
            if source == KeySource::None
                && public.is_some_and(|u| u.origin() == m.base_url.origin())
            {
                check(
                    "model",
                    Status::Fail,
                    format!("{} {} has no API key", m.provider.as_str(), m.model),
                    Some("deskhand model set-key"),
                )
            } else {
                check(
                    "model",
                    Status::Ok,
                    format!(
                        "{} {} at {} (key: {source})",
                        m.provider.as_str(),
                        m.model,
                        m.base_url
                    ),
                    None,
                )
            }
        }
    }
}

/// Free space where the workspace is, from `df` (no unsafe code for statvfs).
pub fn disk(workspace: &Path) -> Check {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(workspace)
        .output();
    let free_kib = out.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines()
            .nth(1)?
            .split_whitespace()
            .nth(3)?
            .parse::<u64>()
            .ok()
    });
    match free_kib {
        None => check(
            "disk",
            Status::Warn,
            "could not read the free space (`df` failed)",
            None,
        ),
        Some(k) if k < 512 * 1024 => check(
            "disk",
            Status::Fail,
            format!("{} MiB free in the workspace's file system", k / 1024),
            Some("free some space: reports, screenshots and the browser need room"),
        ),
        Some(k) if k < 2 * 1024 * 1024 => check(
            "disk",
            Status::Warn,
            format!("{} MiB free in the workspace's file system", k / 1024),
            Some("free some space soon"),
        ),
        Some(k) => check(
            "disk",
            Status::Ok,
            format!("{} GiB free", k / 1024 / 1024),
            None,
        ),
    }
}

/// Every check, in the order they are shown.
pub async fn all(workspace: &Path, config: &Config) -> Vec<Check> {
    let env = AgentEnv::read();
    vec![
        chromium(config),
        sandbox(),
        chromedriver(config),
        keyring(workspace, config),
        queue(workspace, config).await,
        native_host(workspace),
        model(workspace, config, &env),
        disk(workspace),
    ]
}
