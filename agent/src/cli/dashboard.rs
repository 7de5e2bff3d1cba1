//! `deskhand dashboard`: the address of the live dashboard the running agent serves, with the
//! desktop's token in its fragment (which the browser never sends to a server), and `--open` to
//! open it.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use crate::outln;

/// `deskhand dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Open it in the default browser too.
    #[arg(long)]
    open: bool,
}

/// Print (and open) the live dashboard's address.
pub fn run(args: DashboardArgs, workspace: &Path) -> anyhow::Result<()> {
    let info = workspace.join(".deskhand/agent.json");
    let text = std::fs::read_to_string(&info).with_context(|| {
        format!(
            "the agent is not running here (no {}): start it with `deskhand serve`; \
             without it, the static page is {}",
            info.display(),
            workspace.join("dashboard.html").display()
        )
    })?;
    let api = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["api"].as_str().map(String::from))
        .with_context(|| {
            format!(
                "{} has no API address; restart `deskhand serve`",
                info.display()
            )
        })?;
    let token = crate::api::load_or_create_token(workspace).context("reading the API token")?;
    let url = format!("{api}/dashboard#token={token}");
    outln!("{url}")?;
    if args.open && webbrowser::open(&url).is_err() {
        outln!("(no browser could be opened here; open the address above)")?;
    }
    Ok(())
}
