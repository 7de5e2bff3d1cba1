//! Properties the fuzz targets check (issue 14), shared with the corpus replay tests below so
//! every input the fuzzer kept is re-checked by `cargo test` on stable. Each function takes the
//! fuzzer's raw bytes and panics when a property fails; see `fuzz/README.md`.
//!
//! Input layout for both targets: byte 0 picks the edit, byte 1 picks the task, and the rest is
//! the file's text, then (after the first NUL) the edit's argument.

use crate::lines::one_line;
use crate::{Memory, TaskList, WorkspaceError};

/// One line of a file: its text and its ending, as the parser promises to keep them.
type Split<'a> = Vec<(&'a str, &'a str)>;

fn split_lines(text: &str) -> Split<'_> {
    text.split_inclusive('\n')
        .map(|l| {
            let body = l.strip_suffix('\n').unwrap_or(l);
            match body.strip_suffix('\r') {
                Some(b) if l.ends_with('\n') => (b, &l[b.len()..]),
                _ => (body, &l[body.len()..]),
            }
        })
        .collect()
}

/// Every line of `before` except `removed` is in `after`, in order, byte for byte, once the
/// `inserted` lines of `after` are left out. Only the last line's ending may change: gained
/// when a line is added after an unterminated last line (a last line of just `\r` then reads
/// back as an empty line ending in `\r\n`, its bytes unchanged), or dropped when the last line
/// is removed.
fn assert_kept(before: &str, after: &str, removed: Option<usize>, inserted: &[usize]) {
    let b: Split<'_> = split_lines(before)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != removed)
        .map(|(_, l)| l)
        .collect();
    let a: Split<'_> = split_lines(after)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !inserted.contains(i))
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        b.len(),
        a.len(),
        "line count after the edit\nbefore: {before:?}\nafter: {after:?}"
    );
    for (i, (x, y)) in b.iter().zip(&a).enumerate() {
        let last = i + 1 == b.len();
        let cr = last && x.1.is_empty() && y.1 == "\r\n" && x.0.strip_suffix('\r') == Some(y.0);
        assert!(
            x.0 == y.0 || cr,
            "line {i} changed\nbefore: {before:?}\nafter: {after:?}"
        );
        assert!(
            x.1 == y.1 || (last && (x.1.is_empty() || y.1.is_empty())),
            "line {i}'s ending changed\nbefore: {before:?}\nafter: {after:?}"
        );
    }
}

/// The section name as its `## ` heading reads back.
fn as_heading(section: &str) -> String {
    crate::lines::heading(&format!("## {}", one_line(section)))
        .unwrap_or_default()
        .to_string()
}

fn input(data: &[u8]) -> (u8, u8, String, String) {
    let op = data.first().copied().unwrap_or(0);
    let pick = data.get(1).copied().unwrap_or(0);
    let rest = String::from_utf8_lossy(data.get(2..).unwrap_or_default());
    match rest.split_once('\0') {
        Some((text, arg)) => (op, pick, text.to_string(), arg.to_string()),
        None => (op, pick, rest.into_owned(), String::new()),
    }
}

/// TASKS.md: parse → write is the identity; ticking, retexting, removing, adding or moving one
/// task rewrites only the lines concerned, and the result parses back to what was asked for.
pub fn tasks(data: &[u8]) {
    let (op, pick, text, arg) = input(data);
    let mut list = TaskList::parse(&text);
    assert_eq!(list.to_string(), text, "parse → write is not the identity");
    let before = split_lines(&text);
    for t in list.tasks() {
        assert!(t.line < before.len(), "task line {} out of range", t.line);
        assert!(before[t.line].0.contains(t.text.as_str()));
    }
    let task = match list.tasks().len() {
        0 => None,
        n => Some(list.tasks()[pick as usize % n].clone()),
    };
    match (op % 6, task) {
        (1, Some(t)) => {
            list.set_done(t.line, !t.done)
                .expect("a task's line has a box");
            let after = list.to_string();
            assert_kept(&text, &after, Some(t.line), &[t.line]);
            let (old, new) = (before[t.line], split_lines(&after)[t.line]);
            let diff = old.0.bytes().zip(new.0.bytes()).filter(|(a, b)| a != b);
            assert_eq!(
                (old.0.len(), diff.count()),
                (new.0.len(), 1),
                "{old:?} → {new:?}"
            );
            let back = TaskList::parse(&after);
            assert_eq!(back.tasks().len(), list.tasks().len());
            let same = back
                .tasks()
                .iter()
                .find(|x| x.line == t.line)
                .expect("still a task");
            assert_eq!(same.done, !t.done);
        }
        (2, Some(t)) => match list.set_text(t.line, &arg) {
            Ok(()) => {
                let after = list.to_string();
                assert_kept(&text, &after, Some(t.line), &[t.line]);
                let back = TaskList::parse(&after);
                let same = back
                    .tasks()
                    .iter()
                    .find(|x| x.line == t.line)
                    .expect("still a task");
                assert_eq!(same.text, one_line(&arg));
                assert_eq!(same.done, t.done);
            }
            Err(WorkspaceError::Empty { .. }) => assert!(one_line(&arg).is_empty()),
            Err(e) => panic!("set_text on a task: {e}"),
        },
        (3, Some(t)) => {
            list.remove(t.line).expect("a task's line can be removed");
            let after = list.to_string();
            assert_kept(&text, &after, Some(t.line), &[]);
            assert_eq!(
                TaskList::parse(&after).tasks().len() + 1,
                before_tasks(&text)
            );
        }
        (4, _) => {
            let (section, new) = arg.split_once('\n').unwrap_or(("Inbox", arg.as_str()));
            match list.add(section, new) {
                Ok(at) => {
                    let after = list.to_string();
                    let grown = split_lines(&after).len() - before.len();
                    let inserted: Vec<usize> = if grown == 1 {
                        vec![at]
                    } else {
                        (at + 1 - grown..=at).collect()
                    };
                    assert_kept(&text, &after, None, &inserted);
                    let back = TaskList::parse(&after);
                    let added = back.tasks().iter().find(|x| x.line == at);
                    let added = added.unwrap_or_else(|| {
                        panic!("the added line {at} is no task\nbefore: {text:?}\nafter: {after:?}")
                    });
                    assert_eq!(added.text, one_line(new));
                    assert!(!added.done);
                    assert_eq!(
                        added.section.to_lowercase(),
                        as_heading(section).to_lowercase(),
                        "added to another section\nbefore: {text:?}\nafter: {after:?}"
                    );
                }
                Err(WorkspaceError::Empty { .. }) => assert!(one_line(new).is_empty()),
                Err(e) => panic!("add: {e}"),
            }
        }
        (5, Some(t)) => {
            let at = list.move_to(t.line, &arg).expect("a task can be moved");
            let after = list.to_string();
            let grown = split_lines(&after).len() + 1 - before.len();
            let inserted: Vec<usize> = (at + 1 - grown..=at).collect();
            assert_kept(&text, &after, Some(t.line), &inserted);
            // Verbatim: a last line ending in a lone `\r` reads back as a `\r\n` ending.
            let (text, eol) = split_lines(&after)[at];
            assert!(
                format!("{text}{eol}").starts_with(before[t.line].0),
                "not moved verbatim\nbefore: {:?}\nafter: {after:?}",
                before[t.line].0
            );
        }
        _ => {}
    }
}

fn before_tasks(text: &str) -> usize {
    TaskList::parse(text).tasks().len()
}

/// MEMORY.md: parse → write is the identity; adding an entry inserts only its line (and a new
/// section's heading when there is none), and the entry reads back from that section.
pub fn memory(data: &[u8]) {
    let (op, _, text, arg) = input(data);
    let mut memory = Memory::parse(&text);
    assert_eq!(
        memory.to_string(),
        text,
        "parse → write is not the identity"
    );
    let _ = memory.people();
    let before = split_lines(&text);
    if op % 2 == 1 {
        let (section, entry) = arg.split_once('\n').unwrap_or(("People", arg.as_str()));
        match memory.add(section, entry) {
            Ok(at) => {
                let after = memory.to_string();
                let grown = split_lines(&after).len() - before.len();
                let inserted: Vec<usize> = (at + 1 - grown..=at).collect();
                assert_kept(&text, &after, None, &inserted);
                let back = Memory::parse(&after);
                assert_eq!(back.to_string(), after);
                let entry = one_line(entry);
                // `- - -` is a rule, not an entry: such text cannot be read back as one.
                let rule = entry.chars().all(|c| c == '-' || c == ' ' || c == '\t');
                if !rule {
                    assert!(
                        back.entries(&as_heading(section)).contains(&entry.as_str()),
                        "entry {entry:?} not in section {section:?}\nbefore: {text:?}\nafter: {after:?}"
                    );
                }
            }
            Err(WorkspaceError::Empty { .. }) => {
                assert!(one_line(entry).is_empty() || one_line(section).is_empty())
            }
            Err(e) => panic!("add: {e}"),
        }
    }
}

/// Runs `property` on every file of `fuzz/corpus/<target>/` (the replay of the fuzz corpora);
/// the agent's replay tests use it too.
pub fn replay(target: &str, property: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| property(&data));
        assert!(r.is_ok(), "corpus file {} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "{} is empty", dir.display());
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tasks_corpus_replays() {
        super::replay("tasks_md", super::tasks);
    }

    #[test]
    fn the_memory_corpus_replays() {
        super::replay("memory_md", super::memory);
    }
}
