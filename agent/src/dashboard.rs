//! Gathers what `dashboard.html` shows — tasks, recent jobs, schedules, approvals, connections —
//! and writes it through the workspace API. The rendering (and its escaping) lives in
//! `deskhand_workspace::dashboard`.

use std::sync::Arc;

use deskhand_schedule::Ledger;
use deskhand_workspace::dashboard::{
    self, ApprovalCard, ConnectionCard, Dashboard, JobCard, ScheduleCard,
};
use deskhand_workspace::tasks::TaskList;

use crate::skills::SkillEnv;
use crate::store::Store;

/// How many recent jobs the dashboard lists.
const RECENT_JOBS: u32 = 25;

/// Collect the data and write `dashboard.html`.
pub async fn write(store: &Store, ledger: &Arc<Ledger>, env: &Arc<SkillEnv>) -> Result<(), String> {
    let jobs = store.list(RECENT_JOBS).await.map_err(|e| e.to_string())?;
    let pending: Vec<ApprovalCard> = crate::guard::approvals::list(store, false)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|a| ApprovalCard {
            id: a.id,
            job: a.job,
            action: a.action,
            target: a.target,
            created_at: a.created_at,
        })
        .collect();
    let (l, e2) = (Arc::clone(ledger), Arc::clone(env));
    let html = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let tasks = e2
            .reader()
            .read("TASKS.md")
            .map_err(|e| e.to_string())?
            .map(|b| {
                TaskList::parse(&String::from_utf8_lossy(&b))
                    .tasks()
                    .to_vec()
            })
            .unwrap_or_default();
        let schedules = l
            .list()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| {
                let last = l.last_run(&s.id).ok().flatten();
                ScheduleCard {
                    id: s.id.clone(),
                    cron: s.cron.clone(),
                    tz: s.tz.clone(),
                    skill: s.skill.clone(),
                    next_due: s.next_due,
                    paused: s.paused,
                    last_run: last.map(|r| (r.claimed_at, r.outcome.to_string())),
                }
            })
            .collect();
        let connections = e2
            .connections()
            .into_iter()
            .map(|c| ConnectionCard {
                detail: match (&c.reason, &c.last_sync_at) {
                    (Some(r), _) => r.clone(),
                    (None, Some(t)) => format!("last sync {t}"),
                    (None, None) => "never synced".into(),
                },
                id: c.id,
                state: format!("{:?}", c.state).to_lowercase(),
            })
            .collect();
        let d = Dashboard {
            title: "Deskhand".into(),
            generated_at: chrono::Utc::now(),
            tasks,
            jobs: jobs
                .into_iter()
                .map(|j| JobCard {
                    id: j.id,
                    skill: j.skill,
                    state: j.state.as_str().to_string(),
                    error: j.error,
                    updated_at: j.updated_at,
                    outputs: j.outputs,
                })
                .collect(),
            schedules,
            // Approvals arrive with the guardrails; the section is there and says none are pending.
            approvals: pending,
            connections,
        };
        Ok(dashboard::render(&d))
    })
    .await
    .map_err(|e| e.to_string())??;
    // The agent's own file, not a skill's side effect: written directly.
    let files = deskhand_workspace::Workspace::new(env.workspace());
    tokio::task::spawn_blocking(move || files.write("dashboard.html", html.as_bytes()))
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}
