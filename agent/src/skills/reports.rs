//! The report actions: the status report (calendar, mail since the last report, tasks,
//! cross-referenced) and the inbox digest. Both read the local cache the sync steps filled, and
//! write Markdown plus an XLSX with one sheet per source through the workspace API.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use deskhand_connectors::calendar::CalendarEvent;
use deskhand_connectors::gmail::MailMessage;
use deskhand_connectors::mail_query::MailQuery;
use deskhand_connectors::Provider;
use deskhand_workspace::memory::Memory;
use deskhand_workspace::report::{self, Cell, Table};
use deskhand_workspace::tasks::{Task, TaskList};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{Day, Line};
use super::Account;
use crate::guard::{Access, Guard};
use crate::runner::{StepCtx, StepError};

/// Text from mail or pages, made inert in Markdown: markup and table/emphasis characters escaped.
fn escape_md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn fatal(e: impl std::fmt::Display) -> StepError {
    StepError::Fatal(e.to_string())
}

/// The time zone of `tz`, or the machine's.
fn zone(tz: Option<&Line>) -> Result<Tz, StepError> {
    let name = match tz.map(Line::as_str) {
        Some(z) if !z.is_empty() => z.to_string(),
        _ => iana_time_zone::get_timezone().unwrap_or_else(|_| "UTC".into()),
    };
    name.parse().map_err(|_| {
        StepError::Fatal(format!(
            "unknown time zone {name:?}; use an IANA name such as Europe/Berlin"
        ))
    })
}

/// Midnight starting `day` in `tz` (the first instant of the day, also on DST days).
fn midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut t = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A zone may skip midnight on DST days; the day starts at the first instant that exists.
    for _ in 0..4 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.with_timezone(&Utc);
        }
        t += Days::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

fn local(tz: Tz, ts: i64) -> DateTime<Tz> {
    Utc.timestamp_opt(ts, 0)
        .single()
        .unwrap_or_default()
        .with_timezone(&tz)
}

fn email_of(from: &str) -> String {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => from[a + 1..b].trim().to_ascii_lowercase(),
        _ => from.trim().to_ascii_lowercase(),
    }
}

fn name_of(from: &str) -> String {
    match from.find('<') {
        Some(i) if i > 0 => from[..i].trim().trim_matches('"').to_string(),
        _ => from.trim().to_string(),
    }
}

/// Mail of `[since, until)` in the inbox (not spam, trash or sent-only), newest first.
fn inbox(
    conn: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    cache: &deskhand_connectors::Cache,
) -> Result<Vec<MailMessage>, StepError> {
    let q = MailQuery {
        labels: vec!["INBOX".into()],
        not_labels: vec!["SPAM".into(), "TRASH".into()],
        after_ms: Some(since.timestamp_millis()),
        before_ms: Some(until.timestamp_millis()),
        ..Default::default()
    };
    cache.search_mail(Some(conn), &q, 10_000).map_err(fatal)
}

async fn read_text(g: &Guard, rel: &str) -> Result<String, StepError> {
    let files = g.reader();
    let rel = rel.to_string();
    let bytes = tokio::task::spawn_blocking(move || files.read(&rel))
        .await
        .map_err(fatal)?
        .map_err(fatal)?;
    Ok(bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

/// One person as the report names them: MEMORY.md's name and note when known.
struct People(Vec<deskhand_workspace::memory::Person>);

impl People {
    fn show(&self, email: &str, fallback: &str) -> String {
        match self.0.iter().find(|p| {
            p.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        }) {
            Some(p) if p.note.is_empty() => p.name.clone(),
            Some(p) => format!("{} ({})", p.name, p.note),
            None if !fallback.is_empty() && fallback != email => fallback.to_string(),
            None => email.to_string(),
        }
    }
}

fn flags(m: &MailMessage) -> Vec<&'static str> {
    let mut f = Vec::new();
    if m.labels.iter().any(|l| l == "UNREAD") {
        f.push("unread");
    }
    if m.labels.iter().any(|l| l == "STARRED") {
        f.push("flagged");
    }
    if m.labels.iter().any(|l| l == "IMPORTANT") {
        f.push("important");
    }
    f
}

fn task_cell(t: &Task) -> Vec<Cell> {
    vec![
        Cell::Text(t.title.clone()),
        Cell::Text(t.section.clone()),
        t.due.map(Cell::Date).unwrap_or(Cell::Empty),
        Cell::Text(t.owner.clone().unwrap_or_default()),
        Cell::Text(t.tags.join(" ")),
    ]
}

/// `report.status`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StatusArgs {
    /// The report's day (default today).
    date: Option<Day>,
    /// Time zone of the report's day (default the machine's).
    tz: Option<Line>,
    #[serde(flatten)]
    account: Account,
}

/// `report.status`.
pub(super) async fn status(g: Guard, a: StatusArgs, ctx: StepCtx) -> Result<Value, StepError> {
    g.connector("calendar", Access::Read).await?;
    let hub = g.connector("gmail", Access::Read).await?;
    let tz = zone(a.tz.as_ref())?;
    let now = Utc::now();
    let day = match a.date.as_ref().map(|d| d.0.as_str()) {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| fatal(format!("date {d:?} is not YYYY-MM-DD")))?,
        None => now.with_timezone(&tz).date_naive(),
    };
    let start = midnight(tz, day);
    let tomorrow = midnight(tz, day + Days::days(1));
    let after = midnight(tz, day + Days::days(2));
    let until = now.min(tomorrow);
    let google = a.account.of(Provider::Google).to_string();
    let cache = hub.cache();

    // "Since the last report": the mark the previous report left, unless this very job left it
    // (a redelivery must write the same report again).
    let mark_key = format!("status-report:{google}");
    let mark = g.state(&mark_key).await?;
    let since = match &mark {
        Some(m) if m["job"] == ctx.job_id => m["since"].as_str(),
        Some(m) => m["until"].as_str(),
        None => None,
    }
    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    .map(|t| t.with_timezone(&Utc))
    // A mark at `until` means nothing is new (a report for a past day run again), not "start over".
    .filter(|t| *t <= until)
    .unwrap_or_else(|| midnight(tz, day - Days::days(1)));

    let events = cache
        .agenda(Some(&google), start.timestamp(), after.timestamp())
        .map_err(fatal)?;
    let (today, next): (Vec<&CalendarEvent>, Vec<&CalendarEvent>) = events
        .iter()
        .partition(|e| e.start_ts < tomorrow.timestamp());
    let met_today: Vec<String> = today.iter().flat_map(|e| e.attendees.clone()).collect();
    let mail = inbox(&google, since, until, cache)?;
    let wanted: Vec<&MailMessage> = mail
        .iter()
        .filter(|m| {
            !flags(m).is_empty() && (flags(m).contains(&"unread") || flags(m).contains(&"flagged"))
                || met_today.contains(&email_of(&m.from))
        })
        .collect();

    let tasks_text = read_text(&g, "TASKS.md").await?;
    let tasks = TaskList::parse(&tasks_text);
    let open: Vec<&Task> = tasks.tasks().iter().filter(|t| !t.done).collect();
    let overdue: Vec<&Task> = open
        .iter()
        .copied()
        .filter(|t| t.due.is_some_and(|d| d < day))
        .collect();
    let due_soon: Vec<&Task> = open
        .iter()
        .copied()
        .filter(|t| t.due.is_some_and(|d| d == day || d == day + Days::days(1)))
        .collect();
    let people = People(Memory::parse(&read_text(&g, "MEMORY.md").await?).people());

    // Cross-references: people you meet who mailed you, and open tasks that name them.
    let mut links: Vec<Vec<Cell>> = Vec::new();
    for e in today.iter().chain(next.iter()) {
        for who in &e.attendees {
            let from_them: Vec<&&MailMessage> = wanted
                .iter()
                .filter(|m| &email_of(&m.from) == who)
                .collect();
            let person = people.show(
                who,
                &from_them
                    .first()
                    .map(|m| name_of(&m.from))
                    .unwrap_or_default(),
            );
            let first_name = person
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_lowercase();
            let their_tasks: Vec<&&Task> = open
                .iter()
                .filter(|t| {
                    t.owner.as_deref().is_some_and(|o| {
                        let o = o.to_lowercase();
                        who.starts_with(&format!("{o}@"))
                            || (!first_name.is_empty() && o == first_name)
                    })
                })
                .collect();
            if from_them.is_empty() && their_tasks.is_empty() {
                continue;
            }
            links.push(vec![
                Cell::Text(local(tz, e.start_ts).format("%a %H:%M").to_string()),
                Cell::Text(e.summary.clone()),
                Cell::Text(person),
                Cell::Text(
                    from_them
                        .iter()
                        .map(|m| m.subject.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Cell::Text(
                    their_tasks
                        .iter()
                        .map(|t| t.title.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ]);
        }
    }

    let event_rows = |list: &[&CalendarEvent], label: &str| -> Vec<Vec<Cell>> {
        list.iter()
            .map(|e| {
                let when = if e.all_day {
                    "all day".to_string()
                } else {
                    format!(
                        "{}–{}",
                        local(tz, e.start_ts).format("%H:%M"),
                        local(tz, e.end_ts).format("%H:%M")
                    )
                };
                let with: Vec<String> = e.attendees.iter().map(|a| people.show(a, "")).collect();
                vec![
                    Cell::Text(label.to_string()),
                    Cell::Text(when),
                    Cell::Text(e.summary.clone()),
                    Cell::Text(with.join(", ")),
                    Cell::Text(e.location.clone()),
                ]
            })
            .collect()
    };
    let cal_cols = ["Day", "Time", "Meeting", "With", "Where"]
        .map(String::from)
        .to_vec();
    let today_t = Table {
        name: "Today".into(),
        columns: cal_cols.clone(),
        rows: event_rows(&today, "today"),
    };
    let next_t = Table {
        name: "Tomorrow".into(),
        columns: cal_cols.clone(),
        rows: event_rows(&next, "tomorrow"),
    };
    let mail_t = Table {
        name: "Mail".into(),
        columns: ["Received", "From", "Subject", "Why"]
            .map(String::from)
            .to_vec(),
        rows: wanted
            .iter()
            .map(|m| {
                let mut why: Vec<String> = flags(m).iter().map(|s| s.to_string()).collect();
                if met_today.contains(&email_of(&m.from)) {
                    why.push("you meet them today".into());
                }
                vec![
                    Cell::Text(
                        local(tz, m.internal_date_ms / 1000)
                            .format("%a %d %b %H:%M")
                            .to_string(),
                    ),
                    Cell::Text(people.show(&email_of(&m.from), &name_of(&m.from))),
                    Cell::Text(m.subject.clone()),
                    Cell::Text(why.join(", ")),
                ]
            })
            .collect(),
    };
    let task_cols = ["Task", "Section", "Due", "Owner", "Tags"]
        .map(String::from)
        .to_vec();
    let overdue_t = Table {
        name: "Overdue".into(),
        columns: task_cols.clone(),
        rows: overdue.iter().map(|t| task_cell(t)).collect(),
    };
    let soon_t = Table {
        name: "Due soon".into(),
        columns: task_cols.clone(),
        rows: due_soon.iter().map(|t| task_cell(t)).collect(),
    };
    let open_t = Table {
        name: "Tasks".into(),
        columns: task_cols,
        rows: open.iter().map(|t| task_cell(t)).collect(),
    };
    let links_t = Table {
        name: "Cross-references".into(),
        columns: [
            "When",
            "Meeting",
            "Person",
            "Their mail",
            "Their open tasks",
        ]
        .map(String::from)
        .to_vec(),
        rows: links,
    };

    let mut md = String::new();
    md.push_str(&format!(
        "# Status report — {}\n\n",
        day.format("%A %-d %B %Y")
    ));
    md.push_str(&format!(
        "_{} · mail since {} · generated {}_\n\n",
        tz.name(),
        since.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        now.with_timezone(&tz).format("%Y-%m-%d %H:%M")
    ));
    md.push_str("## At a glance\n\n");
    md.push_str(&format!(
        "- {} meeting(s) today, {} tomorrow\n- {} message(s) need you\n- {} open task(s), {} overdue, {} due today or tomorrow\n- {} cross-reference(s)\n\n",
        today_t.rows.len(),
        next_t.rows.len(),
        mail_t.rows.len(),
        open_t.rows.len(),
        overdue_t.rows.len(),
        soon_t.rows.len(),
        links_t.rows.len()
    ));
    for (title, t, empty) in [
        (
            "Cross-references",
            &links_t,
            "Nobody you meet has mailed you or has open tasks.",
        ),
        ("Today", &today_t, "No meetings."),
        ("Tomorrow", &next_t, "No meetings."),
        (
            "Mail since the last report",
            &mail_t,
            "Nothing unread, flagged or from people you meet.",
        ),
        ("Overdue tasks", &overdue_t, "Nothing overdue."),
        ("Due today or tomorrow", &soon_t, "Nothing due."),
        ("Open tasks", &open_t, "No open tasks."),
    ] {
        md.push_str(&format!("## {title}\n\n"));
        if t.rows.is_empty() {
            md.push_str(&format!("{empty}\n\n"));
        } else {
            md.push_str(&report::to_markdown_table(t));
            md.push('\n');
        }
    }
    let xlsx = report::to_xlsx(&[
        Table {
            name: "Calendar".into(),
            columns: cal_cols,
            rows: today_t
                .rows
                .iter()
                .chain(next_t.rows.iter())
                .cloned()
                .collect(),
        },
        mail_t.clone(),
        open_t.clone(),
        links_t.clone(),
    ])
    .map_err(fatal)?;
    let job = &ctx.job_id;
    let (md_rel, xlsx_rel) = (g.output_path("md"), g.output_path("xlsx"));
    g.write_file(&md_rel, md.into_bytes()).await?;
    g.write_file(&xlsx_rel, xlsx).await?;
    g.set_state(
        &mark_key,
        &json!({"job": job, "since": since.to_rfc3339(), "until": until.to_rfc3339()}),
    )
    .await?;
    Ok(json!({
        "path": md_rel,
        "xlsx": xlsx_rel,
        "meetings_today": today_t.rows.len(),
        "meetings_tomorrow": next_t.rows.len(),
        "mail": mail_t.rows.len(),
        "open_tasks": open_t.rows.len(),
        "overdue": overdue_t.rows.len(),
        "cross_references": links_t.rows.len(),
    }))
}

/// `report.inbox-digest`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DigestArgs {
    /// How far back, in hours.
    #[serde(default = "day_of_hours")]
    hours: u32,
    /// End of the window, RFC 3339 (default now).
    until: Option<Line>,
    /// Time zone times are shown in (default the machine's).
    tz: Option<Line>,
    #[serde(flatten)]
    account: Account,
}

fn day_of_hours() -> u32 {
    24
}

/// `report.inbox-digest`.
pub(super) async fn inbox_digest(
    g: Guard,
    a: DigestArgs,
    _ctx: StepCtx,
) -> Result<Value, StepError> {
    let hub = g.connector("gmail", Access::Read).await?;
    let hours = i64::from(a.hours).clamp(1, 24 * 366);
    let until = match a.until.as_ref().map(Line::as_str) {
        Some(u) if !u.is_empty() => DateTime::parse_from_rfc3339(u)
            .map_err(|_| fatal(format!("until {u:?} is not an RFC 3339 time")))?
            .with_timezone(&Utc),
        _ => Utc::now(),
    };
    let since = until - Days::hours(hours);
    let tz = zone(a.tz.as_ref())?;
    let google = a.account.of(Provider::Google).to_string();
    let mail = inbox(&google, since, until, hub.cache())?;
    // sender → thread → messages (oldest first within a thread)
    let mut by_sender: BTreeMap<String, (String, BTreeMap<String, Vec<&MailMessage>>)> =
        BTreeMap::new();
    for m in &mail {
        let entry = by_sender
            .entry(email_of(&m.from))
            .or_insert_with(|| (name_of(&m.from), BTreeMap::new()));
        entry.1.entry(m.thread_id.clone()).or_default().push(m);
    }
    let mut senders: Vec<_> = by_sender.into_iter().collect();
    // Busiest senders first, then by address.
    senders.sort_by(|a, b| {
        let n = |s: &(String, BTreeMap<String, Vec<&MailMessage>>)| {
            s.1.values().map(Vec::len).sum::<usize>()
        };
        n(&b.1).cmp(&n(&a.1)).then(a.0.cmp(&b.0))
    });
    let mut md = format!(
        "# Inbox digest — last {hours} hour(s)\n\n_{} to {} ({}) · {} message(s) from {} sender(s)_\n\n",
        since.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        until.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        tz.name(),
        mail.len(),
        senders.len()
    );
    let mut rows = Vec::new();
    for (email, (name, threads)) in &senders {
        let count: usize = threads.values().map(Vec::len).sum();
        md.push_str(&format!(
            "## {} <{}> — {count} message(s)\n\n",
            escape_md(name),
            escape_md(email)
        ));
        for msgs in threads.values() {
            let mut msgs = msgs.clone();
            msgs.sort_by_key(|m| m.internal_date_ms);
            let first = msgs[0];
            md.push_str(&format!(
                "- **{}** ({} message(s), latest {}){}\n",
                escape_md(&first.subject),
                msgs.len(),
                local(tz, msgs[msgs.len() - 1].internal_date_ms / 1000).format("%a %H:%M"),
                if msgs.iter().any(|m| flags(m).contains(&"unread")) {
                    " — unread"
                } else {
                    ""
                }
            ));
            for m in &msgs {
                md.push_str(&format!("  - {}\n", escape_md(&m.snippet)));
                rows.push(vec![
                    Cell::Text(name.to_string()),
                    Cell::Text(email.to_string()),
                    Cell::Text(m.thread_id.clone()),
                    Cell::Text(m.subject.clone()),
                    Cell::Text(
                        local(tz, m.internal_date_ms / 1000)
                            .format("%Y-%m-%d %H:%M")
                            .to_string(),
                    ),
                    Cell::Text(flags(m).join(", ")),
                ]);
            }
        }
        md.push('\n');
    }
    if senders.is_empty() {
        md.push_str("No mail in this window.\n");
    }
    let table = Table {
        name: "Mail".into(),
        columns: [
            "Sender", "Address", "Thread", "Subject", "Received", "Flags",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    let (md_rel, xlsx_rel) = (g.output_path("md"), g.output_path("xlsx"));
    g.write_file(&md_rel, md.into_bytes()).await?;
    g.write_file(&xlsx_rel, report::to_xlsx(&[table]).map_err(fatal)?)
        .await?;
    Ok(json!({"path": md_rel, "xlsx": xlsx_rel, "messages": mail.len(), "senders": senders.len()}))
}

/// Extracted records as a one-sheet workbook.
pub(super) fn records_xlsx(
    sheet: &str,
    columns: &[String],
    records: &[deskhand_browser::extract::Record],
) -> Result<Vec<u8>, StepError> {
    let rows = records
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match r.get(c) {
                    None | Some(Value::Null) => Cell::Empty,
                    Some(Value::Bool(b)) => Cell::Bool(*b),
                    Some(Value::Number(n)) => n.as_f64().map(Cell::Number).unwrap_or(Cell::Empty),
                    Some(Value::String(s)) => Cell::Text(s.clone()),
                    Some(Value::Array(a)) => Cell::Text(
                        a.iter()
                            .map(|v| {
                                v.as_str()
                                    .map(String::from)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                    Some(v) => Cell::Text(v.to_string()),
                })
                .collect()
        })
        .collect();
    report::to_xlsx(&[Table {
        name: sheet.into(),
        columns: columns.to_vec(),
        rows,
    }])
    .map_err(fatal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_their_first_instant_even_on_dst_days() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(midnight(tz, d).to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(
            midnight(tz, d + Days::days(1)).to_rfc3339(),
            "2026-03-29T22:00:00+00:00",
            "the spring-forward day is 23 hours long"
        );
        // Chile skips midnight itself at the start of DST.
        let cl: Tz = "America/Santiago".parse().unwrap();
        let t = midnight(cl, NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
        assert_eq!(t.with_timezone(&cl).format("%H:%M").to_string(), "01:00");
        assert_eq!(
            email_of("Grace Hopper <Grace@Navy.example>"),
            "grace@navy.example"
        );
        assert_eq!(name_of("\"Hopper, Grace\" <g@n.example>"), "Hopper, Grace");
    }
}

/// `meetings.prep`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PrepArgs {
    /// The day whose next day's meetings are prepared, YYYY-MM-DD (default today).
    date: Option<Day>,
    /// IANA time zone (default the machine's).
    tz: Option<Line>,
    #[serde(flatten)]
    account: Account,
}

/// How far back mail from a meeting's guests counts for its agenda.
const PREP_MAIL_DAYS: i64 = 14;

/// `meetings.prep`: for each of tomorrow's meetings with guests, a short agenda mail saved as a
/// Gmail draft to them (never sent): what they wrote lately, the open tasks that name them, and
/// the meeting's own description. A Markdown list of the drafts in reports/.
pub(super) async fn meeting_prep(g: Guard, a: PrepArgs, _: StepCtx) -> Result<Value, StepError> {
    g.connector("calendar", Access::Read).await?;
    let hub = g.connector("gmail", Access::Read).await?;
    let tz = zone(a.tz.as_ref())?;
    let day = match a.date.as_ref().map(|d| d.0.as_str()) {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| fatal(format!("date {d:?} is not YYYY-MM-DD")))?,
        None => Utc::now().with_timezone(&tz).date_naive(),
    };
    let google = a.account.of(Provider::Google);
    let google_s = google.to_string();
    let cache = hub.cache();
    let (from_day, to_day) = (
        midnight(tz, day + Days::days(1)),
        midnight(tz, day + Days::days(2)),
    );
    let events = cache
        .agenda(Some(&google_s), from_day.timestamp(), to_day.timestamp())
        .map_err(fatal)?;
    let (gmail, me) =
        super::mail::sender(&g, &google, &super::mail::DRAFT_SCOPES, "write drafts").await?;
    let my_address = me.email.to_string().to_lowercase();
    let mail = inbox(
        &google_s,
        midnight(tz, day - Days::days(PREP_MAIL_DAYS)),
        Utc::now(),
        cache,
    )?;
    let tasks_text = read_text(&g, "TASKS.md").await?;
    let tasks = TaskList::parse(&tasks_text);
    let open: Vec<&Task> = tasks.tasks().iter().filter(|t| !t.done).collect();
    let people = People(Memory::parse(&read_text(&g, "MEMORY.md").await?).people());

    let mut drafts = Vec::new();
    let mut md = format!("# Meeting prep for {}\n\n", day + Days::days(1));
    for e in &events {
        let guests: Vec<&String> = e
            .attendees
            .iter()
            .filter(|a| a.to_lowercase() != my_address)
            .collect();
        if guests.is_empty() || e.all_day {
            continue;
        }
        let names: Vec<String> = guests
            .iter()
            .map(|a| {
                let shown = people.show(a, "");
                shown
                    .split(['(', '@'])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        let first_names: Vec<&str> = names
            .iter()
            .map(|n| n.split_whitespace().next().unwrap_or(n))
            .collect();
        let mut items: Vec<String> = Vec::new();
        for m in mail
            .iter()
            .filter(|m| guests.iter().any(|g| **g == email_of(&m.from)))
        {
            items.push(format!("Your mail \"{}\"", m.subject));
        }
        for t in &open {
            let named = t.owner.as_deref().is_some_and(|o| {
                let o = o.to_lowercase();
                guests.iter().any(|g| g.starts_with(&format!("{o}@")))
                    || first_names.iter().any(|f| f.to_lowercase() == o)
            });
            if named {
                let due = t.due.map(|d| format!(" (due {d})")).unwrap_or_default();
                items.push(format!("{}{due}", t.title));
            }
        }
        if !e.description.trim().is_empty() {
            items.push(format!("From the invitation: {}", e.description.trim()));
        }
        items.push("Anything else?".into());
        let when = format!(
            "{}–{}",
            local(tz, e.start_ts).format("%a %e %b, %H:%M"),
            local(tz, e.end_ts).format("%H:%M")
        );
        let place = if e.location.is_empty() {
            String::new()
        } else {
            format!(", {}", e.location)
        };
        let mut body = format!(
            "Hi {},\n\nfor \"{}\" ({when}{place}), I would like to go through:\n\n",
            first_names.join(" and "),
            e.summary
        );
        for (i, it) in items.iter().enumerate() {
            body.push_str(&format!("{}. {it}\n", i + 1));
        }
        let to_text = guests
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let to: lettre::message::Mailboxes = to_text
            .parse()
            .map_err(|e| fatal(format!("guests {to_text:?}: {e}")))?;
        let subject = format!("Agenda: {}", e.summary);
        let id =
            super::mail::save_draft(&g, &gmail, &google, me.clone(), &to, &subject, body).await?;
        md.push_str(&format!(
            "- **{}** ({when}) → draft to {} with {} item(s)\n",
            e.summary,
            to_text,
            items.len()
        ));
        drafts
            .push(json!({"meeting": e.summary, "to": to_text, "draft": id, "items": items.len()}));
    }
    if drafts.is_empty() {
        md.push_str("No meetings with guests.\n");
    }
    let path = g.write_output("md", md.into_bytes()).await?;
    Ok(json!({"path": path, "drafts": drafts}))
}
