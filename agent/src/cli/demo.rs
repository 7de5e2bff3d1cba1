//! `deskhand demo`: the main job end to end on the embedded default, no server and no accounts
//! needed. It starts the bundled fake Google and Notion servers on loopback (they speak the
//! providers' wire protocols), connects a `demo` account to them through the real OAuth code path,
//! seeds TASKS.md and MEMORY.md if the workspace has none, and runs the `status-report` skill for
//! the fixture day through the agent — plus `fill-form` and `extract` against the bundled fixture
//! site. Results land in `<workspace>/reports/` and `dashboard.html`.
//!
//! The demo uses its own `demo` connections and its own secrets file under
//! `.deskhand/demo/`, so it never touches the person's real accounts.
//!
//! Everything it serves or seeds is embedded in the binary at build time (the pages from
//! `fixtures/sites`, the sample workspace from `fixtures/workspace`, the provider data from
//! `fixtures/providers`), so an installed `deskhand` runs it from any folder (issue 15). It is
//! built only with the `demo` feature (on by default).

use crate::outln;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use deskhand_connectors::{
    Cache, ClientCredentials, ConnectionId, Endpoints, Hub, Provider, Secrets, Settings,
};
use deskhand_fake_providers::{FakeData, FakeProviders};
use serde_json::{json, Map, Value};

use super::BrowserArgs;
use crate::agent::{Agent, AgentConfig};
use crate::config::Config;
use crate::job::{Job, JobState};
use crate::site::StaticSite;
use include_dir::{include_dir, Dir};

/// The fixture site the browser part visits, served from memory.
static PAGES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../fixtures/sites");
/// TASKS.md and MEMORY.md for a workspace that has none.
static SAMPLE_WORKSPACE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../fixtures/workspace");

/// The day the bundled fixtures describe (their mail, meetings and tasks are around it).
pub const FIXTURE_DAY: &str = "2026-11-26";
/// The fixtures' time zone.
pub const FIXTURE_TZ: &str = "Europe/Berlin";

const CLIENT_ID: &str = "deskhand-demo.apps.example";
const CLIENT_SECRET: &str = "demo-client-secret";
const NOTION_TOKEN: &str = "ntn_demo_integration_token";

/// `deskhand demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    browser: BrowserArgs,
    /// Only the status report (skip the browser part).
    #[arg(long)]
    no_browser: bool,
}

/// Run the demo.
pub async fn run(args: DemoArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let bar = super::skills::spinner("starting the fake Google and Notion servers");
    let data = FakeData::bundled().context("loading the bundled provider fixtures")?;
    let fake = FakeProviders::start(data)
        .await
        .context("starting the fake providers on loopback")?;
    fake.handle().register_client(CLIENT_ID, CLIENT_SECRET);
    fake.handle().add_internal_token(NOTION_TOKEN);
    let base = url::Url::parse(&fake.base_url())?;

    bar.set_message("connecting the demo accounts");
    let hub = demo_hub(workspace, &base)?;
    let google = ConnectionId::new(Provider::Google, Some("demo"));
    let creds = ClientCredentials {
        id: CLIENT_ID.into(),
        secret: Some(CLIENT_SECRET.into()),
    };
    // Play the person's browser: visit the consent URL, follow the redirect to the loopback.
    hub.connect(&google, &creds, &[], |u| {
        let u = u.to_string();
        tokio::spawn(async move { reqwest::get(u).await.map(|_| ()) });
    })
    .await
    .context("connecting the demo Google account")?;
    hub.connect_token(
        &ConnectionId::new(Provider::Notion, Some("demo")),
        NOTION_TOKEN,
    )
    .await
    .context("connecting the demo Notion workspace")?;

    for f in ["TASKS.md", "MEMORY.md"] {
        let dest = workspace.join(f);
        if !dest.exists() {
            deskhand_workspace::Workspace::new(workspace)
                .write(f, embedded(&SAMPLE_WORKSPACE, f)?)?;
        }
    }

    bar.set_message("running status-report");
    let mut cfg = AgentConfig::for_run_now(workspace, config, Default::default())?;
    cfg.browser = args.browser.launch_options(workspace, config)?;
    cfg.keep_awake = false;
    let agent = Agent::start(cfg).await?;
    agent.set_hub(Arc::new(hub)).await;

    let site = StaticSite::serve_embedded(&PAGES).await?;
    let mut jobs = vec![job(
        "status-report",
        json!({"date": FIXTURE_DAY, "tz": FIXTURE_TZ, "account": "demo"}),
    )];
    if !args.no_browser {
        let values: Value = serde_json::from_slice(embedded(&PAGES, "signup.values.json")?)?;
        jobs.push(job(
            "fill-form",
            json!({"url": site.url("signup.html"), "values": values, "submit": "Create account"}),
        ));
        let schema: Value = serde_norway::from_slice(embedded(&PAGES, "products/schema.yaml")?)?;
        jobs.push(job(
            "extract",
            json!({"url": site.url("products/page-1.html"), "schema": schema, "format": "xlsx"}),
        ));
    }
    // fill-form may not submit without asking; the demo answers as the person would, and says so.
    let store = agent.store().clone();
    let answering = tokio::spawn(async move {
        loop {
            for a in crate::guard::approvals::list(&store, false)
                .await
                .unwrap_or_default()
            {
                let _ = crate::guard::approvals::decide(&store, &a.id, true, "demo").await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let mut runs = futures::future::join_all(jobs.into_iter().map(|j| {
        let a = agent.clone();
        async move { a.run_now(j).await }
    }))
    .await;
    if !args.no_browser {
        // After the status report (they share its "since the last report" mark): the same day
        // as a deck, HTML and PDF.
        bar.set_message("running weekly-deck");
        runs.push(
            agent
                .run_now(job(
                    "weekly-deck",
                    json!({"date": FIXTURE_DAY, "tz": FIXTURE_TZ, "account": "demo"}),
                ))
                .await,
        );
    }
    answering.abort();
    bar.finish_and_clear();
    agent.refresh_dashboard().await;

    outln!("Deskhand demo — workspace {}", workspace.display())?;
    outln!("  fake Google and Notion at {base} (fixture day {FIXTURE_DAY}, {FIXTURE_TZ})")?;
    if !args.no_browser {
        outln!("  the form submit asked for approval; the demo approved it for you (`deskhand approvals list --all`)")?;
    }
    let mut failed = Vec::new();
    for r in runs {
        let r = r?;
        match r.state {
            JobState::Succeeded => {
                outln!("  {:<14} succeeded", r.skill)?;
                for o in &r.outputs {
                    outln!("      {}", workspace.join(o).display())?;
                }
            }
            s => {
                outln!(
                    "  {:<14} {}: {}",
                    r.skill,
                    s.as_str(),
                    r.error.clone().unwrap_or_default()
                )?;
                failed.push(r.skill);
            }
        }
    }
    outln!(
        "  dashboard: {}",
        workspace.join("dashboard.html").display()
    )?;
    fake.shutdown().await;
    if failed.contains(&"status-report".to_string()) {
        anyhow::bail!("the status report failed");
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} failed (see above); the status report was written",
            failed.join(", ")
        );
    }
    Ok(())
}

/// One embedded file's bytes.
fn embedded(dir: &'static Dir<'static>, path: &str) -> anyhow::Result<&'static [u8]> {
    dir.get_file(path)
        .map(include_dir::File::contents)
        .with_context(|| format!("the demo's {path} is missing from this build"))
}

fn job(skill: &str, params: Value) -> Job {
    let params: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
    Job::new(skill, params, "demo")
}

/// A hub wired to the fake servers, with the demo's own secrets file and the workspace's cache.
fn demo_hub(workspace: &Path, base: &url::Url) -> anyhow::Result<Hub> {
    let dir = workspace.join(".deskhand/demo");
    std::fs::create_dir_all(&dir)?;
    // The demo's key guards fake tokens for a fake server; it is kept beside them on purpose.
    let key_path = dir.join("secrets.key");
    let key = match std::fs::read_to_string(&key_path) {
        Ok(k) => k,
        Err(_) => {
            use base64::Engine;
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let k = base64::engine::general_purpose::STANDARD.encode(k);
            deskhand_workspace::atomic_write(&key_path, k.as_bytes())?;
            k
        }
    };
    let secrets = Secrets::encrypted_file(&dir, &key)?;
    let cache = Cache::open(&crate::connect::cache_path(workspace))?;
    let mut settings = Settings {
        endpoints: Endpoints::under(base),
        ..Settings::default()
    };
    // The fixtures sit around a fixed day; sync all of them whatever today is.
    settings.window.past_days = 3650;
    settings.window.future_days = 3650;
    settings.notion_rate = 100;
    Ok(Hub::new(Arc::new(cache), Arc::new(secrets), settings))
}
