//! `deskhand undo JOB [--force]` and `deskhand history`: put back what a job changed in the
//! workspace, and list jobs with what they changed.

use crate::outln;
use std::path::Path;

use clap::Args;

use anyhow::Context;

use crate::config::Config;
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

/// The connections, to undo what a job made through them.
async fn connector_hub(
    workspace: &Path,
    config: &Config,
) -> anyhow::Result<std::sync::Arc<deskhand_connectors::hub::Hub>> {
    let connectors = crate::connector_skills::Connectors::new(
        workspace.to_path_buf(),
        crate::connect::settings(config)?,
        config
            .secrets
            .store
            .unwrap_or(deskhand_connectors::SecretStoreKind::Auto),
    );
    connectors.hub().await.map_err(anyhow::Error::msg)
}

/// Run `deskhand undo`.
pub async fn undo(args: UndoArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let journal = Journal::new(workspace);
    let store = Store::open(workspace)?;
    // Files first (this refuses over later edits, before anything else is touched), then the
    // pages the job created in Notion are archived.
    let pages = journal.externals(&args.job)?;
    let done = journal.undo(&args.job, args.force)?;
    if !pages.is_empty() {
        let hub = connector_hub(workspace, config).await?;
        for p in pages.iter().filter(|p| p.kind == "notion.page") {
            let conn: deskhand_connectors::ConnectionId = p
                .connection
                .parse()
                .map_err(|e| anyhow::anyhow!("journal names connection {:?}: {e}", p.connection))?;
            let notion = hub.notion(&conn).await?;
            notion
                .update_page(&p.id, serde_json::json!({"archived": true}))
                .await
                .with_context(|| {
                    format!(
                        "the files are restored, but archiving Notion page {} failed; archive it (and any of {:?} still open) in Notion",
                        p.id,
                        pages.iter().map(|p| p.id.as_str()).collect::<Vec<_>>()
                    )
                })?;
            store.audit().record(
                "notion.archived",
                Some(&args.job),
                serde_json::json!({"page": p.id, "connection": p.connection}),
            );
            outln!("archived Notion page {}", p.id)?;
        }
    }

    // Calendar events: one it made is deleted, one it changed gets its old fields back (newest
    // change first).
    let events: Vec<_> = pages
        .iter()
        .rev()
        .filter(|p| p.kind == "calendar.event" || p.kind == "calendar.event.updated")
        .collect();
    if !events.is_empty() {
        let hub = connector_hub(workspace, config).await?;
        for e in events {
            let conn: deskhand_connectors::ConnectionId = e
                .connection
                .parse()
                .map_err(|x| anyhow::anyhow!("journal names connection {:?}: {x}", e.connection))?;
            let (cal_id, event_id) =
                e.id.rsplit_once('/')
                    .with_context(|| format!("journal names event {:?}", e.id))?;
            let cal = hub.calendar(&conn).await?;
            if e.kind == "calendar.event" {
                cal.delete(cal_id, event_id).await.with_context(|| {
                    format!("the files are restored, but deleting calendar event {event_id} failed; delete it in Google Calendar")
                })?;
                store.audit().record(
                    "calendar.deleted",
                    Some(&args.job),
                    serde_json::json!({"calendar": cal_id, "event": event_id}),
                );
                outln!("deleted calendar event {event_id}")?;
            } else {
                let before: deskhand_connectors::calendar::api::Event = serde_json::from_value(
                    e.before.clone().unwrap_or_default(),
                )
                .with_context(|| format!("the journal's copy of event {event_id} is unreadable"))?;
                cal.patch(cal_id, event_id, before).await.with_context(|| {
                    format!("restoring calendar event {event_id} failed; its earlier fields are in the audit log (calendar.updated)")
                })?;
                store.audit().record(
                    "calendar.restored",
                    Some(&args.job),
                    serde_json::json!({"calendar": cal_id, "event": event_id}),
                );
                outln!("restored calendar event {event_id}")?;
            }
        }
    }

    // Drafts it saved in Gmail are deleted (nothing was sent; a draft sent or deleted since is
    // said to be gone).
    let drafts: Vec<_> = pages.iter().filter(|p| p.kind == "gmail.draft").collect();
    if !drafts.is_empty() {
        let hub = connector_hub(workspace, config).await?;
        for d in drafts {
            let conn: deskhand_connectors::ConnectionId = d
                .connection
                .parse()
                .map_err(|e| anyhow::anyhow!("journal names connection {:?}: {e}", d.connection))?;
            let gmail = hub.gmail(&conn).await?;
            match gmail.delete_draft(&d.id).await {
                Ok(()) => {
                    store.audit().record(
                        "gmail.draft.deleted",
                        Some(&args.job),
                        serde_json::json!({"draft": d.id, "connection": d.connection}),
                    );
                    outln!("deleted Gmail draft {}", d.id)?;
                }
                Err(e) => outln!(
                    "Gmail draft {} not deleted ({e}); it may have been sent or deleted already",
                    d.id
                )?,
            }
        }
    }

    // What a job did through an MCP server is outside Deskhand's reach: say so, plainly.
    for c in pages.iter().filter(|p| p.kind == "mcp.call") {
        let server = c.connection.trim_start_matches("mcp:");
        outln!(
            "not undone: job {} called mcp.{server}.{}, an effect outside the workspace that \
             Deskhand cannot undo; undo it in that service if needed",
            args.job,
            c.id
        )?;
    }
    store.audit().record(
        "job.undone",
        Some(&args.job),
        serde_json::json!({"paths": done, "forced": args.force}),
    );
    outln!("undid job {}:", args.job)?;
    for p in done {
        outln!("  {p}")?;
    }
    Ok(())
}

/// Run `deskhand history`.
pub async fn history(args: HistoryArgs, workspace: &Path) -> anyhow::Result<()> {
    let journal = Journal::new(workspace);
    let store = Store::open(workspace)?;
    let jobs = journal.jobs();
    if jobs.is_empty() {
        outln!("No job has changed workspace files (or all were undone).")?;
    }
    for id in jobs.into_iter().take(args.limit) {
        let (skill, state) = match store.get(&id).await {
            Ok(r) => (r.skill, r.state.as_str().to_string()),
            Err(_) => ("?".into(), "?".into()),
        };
        outln!("{id}  {skill}  {state}")?;
        for c in journal.changes(&id)? {
            outln!(
                "    {} {}",
                if c.before.is_none() {
                    "created"
                } else {
                    "changed"
                },
                c.path
            )?;
        }
    }
    Ok(())
}
