//! The one error type of this crate: each message says what happened and what to do.

use std::path::PathBuf;

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
        path: PathBuf,
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
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
