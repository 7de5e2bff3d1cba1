//! `deskhand doctor`: what Deskhand needs on this machine, one line each (see [`crate::doctor`]).

use std::path::Path;

use clap::Args;

use crate::cli::safe_text::print_json;
use crate::config::Config;
use crate::doctor::{self, Status};
use crate::outln;

/// `deskhand doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// JSON for scripts.
    #[arg(long)]
    json: bool,
}

/// Run every check; fail (exit code 1) when any check fails.
pub async fn run(a: DoctorArgs, ws: &Path, config: &Config) -> anyhow::Result<()> {
    let checks = doctor::all(ws, config).await;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if a.json {
        print_json(
            &serde_json::json!({"checks": checks, "failed": failed}),
            true,
        )?;
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            outln!("{mark}  {:<12} {}", c.name, c.detail)?;
            if let Some(f) = &c.fix {
                outln!("      {:<12} fix: {f}", "")?;
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} check(s) failed; each says how to fix it"
    );
    Ok(())
}
