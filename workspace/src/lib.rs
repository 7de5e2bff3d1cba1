//! Deskhand workspace: the person's own folder (by default `~/Deskhand`) and everything in
//! it except the agent's private `.deskhand/` state. It owns the single write path into that
//! folder, the hand-editable TASKS.md and MEMORY.md, report files and dashboard.html.
//!
//! [`Workspace`] is the only way in: it resolves workspace-relative paths (refusing escapes
//! and the private folder) and writes atomically. [`TaskList`] and [`Memory`] parse their
//! Markdown files line by line, so unedited lines are written back byte for byte;
//! [`edit_tasks`] and [`edit_memory`] run an edit through [`Workspace::edit`], which re-applies
//! it if the person saved the file meanwhile. Reports turn [`Table`]s into xlsx, CSV,
//! Markdown or JSON bytes, and [`render`] turns a [`Dashboard`] into one static HTML page;
//! callers save both with [`Workspace::write`].
//!
//! ```
//! use deskhand_workspace::TaskList;
//!
//! let text = "# Tasks\n\n## Inbox\n- [ ] Call the bank due:2025-03-01 #money\n*  [ ]  Water plants\n";
//! let mut tasks = TaskList::parse(text);
//! assert_eq!(tasks.to_string(), text);
//!
//! let task = tasks.find("water")?;
//! assert_eq!((task.section.as_str(), task.title.as_str()), ("Inbox", "Water plants"));
//! tasks.set_done(task.line, true)?;
//!
//! let before: Vec<&str> = text.lines().collect();
//! let edited = tasks.to_string();
//! let after: Vec<&str> = edited.lines().collect();
//! let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
//! assert_eq!(changed, [4]);
//! assert_eq!(after[4], "*  [x]  Water plants");
//! # Ok::<(), deskhand_workspace::WorkspaceError>(())
//! ```

pub mod dashboard;
/// Fuzzing properties, shared by `fuzz/` and the corpus replay tests; not an API.
#[doc(hidden)]
pub mod fuzzing;
mod lines;
pub mod memory;
pub mod report;
pub mod tasks;
pub mod write;

pub use dashboard::{
    render, render_live, render_page, write_dashboard, ApprovalCard, ConnectionCard, Custom,
    Dashboard, JobCard, RunMark, ScheduleCard, DASHBOARD_FILE,
};
pub use memory::{edit_memory, read_memory, Memory, Person, MEMORY_FILE};
pub use report::{to_csv, to_json, to_markdown_table, to_xlsx, Cell, Table};
pub use tasks::{column, edit_tasks, read_tasks, Column, Task, TaskList, TASKS_FILE};
pub use write::{
    atomic_write, sha256_hex, FileInfo, Listing, Workspace, Written, DEFAULT_DIR_NAME, PRIVATE_DIR,
};

/// Everything a workspace operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// A workspace-relative path was refused before touching the disk.
    #[error("refused workspace path {rel:?}: {reason}; use a relative path inside the workspace")]
    Refused {
        /// The path as the caller gave it.
        rel: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The file's content differed from what the caller last read.
    #[error(
        "{rel} changed on disk while it was being edited (tried {attempts} time(s)); \
         re-read it and try again"
    )]
    Changed {
        /// The workspace-relative path.
        rel: String,
        /// Hash the caller expected (`None`: expected the file to be missing).
        expected: Option<String>,
        /// Hash found on disk (`None`: the file is missing).
        found: Option<String>,
        /// How many read-modify-write rounds were tried.
        attempts: u32,
    },
    /// Reading or writing a file failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", ...).
        action: &'static str,
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file expected to hold text is not UTF-8.
    #[error("{rel} is not UTF-8 text; save it as UTF-8 or move it aside")]
    NotText {
        /// The workspace-relative path.
        rel: String,
    },
    /// No task matched a query.
    #[error("no task matches {query:?}; use a title, part of one, or #N from the task list")]
    TaskNotFound {
        /// The query as given.
        query: String,
    },
    /// Several tasks matched a query.
    #[error("{query:?} matches several tasks ({}); use a longer title or #N", candidates.join("; "))]
    AmbiguousTask {
        /// The query as given.
        query: String,
        /// The matching tasks, as `#N title`.
        candidates: Vec<String>,
    },
    /// The task a caller saw (its line and text) is not in the file any more, or not once.
    #[error("the task {text:?} is no longer in TASKS.md as it was shown (changed, moved or removed since); reload and try again")]
    TaskChanged {
        /// The task's text as the caller saw it.
        text: String,
    },
    /// A line index did not point at a task (the file may have changed).
    #[error("line {} is not a task; find the task again and retry", line + 1)]
    NoTaskAtLine {
        /// The 0-based line index that was given.
        line: usize,
    },
    /// A required piece of text was empty.
    #[error("{what} must not be empty; give it some text")]
    Empty {
        /// What was empty ("task text", "section name", ...).
        what: &'static str,
    },
    /// A report could not be produced.
    #[error("could not produce the {format} report: {message}")]
    Report {
        /// The output format ("xlsx", "json").
        format: &'static str,
        /// What went wrong and what to do.
        message: String,
    },
}

impl WorkspaceError {
    /// Wraps an I/O error with the action and path it concerns.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
