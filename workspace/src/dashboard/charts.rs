//! The dashboard's charts, drawn on the server as inline SVG (no script, nothing loaded): jobs
//! per day, tasks done per week, and schedule runs on a timeline. Every bar and dot carries a
//! `<title>` (its tooltip and what a screen reader says), and each chart a text summary.

use chrono::{DateTime, Datelike, Duration, Local, NaiveDate, Utc};
use maud::{html, Markup};

use super::{tone, RunMark};
use crate::tasks::Task;

/// Width and height of a chart's drawing, in SVG user units.
const W: f64 = 320.0;
const H: f64 = 120.0;
/// Room under the bars for the labels.
const AXIS: f64 = 16.0;

/// One bar: its label under the axis, its tooltip, its value.
struct Bar {
    label: String,
    tip: String,
    value: u32,
}

/// A bar chart of `bars`, oldest first.
fn bar_chart(id: &str, title: &str, unit: &str, bars: &[Bar], note: Option<String>) -> Markup {
    let total: u32 = bars.iter().map(|b| b.value).sum();
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let slot = W / bars.len().max(1) as f64;
    let width = (slot * 0.7).max(1.0);
    // Label every bar when there is room, else every other one.
    let every = if bars.len() > 10 { 2 } else { 1 };
    html! {
        figure.chart #(id) {
            figcaption { (title) " " span.muted { "(" (total) " " (unit) ")" } }
            svg viewBox=(format!("0 0 {W} {}", H + AXIS)) role="img" aria-label=(format!("{title}: {total} {unit}")) {
                title { (title) }
                line.axis x1="0" y1=(H) x2=(W) y2=(H) {}
                @for (i, bar) in bars.iter().enumerate() {
                    @let h = (bar.value as f64 / max * (H - 14.0)).round();
                    @let x = i as f64 * slot + (slot - width) / 2.0;
                    g {
                        title { (bar.tip) }
                        rect.bar x=(fmt(x)) y=(fmt(H - h)) width=(fmt(width)) height=(fmt(h)) {}
                        @if bar.value > 0 {
                            text.value x=(fmt(x + width / 2.0)) y=(fmt(H - h - 3.0)) text-anchor="middle" { (bar.value) }
                        }
                        @if i % every == (bars.len() - 1) % every {
                            text.label x=(fmt(x + width / 2.0)) y=(fmt(H + 12.0)) text-anchor="middle" { (bar.label) }
                        }
                    }
                }
            }
            @if let Some(note) = note { p.muted.note { (note) } }
        }
    }
}

/// Jobs started per day, for the days given (oldest first).
pub(super) fn jobs_per_day(days: &[(NaiveDate, u32)]) -> Markup {
    let bars: Vec<Bar> = days
        .iter()
        .map(|(day, n)| Bar {
            label: day.format("%d").to_string(),
            tip: format!("{}: {n} job{}", day.format("%a %d %b"), plural(*n)),
            value: *n,
        })
        .collect();
    bar_chart("chart-jobs", "Jobs per day", "jobs", &bars, None)
}

/// Tasks finished per week over the last `weeks` weeks (Monday to Sunday), from the day a
/// finished task carries (`~~Title~~ (2026-12-03)`); ticked tasks without a day are counted
/// apart, in the caption.
pub(super) fn done_per_week(tasks: &[Task], today: NaiveDate, weeks: u32) -> Markup {
    let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
    let first = monday - Duration::weeks(weeks as i64 - 1);
    let mut counts = vec![0u32; weeks as usize];
    let mut undated = 0;
    for task in tasks.iter().filter(|t| t.done) {
        match task.completed {
            Some(day) if day >= first && day <= today => {
                counts[((day - first).num_days() / 7) as usize] += 1;
            }
            Some(_) => {}
            None => undated += 1,
        }
    }
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let start = first + Duration::weeks(i as i64);
            Bar {
                label: start.format("%d/%m").to_string(),
                tip: format!(
                    "Week of {}: {n} task{} done",
                    start.format("%a %d %b"),
                    plural(*n)
                ),
                value: *n,
            }
        })
        .collect();
    let note = match undated {
        0 => None,
        1 => Some("1 ticked task carries no day and is not counted.".to_owned()),
        n => Some(format!(
            "{n} ticked tasks carry no day and are not counted."
        )),
    };
    bar_chart("chart-done", "Tasks done per week", "done", &bars, note)
}

/// Schedule runs from `from` to `to`: one row per schedule, a dot per run coloured by how it
/// ended.
pub(super) fn runs_timeline(runs: &[RunMark], from: DateTime<Utc>, to: DateTime<Utc>) -> Markup {
    let mut rows: Vec<&str> = Vec::new();
    for r in runs {
        if !rows.contains(&r.schedule.as_str()) {
            rows.push(&r.schedule);
        }
    }
    let label_w = 90.0;
    let span = (to - from).num_seconds().max(1) as f64;
    let row_h = 20.0;
    let height = row_h * rows.len().max(1) as f64 + AXIS;
    let x_of =
        |at: DateTime<Utc>| label_w + (at - from).num_seconds() as f64 / span * (W - label_w - 6.0);
    let days: Vec<DateTime<Utc>> = (0..=(to - from).num_days())
        .map(|d| from + Duration::days(d))
        .collect();
    html! {
        figure.chart #chart-runs {
            figcaption { "Schedule runs " span.muted { "(" (runs.len()) " since " (from.with_timezone(&Local).format("%a %d %b")) ")" } }
            svg viewBox=(format!("0 0 {W} {height}")) role="img" aria-label=(format!("Schedule runs: {}", runs.len())) {
                title { "Schedule runs" }
                @for day in &days {
                    line.grid x1=(fmt(x_of(*day))) y1="0" x2=(fmt(x_of(*day))) y2=(fmt(height - AXIS)) {}
                    text.label x=(fmt(x_of(*day))) y=(fmt(height - 4.0)) text-anchor="middle" { (day.with_timezone(&Local).format("%d")) }
                }
                @if rows.is_empty() {
                    text.label x=(fmt(W / 2.0)) y="12" text-anchor="middle" { "No runs" }
                }
                @for (i, row) in rows.iter().enumerate() {
                    @let y = row_h * i as f64 + row_h / 2.0;
                    text.label x="0" y=(fmt(y + 3.0)) { (clip(row, 14)) }
                    @for r in runs.iter().filter(|r| r.schedule == *row) {
                        g {
                            title { (r.schedule) " · " (r.at.with_timezone(&Local).format("%a %d %b %H:%M")) " · " (r.outcome) }
                            circle class={ "run " (tone(&r.outcome)) } cx=(fmt(x_of(r.at))) cy=(fmt(y)) r="4" {}
                        }
                    }
                }
            }
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A coordinate with at most one decimal.
fn fmt(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}
