//! TASKS.md: a Markdown task list the person edits by hand and the agent edits too.
//!
//! Tasks are GitHub-style checkbox items (`- [ ] text`, `* [x] text`, `1. [ ] text`,
//! indented for sub-tasks) grouped under `#`/`##` headings. Inside the text, `due:2025-03-31`,
//! `#tag` and `@owner` are picked out. Every other line is kept exactly as written, and
//! edits rewrite only the lines they concern, so the person's formatting survives.
//!
//! The productivity-plugin style is understood too: sections `Active`, `Waiting On`,
//! `Someday`, `Done`; open tasks as `- [ ] **Title** - context`, finished ones as
//! `- [x] ~~Title~~ (2026-12-03)`. In such a file, a new task is written bold, and finishing a
//! bold task writes it struck through with the day and moves it under `Done`.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::lines::{one_line, Doc, Kind, Line};
use crate::{Workspace, WorkspaceError};

/// The task file's name inside the workspace.
pub const TASKS_FILE: &str = "TASKS.md";

/// How many times [`edit_tasks`] re-reads and re-applies an edit when the file keeps changing.
pub const EDIT_ATTEMPTS: u32 = 5;

/// One task line of TASKS.md.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Task {
    /// 0-based index of its line in the file.
    pub line: usize,
    /// Text of the nearest heading above it, `""` if none.
    pub section: String,
    /// Whether the box is ticked (`[x]` or `[X]`).
    pub done: bool,
    /// Everything after the checkbox, trimmed.
    pub text: String,
    /// `text` without the due/tag/owner tokens, whitespace collapsed.
    pub title: String,
    /// From a `due:YYYY-MM-DD` token (the first valid one).
    pub due: Option<NaiveDate>,
    /// From `#tag` tokens, without the `#`, in order.
    pub tags: Vec<String>,
    /// From the first `@owner` token, without the `@`.
    pub owner: Option<String>,
    /// Leading whitespace width (a tab counts as four), for sub-tasks.
    pub indent: usize,
    /// What follows a bold title (`**Title** - context`), tokens removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The day of a struck-through finished task (`~~Title~~ (2026-12-03)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<NaiveDate>,
    /// Written in the productivity style (bold or struck-through title).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub styled: bool,
}

impl Task {
    /// Whether the task is open and its due date is before `today`.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        !self.done && self.due.is_some_and(|due| due < today)
    }
}

/// A Kanban column on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Column {
    /// Not started.
    Todo,
    /// In a "Doing"/"In progress"/"Active" section or tagged `#doing`.
    Doing,
    /// In a "Waiting on"/"Blocked" section or tagged `#waiting`.
    Waiting,
    /// Ticked.
    Done,
}

/// The Kanban column a task belongs in.
pub fn column(task: &Task) -> Column {
    let section = task.section.to_lowercase();
    let tagged = |tag: &str| task.tags.iter().any(|t| t.eq_ignore_ascii_case(tag));
    if task.done {
        Column::Done
    } else if section.contains("waiting") || section.contains("blocked") || tagged("waiting") {
        Column::Waiting
    } else if section.contains("doing")
        || section.contains("in progress")
        || section == "active"
        || tagged("doing")
    {
        Column::Doing
    } else {
        Column::Todo
    }
}

/// TASKS.md parsed, with every original line kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskList {
    doc: Doc,
    tasks: Vec<Task>,
}

impl TaskList {
    /// Parses any text; lines that are not tasks are kept as they are.
    pub fn parse(text: &str) -> Self {
        let mut list = Self {
            doc: Doc::parse(text),
            tasks: Vec::new(),
        };
        list.reindex();
        list
    }

    /// All tasks in file order.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Heading texts in file order.
    pub fn sections(&self) -> Vec<&str> {
        self.doc.headings().collect()
    }

    /// Tasks not yet done.
    pub fn open(&self) -> Vec<&Task> {
        self.tasks.iter().filter(|t| !t.done).collect()
    }

    /// Open tasks due before `today`.
    pub fn overdue(&self, today: NaiveDate) -> Vec<&Task> {
        self.tasks.iter().filter(|t| t.is_overdue(today)).collect()
    }

    /// Finds one task by `#N` (1-based position in [`tasks`](Self::tasks)), exact title
    /// (case-insensitive) or a substring of one title. When several match but only one
    /// of them is open, that one is meant.
    pub fn find(&self, query: &str) -> Result<&Task, WorkspaceError> {
        let query = query.trim();
        let not_found = || WorkspaceError::TaskNotFound {
            query: query.to_owned(),
        };
        if let Some(n) = query
            .strip_prefix('#')
            .and_then(|n| n.parse::<usize>().ok())
        {
            return n
                .checked_sub(1)
                .and_then(|i| self.tasks.get(i))
                .ok_or_else(not_found);
        }
        if query.is_empty() {
            return Err(not_found());
        }
        let needle = query.to_lowercase();
        let numbered = || self.tasks.iter().enumerate();
        let mut matches: Vec<_> = numbered()
            .filter(|(_, t)| t.title.to_lowercase() == needle)
            .collect();
        if matches.is_empty() {
            matches = numbered()
                .filter(|(_, t)| t.title.to_lowercase().contains(&needle))
                .collect();
        }
        if matches.len() > 1 {
            let open: Vec<_> = matches.iter().filter(|(_, t)| !t.done).copied().collect();
            if open.len() == 1 {
                matches = open;
            }
        }
        match matches.as_slice() {
            [] => Err(not_found()),
            [(_, task)] => Ok(task),
            many => Err(WorkspaceError::AmbiguousTask {
                query: query.to_owned(),
                candidates: many
                    .iter()
                    .map(|(i, t)| format!("#{} {}", i + 1, t.title))
                    .collect(),
            }),
        }
    }

    /// The line of the task a caller saw at `line` with `text`: that line if it still holds
    /// it, else the one task with that text (lines shift when the person edits above it).
    pub fn locate(&self, line: usize, text: &str) -> Result<usize, WorkspaceError> {
        if self.tasks.iter().any(|t| t.line == line && t.text == text) {
            return Ok(line);
        }
        let mut same = self.tasks.iter().filter(|t| t.text == text);
        match (same.next(), same.next()) {
            (Some(t), None) => Ok(t.line),
            _ => Err(WorkspaceError::TaskChanged {
                text: text.to_owned(),
            }),
        }
    }

    /// Ticks or unticks the task on `line`, changing only the character in the box.
    pub fn set_done(&mut self, line: usize, done: bool) -> Result<(), WorkspaceError> {
        let checkbox = self.checkbox_at(line)?;
        if checkbox.done != done {
            let at = checkbox.mark;
            self.doc.lines[line]
                .text
                .replace_range(at..at + 1, if done { "x" } else { " " });
            self.reindex();
        }
        Ok(())
    }

    /// Adds `- [ ] text` at the end of `section`'s tasks (creating `## section` at the
    /// end of the file if there is none) and returns its line. Line breaks in `text`
    /// become spaces.
    pub fn add(&mut self, section: &str, text: &str) -> Result<usize, WorkspaceError> {
        let text = one_line(text);
        if text.is_empty() {
            return Err(WorkspaceError::Empty { what: "task text" });
        }
        let line = if self.productivity_style() && !text.starts_with("**") {
            // `Title - context` becomes `**Title** - context`, as the file's other tasks read.
            match text.split_once(" - ") {
                Some((title, context)) => {
                    format!("- [ ] **{}** - {}", title.trim(), context.trim())
                }
                None => format!("- [ ] **{text}**"),
            }
        } else {
            format!("- [ ] {text}")
        };
        Ok(self.insert_task(section, line))
    }

    /// Whether the file is kept in the productivity-plugin style: it has an `Active` and a
    /// `Done` section, or a task written bold or struck through.
    pub fn productivity_style(&self) -> bool {
        let has = |name: &str| self.sections().iter().any(|s| s.eq_ignore_ascii_case(name));
        (has("Active") && has("Done")) || self.tasks.iter().any(|t| t.styled)
    }

    /// Finish the task on `line` on `today`: a task in the productivity style is rewritten
    /// `[x] ~~Title~~ (today)` (its indent and bullet kept) and moved under `Done` when the file
    /// has that section; any other task only has its box ticked. Returns its line afterwards.
    pub fn complete(&mut self, line: usize, today: NaiveDate) -> Result<usize, WorkspaceError> {
        let checkbox = self.checkbox_at(line)?;
        let Some(task) = self.tasks.iter().find(|t| t.line == line).cloned() else {
            return Err(WorkspaceError::NoTaskAtLine { line });
        };
        if !task.styled {
            self.set_done(line, true)?;
            return Ok(line);
        }
        let old = &self.doc.lines[line].text;
        let new = format!(
            "{}x] ~~{}~~ ({})",
            &old[..checkbox.mark],
            task.title,
            today.format("%Y-%m-%d")
        );
        self.doc.lines[line].text = new;
        self.reindex();
        let done = self
            .sections()
            .into_iter()
            .find(|s| s.eq_ignore_ascii_case("Done"))
            .map(str::to_owned);
        match done {
            Some(section) if !task.section.eq_ignore_ascii_case("Done") => {
                self.move_to(line, &section)
            }
            _ => Ok(line),
        }
    }

    /// Moves the task on `line` verbatim to the end of `section`'s tasks; returns its new line.
    pub fn move_to(&mut self, line: usize, section: &str) -> Result<usize, WorkspaceError> {
        self.checkbox_at(line)?;
        let Line { text, .. } = self.doc.remove(line);
        Ok(self.insert_task(section, text))
    }

    /// Deletes the task on `line`.
    pub fn remove(&mut self, line: usize) -> Result<(), WorkspaceError> {
        self.checkbox_at(line)?;
        self.doc.remove(line);
        self.reindex();
        Ok(())
    }

    /// Replaces the text after the checkbox of the task on `line`, keeping its bullet,
    /// indent and box. Line breaks in `text` become spaces.
    pub fn set_text(&mut self, line: usize, text: &str) -> Result<(), WorkspaceError> {
        let checkbox = self.checkbox_at(line)?;
        let text = one_line(text);
        if text.is_empty() {
            return Err(WorkspaceError::Empty { what: "task text" });
        }
        let old = &self.doc.lines[line].text;
        let tail = &old[checkbox.after_box..];
        let gap = &tail[..tail.len() - tail.trim_start_matches([' ', '\t']).len()];
        let gap = if gap.is_empty() { " " } else { gap };
        let new = format!("{}{gap}{text}", &old[..checkbox.after_box]);
        self.doc.lines[line].text = new;
        self.reindex();
        Ok(())
    }

    fn insert_task(&mut self, section: &str, text: String) -> usize {
        let section = one_line(section);
        let line = self.doc.add_to_section(&section, is_task_line, text);
        self.reindex();
        line
    }

    fn checkbox_at(&self, line: usize) -> Result<Checkbox, WorkspaceError> {
        match (self.doc.lines.get(line), self.doc.kinds.get(line)) {
            (Some(l), Some(Kind::Text)) => Checkbox::parse(&l.text),
            _ => None,
        }
        .ok_or(WorkspaceError::NoTaskAtLine { line })
    }

    fn reindex(&mut self) {
        let sections = self.doc.sections();
        self.tasks = self
            .doc
            .lines
            .iter()
            .zip(&self.doc.kinds)
            .enumerate()
            .filter(|(_, (_, kind))| **kind == Kind::Text)
            .filter_map(|(i, (line, _))| {
                let checkbox = Checkbox::parse(&line.text)?;
                let text = line.text[checkbox.after_box..].trim().to_owned();
                let style = Styled::parse(&text);
                let tokens = Tokens::parse(style.as_ref().map_or(&text, |s| &s.rest));
                let (title, context) = match &style {
                    Some(s) => (
                        s.title.clone(),
                        Some(tokens.title.trim_start_matches(['-', '—', '–', ':']).trim())
                            .filter(|c| !c.is_empty())
                            .map(String::from),
                    ),
                    None => (tokens.title, None),
                };
                Some(Task {
                    line: i,
                    section: sections[i].to_owned(),
                    done: checkbox.done,
                    title,
                    due: tokens.due,
                    tags: tokens.tags,
                    owner: tokens.owner,
                    text,
                    indent: checkbox.indent,
                    context,
                    completed: style.as_ref().and_then(|s| s.completed),
                    styled: style.is_some(),
                })
            })
            .collect();
    }
}

impl fmt::Display for TaskList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.doc.fmt(f)
    }
}

/// Reads TASKS.md from the workspace; a missing file is an empty list.
pub fn read_tasks(ws: &Workspace) -> Result<TaskList, WorkspaceError> {
    match ws.read(TASKS_FILE)? {
        Some(bytes) => String::from_utf8(bytes)
            .map(|text| TaskList::parse(&text))
            .map_err(|_| WorkspaceError::NotText {
                rel: TASKS_FILE.to_owned(),
            }),
        None => Ok(TaskList::default()),
    }
}

/// Applies `f` to a fresh parse of TASKS.md and writes the result, re-applying it if the
/// person saved the file in the meantime so their edit is kept. `f` may run more than
/// once. Returns the list now on disk; nothing is written if `f` changed nothing.
pub fn edit_tasks(
    ws: &Workspace,
    mut f: impl FnMut(&mut TaskList) -> Result<(), WorkspaceError>,
) -> Result<TaskList, WorkspaceError> {
    let text = ws.edit(TASKS_FILE, EDIT_ATTEMPTS, |current| {
        let current = current.unwrap_or("");
        let mut list = TaskList::parse(current);
        f(&mut list)?;
        let updated = list.to_string();
        Ok((updated != current).then_some(updated))
    })?;
    Ok(TaskList::parse(text.as_deref().unwrap_or("")))
}

fn is_task_line(line: &Line, kind: &Kind) -> bool {
    *kind == Kind::Text && Checkbox::parse(&line.text).is_some()
}

/// Where the parts of a task line are, as byte offsets into the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkbox {
    indent: usize,
    done: bool,
    /// The character inside `[ ]`.
    mark: usize,
    /// Just after the closing `]`.
    after_box: usize,
}

impl Checkbox {
    /// Recognises `<indent><bullet><space>[<mark>]` followed by whitespace or the end,
    /// where bullet is `-`, `*`, `+` or `1.`/`1)` and mark is space, `x` or `X`.
    fn parse(line: &str) -> Option<Self> {
        let body = line.trim_start_matches([' ', '\t']);
        let indent = line[..line.len() - body.len()]
            .chars()
            .map(|c| if c == '\t' { 4 } else { 1 })
            .sum();
        let after_bullet = strip_bullet(body)?;
        let rest = after_bullet.trim_start_matches([' ', '\t']);
        if rest.len() == after_bullet.len() {
            return None;
        }
        let done = match rest.as_bytes() {
            [b'[', b' ', b']', ..] => false,
            [b'[', b'x' | b'X', b']', ..] => true,
            _ => return None,
        };
        // The three bytes are ASCII, so slicing after them stays on a char boundary.
        let tail = &rest[3..];
        if !(tail.is_empty() || tail.starts_with([' ', '\t'])) {
            return None;
        }
        let start = line.len() - rest.len();
        Some(Self {
            indent,
            done,
            mark: start + 1,
            after_box: start + 3,
        })
    }
}

fn strip_bullet(body: &str) -> Option<&str> {
    if let Some(rest) = body.strip_prefix(['-', '*', '+']) {
        return Some(rest);
    }
    let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if (1..=9).contains(&digits) {
        return body[digits..].strip_prefix(['.', ')']);
    }
    None
}

/// A task text in the productivity style: `**Title** rest` or `~~Title~~ (YYYY-MM-DD) rest`.
struct Styled {
    title: String,
    completed: Option<NaiveDate>,
    rest: String,
}

impl Styled {
    fn parse(text: &str) -> Option<Styled> {
        for mark in ["**", "~~"] {
            let Some(inner) = text.strip_prefix(mark) else {
                continue;
            };
            let end = inner.find(mark)?;
            let title = inner[..end].trim();
            if title.is_empty() {
                return None;
            }
            let mut rest = inner[end + mark.len()..].trim_start();
            let mut completed = None;
            if let Some(day) = rest
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .and_then(|(d, after)| {
                    NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                        .ok()
                        .map(|d| (d, after))
                })
            {
                completed = Some(day.0);
                rest = day.1.trim_start();
            }
            return Some(Styled {
                title: title.to_string(),
                completed,
                rest: rest.to_string(),
            });
        }
        None
    }
}

/// The tokens picked out of a task's text.
#[derive(Debug, Default)]
struct Tokens {
    title: String,
    due: Option<NaiveDate>,
    tags: Vec<String>,
    owner: Option<String>,
}

impl Tokens {
    fn parse(text: &str) -> Self {
        let mut tokens = Self::default();
        let mut words = Vec::new();
        for word in text.split_whitespace() {
            if let Some(date) = word
                .strip_prefix("due:")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            {
                tokens.due.get_or_insert(date);
            } else if let Some(tag) = word.strip_prefix('#').filter(|t| is_tag(t)) {
                tokens.tags.push(tag.to_owned());
            } else if let Some(owner) = word.strip_prefix('@').filter(|o| is_owner(o)) {
                tokens.owner.get_or_insert_with(|| owner.to_owned());
            } else {
                words.push(word);
            }
        }
        tokens.title = words.join(" ");
        tokens
    }
}

/// `#urgent`, `#client-x`, `#area/home`; not `#42` (an issue number) or `#` alone.
fn is_tag(tag: &str) -> bool {
    tag.chars().any(char::is_alphabetic)
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '/'))
}

/// `@ada`, `@ada.l`, `@ada_l`; a trailing full stop is prose, not part of a name.
fn is_owner(owner: &str) -> bool {
    owner.chars().next().is_some_and(char::is_alphanumeric)
        && !owner.ends_with('.')
        && owner
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_follows_a_task_whose_line_moved_and_refuses_one_that_changed() {
        let list = TaskList::parse("## A\n- [ ] one\n- [ ] two\n- [ ] two\n");
        assert_eq!(list.locate(1, "one").unwrap(), 1);
        // The person added a line above: the task is found by its text.
        assert_eq!(list.locate(0, "one").unwrap(), 1);
        assert!(matches!(
            list.locate(1, "uno"),
            Err(WorkspaceError::TaskChanged { .. })
        ));
        // Two tasks read "two": only the line shown decides.
        assert_eq!(list.locate(3, "two").unwrap(), 3);
        assert!(matches!(
            list.locate(0, "two"),
            Err(WorkspaceError::TaskChanged { .. })
        ));
    }

    const FIXTURE: &str = "# Tasks  \r\n\
        \r\n\
        Some prose with a - [ ] fake box.\r\n\
        \r\n\
        ## Inbox\r\n\
        - [ ] Call Zoë about the Q3 report   due:2025-03-01 #client @ana\r\n\
        *   [X]\tFile taxes #home\r\n\
        \t- [ ] sub-task with tab indent\r\n\
        - [x]no-space is not a task\r\n\
        -[ ] neither is this\r\n\
        - plain bullet\r\n\
        \r\n\
        ```md\r\n\
        - [ ] inside a fence\r\n\
        ```\r\n\
        ## Doing\n\
        1. [ ] Draft newsletter #42 due:2025-02-30\n\
        - [ ]\n\
        \n\
        ##   Done ##\n\
        - [x] Ship v1 🚀";

    fn ids(list: &TaskList) -> Vec<(usize, &str)> {
        list.tasks()
            .iter()
            .map(|t| (t.line, t.title.as_str()))
            .collect()
    }

    #[test]
    fn unedited_parse_round_trips_byte_for_byte() {
        assert_eq!(TaskList::parse(FIXTURE).to_string(), FIXTURE);
        for odd in ["", "\n", "- [ ] a", "\r\n\r\n", "```\n- [ ] x"] {
            assert_eq!(TaskList::parse(odd).to_string(), odd);
        }
    }

    #[test]
    fn parses_tasks_tokens_and_sections() {
        let list = TaskList::parse(FIXTURE);
        assert_eq!(
            ids(&list),
            [
                (5, "Call Zoë about the Q3 report"),
                (6, "File taxes"),
                (7, "sub-task with tab indent"),
                (16, "Draft newsletter #42 due:2025-02-30"),
                (17, ""),
                (20, "Ship v1 🚀"),
            ]
        );
        let call = &list.tasks()[0];
        assert_eq!(call.section, "Inbox");
        assert!(!call.done);
        assert_eq!(
            call.text,
            "Call Zoë about the Q3 report   due:2025-03-01 #client @ana"
        );
        assert_eq!(call.due, NaiveDate::from_ymd_opt(2025, 3, 1));
        assert_eq!(call.tags, ["client"]);
        assert_eq!(call.owner.as_deref(), Some("ana"));
        assert_eq!(call.indent, 0);

        let taxes = &list.tasks()[1];
        assert!(taxes.done, "[X] counts as done");
        assert_eq!(taxes.tags, ["home"]);
        assert_eq!(list.tasks()[2].indent, 4);
        let draft = &list.tasks()[3];
        assert_eq!(
            (draft.due, draft.tags.len()),
            (None, 0),
            "invalid date and #42 stay text"
        );
        assert_eq!(list.tasks()[5].section, "Done");
        assert_eq!(list.sections(), ["Tasks", "Inbox", "Doing", "Done"]);
        assert_eq!(list.open().len(), 4);
    }

    #[test]
    fn set_done_changes_only_the_box() {
        let mut list = TaskList::parse(FIXTURE);
        list.set_done(5, true).unwrap();
        list.set_done(6, false).unwrap();
        let before: Vec<&str> = FIXTURE.split('\n').collect();
        let after_text = list.to_string();
        let after: Vec<&str> = after_text.split('\n').collect();
        assert_eq!(before.len(), after.len());
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            match i {
                5 => assert_eq!(*a, b.replacen("[ ]", "[x]", 1)),
                6 => assert_eq!(*a, b.replacen("[X]", "[ ]", 1)),
                _ => assert_eq!(a, b, "line {i} changed"),
            }
        }
        assert!(list.tasks()[0].done && !list.tasks()[1].done);
        // Setting the current state changes nothing, and [X] is not rewritten to [x].
        let mut list = TaskList::parse(FIXTURE);
        list.set_done(6, true).unwrap();
        assert_eq!(list.to_string(), FIXTURE);
        assert!(matches!(
            list.set_done(2, true),
            Err(WorkspaceError::NoTaskAtLine { line: 2 })
        ));
        assert!(matches!(
            list.set_done(13, true),
            Err(WorkspaceError::NoTaskAtLine { .. })
        ));
        assert!(matches!(
            list.set_done(99, true),
            Err(WorkspaceError::NoTaskAtLine { .. })
        ));
    }

    #[test]
    fn add_goes_after_the_sections_last_task() {
        let mut list = TaskList::parse("## A\n- [ ] one\n  note under one\n\n## B\n");
        let line = list.add("a", "two\nlines").unwrap();
        assert_eq!(line, 3);
        assert_eq!(
            list.to_string(),
            "## A\n- [ ] one\n  note under one\n- [ ] two lines\n\n## B\n"
        );
        assert_eq!(list.tasks()[1].section, "A");
    }

    #[test]
    fn add_to_a_section_without_tasks_goes_under_its_heading() {
        let mut list = TaskList::parse("## Later\n\nSome prose.\n## Other\n- [ ] x\n");
        list.add("Later", "first").unwrap();
        assert_eq!(
            list.to_string(),
            "## Later\n\n- [ ] first\nSome prose.\n## Other\n- [ ] x\n"
        );
        let mut list = TaskList::parse("## Last");
        list.add("Last", "t").unwrap();
        assert_eq!(list.to_string(), "## Last\n- [ ] t\n");
    }

    #[test]
    fn add_creates_a_missing_section_with_the_files_line_ending() {
        let mut list = TaskList::parse("# Tasks\r\n- [ ] a");
        let line = list.add("Waiting", "reply from bank").unwrap();
        assert_eq!(
            list.to_string(),
            "# Tasks\r\n- [ ] a\r\n\r\n## Waiting\r\n\r\n- [ ] reply from bank\r\n"
        );
        assert_eq!(list.tasks()[1].line, line);
        assert_eq!(list.tasks()[1].section, "Waiting");

        let mut empty = TaskList::parse("");
        empty.add("Inbox", "x").unwrap();
        assert_eq!(empty.to_string(), "## Inbox\n\n- [ ] x\n");
        assert!(matches!(
            empty.add("Inbox", " \n "),
            Err(WorkspaceError::Empty { .. })
        ));
    }

    #[test]
    fn move_remove_and_set_text_touch_only_their_lines() {
        let text = "## Todo\n- [ ] a #x\n- [ ] b\n\n## Doing\n- [ ] c\n\n## Done\n";
        let mut list = TaskList::parse(text);
        let line = list.move_to(1, "Doing").unwrap();
        assert_eq!(
            list.to_string(),
            "## Todo\n- [ ] b\n\n## Doing\n- [ ] c\n- [ ] a #x\n\n## Done\n"
        );
        let moved = list.tasks().iter().find(|t| t.line == line).unwrap();
        assert_eq!(
            (moved.title.as_str(), moved.section.as_str()),
            ("a", "Doing")
        );
        assert_eq!(column(list.find("a").unwrap()), Column::Doing);

        list.remove(1).unwrap();
        assert_eq!(
            list.to_string(),
            "## Todo\n\n## Doing\n- [ ] c\n- [ ] a #x\n\n## Done\n"
        );
        let a = list.find("a").unwrap().line;
        list.set_text(a, "A, renamed @bo").unwrap();
        assert_eq!(
            list.to_string(),
            "## Todo\n\n## Doing\n- [ ] c\n- [ ] A, renamed @bo\n\n## Done\n"
        );
        assert_eq!(list.find("#2").unwrap().owner.as_deref(), Some("bo"));
        assert!(matches!(
            list.remove(0),
            Err(WorkspaceError::NoTaskAtLine { .. })
        ));

        let mut list = TaskList::parse("  *\t[x]\tkeep\tspacing");
        list.set_text(0, "new").unwrap();
        assert_eq!(list.to_string(), "  *\t[x]\tnew");
        let mut list = TaskList::parse("- [ ]");
        list.set_text(0, "filled").unwrap();
        assert_eq!(list.to_string(), "- [ ] filled");
    }

    #[test]
    fn find_by_number_title_or_substring() {
        let list = TaskList::parse(
            "- [ ] Send invoice\n- [ ] Send invoice to ACME\n- [ ] Send invoice to Initech\n- [x] Old thing\n- [ ] old thing\n",
        );
        assert_eq!(
            list.find("send INVOICE").unwrap().line,
            0,
            "exact beats substring"
        );
        assert_eq!(list.find("acme").unwrap().line, 1);
        assert_eq!(list.find("#3").unwrap().line, 2);
        assert_eq!(
            list.find("old thing").unwrap().line,
            4,
            "the open one is meant"
        );
        assert!(matches!(
            list.find("#9"),
            Err(WorkspaceError::TaskNotFound { .. })
        ));
        assert!(matches!(
            list.find("#0"),
            Err(WorkspaceError::TaskNotFound { .. })
        ));
        assert!(matches!(
            list.find("  "),
            Err(WorkspaceError::TaskNotFound { .. })
        ));
        match list.find("invoice to") {
            Err(WorkspaceError::AmbiguousTask { candidates, .. }) => {
                assert_eq!(
                    candidates,
                    ["#2 Send invoice to ACME", "#3 Send invoice to Initech"]
                );
            }
            other => panic!("expected ambiguity, got {other:?}"),
        }
        let list = TaskList::parse("- [ ] a1\n- [ ] a2\n");
        assert!(list
            .find("a")
            .unwrap_err()
            .to_string()
            .contains("#1 a1; #2 a2"));
    }

    #[test]
    fn kanban_columns_and_overdue() {
        let list = TaskList::parse(
            "## In Progress\n- [ ] p due:2025-01-01\n## Next\n- [ ] q #Doing\n- [ ] r due:2025-01-02\n- [x] s due:2020-01-01\n",
        );
        let cols: Vec<Column> = list.tasks().iter().map(column).collect();
        assert_eq!(
            cols,
            [Column::Doing, Column::Doing, Column::Todo, Column::Done]
        );
        let today = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let overdue: Vec<&str> = list
            .overdue(today)
            .iter()
            .map(|t| t.title.as_str())
            .collect();
        assert_eq!(overdue, ["p"]);
    }

    #[test]
    fn edit_tasks_keeps_a_concurrent_hand_edit() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        ws.write(TASKS_FILE, b"## Inbox\n- [ ] a\n").unwrap();
        let mut calls = 0;
        let list = edit_tasks(&ws, |list| {
            calls += 1;
            if calls == 1 {
                // The person saves their own edit while the job is running.
                ws.write(TASKS_FILE, b"## Inbox\n- [ ] a\n- [ ] typed by hand\n")
                    .unwrap();
            }
            let a = list.find("a")?.line;
            list.set_done(a, true)?;
            list.add("Inbox", "added by agent").map(drop)
        })
        .unwrap();
        assert_eq!(calls, 2);
        let expected = "## Inbox\n- [x] a\n- [ ] typed by hand\n- [ ] added by agent\n";
        assert_eq!(list.to_string(), expected);
        assert_eq!(ws.read(TASKS_FILE).unwrap().unwrap(), expected.as_bytes());
        assert_eq!(read_tasks(&ws).unwrap(), list);
    }

    #[test]
    fn edit_tasks_leaves_a_missing_file_alone_when_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let list = edit_tasks(&ws, |_| Ok(())).unwrap();
        assert!(list.tasks().is_empty());
        assert_eq!(ws.read(TASKS_FILE).unwrap(), None);
    }

    #[test]
    fn a_section_name_ending_in_hashes_is_found_again() {
        // `## Later #` reads back as the section "Later" (a closing run of `#`); adding to
        // "Later #" twice used to make two headings, and filed the task under another name.
        let mut list = TaskList::parse("- [ ] a\n");
        list.add("Later #", "b").unwrap();
        list.add("Later #", "c").unwrap();
        assert_eq!(
            list.to_string(),
            "- [ ] a\n\n## Later\n\n- [ ] b\n- [ ] c\n"
        );
        assert_eq!(list.sections(), ["Later"]);
        assert!(list.tasks()[1..].iter().all(|t| t.section == "Later"));
        // A name that still ends in `#` once read as a heading keeps it.
        let mut list = TaskList::parse("");
        list.add("Later # #", "b").unwrap();
        list.add("later # #", "c").unwrap();
        assert_eq!(list.to_string(), "## Later # #\n\n- [ ] b\n- [ ] c\n");
        assert_eq!(list.sections(), ["Later #"]);
    }

    #[test]
    fn the_productivity_style_reads_and_writes_as_its_own() {
        let text =
            "# Tasks\n\n## Active\n- [ ] **Review budget** - for Grace due:2026-12-05 #work\n\n\
                    ## Waiting On\n- [ ] **Contract** - legal has it\n\n## Someday\n\n## Done\n\
                    - [x] ~~Book venue~~ (2026-11-30)\n";
        let mut list = TaskList::parse(text);
        assert!(list.productivity_style());
        let t = &list.tasks()[0];
        assert_eq!(t.title, "Review budget");
        assert_eq!(t.context.as_deref(), Some("for Grace"));
        assert_eq!(t.due, NaiveDate::from_ymd_opt(2026, 12, 5));
        assert_eq!(t.tags, ["work"]);
        assert_eq!(column(t), Column::Doing);
        assert_eq!(column(&list.tasks()[1]), Column::Waiting);
        let done = &list.tasks()[2];
        assert_eq!((done.title.as_str(), done.done), ("Book venue", true));
        assert_eq!(done.completed, NaiveDate::from_ymd_opt(2026, 11, 30));
        // Adding writes bold; finishing strikes through with the day and moves it under Done.
        let line = list.add("Active", "Call Grace - about the budget").unwrap();
        assert!(list
            .to_string()
            .contains("- [ ] **Call Grace** - about the budget\n"));
        let first = list.tasks()[0].line;
        let day = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let moved = list.complete(first, day).unwrap();
        let out = list.to_string();
        assert!(
            out.ends_with(
                "- [x] ~~Book venue~~ (2026-11-30)\n- [x] ~~Review budget~~ (2026-12-03)\n"
            ),
            "{out}"
        );
        assert!(moved > line);
        // Everything else is where it was, byte for byte.
        for l in [
            "## Waiting On",
            "- [ ] **Contract** - legal has it",
            "## Someday",
        ] {
            assert!(out.lines().any(|x| x == l), "{l}");
        }
        // A plain task is only ticked.
        let mut plain = TaskList::parse("## Work\n- [ ] Call Ada\n");
        assert!(!plain.productivity_style());
        plain.complete(1, day).unwrap();
        assert_eq!(plain.to_string(), "## Work\n- [x] Call Ada\n");
    }
}
