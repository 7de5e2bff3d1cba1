//! dashboard.html: one self-contained page the person opens from the workspace folder.
//!
//! The page has no JavaScript and loads nothing: styles are inline and a
//! Content-Security-Policy forbids everything else, in case a future change slips.
//! All text goes through maud, which escapes it, and the only links are to outputs
//! inside the workspace, written as percent-encoded relative paths.

use chrono::{DateTime, Local, NaiveDate, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

mod charts;
pub mod custom;

pub use custom::{Custom, GroupBy, Layout, Panel, View};

use crate::tasks::Task;
use crate::{Workspace, WorkspaceError, Written};

/// The dashboard's file name inside the workspace.
pub const DASHBOARD_FILE: &str = "dashboard.html";

/// Everything the dashboard shows; the agent fills it from its own state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dashboard {
    /// Page heading.
    pub title: String,
    /// When the data was gathered (shown in local time; also "today" for overdue tasks).
    pub generated_at: DateTime<Utc>,
    /// Tasks from TASKS.md.
    pub tasks: Vec<Task>,
    /// Recent jobs (shown newest first).
    pub jobs: Vec<JobCard>,
    /// Scheduled skills.
    pub schedules: Vec<ScheduleCard>,
    /// Actions waiting for the person's approval.
    pub approvals: Vec<ApprovalCard>,
    /// Connected accounts and their health.
    pub connections: Vec<ConnectionCard>,
    /// Jobs started per local day, oldest first (the jobs chart).
    #[serde(default)]
    pub job_days: Vec<(NaiveDate, u32)>,
    /// Schedule runs of the last days (the timeline).
    #[serde(default)]
    pub runs: Vec<RunMark>,
}

/// A job on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobCard {
    /// Job id.
    pub id: String,
    /// Skill the job runs.
    pub skill: String,
    /// State name, e.g. "running", "succeeded", "failed".
    pub state: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
    /// Files it wrote, as workspace-relative paths.
    pub outputs: Vec<String>,
}

/// A schedule on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScheduleCard {
    /// Schedule id.
    pub id: String,
    /// Cron expression.
    pub cron: String,
    /// Time zone the cron expression is read in.
    pub tz: String,
    /// Skill it starts.
    pub skill: String,
    /// Next time it is due, if any.
    pub next_due: Option<DateTime<Utc>>,
    /// Whether it is paused.
    pub paused: bool,
    /// When it last ran and how that went.
    pub last_run: Option<(DateTime<Utc>, String)>,
}

/// A pending approval on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApprovalCard {
    /// Approval id.
    pub id: String,
    /// Job asking.
    pub job: String,
    /// What it wants to do, e.g. "send email".
    pub action: String,
    /// To what or whom.
    pub target: String,
    /// When it asked.
    pub created_at: DateTime<Utc>,
}

/// A connection on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnectionCard {
    /// Connection id, e.g. "gmail:ada@example.com".
    pub id: String,
    /// State name, e.g. "connected", "stale".
    pub state: String,
    /// A line of detail (last sync, what to do).
    pub detail: String,
}

/// A schedule run on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunMark {
    /// What the schedule runs (its skill), the timeline's row.
    pub schedule: String,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// How it ended ("succeeded", "failed", …).
    pub outcome: String,
}

/// Which page the dashboard is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `dashboard.html`: no script; boxes and cards cannot be changed.
    Static,
    /// The daemon's `/dashboard`: its script ticks, drags and adds through the API.
    Live,
}

/// How many weeks the done-tasks chart spans.
const DONE_WEEKS: u32 = 8;
/// How many days the schedule timeline spans.
const RUN_DAYS: i64 = 7;

/// Renders and saves dashboard.html through the workspace.
pub fn write_dashboard(ws: &Workspace, dashboard: &Dashboard) -> Result<Written, WorkspaceError> {
    ws.write(DASHBOARD_FILE, render(dashboard).as_bytes())
}

/// The dashboard as one self-contained HTML document, with the built-in look.
pub fn render(dashboard: &Dashboard) -> String {
    render_page(dashboard, &Custom::default())
}

/// The static dashboard as one self-contained HTML document with the person's customization.
pub fn render_page(dashboard: &Dashboard, custom: &Custom) -> String {
    let title = title_of(dashboard);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy"
                    content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (body(dashboard, custom, Mode::Static))
            }
        }
    }
    .into_string()
}

/// The live dashboard's content (its `<style>` for the customization, header and panels), which
/// the `/dashboard` page's script puts into its document.
pub fn render_live(dashboard: &Dashboard, custom: &Custom) -> String {
    body(dashboard, custom, Mode::Live).into_string()
}

/// The Content-Security-Policy of the live page: its own script and API, nothing else.
pub const LIVE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The `/dashboard` document: the built-in styles and the script that fetches the content
/// with the desktop's token (from the address's `#token=…`, kept for the tab's session).
pub fn live_shell() -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(LIVE_CSP);
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "Deskhand" }
                style { (PreEscaped(CSS)) }
                script src="/dashboard/app.js" defer {}
            }
            body.live {
                div #status role="status" aria-live="polite" {}
                div #app {
                    header { h1 { "Deskhand" } p.muted #loading { "Loading…" } }
                }
            }
        }
    }
    .into_string()
}

fn title_of(dashboard: &Dashboard) -> &str {
    if dashboard.title.trim().is_empty() {
        "Deskhand"
    } else {
        dashboard.title.as_str()
    }
}

fn body(dashboard: &Dashboard, custom: &Custom, mode: Mode) -> Markup {
    let today = dashboard.generated_at.with_timezone(&Local).date_naive();
    let extra = custom.css();
    html! {
        @if !extra.is_empty() {
            // Checked in `custom`: no `<`, so the element cannot be closed from inside.
            style #custom { (PreEscaped(extra)) }
        }
        header {
            h1 { (title_of(dashboard)) }
            p.muted {
                "Updated " (when(dashboard.generated_at))
                @if mode == Mode::Live { " · " span.live-dot { "live" } }
            }
            @for warning in &custom.warnings {
                p.warning role="alert" { (warning) }
            }
        }
        main {
            @for panel in &custom.layout.panels {
                @match panel {
                    Panel::Tasks => (tasks_panel(dashboard, &custom.layout, today, mode)),
                    Panel::Charts => (charts(dashboard, today)),
                    Panel::Jobs => (jobs(&dashboard.jobs)),
                    Panel::Approvals => (approvals(&dashboard.approvals)),
                    Panel::Schedules => (schedules(&dashboard.schedules)),
                    Panel::Connections => (connections(&dashboard.connections)),
                }
            }
        }
    }
}

/// The board's columns: the layout's, else the file's sections in order (with "No section"
/// first when tasks sit above every heading).
fn board_columns(tasks: &[Task], layout: &Layout) -> Vec<String> {
    let mut columns: Vec<String> = layout.columns.clone();
    if columns.is_empty() {
        for task in tasks {
            if !columns.contains(&task.section) {
                columns.push(task.section.clone());
            }
        }
    }
    // A task in a section the layout leaves out still shows, in a column of its own at the end.
    for task in tasks {
        if !columns.contains(&task.section) {
            columns.push(task.section.clone());
        }
    }
    columns
}

fn tasks_panel(dashboard: &Dashboard, layout: &Layout, today: NaiveDate, mode: Mode) -> Markup {
    let tasks = &dashboard.tasks;
    let columns = board_columns(tasks, layout);
    let live = mode == Mode::Live;
    html! {
        section #tasks {
            h2 { "Tasks" }
            div.views {
                input #view-board.view type="radio" name="view" value="board" checked[layout.view == View::Board];
                label.tab for="view-board" { "Board" }
                input #view-list.view type="radio" name="view" value="list" checked[layout.view == View::List];
                label.tab for="view-list" { "List" }
                div.board {
                    @if columns.is_empty() {
                        p.muted { "No tasks in TASKS.md" }
                    }
                    @for name in &columns {
                        @let cards: Vec<&Task> = tasks.iter().filter(|t| &t.section == name).collect();
                        section.column data-section=(name) {
                            h3 {
                                @if name.is_empty() { "No section" } @else { (name) }
                                " " span.count { (cards.len()) }
                            }
                            ul.cards {
                                @for task in &cards { (task_card(task, today, mode)) }
                            }
                            @if cards.is_empty() { p.muted.empty { "Nothing here" } }
                        }
                    }
                }
                div.list {
                    @for (label, group) in list_groups(tasks, &columns, layout.group_by, today) {
                        section.group {
                            h3 { (label) " " span.count { (group.len()) } }
                            ul.cards {
                                @for task in group { (task_card(task, today, mode)) }
                            }
                        }
                    }
                }
            }
            @if live {
                form #add-task {
                    label { "New task " input name="text" required maxlength="500" placeholder="Call the bank due:2026-12-24 #home"; }
                    label { " in " select name="section" {
                        @for name in columns.iter().filter(|c| !c.is_empty()) { option value=(name) { (name) } }
                        @if !columns.iter().any(|c| c.eq_ignore_ascii_case("Inbox")) { option value="Inbox" { "Inbox" } }
                    } }
                    " " button type="submit" { "Add" }
                }
            }
        }
    }
}

/// The list view's groups, in order, empty ones left out.
fn list_groups<'a>(
    tasks: &'a [Task],
    columns: &[String],
    by: GroupBy,
    today: NaiveDate,
) -> Vec<(String, Vec<&'a Task>)> {
    let mut groups: Vec<(String, Vec<&Task>)> = match by {
        GroupBy::Section => columns
            .iter()
            .map(|c| {
                let label = if c.is_empty() {
                    "No section".to_owned()
                } else {
                    c.clone()
                };
                (label, tasks.iter().filter(|t| &t.section == c).collect())
            })
            .collect(),
        GroupBy::Due => {
            let week = today + chrono::Duration::days(7);
            let key = |t: &Task| match (t.done, t.due) {
                (true, _) => 5,
                (false, Some(d)) if d < today => 0,
                (false, Some(d)) if d == today => 1,
                (false, Some(d)) if d <= week => 2,
                (false, Some(_)) => 3,
                (false, None) => 4,
            };
            let labels = [
                "Overdue",
                "Today",
                "Next 7 days",
                "Later",
                "No due date",
                "Done",
            ];
            let mut by_due: Vec<&Task> = tasks.iter().collect();
            by_due.sort_by_key(|t| (key(t), t.due));
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let group = by_due.iter().copied().filter(|t| key(t) == i).collect();
                    (l.to_string(), group)
                })
                .collect()
        }
    };
    groups.retain(|(_, g)| !g.is_empty());
    groups
}

fn task_card(task: &Task, today: NaiveDate, mode: Mode) -> Markup {
    let overdue = task.is_overdue(today);
    let title = if task.title.is_empty() {
        &task.text
    } else {
        &task.title
    };
    let live = mode == Mode::Live;
    html! {
        // Only the live page names the line (its edits need it; the static file does not).
        li.card.task.overdue[overdue].done[task.done].sub[task.indent > 0] data-line=[live.then_some(task.line)] data-text=[live.then_some(&task.text)] {
            div.row {
                // The title is not in the label: pressing it to drag must not tick the box.
                span.tick {
                    input type="checkbox" checked[task.done] disabled[!live] aria-label=(format!("Done: {title}"));
                    " "
                    span.title { (title) }
                }
                @if live { span.grip aria-hidden="true" title="Drag to another section" { "⠿" } }
            }
            div.meta {
                @if let Some(due) = task.due {
                    span.due {
                        @if overdue { "Overdue: " } @else { "Due " }
                        time datetime=(due.format("%Y-%m-%d")) { (due.format("%a %d %b")) }
                    }
                }
                @if let Some(day) = task.completed {
                    span.muted { "Done " time datetime=(day.format("%Y-%m-%d")) { (day.format("%a %d %b")) } }
                }
                @for tag in &task.tags { span.tag { "#" (tag) } }
                @if let Some(owner) = &task.owner { span.owner { "@" (owner) } }
                @if !task.section.is_empty() { span.muted.section { (task.section) } }
            }
        }
    }
}

fn charts(dashboard: &Dashboard, today: NaiveDate) -> Markup {
    let to = dashboard.generated_at;
    let from = (to - chrono::Duration::days(RUN_DAYS))
        .with_timezone(&Local)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|d| d.and_local_timezone(Local).earliest())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(to - chrono::Duration::days(RUN_DAYS));
    let runs: Vec<RunMark> = dashboard
        .runs
        .iter()
        .filter(|r| r.at >= from && r.at <= to)
        .cloned()
        .collect();
    html! {
        section #charts {
            h2 { "Activity" }
            div.charts {
                (charts::jobs_per_day(&dashboard.job_days))
                (charts::done_per_week(&dashboard.tasks, today, DONE_WEEKS))
                (charts::runs_timeline(&runs, from, to))
            }
        }
    }
}

fn jobs(jobs: &[JobCard]) -> Markup {
    let mut jobs: Vec<&JobCard> = jobs.iter().collect();
    jobs.sort_by_key(|job| std::cmp::Reverse(job.updated_at));
    html! {
        section #jobs {
            h2 { "Recent jobs" }
            @if jobs.is_empty() {
                p.muted { "No jobs yet" }
            } @else {
                ul.cards {
                    @for job in jobs {
                        li.card {
                            div.row {
                                span.title { (job.skill) }
                                (badge(&job.state))
                            }
                            div.meta {
                                span.muted { (job.id) }
                                span.muted { (when(job.updated_at)) }
                            }
                            @if let Some(error) = &job.error { p.error { (error) } }
                            @if !job.outputs.is_empty() {
                                ul.outputs {
                                    @for output in &job.outputs {
                                        li {
                                            @if let Some(href) = output_href(output) {
                                                a href=(href) { (output) }
                                            } @else {
                                                span { (output) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn approvals(approvals: &[ApprovalCard]) -> Markup {
    html! {
        section #approvals {
            h2 { "Waiting for your approval" }
            @if approvals.is_empty() {
                p.muted { "None pending" }
            } @else {
                ul.cards {
                    @for approval in approvals {
                        li.card.attention {
                            span.title { (approval.action) }
                            div { (approval.target) }
                            div.meta {
                                span.muted { "Job " (approval.job) }
                                span.muted { "Asked " (when(approval.created_at)) }
                                span.muted { "Id " (approval.id) }
                            }
                            div.muted {
                                "Answer on the phone page, or: "
                                code { "deskhand approvals approve " (approval.id) }
                                " / "
                                code { "refuse" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn schedules(schedules: &[ScheduleCard]) -> Markup {
    html! {
        section #schedules {
            h2 { "Schedules" }
            @if schedules.is_empty() {
                p.muted { "No schedules" }
            } @else {
                ul.cards {
                    @for schedule in schedules {
                        li.card {
                            div.row {
                                span.title { (schedule.skill) }
                                @if schedule.paused { (badge("paused")) }
                            }
                            div.meta {
                                code { (schedule.cron) }
                                span.muted { (schedule.tz) }
                                span.muted { (schedule.id) }
                            }
                            div {
                                "Next run: "
                                @match schedule.next_due {
                                    Some(next) if !schedule.paused => { (when(next)) }
                                    _ => { span.muted { "none" } }
                                }
                            }
                            @if let Some((at, outcome)) = &schedule.last_run {
                                div { "Last run: " (when(*at)) " " (badge(outcome)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn connections(connections: &[ConnectionCard]) -> Markup {
    html! {
        section #connections {
            h2 { "Connections" }
            @if connections.is_empty() {
                p.muted { "No connections" }
            } @else {
                ul.cards {
                    @for connection in connections {
                        li.card {
                            div.row {
                                span.title { (connection.id) }
                                (badge(&connection.state))
                            }
                            @if !connection.detail.is_empty() {
                                div.muted { (connection.detail) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A state label coloured by a fixed set of classes (never a class taken from input).
fn badge(state: &str) -> Markup {
    html! { span class={ "badge " (tone(state)) } { (state) } }
}

pub(super) fn tone(state: &str) -> &'static str {
    let state = state.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| state.contains(w));
    // "disconnected" contains "connected": check the bad words first.
    if has(&[
        "fail",
        "error",
        "stale",
        "broken",
        "disconnect",
        "expired",
        "denied",
        "reject",
        "cancel",
    ]) {
        "bad"
    } else if has(&["running", "active", "sync", "progress", "started"]) {
        "busy"
    } else if has(&["wait", "pending", "queued", "paused", "retry"]) {
        "wait"
    } else if has(&[
        "succeed",
        "success",
        "done",
        "complete",
        "ok",
        "connected",
        "healthy",
    ]) {
        "good"
    } else {
        "neutral"
    }
}

/// A `<time>` element showing `at` in the person's local time.
fn when(at: DateTime<Utc>) -> Markup {
    let local = at.with_timezone(&Local);
    html! { time datetime=(at.to_rfc3339()) { (local.format("%a %d %b %Y, %H:%M")) } }
}

/// Every byte except RFC 3986 unreserved characters is encoded inside a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A relative link for a workspace output, or `None` if the path is not a plain
/// relative path (schemes, absolute paths, `..` and odd segments get no link).
fn output_href(path: &str) -> Option<String> {
    if path.is_empty() || path.contains([':', '\\']) || path.chars().any(char::is_control) {
        return None;
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return None;
    }
    Some(
        segments
            .iter()
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Inline styles: system fonts, a single-column layout on phones, dark mode by preference. The
/// views switch with two radio buttons (`:checked`), so the static page needs no script.
const CSS: &str = r#"
:root { --bg: #f6f7f9; --card: #ffffff; --text: #1d2330; --muted: #667085; --line: #e3e6ea;
  --accent: #2f6feb; --bad: #c62828; --good: #2e7d32; --busy: #1565c0; --wait: #b26a00;
  --font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; --radius: 8px; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111418; --card: #1b2027; --text: #e6e8eb; --muted: #98a2b3; --line: #2c333d;
    --accent: #6ea8fe; --bad: #ef9a9a; --good: #a5d6a7; --busy: #90caf9; --wait: #ffcc80; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.45 var(--font); }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 20px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 28px 0 10px; }
h3 { font-size: 1rem; margin: 0 0 8px; }
.muted { color: var(--muted); }
.warning { border-left: 4px solid var(--wait); background: var(--card); padding: 6px 10px; margin: 8px 0; }
.views > input.view { position: absolute; opacity: 0; pointer-events: none; }
.tab { display: inline-block; padding: 4px 14px; border: 1px solid var(--line); border-radius: 999px;
  cursor: pointer; margin: 0 4px 10px 0; background: var(--card); }
#view-board:checked + .tab, #view-list:checked + .tab { background: var(--accent); color: var(--bg);
  border-color: var(--accent); }
.views > input.view:focus-visible + .tab { outline: 2px solid var(--accent); outline-offset: 2px; }
.board, .list { display: none; }
#view-board:checked ~ .board { display: grid; grid-auto-flow: column; grid-auto-columns: minmax(220px, 1fr);
  gap: 12px; overflow-x: auto; }
#view-list:checked ~ .list { display: grid; gap: 14px; }
.column { background: var(--line); border-radius: 10px; padding: 10px; min-height: 80px; }
.column.drop { outline: 2px dashed var(--accent); }
.count { color: var(--muted); font-weight: normal; }
.cards { list-style: none; margin: 0; padding: 0; display: grid; gap: 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 10px 12px; overflow-wrap: anywhere; }
.card.overdue { border-left: 4px solid var(--bad); }
.card.done .title { text-decoration: line-through; color: var(--muted); }
.card.attention { border-left: 4px solid var(--wait); }
.card.dragging { opacity: 0.5; }
.live .task { touch-action: none; cursor: grab; }
.grip { color: var(--muted); cursor: grab; user-select: none; }
.list .grip { display: none; }
.tick { display: flex; gap: 8px; align-items: baseline; }
.title { font-weight: 600; }
.row { display: flex; justify-content: space-between; gap: 8px; align-items: baseline; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 10px; font-size: 0.85rem; margin-top: 4px; }
.overdue .due { color: var(--bad); font-weight: 600; }
.tag { color: var(--accent); }
.owner { color: var(--muted); }
.badge { font-size: 0.8rem; border-radius: 999px; padding: 1px 8px; border: 1px solid currentColor;
  white-space: nowrap; }
.badge.bad { color: var(--bad); } .badge.good { color: var(--good); }
.badge.busy { color: var(--busy); } .badge.wait { color: var(--wait); } .badge.neutral { color: var(--muted); }
.error { color: var(--bad); white-space: pre-wrap; margin: 6px 0 0; }
.outputs { margin: 6px 0 0; padding-left: 18px; font-size: 0.9rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 12px; }
.chart { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 10px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .bar { fill: var(--accent); }
.chart .axis, .chart .grid { stroke: var(--line); }
.chart text { fill: var(--muted); font-size: 9px; }
.chart .value { fill: var(--text); }
.run.good { fill: var(--good); } .run.bad { fill: var(--bad); } .run.busy { fill: var(--busy); }
.run.wait { fill: var(--wait); } .run.neutral { fill: var(--muted); }
.note { font-size: 0.85rem; margin: 4px 0 0; }
#add-task { margin-top: 12px; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
#add-task input[name=text] { min-width: 260px; }
#status:not(:empty) { position: fixed; bottom: 12px; right: 12px; background: var(--card);
  border: 1px solid var(--line); border-radius: var(--radius); padding: 6px 12px; max-width: 60ch; }
#status.bad { border-color: var(--bad); color: var(--bad); }
.live-dot { color: var(--good); }
.card.sub { margin-left: 18px; }
a { color: var(--accent); }
code { font-size: 0.85rem; }
@media (max-width: 700px) { #view-board:checked ~ .board { grid-auto-flow: row; } }
@media print { .views > input.view, .tab { display: none; } }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskList;
    use chrono::TimeZone;

    const HOSTILE: [&str; 4] = [
        "<img src=x onerror=alert(1)>",
        "</script><script>alert(1)</script>",
        "\"><svg onload=alert(1)>",
        "' onmouseover='alert(1)",
    ];

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, 12, 0, 0).unwrap()
    }

    fn sample() -> Dashboard {
        let tasks = TaskList::parse(
            "## Inbox\n- [ ] Pay rent due:2025-03-01 #home @ana\n- [ ] Plan trip due:2025-04-01\n\
             ## Doing\n- [ ] Write report\n- [x] Old chore due:2025-01-01\n",
        );
        Dashboard {
            title: "Ada's desk".into(),
            generated_at: at(10),
            tasks: tasks.tasks().to_vec(),
            jobs: vec![
                JobCard {
                    id: "j1".into(),
                    skill: "weekly-report".into(),
                    state: "succeeded".into(),
                    error: None,
                    updated_at: at(9),
                    outputs: vec!["reports/Q3 report.xlsx".into()],
                },
                JobCard {
                    id: "j2".into(),
                    skill: "inbox-triage".into(),
                    state: "failed".into(),
                    error: Some("gmail: quota".into()),
                    updated_at: at(10),
                    outputs: vec![],
                },
            ],
            schedules: vec![ScheduleCard {
                id: "s1".into(),
                cron: "0 9 * * MON".into(),
                tz: "Europe/Paris".into(),
                skill: "weekly-report".into(),
                next_due: Some(at(17)),
                paused: false,
                last_run: Some((at(3), "succeeded".into())),
            }],
            approvals: vec![],
            connections: vec![ConnectionCard {
                id: "gmail:ada@example.com".into(),
                state: "connected".into(),
                detail: "synced 2 minutes ago".into(),
            }],
            job_days: vec![],
            runs: vec![],
        }
    }

    /// Every `<...>` in the output; since all text is escaped, each is a real tag.
    fn tags(html: &str) -> Vec<&str> {
        html.split('<')
            .skip(1)
            .map(|rest| rest.split('>').next().unwrap_or(rest))
            .collect()
    }

    /// The board view's part of the page.
    fn board(html: &str) -> &str {
        let start = html.find("class=\"board\"").unwrap();
        let end = html.find("class=\"list\"").unwrap();
        &html[start..end]
    }

    /// The list view's part of the page.
    fn list(html: &str) -> &str {
        let start = html.find("class=\"list\"").unwrap();
        &html[start
            ..html[start..]
                .find("</section></div></div>")
                .map_or(html.len(), |e| start + e)]
    }

    fn column_html<'a>(html: &'a str, key: &str) -> &'a str {
        let board = board(html);
        let start = board.find(&format!("data-section=\"{key}\"")).unwrap();
        let rest = &board[start..];
        let end = rest[1..]
            .find("data-section=")
            .map_or(rest.len(), |i| i + 1);
        &rest[..end]
    }

    #[test]
    fn renders_every_section() {
        let html = render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.contains("<title>Ada&#39;s desk</title>")
                || html.contains("<title>Ada's desk</title>")
        );
        let inbox = column_html(&html, "Inbox");
        assert!(
            inbox.contains("Pay rent")
                && inbox.contains("Plan trip")
                && !inbox.contains("Write report")
        );
        let doing = column_html(&html, "Doing");
        assert!(doing.contains("Write report") && doing.contains("Old chore"));
        assert!(doing.contains("class=\"card task done\""));
        // Pay rent is overdue on 10 March; the done chore is not highlighted.
        assert_eq!(
            board(&html).matches("class=\"card task overdue\"").count(),
            1
        );
        // The list groups by due date: overdue first, done last; every task once.
        let list = list(&html);
        for task in ["Pay rent", "Plan trip", "Write report", "Old chore"] {
            assert_eq!(list.matches(&format!(">{task}<")).count(), 1, "{task}");
        }
        let order: Vec<usize> = ["Overdue", "Later", "No due date", "Done"]
            .iter()
            .map(|g| {
                list.find(&format!("<h3>{g} "))
                    .unwrap_or_else(|| panic!("{g}"))
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(list.find("Pay rent").unwrap() < list.find("Plan trip").unwrap());
        // Both views are there, the board shown first, and the charts.
        assert!(
            html.contains("value=\"board\" checked") && !html.contains("value=\"list\" checked")
        );
        assert!(
            html.contains("id=\"chart-jobs\"")
                && html.contains("id=\"chart-done\"")
                && html.contains("id=\"chart-runs\"")
        );
        // The static page cannot change anything.
        assert!(
            !html.contains("id=\"add-task\"")
                && !html.contains("type=\"checkbox\" aria-label")
                && html.contains("type=\"checkbox\" disabled aria-label")
        );
        assert!(html.contains("#home") && html.contains("@ana"));
        assert!(html.contains("href=\"reports/Q3%20report.xlsx\""));
        assert!(
            html.find("inbox-triage").unwrap() < html.find("weekly-report").unwrap(),
            "newest job first"
        );
        assert!(html.contains("badge bad") && html.contains("gmail: quota"));
        assert!(html.contains("None pending"));
        assert!(html.contains("0 9 * * MON") && html.contains("Europe/Paris"));
        let next = at(17)
            .with_timezone(&Local)
            .format("%a %d %b %Y, %H:%M")
            .to_string();
        assert!(html.contains(&next), "next run in local time");
        assert!(html.contains("gmail:ada@example.com"));
    }

    #[test]
    fn has_no_script_and_loads_nothing() {
        let html = render(&sample());
        assert!(html.contains("default-src 'none'"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("url(") && !html.contains("@import"));
        for tag in tags(&html) {
            let name = tag.split_whitespace().next().unwrap_or("").to_lowercase();
            assert!(
                ![
                    "script",
                    "img",
                    "image",
                    "use",
                    "foreignobject",
                    "link",
                    "iframe",
                    "object",
                    "embed",
                    "base",
                    "form",
                    "style"
                ]
                .contains(&name.as_str())
                    || name == "style" && tag == "style"
            );
            assert!(!tag.contains(" src="), "{tag}");
        }
    }

    #[test]
    fn hostile_text_is_escaped_everywhere() {
        let mut d = sample();
        let evil = HOSTILE.join(" ");
        d.title = evil.clone();
        let mut task = d.tasks[0].clone();
        task.title = evil.clone();
        task.section = evil.clone();
        task.tags = HOSTILE.iter().map(|s| s.to_string()).collect();
        task.owner = Some(evil.clone());
        d.tasks.push(task);
        d.jobs.push(JobCard {
            id: evil.clone(),
            skill: evil.clone(),
            state: evil.clone(),
            error: Some(evil.clone()),
            updated_at: at(1),
            outputs: vec![
                "javascript:alert(1)".into(),
                "JaVaScRiPt:alert(1)".into(),
                "https://evil.example/x".into(),
                "//evil.example/x".into(),
                "/etc/passwd".into(),
                "../outside.txt".into(),
                HOSTILE[0].into(),
                HOSTILE[2].into(),
            ],
        });
        d.schedules[0].cron = evil.clone();
        d.schedules[0].last_run = Some((at(1), evil.clone()));
        d.approvals.push(ApprovalCard {
            id: evil.clone(),
            job: evil.clone(),
            action: evil.clone(),
            target: evil.clone(),
            created_at: at(2),
        });
        d.connections[0].detail = evil.clone();
        d.connections[0].state = evil.clone();

        let html = render(&d);
        for bad in [
            "<img",
            "<svg onload",
            "<script",
            "</script",
            "href=\"javascript:",
            "href=\"JaVaScRiPt:",
        ] {
            assert!(!html.contains(bad), "found {bad}");
        }
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            html.contains("javascript:alert(1)"),
            "the name is still shown, as text"
        );

        for tag in tags(&html) {
            // Attribute names only: the quoted values are text (maud escapes `"` in them).
            let names: String = tag.split('"').step_by(2).collect::<Vec<_>>().join(" ");
            for word in names.split_whitespace() {
                assert!(
                    !word.to_lowercase().starts_with("on"),
                    "event handler in <{tag}>"
                );
            }
            assert!(!tag.contains("://"), "absolute URL in <{tag}>");
            if let Some(href) = tag.split("href=\"").nth(1) {
                let href = href.split('"').next().unwrap();
                assert!(
                    !href.contains(':') && !href.starts_with('/') && !href.contains(".."),
                    "{href}"
                );
            }
        }
        // Outputs with schemes, absolute or parent paths get no link. The two HTML-looking
        // names are plain file names, so they get (encoded) links, as does the first job's.
        assert_eq!(html.matches("href=").count(), 3);
        assert!(html.contains("href=\"%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\""));
    }

    #[test]
    fn output_links_are_encoded_relative_paths() {
        assert_eq!(
            output_href("a b/c#d?.md").as_deref(),
            Some("a%20b/c%23d%3F.md")
        );
        assert_eq!(
            output_href("rapport/été.csv").as_deref(),
            Some("rapport/%C3%A9t%C3%A9.csv")
        );
        for bad in [
            "",
            "a//b",
            "./a",
            "a/../b",
            "C:\\x",
            "data:text/html,x",
            "a\nb",
            "dir/",
        ] {
            assert_eq!(output_href(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_live_view_can_tick_drag_and_add_and_names_each_task_by_line_and_text() {
        let html = render_live(&sample(), &Custom::default());
        assert!(!html.contains("<html") && !html.contains("<script"));
        assert!(html.contains("id=\"add-task\""));
        assert!(html.contains("<option value=\"Inbox\">Inbox</option>"));
        assert!(html.contains("data-line=\"1\" data-text=\"Pay rent due:2025-03-01 #home @ana\""));
        assert!(html.contains("class=\"grip\""));
        assert_eq!(
            board(&html)
                .matches("type=\"checkbox\" checked aria-label")
                .count(),
            1
        );
        assert!(!html.contains("disabled"));
        let shell = live_shell();
        assert!(shell.contains(LIVE_CSP) && shell.contains("src=\"/dashboard/app.js\""));
    }

    #[test]
    fn a_layout_orders_the_panels_and_chooses_the_view_and_columns() {
        let custom = Custom::from_files(
            None,
            Some("panels = [\"jobs\", \"tasks\"]\nview = \"list\"\ngroup_by = \"section\"\ncolumns = [\"Doing\", \"Later\"]\n"),
            None,
        );
        let html = render_page(&sample(), &custom);
        assert!(html.find("id=\"jobs\"").unwrap() < html.find("id=\"tasks\"").unwrap());
        assert!(!html.contains("id=\"charts\"") && !html.contains("id=\"schedules\""));
        assert!(html.contains("value=\"list\" checked"));
        // The layout's columns first (an empty one too), then the file's other sections.
        let board = board(&html);
        let at = |s: &str| board.find(&format!("data-section=\"{s}\"")).unwrap();
        assert!(at("Doing") < at("Later") && at("Later") < at("Inbox"));
        let list = list(&html);
        assert!(list.find("<h3>Doing ").unwrap() < list.find("<h3>Inbox ").unwrap());
    }

    #[test]
    fn customization_is_inert_and_its_warnings_are_shown_as_text() {
        let custom = Custom::from_files(
            Some("[light]\naccent = \"</style><script>alert(1)</script>\"\nbg = \"#fafafa\"\n"),
            Some("panels = ["),
            Some("body{background:url(https://evil.example/x)}"),
        );
        let html = render_page(&sample(), &custom);
        assert_eq!(
            html.matches("<style").count(),
            2,
            "the built-in styles and the theme"
        );
        assert!(html.contains("--bg: #fafafa;"));
        assert!(!html.contains("<script") && !html.contains("evil.example/x)}"));
        assert!(!html.to_lowercase().contains("url(https"));
        assert_eq!(html.matches("role=\"alert\"").count(), 3);
        assert!(html.contains("the built-in layout is shown"));
        assert!(html.contains("&lt;/style&gt;") || !html.contains("</style><script"));
    }

    #[test]
    fn the_charts_count_jobs_days_and_dated_done_tasks() {
        let mut d = sample();
        d.job_days = vec![
            (NaiveDate::from_ymd_opt(2025, 3, 9).unwrap(), 2),
            (NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(), 5),
        ];
        d.tasks = TaskList::parse(
            "## Active\n- [ ] **Open**\n## Done\n- [x] ~~A~~ (2025-03-10)\n- [x] ~~B~~ (2025-03-03)\n\
             - [x] ~~Old~~ (2024-01-01)\n- [x] plain\n",
        )
        .tasks()
        .to_vec();
        d.runs = vec![
            RunMark {
                schedule: "status-report".into(),
                at: at(9),
                outcome: "succeeded".into(),
            },
            RunMark {
                schedule: "status-report".into(),
                at: at(8),
                outcome: "failed".into(),
            },
            RunMark {
                schedule: "inbox".into(),
                at: at(1),
                outcome: "succeeded".into(),
            },
        ];
        let html = render(&d);
        assert!(html.contains("Jobs per day <span class=\"muted\">(7 jobs)</span>"));
        assert!(html.contains("Mon 10 Mar: 5 jobs"));
        assert!(html.contains("Tasks done per week <span class=\"muted\">(2 done)</span>"));
        assert!(html.contains("1 ticked task carries no day"));
        // Only the last week's runs: the one on 1 March is older.
        assert_eq!(html.matches("class=\"run ").count(), 2);
        assert!(html.contains("class=\"run good\"") && html.contains("class=\"run bad\""));
    }

    #[test]
    fn write_dashboard_goes_through_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let written = write_dashboard(&ws, &Dashboard::default()).unwrap();
        assert_eq!(written.rel, DASHBOARD_FILE);
        let html = String::from_utf8(ws.read(DASHBOARD_FILE).unwrap().unwrap()).unwrap();
        assert!(html.contains("<title>Deskhand</title>") && html.contains("No jobs yet"));
    }
}
