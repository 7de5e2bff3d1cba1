//! `deskhand audit verify|show`: check the audit log's hash chain, and read it.

use crate::cli::safe_text::print_json;
use crate::outln;
use std::path::Path;

use clap::{Args, Subcommand};

use crate::store::Store;

/// `deskhand audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Check every entry's hash and link; name the first edited, deleted, reordered or forged one.
    Verify,
    /// Print entries (all, or one job's).
    Show {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// JSON lines as stored.
        #[arg(long)]
        json: bool,
    },
}

/// Run `deskhand audit ...`.
pub fn run(args: AuditArgs, workspace: &Path) -> anyhow::Result<()> {
    let log = crate::audit::AuditLog::at(
        Store::path_in(workspace)
            .parent()
            .unwrap_or(workspace)
            .join("audit.jsonl"),
    );
    match args.cmd {
        AuditCmd::Verify => {
            let entries = log.verify()?;
            if let Some(d) = crate::audit::AuditLog::damage(&entries) {
                // The entries since are whole, but the history before them was damaged: that
                // is not "intact", and scripts checking the exit status must see it.
                anyhow::bail!(
                    "audit log damaged before entry {}: {}; the damaged file is kept as {}; the {} entries since are intact",
                    d.seq,
                    d.data["why"].as_str().unwrap_or("unknown damage"),
                    d.data["kept_as"].as_str().unwrap_or("(nothing: the log was gone)"),
                    entries.len()
                );
            }
            for u in entries.iter().filter(|e| e.kind == crate::audit::UNSIGNED) {
                // Not damage (nothing is missing), but a doubt the person should know about.
                outln!(
                    "note: entry {} says entries up to {} were found without a signed head: {}",
                    u.seq,
                    u.data["entry"],
                    u.data["why"].as_str().unwrap_or_default()
                )?;
            }
            outln!(
                "audit log intact: {} entries, last hash {}",
                entries.len(),
                entries
                    .last()
                    .map(|e| e.hash.as_str())
                    .unwrap_or(crate::audit::GENESIS)
            )?;
        }
        AuditCmd::Show { job, json } => {
            for e in log.read(job.as_deref())? {
                if json {
                    print_json(&e, false)?;
                } else {
                    outln!(
                        "{:>5} {} {:<14} {} {}",
                        e.seq,
                        e.at,
                        e.kind,
                        e.job.as_deref().unwrap_or("-"),
                        e.data
                    )?;
                }
            }
        }
    }
    Ok(())
}
