//! `deskhand undo JOB [--force]` and `deskhand history`: put back what a job changed in the
//! workspace, and list jobs with what they changed.

use std::path::Path;

use clap::Args;

use crate::journal::Journal;
use crate::store::Store;

/// `deskhand undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The job whose file changes to undo.
    job: String,
    /// Undo even if a file changed after the job (its later changes are lost).
    #[arg(long)]
    force: bool,
}

/// `deskhand history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// At most this many jobs, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// Run `deskhand undo`.
pub async fn undo(args: UndoArgs, workspace: &Path) -> anyhow::Result<()> {
    let journal = Journal::new(workspace);
    let done = journal.undo(&args.job, args.force)?;
    let store = Store::open(workspace)?;
    store.audit().record(
        "job.undone",
        Some(&args.job),
        serde_json::json!({"paths": done, "forced": args.force}),
    );
    println!("undid job {}:", args.job);
    for p in done {
        println!("  {p}");
    }
    Ok(())
}

/// Run `deskhand history`.
pub async fn history(args: HistoryArgs, workspace: &Path) -> anyhow::Result<()> {
    let journal = Journal::new(workspace);
    let store = Store::open(workspace)?;
    let jobs = journal.jobs();
    if jobs.is_empty() {
        println!("No job has changed workspace files (or all were undone).");
    }
    for id in jobs.into_iter().take(args.limit) {
        let (skill, state) = match store.get(&id).await {
            Ok(r) => (r.skill, r.state.as_str().to_string()),
            Err(_) => ("?".into(), "?".into()),
        };
        println!("{id}  {skill}  {state}");
        for c in journal.changes(&id)? {
            println!(
                "    {} {}",
                if c.before.is_none() {
                    "created"
                } else {
                    "changed"
                },
                c.path
            );
        }
    }
    Ok(())
}
