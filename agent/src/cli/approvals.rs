//! `deskhand approvals [list|approve ID|refuse ID]`: the person's answer to a consequential
//! action a job is waiting on (a form submit, an overwrite, a write to Notion).

use crate::cli::safe_text::print_json;
use crate::outln;
use std::path::Path;

use clap::{Args, Subcommand};

use crate::guard::approvals;
use crate::store::Store;

/// `deskhand approvals`.
#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    command: Option<ApprovalsCommand>,
}

#[derive(Debug, Subcommand)]
enum ApprovalsCommand {
    /// Pending approvals (the default), newest first.
    List {
        /// Decided ones too.
        #[arg(long)]
        all: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Let the job go ahead.
    Approve {
        /// The approval's id.
        id: String,
    },
    /// Stop it: the job's step fails with "refused".
    Refuse {
        /// The approval's id.
        id: String,
    },
}

/// Run `deskhand approvals`.
pub async fn run(args: ApprovalsArgs, workspace: &Path) -> anyhow::Result<()> {
    let store = Store::open(workspace)?;
    match args.command.unwrap_or(ApprovalsCommand::List {
        all: false,
        json: false,
    }) {
        ApprovalsCommand::List { all, json } => {
            let list = approvals::list(&store, all).await?;
            if json {
                print_json(&list, true)?;
                return Ok(());
            }
            if list.is_empty() {
                outln!("No approvals {}.", if all { "yet" } else { "pending" })?;
            }
            for a in list {
                outln!(
                    "{}  {:8}  {} {} on {}  (job {}, skill {}, until {})",
                    a.id,
                    serde_json::to_value(a.state)?.as_str().unwrap_or_default(),
                    a.action,
                    if a.action == "submit" { "a form" } else { "" },
                    a.target,
                    a.job,
                    a.skill,
                    a.expires_at.format("%H:%M:%S UTC")
                )?;
                match a.preview.get("text").and_then(|t| t.as_str()) {
                    // A mail, shown as it will leave.
                    Some(text) => {
                        for (name, key) in [("From", "from"), ("To", "to"), ("Cc", "cc")] {
                            if let Some(v) = a.preview.get(key).and_then(|v| v.as_str()) {
                                outln!("    {name}: {v}")?;
                            }
                        }
                        let subject = a.preview["subject"].as_str().unwrap_or_default();
                        outln!("    Subject: {subject}")?;
                        for line in text.lines() {
                            outln!("    | {line}")?;
                        }
                    }
                    None => outln!("    {}", a.preview)?,
                }
            }
        }
        ApprovalsCommand::Approve { id } => {
            let a = approvals::decide(&store, &id, true, "cli").await?;
            outln!(
                "approved {}: {} on {} (job {})",
                a.id,
                a.action,
                a.target,
                a.job
            )?;
        }
        ApprovalsCommand::Refuse { id } => {
            let a = approvals::decide(&store, &id, false, "cli").await?;
            outln!(
                "refused {}: {} on {} (job {})",
                a.id,
                a.action,
                a.target,
                a.job
            )?;
        }
    }
    Ok(())
}
