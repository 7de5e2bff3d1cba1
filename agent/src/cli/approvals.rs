//! `deskhand approvals [list|approve ID|refuse ID|answer ID WORDS]`: the person's answer to a consequential
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
    /// Stop it: the job's step fails with "refused" (a question: declined).
    Refuse {
        /// The approval's id.
        id: String,
    },
    /// Answer a question a job asked you (`ask_person`).
    Answer {
        /// The question's id.
        id: String,
        /// Your answer, in your words.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
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
                if a.action == approvals::QUESTION {
                    outln!(
                        "{}  {:8}  question from job {} (until {}): {}",
                        a.id,
                        serde_json::to_value(a.state)?.as_str().unwrap_or_default(),
                        a.job,
                        a.expires_at.format("%H:%M:%S UTC"),
                        a.target
                    )?;
                    if let Some(c) = a.preview["choices"].as_array().filter(|c| !c.is_empty()) {
                        let c: Vec<&str> = c.iter().filter_map(|v| v.as_str()).collect();
                        outln!("    choices: {}", c.join(" | "))?;
                    }
                    outln!("    answer: deskhand approvals answer {} \"…\"", a.id)?;
                    continue;
                }
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
        ApprovalsCommand::Answer { id, words } => {
            let a = approvals::answer(&store, &id, &words.join(" "), "cli").await?;
            outln!("answered {} (job {})", a.id, a.job)?;
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
