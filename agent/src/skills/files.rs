//! The workspace actions: read a file, write one, add a task to TASKS.md, remember a line in
//! MEMORY.md. Every one goes through the guard's file doors (the skill's globs, `.deskhand/`
//! never, overwrite asks, journaled for undo, audited); TASKS.md and MEMORY.md are edited line
//! by line, re-applied on the person's newer text, so their own edits are kept.

use deskhand_workspace::memory::edit_memory;
use deskhand_workspace::tasks::edit_tasks;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::{Line, Text};
use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};

/// `file.read`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadArgs {
    /// The file, relative to the workspace (e.g. reports/leads.csv, TASKS.md).
    path: Line,
}

/// A file's text.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadOut {
    /// The file read.
    path: String,
    /// Its size in bytes.
    bytes: usize,
    /// Its text (invalid UTF-8 replaced).
    text: String,
}

/// `file.read`: a workspace file the skill may read (its read or workspace globs).
pub(super) async fn read(g: Guard, a: ReadArgs, _: StepCtx) -> Result<ReadOut, StepError> {
    let bytes = g.read_file(a.path.as_str())?;
    Ok(ReadOut {
        path: a.path.0,
        bytes: bytes.len(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `file.write`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WriteArgs {
    /// The file, relative to the workspace (e.g. reports/summary.md).
    path: Line,
    /// Its whole new text.
    text: Text,
}

/// A file written.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WriteOut {
    /// The file written.
    path: String,
    /// Its size in bytes.
    bytes: usize,
}

/// `file.write`: write a workspace file (replacing one the job did not write asks first).
pub(super) async fn write(g: Guard, a: WriteArgs, _: StepCtx) -> Result<WriteOut, StepError> {
    let bytes = a.text.0.into_bytes();
    let n = bytes.len();
    g.write_file(a.path.as_str(), bytes).await?;
    Ok(WriteOut {
        path: a.path.0,
        bytes: n,
    })
}

/// `tasks.add`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskArgs {
    /// The task, e.g. "Send Grace the Q3 numbers due:2026-12-04 @grace #work".
    text: Line,
    /// The TASKS.md section to add it under (created if missing).
    #[serde(default = "inbox")]
    section: Line,
}

fn inbox() -> Line {
    Line::from("Inbox")
}

/// A task added.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TaskOut {
    /// The section.
    section: String,
    /// The task's text.
    text: String,
}

/// `tasks.add`: add a task to TASKS.md, keeping every other line as it is.
pub(super) async fn add_task(g: Guard, a: TaskArgs, _: StepCtx) -> Result<TaskOut, StepError> {
    let (section, text) = (a.section.0, a.text.0);
    let (s, t) = (section.clone(), text.clone());
    g.edit_file("TASKS.md", move |ws| {
        edit_tasks(ws, |list| list.add(&s, &t).map(|_| ()))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(TaskOut { section, text })
}

/// `memory.add`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MemoryArgs {
    /// The MEMORY.md section, e.g. People, Preferences.
    section: Line,
    /// What to remember, one line.
    text: Line,
}

/// `memory.add`: remember one line in MEMORY.md (read by every planned job).
pub(super) async fn remember(g: Guard, a: MemoryArgs, _: StepCtx) -> Result<TaskOut, StepError> {
    let (section, text) = (a.section.0, a.text.0);
    let (s, t) = (section.clone(), text.clone());
    g.edit_file("MEMORY.md", move |ws| {
        edit_memory(ws, |m| m.add(&s, &t).map(|_| ()))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(TaskOut { section, text })
}
