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

use crate::tasks::{column, Column, Task};
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

/// Renders and saves dashboard.html through the workspace.
pub fn write_dashboard(ws: &Workspace, dashboard: &Dashboard) -> Result<Written, WorkspaceError> {
    ws.write(DASHBOARD_FILE, render(dashboard).as_bytes())
}

/// The dashboard as one self-contained HTML document.
pub fn render(dashboard: &Dashboard) -> String {
    let today = dashboard.generated_at.with_timezone(&Local).date_naive();
    let title = if dashboard.title.trim().is_empty() {
        "Deskhand"
    } else {
        dashboard.title.as_str()
    };
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
                header {
                    h1 { (title) }
                    p.muted { "Updated " (when(dashboard.generated_at)) }
                }
                main {
                    (kanban(&dashboard.tasks, today))
                    (jobs(&dashboard.jobs))
                    (approvals(&dashboard.approvals))
                    (schedules(&dashboard.schedules))
                    (connections(&dashboard.connections))
                }
            }
        }
    }
    .into_string()
}

fn kanban(tasks: &[Task], today: NaiveDate) -> Markup {
    let columns = [
        (Column::Todo, "todo", "To do"),
        (Column::Doing, "doing", "Doing"),
        (Column::Waiting, "waiting", "Waiting on"),
        (Column::Done, "done", "Done"),
    ];
    html! {
        section #tasks {
            h2 { "Tasks" }
            div.kanban {
                @for (col, key, label) in columns {
                    @let cards: Vec<&Task> = tasks.iter().filter(|t| column(t) == col).collect();
                    section.column data-column=(key) {
                        h3 { (label) " " span.count { (cards.len()) } }
                        @if cards.is_empty() {
                            p.muted { "Nothing here" }
                        } @else {
                            ul.cards {
                                @for task in cards { (task_card(task, today)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn task_card(task: &Task, today: NaiveDate) -> Markup {
    let overdue = task.is_overdue(today);
    let title = if task.title.is_empty() {
        &task.text
    } else {
        &task.title
    };
    html! {
        li.card.overdue[overdue] {
            span.title { (title) }
            div.meta {
                @if let Some(due) = task.due {
                    span.due {
                        @if overdue { "Overdue: " } @else { "Due " }
                        time datetime=(due.format("%Y-%m-%d")) { (due.format("%a %d %b")) }
                    }
                }
                @for tag in &task.tags { span.tag { "#" (tag) } }
                @if let Some(owner) = &task.owner { span.owner { "@" (owner) } }
                @if !task.section.is_empty() { span.muted { (task.section) } }
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

fn tone(state: &str) -> &'static str {
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

/// Inline styles: system fonts, a single-column layout on phones, dark mode by preference.
const CSS: &str = r#"
:root { --bg: #f6f7f9; --card: #ffffff; --text: #1d2330; --muted: #667085; --line: #e3e6ea;
  --accent: #2f6feb; --bad: #c62828; --good: #2e7d32; --busy: #1565c0; --wait: #b26a00; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111418; --card: #1b2027; --text: #e6e8eb; --muted: #98a2b3; --line: #2c333d;
    --accent: #6ea8fe; --bad: #ef9a9a; --good: #a5d6a7; --busy: #90caf9; --wait: #ffcc80; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main { max-width: 1100px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 20px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 28px 0 10px; }
h3 { font-size: 1rem; margin: 0 0 8px; }
.muted { color: var(--muted); }
.kanban { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; }
.column { background: var(--line); border-radius: 10px; padding: 10px; }
.count { color: var(--muted); font-weight: normal; }
.cards { list-style: none; margin: 0; padding: 0; display: grid; gap: 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px;
  overflow-wrap: anywhere; }
.card.overdue { border-left: 4px solid var(--bad); }
.card.attention { border-left: 4px solid var(--wait); }
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
a { color: var(--accent); }
code { font-size: 0.85rem; }
@media (max-width: 700px) { .kanban { grid-template-columns: 1fr; } }
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
        }
    }

    /// Every `<...>` in the output; since all text is escaped, each is a real tag.
    fn tags(html: &str) -> Vec<&str> {
        html.split('<')
            .skip(1)
            .map(|rest| rest.split('>').next().unwrap_or(rest))
            .collect()
    }

    fn column_html<'a>(html: &'a str, key: &str) -> &'a str {
        let start = html.find(&format!("data-column=\"{key}\"")).unwrap();
        let rest = &html[start..];
        let end = rest[1..].find("data-column=").map_or(rest.len(), |i| i + 1);
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
        let todo = column_html(&html, "todo");
        assert!(
            todo.contains("Pay rent")
                && todo.contains("Plan trip")
                && !todo.contains("Write report")
        );
        assert!(column_html(&html, "doing").contains("Write report"));
        assert!(column_html(&html, "done").contains("Old chore"));
        // Pay rent is overdue on 10 March; the done chore is not highlighted.
        assert_eq!(html.matches("class=\"card overdue\"").count(), 1);
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
                !["script", "img", "link", "iframe", "object", "embed", "base", "form", "svg"]
                    .contains(&name.as_str())
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
            "<svg",
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
            for word in tag.split_whitespace() {
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
    fn write_dashboard_goes_through_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let written = write_dashboard(&ws, &Dashboard::default()).unwrap();
        assert_eq!(written.rel, DASHBOARD_FILE);
        let html = String::from_utf8(ws.read(DASHBOARD_FILE).unwrap().unwrap()).unwrap();
        assert!(html.contains("<title>Deskhand</title>") && html.contains("No jobs yet"));
    }
}
