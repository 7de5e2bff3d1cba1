//! Gathers what the dashboard shows — tasks, recent jobs, jobs per day, schedules and their runs,
//! approvals, connections — and the person's customization in `.deskhand/dashboard/`, then
//! writes `dashboard.html` or hands the live page its content. The rendering (and its escaping)
//! lives in `deskhand_workspace::dashboard`; the live page's edits are jobs of the `tasks.*`
//! actions, so they pass the guard like any other (see `api.rs`).

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Local, NaiveDate, Utc};
use deskhand_schedule::Ledger;
use deskhand_workspace::dashboard::{
    self, custom, ApprovalCard, ConnectionCard, Custom, Dashboard, JobCard, RunMark, ScheduleCard,
};
use deskhand_workspace::tasks::TaskList;

use crate::skills::SkillEnv;
use crate::store::Store;

/// How many recent jobs the dashboard lists.
const RECENT_JOBS: u32 = 25;
/// How many days the jobs chart spans.
const JOB_DAYS: i64 = 14;
/// How many schedule runs the timeline reads at most.
const RUNS: usize = 200;

/// Everything the dashboard shows, read now.
pub async fn gather(
    store: &Store,
    ledger: &Arc<Ledger>,
    env: &Arc<SkillEnv>,
) -> Result<Dashboard, String> {
    let now = Utc::now();
    let jobs = store.list(RECENT_JOBS).await.map_err(|e| e.to_string())?;
    let first_day = now.with_timezone(&Local).date_naive() - Duration::days(JOB_DAYS - 1);
    let created = store
        .created_since(now - Duration::days(JOB_DAYS + 1))
        .await
        .map_err(|e| e.to_string())?;
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
    tokio::task::spawn_blocking(move || -> Result<Dashboard, String> {
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
        let listed = l.list().map_err(|e| e.to_string())?;
        let skill_of = |id: &str| {
            listed
                .iter()
                .find(|s| s.id == id)
                .map_or_else(|| id.to_owned(), |s| s.skill.clone())
        };
        let runs = l
            .runs(None, RUNS)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| r.job_id.is_some())
            .map(|r| RunMark {
                schedule: skill_of(&r.schedule_id),
                at: r.claimed_at,
                outcome: r.outcome.to_string(),
            })
            .collect();
        let schedules = listed
            .iter()
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
        Ok(Dashboard {
            title: "Deskhand".into(),
            generated_at: now,
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
            approvals: pending,
            connections,
            job_days: per_day(&created, first_day, JOB_DAYS),
            runs,
        })
    })
    .await
    .map_err(|e| e.to_string())?
}

/// How many of `times` fall on each of `days` local days from `first`.
fn per_day(times: &[chrono::DateTime<Utc>], first: NaiveDate, days: i64) -> Vec<(NaiveDate, u32)> {
    let mut out: Vec<(NaiveDate, u32)> =
        (0..days).map(|d| (first + Duration::days(d), 0)).collect();
    for t in times {
        let day = t.with_timezone(&Local).date_naive();
        if let Some(slot) = out.iter_mut().find(|(d, _)| *d == day) {
            slot.1 += 1;
        }
    }
    out
}

/// The person's customization from `<workspace>/.deskhand/dashboard/`, checked; a file that
/// cannot be read (too large, not UTF-8) is left out with a warning the page shows.
pub fn customization(workspace: &Path) -> Custom {
    let dir = workspace
        .join(deskhand_workspace::PRIVATE_DIR)
        .join(custom::CUSTOM_DIR);
    let mut warnings = Vec::new();
    let mut read = |name: &str| -> Option<String> {
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > custom::MAX_FILE as u64 {
            warnings.push(format!(
                "{name} is larger than {} KiB and was not read",
                custom::MAX_FILE / 1024
            ));
            return None;
        }
        match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(text)) => Some(text),
            Ok(Err(_)) => {
                warnings.push(format!("{name} is not UTF-8 text and was not read"));
                None
            }
            Err(e) => {
                warnings.push(format!("{name} could not be read ({e})"));
                None
            }
        }
    };
    let (theme, layout, css) = (
        read(custom::THEME_FILE),
        read(custom::LAYOUT_FILE),
        read(custom::EXTRA_CSS_FILE),
    );
    let mut c = Custom::from_files(theme.as_deref(), layout.as_deref(), css.as_deref());
    c.warnings.splice(0..0, warnings);
    c
}

/// Collect the data and write `dashboard.html`.
pub async fn write(store: &Store, ledger: &Arc<Ledger>, env: &Arc<SkillEnv>) -> Result<(), String> {
    let d = gather(store, ledger, env).await?;
    let workspace = env.workspace().to_path_buf();
    // The agent's own file, not a skill's side effect: written directly.
    tokio::task::spawn_blocking(move || {
        let html = dashboard::render_page(&d, &customization(&workspace));
        deskhand_workspace::Workspace::new(&workspace).write("dashboard.html", html.as_bytes())
    })
    .await
    .map_err(|e| e.to_string())?
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The live page's content and its version (a digest of the content: it changes when anything
/// shown changes, the minute of "Updated" included).
pub async fn live(
    store: &Store,
    ledger: &Arc<Ledger>,
    env: &Arc<SkillEnv>,
) -> Result<(String, String), String> {
    let mut d = gather(store, ledger, env).await?;
    // Seconds would change the page every second; the minute is what it shows.
    let t = d.generated_at.timestamp();
    d.generated_at =
        chrono::DateTime::from_timestamp(t - t.rem_euclid(60), 0).unwrap_or(d.generated_at);
    let workspace = env.workspace().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let html = dashboard::render_live(&d, &customization(&workspace));
        let version = deskhand_workspace::sha256_hex(html.as_bytes())[..24].to_owned();
        (html, version)
    })
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_counted_on_their_local_day() {
        let first = Local::now().date_naive() - Duration::days(2);
        let at = |d: i64| {
            (first + Duration::days(d))
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_local_timezone(Local)
                .unwrap()
                .with_timezone(&Utc)
        };
        let days = per_day(&[at(0), at(2), at(2), at(-5)], first, 3);
        assert_eq!(days.iter().map(|d| d.1).collect::<Vec<_>>(), [1, 0, 2]);
        assert_eq!(days[0].0, first);
    }

    #[test]
    fn customization_reads_the_private_folder_and_warns_about_what_it_cannot_use() {
        let dir = tempfile::tempdir().unwrap();
        let custom_dir = dir.path().join(".deskhand/dashboard");
        std::fs::create_dir_all(&custom_dir).unwrap();
        std::fs::write(
            custom_dir.join("theme.toml"),
            "[light]\naccent = \"#ff0066\"\n",
        )
        .unwrap();
        std::fs::write(custom_dir.join("extra.css"), [0xff, 0xfe, b'x']).unwrap();
        std::fs::write(
            custom_dir.join("layout.toml"),
            "x".repeat(custom::MAX_FILE + 1),
        )
        .unwrap();
        let c = customization(dir.path());
        assert_eq!(c.light, [("accent".to_string(), "#ff0066".to_string())]);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("extra.css is not UTF-8")));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("layout.toml is larger")));
        assert!(customization(&dir.path().join("nowhere"))
            .warnings
            .is_empty());
    }
}
