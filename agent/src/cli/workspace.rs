//! `deskhand tasks list|add|done|move` and `deskhand memory add|show`: TASKS.md and MEMORY.md
//! from the command line, through the same workspace API jobs use (a hand edit made at the same
//! time is never lost).

use crate::cli::safe_text::print_json;
use crate::{out, outln};
use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};
use deskhand_workspace::memory::Memory;
use deskhand_workspace::tasks::{self, TaskList};
use deskhand_workspace::Workspace;

/// `deskhand tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    cmd: TasksCmd,
}

#[derive(Debug, Subcommand)]
enum TasksCmd {
    /// List tasks (open ones unless --all).
    List {
        /// Include done tasks.
        #[arg(long)]
        all: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add a task (text may hold due:YYYY-MM-DD, #tags and @owner).
    Add {
        /// The task.
        text: String,
        /// Section (heading) to add it under.
        #[arg(long, default_value = "Inbox")]
        section: String,
    },
    /// Mark a task done (by title, a unique part of it, or #N from `tasks list`).
    Done {
        /// Which task.
        task: String,
    },
    /// Move a task to another section.
    Move {
        /// Which task.
        task: String,
        /// Target section.
        section: String,
    },
}

/// `deskhand memory`.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    #[command(subcommand)]
    cmd: MemoryCmd,
}

#[derive(Debug, Subcommand)]
enum MemoryCmd {
    /// Remember something, under a section (People, Clients, Preferences, ...).
    Add {
        /// Section.
        section: String,
        /// The entry, e.g. "Grace Hopper <grace@navy.example> — compiler team lead".
        text: String,
    },
    /// Print MEMORY.md (or one section).
    Show {
        /// Only this section.
        section: Option<String>,
    },
}

/// Run `deskhand tasks ...`.
pub fn tasks(args: TasksArgs, workspace: &Path) -> anyhow::Result<()> {
    let ws = Workspace::new(workspace);
    match args.cmd {
        TasksCmd::List { all, json } => {
            let text = ws
                .read("TASKS.md")?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let list = TaskList::parse(&text);
            let today = chrono::Local::now().date_naive();
            let shown: Vec<(usize, &tasks::Task)> = list
                .tasks()
                .iter()
                .enumerate()
                .filter(|(_, t)| all || !t.done)
                .collect();
            if json {
                let v: Vec<_> = shown.iter().map(|(_, t)| t).collect();
                print_json(&v, true)?;
                return Ok(());
            }
            if list.tasks().is_empty() {
                outln!("No tasks in {}. Add one: deskhand tasks add \"Write the report due:2026-12-01\"", workspace.join("TASKS.md").display())?;
            }
            for (i, t) in shown {
                outln!(
                    "#{:<3} [{}] {}{}{}  ({})",
                    i + 1,
                    if t.done { "x" } else { " " },
                    t.title,
                    t.due
                        .map(|d| {
                            if d < today && !t.done {
                                format!("  due {d} — overdue")
                            } else {
                                format!("  due {d}")
                            }
                        })
                        .unwrap_or_default(),
                    t.owner
                        .as_ref()
                        .map(|o| format!("  @{o}"))
                        .unwrap_or_default(),
                    if t.section.is_empty() {
                        "-"
                    } else {
                        &t.section
                    }
                )?;
            }
        }
        TasksCmd::Add { text, section } => {
            tasks::edit_tasks(&ws, |list: &mut TaskList| {
                list.add(&section, &text).map(|_| ())
            })?;
            outln!("added to {section}: {text}")?;
        }
        TasksCmd::Done { task } => {
            let mut title = String::new();
            tasks::edit_tasks(&ws, |list: &mut TaskList| {
                let t = list.find(&task)?.clone();
                title = t.title.clone();
                list.complete(t.line, chrono::Local::now().date_naive())
                    .map(|_| ())
            })?;
            outln!("done: {title}")?;
        }
        TasksCmd::Move { task, section } => {
            let mut title = String::new();
            tasks::edit_tasks(&ws, |list: &mut TaskList| {
                let t = list.find(&task)?.clone();
                title = t.title.clone();
                list.move_to(t.line, &section).map(|_| ())
            })?;
            outln!("moved to {section}: {title}")?;
        }
    }
    Ok(())
}

/// Run `deskhand memory ...`.
pub fn memory(args: MemoryArgs, workspace: &Path) -> anyhow::Result<()> {
    let ws = Workspace::new(workspace);
    match args.cmd {
        MemoryCmd::Add { section, text } => {
            ws.edit("MEMORY.md", 5, |cur: Option<&str>| {
                let mut m = Memory::parse(cur.unwrap_or("# Memory\n"));
                m.add(&section, &text)?;
                Ok(Some(m.to_string()))
            })
            .context("updating MEMORY.md")?;
            outln!("remembered under {section}: {text}")?;
        }
        MemoryCmd::Show { section } => {
            let text = ws
                .read("MEMORY.md")?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match section {
                None if text.is_empty() => outln!("MEMORY.md is empty. Add: deskhand memory add People \"Grace Hopper <grace@navy.example> — compiler lead\"")?,
                None => out!("{text}")?,
                Some(s) => {
                    let m = Memory::parse(&text);
                    for e in m.entries(&s) {
                        outln!("- {e}")?;
                    }
                }
            }
        }
    }
    Ok(())
}
