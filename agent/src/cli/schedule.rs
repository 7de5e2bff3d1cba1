//! `deskhand schedule add|list|pause|resume|remove|runs`: the person's side of the schedule
//! ledger. The running agent picks changes up on its next check.

use crate::cli::safe_text::print_json;
use crate::outln;
use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};
use deskhand_schedule::{Ledger, Missed, NewSchedule};

use crate::skills::Skills;

/// `deskhand schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    cmd: ScheduleCmd,
}

#[derive(Debug, Subcommand)]
enum ScheduleCmd {
    /// Run SKILL on CRON (five fields, or @daily/@hourly/...), in a time zone.
    Add {
        /// e.g. '0 8 * * 1-5' or @daily.
        cron: String,
        /// Skill name or trigger.
        skill: String,
        /// Parameters, `k=v`.
        #[arg(long = "param", short = 'p', value_name = "K=V")]
        params: Vec<String>,
        /// IANA time zone (default the machine's).
        #[arg(long)]
        tz: Option<String>,
        /// After sleep or downtime: run-once (default) or skip.
        #[arg(long, default_value = "run-once")]
        missed: String,
    },
    /// List schedules with their next and last runs.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop running a schedule (it keeps its history).
    Pause {
        /// Schedule id (or a unique prefix).
        id: String,
    },
    /// Run a paused schedule again, from its next slot after now (no burst of missed ones).
    Resume {
        /// Schedule id (or a unique prefix).
        id: String,
    },
    /// Delete a schedule.
    Remove {
        /// Schedule id (or a unique prefix).
        id: String,
    },
    /// Each run: when it was due, its job and its outcome.
    Runs {
        /// Only this schedule.
        id: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Run `deskhand schedule ...`.
pub fn run(args: ScheduleArgs, workspace: &Path) -> anyhow::Result<()> {
    let ledger = Ledger::open(crate::scheduler::ledger_path(workspace))
        .context("opening the schedule ledger")?;
    match args.cmd {
        ScheduleCmd::Add {
            cron,
            skill,
            params,
            tz,
            missed,
        } => {
            let skills = Skills::load(workspace);
            let params = super::jobs::parse_params(&params)?;
            let (def, params) = skills.check(&skill, &params)?;
            let missed: Missed = missed.parse()?;
            let tz = tz
                .unwrap_or_else(|| iana_time_zone::get_timezone().unwrap_or_else(|_| "UTC".into()));
            let s = ledger.add(
                NewSchedule {
                    cron,
                    tz,
                    skill: def.name,
                    params,
                    missed,
                },
                Utc::now(),
            )?;
            outln!(
                "{}  {} ({}) → {}; next run {}",
                s.id,
                s.cron,
                s.tz,
                s.skill,
                s.next_due
                    .map(|t| local(t, &s.tz))
                    .unwrap_or_else(|| "never".into())
            )?;
        }
        ScheduleCmd::List { json } => {
            let list = ledger.list()?;
            if json {
                let with_runs: Vec<serde_json::Value> = list
                    .iter()
                    .map(|s| {
                        let mut v = serde_json::to_value(s).unwrap_or_default();
                        v["last_run"] = serde_json::to_value(ledger.last_run(&s.id).ok().flatten())
                            .unwrap_or_default();
                        v
                    })
                    .collect();
                print_json(&with_runs, true)?;
                return Ok(());
            }
            if list.is_empty() {
                outln!("No schedules. Add one: deskhand schedule add '0 8 * * 1-5' status-report")?;
            }
            for s in list {
                let last = ledger
                    .last_run(&s.id)?
                    .map(|r| format!("{} {}", local(r.due_at, &s.tz), r.outcome))
                    .unwrap_or_else(|| "never ran".into());
                outln!(
                    "{:<12} {:<16} {:<16} {:<14} next {:<22} last {}",
                    s.id,
                    s.cron,
                    s.tz,
                    s.skill,
                    if s.paused {
                        "paused".to_string()
                    } else {
                        s.next_due
                            .map(|t| local(t, &s.tz))
                            .unwrap_or_else(|| "-".into())
                    },
                    last
                )?;
            }
        }
        ScheduleCmd::Pause { id } => {
            let s = ledger.pause(&id)?;
            outln!("paused {}", s.id)?;
        }
        ScheduleCmd::Resume { id } => {
            let s = ledger.resume(&id, Utc::now())?;
            outln!(
                "resumed {}; next run {}",
                s.id,
                s.next_due
                    .map(|t| local(t, &s.tz))
                    .unwrap_or_else(|| "never".into())
            )?;
        }
        ScheduleCmd::Remove { id } => {
            let s = ledger.remove(&id)?;
            outln!("removed {}", s.id)?;
        }
        ScheduleCmd::Runs { id, limit, json } => {
            let sid = match id {
                Some(i) => Some(ledger.get(&i)?.id),
                None => None,
            };
            let runs = ledger.runs(sid.as_deref(), limit)?;
            if json {
                print_json(&runs, true)?;
                return Ok(());
            }
            for r in runs {
                outln!(
                    "{:<12} due {:<26} job {:<27} {}{}",
                    r.schedule_id,
                    r.due_at.to_rfc3339(),
                    r.job_id.as_deref().unwrap_or("-"),
                    r.outcome,
                    if r.missed > 0 {
                        format!(" ({} missed slot(s) collapsed)", r.missed)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
    }
    Ok(())
}

fn local(t: chrono::DateTime<Utc>, tz: &str) -> String {
    match tz.parse::<chrono_tz::Tz>() {
        Ok(z) => t
            .with_timezone(&z)
            .format("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => t.to_rfc3339(),
    }
}
