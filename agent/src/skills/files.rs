//! The workspace actions: list, search and read files, write one, edit one in place, add a task
//! to TASKS.md, remember a line in MEMORY.md. Every one goes through the guard's file doors (the
//! skill's globs, `.deskhand/` never, overwrite asks, journaled for undo, audited); edits are
//! re-applied on the person's newer text, so their own edits are kept.

use deskhand_workspace::memory::edit_memory;
use deskhand_workspace::tasks::edit_tasks;
use deskhand_workspace::{TaskList, WorkspaceError};
use globset::GlobMatcher;
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

/// `tasks.move`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MoveTaskArgs {
    /// The task's 0-based line in TASKS.md when it was read.
    line: usize,
    /// The task's text after its checkbox, as read (it must still be there).
    text: Line,
    /// The section to move it to (created at the end of the file if missing).
    section: Line,
}

/// A task moved or ticked.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TaskLineOut {
    /// The task's 0-based line in TASKS.md afterwards.
    line: usize,
    /// Its section afterwards.
    section: String,
    /// Whether its box is ticked.
    done: bool,
}

/// `tasks.move`: move one task line, verbatim, to the end of another section's tasks; every
/// other line stays as it is.
pub(super) async fn move_task(
    g: Guard,
    a: MoveTaskArgs,
    _: StepCtx,
) -> Result<TaskLineOut, StepError> {
    let (text, section) = (a.text.0, a.section.0);
    task_edit(g, a.line, text, move |list, at| {
        let current = list
            .tasks()
            .iter()
            .find(|t| t.line == at)
            .map(|t| t.section.clone());
        if current.as_deref() == Some(section.trim()) {
            return Ok(at);
        }
        list.move_to(at, &section)
    })
    .await
}

/// `tasks.done`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DoneTaskArgs {
    /// The task's 0-based line in TASKS.md when it was read.
    line: usize,
    /// The task's text after its checkbox, as read (it must still be there).
    text: Line,
    /// Tick (true) or untick (false).
    #[serde(default = "yes")]
    done: bool,
}

fn yes() -> bool {
    true
}

/// `tasks.done`: tick a task (in a file kept in the productivity style, struck through with
/// today's date and moved under Done, as that style does) or untick it.
pub(super) async fn done_task(
    g: Guard,
    a: DoneTaskArgs,
    _: StepCtx,
) -> Result<TaskLineOut, StepError> {
    let done = a.done;
    task_edit(g, a.line, a.text.0, move |list, at| {
        if done {
            list.complete(at, chrono::Local::now().date_naive())
        } else {
            list.set_done(at, false).map(|()| at)
        }
    })
    .await
}

/// Finds the task a caller saw (by line, else by its unique text) in a fresh read of TASKS.md,
/// applies `f` through the guard's edit door, and says where the task is afterwards.
async fn task_edit(
    g: Guard,
    line: usize,
    text: String,
    f: impl Fn(&mut TaskList, usize) -> Result<usize, WorkspaceError> + Send + Sync + 'static,
) -> Result<TaskLineOut, StepError> {
    let now = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let at = std::sync::Arc::clone(&now);
    let list = g
        .edit_file("TASKS.md", move |ws| {
            edit_tasks(ws, |list| {
                let line = list.locate(line, &text)?;
                *at.lock().unwrap_or_else(|p| p.into_inner()) = f(list, line)?;
                Ok(())
            })
            .map_err(|e| e.to_string())
        })
        .await?;
    let line = *now.lock().unwrap_or_else(|p| p.into_inner());
    let task = list.tasks().iter().find(|t| t.line == line);
    Ok(TaskLineOut {
        line,
        section: task.map(|t| t.section.clone()).unwrap_or_default(),
        done: task.is_some_and(|t| t.done),
    })
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

/// The most files `file.list` names.
const MAX_LISTED: usize = 500;
/// The most workspace entries a listing or a search walks.
const MAX_VISITED: usize = 20_000;
/// The most lines `file.search` returns.
const MAX_MATCHES: usize = 100;
/// The longest matching line returned, in characters.
const MAX_LINE: usize = 240;

/// Where a listing or a search looks: the folder to walk and, for a glob, what must match.
fn scope(g: &Guard, pattern: Option<&Line>) -> Result<(String, Option<GlobMatcher>), StepError> {
    let p = pattern.map_or("", |p| p.as_str()).trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    if p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(g.refuse(
            "file list",
            p,
            "patterns are relative to the workspace, without `..`",
        ));
    }
    if p.is_empty() || p == "." || p == "**" || p == "**/*" {
        return Ok((String::new(), None));
    }
    if !p.contains(['*', '?', '[', '{']) {
        return Ok((p.trim_end_matches('/').to_string(), None));
    }
    // Walk only below the glob's literal folders (`reports/2026/*.csv` walks reports/2026/).
    let base: Vec<&str> = p
        .split('/')
        .take_while(|c| !c.contains(['*', '?', '[', '{']))
        .collect();
    let glob = globset::GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .map_err(|e| StepError::Invalid(format!("{p:?} is not a glob: {e}")))?;
    Ok((base.join("/"), Some(glob.compile_matcher())))
}

/// `file.list`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    /// A folder (reports) or a glob relative to the workspace (reports/**/*.csv; `*` stays in
    /// one folder, `**` crosses folders); the whole workspace when not given.
    #[serde(default)]
    pattern: Option<Line>,
}

/// A file listed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    /// Relative to the workspace.
    path: String,
    /// Its size in bytes.
    bytes: u64,
}

/// The files found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOut {
    /// The files this job may read, by path.
    files: Vec<Listed>,
    /// Files that matched but this job may not read (not named).
    not_readable: usize,
    /// True when there are more than are listed: narrow the pattern.
    truncated: bool,
}

/// `file.list`: the workspace files under a folder or matching a glob that the job may read.
pub(super) async fn list(g: Guard, a: ListArgs, _: StepCtx) -> Result<ListOut, StepError> {
    let (base, glob) = scope(&g, a.pattern.as_ref())?;
    let found = g
        .readable_files(&base, MAX_VISITED, |rel| {
            glob.as_ref().is_none_or(|m| m.is_match(rel))
        })
        .await?;
    let truncated = !found.complete || found.files.len() > MAX_LISTED;
    Ok(ListOut {
        files: found
            .files
            .into_iter()
            .take(MAX_LISTED)
            .map(|f| Listed {
                path: f.rel,
                bytes: f.bytes,
            })
            .collect(),
        not_readable: found.hidden,
        truncated,
    })
}

/// `file.search`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// What to find in each line: a regular expression (Rust syntax: `budget|invoice`,
    /// `due:2026-12-\d+`), or plain text with `literal: true`.
    query: Line,
    /// Take the query as plain text, not as a regular expression.
    #[serde(default)]
    literal: bool,
    /// Ignore the difference between upper and lower case.
    #[serde(default)]
    ignore_case: bool,
    /// Where to look: a folder or a glob, as for file.list; every file the job may read when
    /// not given.
    #[serde(default)]
    pattern: Option<Line>,
}

/// One matching line.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Found {
    /// The file.
    path: String,
    /// The line's number, from 1.
    line: usize,
    /// The line (cut when long).
    text: String,
}

/// What a search found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOut {
    /// The matching lines, by file.
    matches: Vec<Found>,
    /// How many files were searched (text files the job may read, up to 1 MiB each).
    files_searched: usize,
    /// True when the search stopped at its limit: narrow the query or the pattern.
    truncated: bool,
}

/// `file.search`: the lines matching a regular expression (or text) in the files the job may
/// read. Rust's regex engine runs in linear time, so no query can hang the job.
pub(super) async fn search(g: Guard, a: SearchArgs, _: StepCtx) -> Result<SearchOut, StepError> {
    if a.query.as_str().is_empty() {
        return Err(StepError::Invalid(
            "the query is empty; say what to find".into(),
        ));
    }
    let pattern = if a.literal {
        regex::escape(a.query.as_str())
    } else {
        a.query.0.clone()
    };
    let re = regex::RegexBuilder::new(&pattern)
        .case_insensitive(a.ignore_case)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            StepError::Invalid(format!(
                "the query is not a regular expression ({e}); pass literal: true to find it as text"
            ))
        })?;
    let (base, glob) = scope(&g, a.pattern.as_ref())?;
    let found = g
        .readable_files(&base, MAX_VISITED, |rel| {
            glob.as_ref().is_none_or(|m| m.is_match(rel))
        })
        .await?;
    let paths: Vec<String> = found
        .files
        .into_iter()
        .filter(|f| f.bytes <= crate::guard::MAX_NAMED_READ)
        .map(|f| f.rel)
        .collect();
    let mut truncated = !found.complete;
    let mut matches = Vec::new();
    let searched = tokio::task::spawn_blocking(move || {
        let n = g.read_each(
            &paths,
            crate::guard::MAX_NAMED_READ,
            "file.search",
            |rel, bytes| {
                // Binary files (a NUL early on) are not text to search.
                if bytes.iter().take(8192).any(|&b| b == 0) {
                    return true;
                }
                for (i, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
                    if !re.is_match(line) {
                        continue;
                    }
                    if matches.len() == MAX_MATCHES {
                        truncated = true;
                        return false;
                    }
                    let mut text: String = line.chars().take(MAX_LINE).collect();
                    if text.len() < line.len() {
                        text.push('…');
                    }
                    matches.push(Found {
                        path: rel.to_string(),
                        line: i + 1,
                        text,
                    });
                }
                true
            },
        );
        (n, matches, truncated)
    })
    .await?;
    let (files_searched, matches, truncated) = searched;
    Ok(SearchOut {
        matches,
        files_searched,
        truncated,
    })
}

/// `file.edit`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EditArgs {
    /// The file, relative to the workspace (e.g. reports/summary.md).
    path: Line,
    /// The exact text to replace. It must occur exactly once in the file: include enough of
    /// the surrounding lines to make it unique.
    old: Text,
    /// The text to put in its place.
    new: Text,
}

/// The text of `text` with the one occurrence of `old` replaced by `new`; an error that says
/// how to fix the call when `old` is missing or not unique.
fn replace_once(path: &str, text: &str, old: &str, new: &str) -> Result<String, String> {
    match text.matches(old).count() {
        1 => Ok(text.replacen(old, new, 1)),
        0 => Err(format!(
            "the text to replace is not in {path}; read the file and copy the text exactly"
        )),
        n => Err(format!(
            "the text to replace occurs {n} times in {path}; include more of the surrounding \
             text so it occurs once"
        )),
    }
}

/// `file.edit`: replace an exact, unique piece of text in a workspace file (in the job's
/// globs; changing a file the job did not write asks first, with the diff). Undoable.
pub(super) async fn edit(g: Guard, a: EditArgs, _: StepCtx) -> Result<WriteOut, StepError> {
    let (old, new) = (a.old.0, a.new.0);
    if old.is_empty() {
        return Err(StepError::Invalid(
            "the text to replace is empty; use file.write to write a whole file".into(),
        ));
    }
    if old == new {
        return Err(StepError::Invalid(
            "the old and new text are the same; nothing would change".into(),
        ));
    }
    let path = a.path.0;
    let shown = path.clone();
    let changed = g
        .change_file(&path, move |text| replace_once(&shown, text, &old, &new))
        .await?;
    Ok(WriteOut {
        path: changed.path,
        bytes: changed.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_replaces_exactly_one_occurrence_or_says_how_to_fix_the_call() {
        let text = "# Plan\n\n- budget: 10\n- travel: 10\n";
        assert_eq!(
            replace_once("p.md", text, "budget: 10", "budget: 12").unwrap(),
            "# Plan\n\n- budget: 12\n- travel: 10\n"
        );
        let e = replace_once("p.md", text, ": 10", ": 11").unwrap_err();
        assert!(
            e.contains("occurs 2 times") && e.contains("surrounding"),
            "{e}"
        );
        let e = replace_once("p.md", text, "rent", "x").unwrap_err();
        assert!(e.contains("not in p.md"), "{e}");
    }
}

/// `file.move`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MoveArgs {
    /// The file, relative to the workspace.
    from: Line,
    /// Its new path (a new name in the same folder renames it); must not exist.
    to: Line,
}

/// A file moved.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MoveOut {
    /// Where it was.
    from: String,
    /// Where it is now.
    to: String,
}

/// `file.move`: move or rename a workspace file (never over another; undoable).
pub(super) async fn move_file(g: Guard, a: MoveArgs, _: StepCtx) -> Result<MoveOut, StepError> {
    let to = g.move_path(a.from.as_str(), a.to.as_str()).await?;
    Ok(MoveOut { from: a.from.0, to })
}

/// `file.delete`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteArgs {
    /// The file, relative to the workspace.
    path: Line,
}

/// A file put in the trash.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOut {
    /// The file.
    path: String,
    /// Where it is kept until undone (in the agent's folder).
    trash: String,
}

/// `file.delete`: move a workspace file into the trash (`deskhand undo` brings it back).
pub(super) async fn delete(g: Guard, a: DeleteArgs, _: StepCtx) -> Result<DeleteOut, StepError> {
    let trash = g.trash(a.path.as_str()).await?;
    Ok(DeleteOut {
        path: a.path.0,
        trash,
    })
}
