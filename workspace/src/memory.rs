//! MEMORY.md: what the person wants every skill to know (people, clients, preferences).
//!
//! Sections are `##` headings; entries are unindented bullets (`- text`). Like TASKS.md,
//! the file is kept line for line so the person's own writing is never reformatted.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lines::{one_line, Doc, Kind, Line};
use crate::{Workspace, WorkspaceError};

/// The memory file's name inside the workspace.
pub const MEMORY_FILE: &str = "MEMORY.md";

/// Section holding [`Person`] entries.
pub const PEOPLE: &str = "People";

/// One entry of the People section: `- Grace Hopper <grace@navy.example> — note`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Person {
    /// The name before the email or separator.
    pub name: String,
    /// The address inside `<...>`, if any.
    pub email: Option<String>,
    /// Whatever follows the separator (`—`, `–`, ` - ` or `:`), possibly empty.
    pub note: String,
}

/// MEMORY.md parsed, with every original line kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memory {
    doc: Doc,
}

impl Memory {
    /// Parses any text; nothing is lost or reformatted.
    pub fn parse(text: &str) -> Self {
        Self {
            doc: Doc::parse(text),
        }
    }

    /// Heading texts in file order.
    pub fn sections(&self) -> Vec<&str> {
        self.doc.headings().collect()
    }

    /// Entry texts (bullet markers removed) of every section named `section`
    /// (case-insensitive); `""` means before the first heading.
    pub fn entries(&self, section: &str) -> Vec<&str> {
        let wanted = section.trim().to_lowercase();
        self.doc
            .sections()
            .into_iter()
            .zip(self.doc.lines.iter().zip(&self.doc.kinds))
            .filter(|(name, _)| name.to_lowercase() == wanted)
            .filter_map(|(_, (line, kind))| entry_text(line, kind))
            .collect()
    }

    /// Appends `- text` to `section` (created at the end if missing) and returns its line.
    /// Line breaks in `text` become spaces.
    pub fn add(&mut self, section: &str, text: &str) -> Result<usize, WorkspaceError> {
        let text = one_line(text);
        if text.is_empty() {
            return Err(WorkspaceError::Empty {
                what: "memory entry",
            });
        }
        let section = one_line(section);
        if section.is_empty() {
            return Err(WorkspaceError::Empty {
                what: "memory section name",
            });
        }
        Ok(self.doc.add_to_section(
            &section,
            |line, kind| entry_text(line, kind).is_some(),
            format!("- {text}"),
        ))
    }

    /// The People section's entries that have a name.
    pub fn people(&self) -> Vec<Person> {
        self.entries(PEOPLE)
            .into_iter()
            .filter_map(parse_person)
            .collect()
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.doc.fmt(f)
    }
}

/// Reads MEMORY.md from the workspace; a missing file is an empty memory.
pub fn read_memory(ws: &Workspace) -> Result<Memory, WorkspaceError> {
    match ws.read(MEMORY_FILE)? {
        Some(bytes) => String::from_utf8(bytes)
            .map(|text| Memory::parse(&text))
            .map_err(|_| WorkspaceError::NotText {
                rel: MEMORY_FILE.to_owned(),
            }),
        None => Ok(Memory::default()),
    }
}

/// Applies `f` to a fresh parse of MEMORY.md and writes the result, re-applying it if
/// the file changed meanwhile (see [`Workspace::edit`]). Returns the memory now on disk.
pub fn edit_memory(
    ws: &Workspace,
    mut f: impl FnMut(&mut Memory) -> Result<(), WorkspaceError>,
) -> Result<Memory, WorkspaceError> {
    let text = ws.edit(MEMORY_FILE, crate::tasks::EDIT_ATTEMPTS, |current| {
        let current = current.unwrap_or("");
        let mut memory = Memory::parse(current);
        f(&mut memory)?;
        let updated = memory.to_string();
        Ok((updated != current).then_some(updated))
    })?;
    Ok(Memory::parse(text.as_deref().unwrap_or("")))
}

/// The text of a top-level bullet, if `line` is one. Indented bullets are notes on the
/// entry above, not entries of their own.
fn entry_text<'a>(line: &'a Line, kind: &Kind) -> Option<&'a str> {
    if *kind != Kind::Text || line.text.starts_with([' ', '\t']) {
        return None;
    }
    let body = line.text.as_str();
    let rest = body.strip_prefix(['-', '*', '+'])?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    // `- - -` and `* * *` are horizontal rules, not entries.
    let marker = body.chars().next()?;
    if body.chars().all(|c| c == marker || c == ' ' || c == '\t') {
        return None;
    }
    Some(rest.trim())
}

fn parse_person(entry: &str) -> Option<Person> {
    let (name, email, note) = match (entry.find('<'), entry.find('>')) {
        (Some(open), Some(close)) if open < close && entry[open + 1..close].contains('@') => (
            &entry[..open],
            Some(entry[open + 1..close].trim().to_owned()),
            strip_separator(&entry[close + 1..]),
        ),
        _ => {
            let split = ["—", "–", " - ", ":"]
                .iter()
                .filter_map(|sep| entry.find(sep).map(|at| (at, sep.len())))
                .min();
            match split {
                Some((at, len)) => (&entry[..at], None, entry[at + len..].trim()),
                None => (entry, None, ""),
            }
        }
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then(|| Person {
        name,
        email,
        note: note.to_owned(),
    })
}

/// Drops a leading separator and the spaces around it.
fn strip_separator(rest: &str) -> &str {
    let rest = rest.trim();
    rest.strip_prefix(['—', '–', '-', ':'])
        .unwrap_or(rest)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "# Memory\r\n\
        \r\n\
        ## People\r\n\
        - Grace Hopper <grace@navy.example> — prefers mornings\r\n\
        - Ada Lovelace: met at the conference\r\n\
        - Jean-Luc Picard - captain, tea only\r\n\
        -   Linus   <linus@example.org>\r\n\
        \x20 - nested note is not an entry\r\n\
        - Alan Turing – codebreaker: enigma\r\n\
        \r\n\
        ## Preferences\r\n\
        * Reports in xlsx, not csv\r\n\
        ---\r\n\
        ```\r\n\
        - code, not an entry\r\n\
        ```\r\n\
        ## Clients\r\n\
        - ACME — pays late";

    #[test]
    fn round_trips_and_reads_entries() {
        let memory = Memory::parse(FIXTURE);
        assert_eq!(memory.to_string(), FIXTURE);
        assert_eq!(
            memory.sections(),
            ["Memory", "People", "Preferences", "Clients"]
        );
        assert_eq!(memory.entries("preferences"), ["Reports in xlsx, not csv"]);
        assert_eq!(memory.entries("Clients"), ["ACME — pays late"]);
        assert_eq!(memory.entries("People").len(), 5);
        assert!(memory.entries("Nope").is_empty());
    }

    #[test]
    fn parses_people() {
        let people = Memory::parse(FIXTURE).people();
        let person = |name: &str, email: Option<&str>, note: &str| Person {
            name: name.into(),
            email: email.map(Into::into),
            note: note.into(),
        };
        assert_eq!(
            people,
            [
                person(
                    "Grace Hopper",
                    Some("grace@navy.example"),
                    "prefers mornings"
                ),
                person("Ada Lovelace", None, "met at the conference"),
                person("Jean-Luc Picard", None, "captain, tea only"),
                person("Linus", Some("linus@example.org"), ""),
                person("Alan Turing", None, "codebreaker: enigma"),
            ]
        );
        assert_eq!(parse_person(": nameless"), None);
    }

    #[test]
    fn add_appends_to_a_section_or_creates_it() {
        let mut memory = Memory::parse(FIXTURE);
        let line = memory.add("people", "Katherine Johnson — NASA").unwrap();
        assert_eq!(line, 9);
        let mut expected: Vec<&str> = FIXTURE.split("\r\n").collect();
        expected.insert(9, "- Katherine Johnson — NASA");
        assert_eq!(memory.to_string(), expected.join("\r\n"));
        assert_eq!(memory.people().last().unwrap().name, "Katherine Johnson");

        memory.add("Projects", "Website relaunch").unwrap();
        assert!(memory
            .to_string()
            .ends_with("- ACME — pays late\r\n\r\n## Projects\r\n\r\n- Website relaunch\r\n"));
        assert_eq!(memory.entries("Projects"), ["Website relaunch"]);
        assert!(matches!(
            memory.add("People", "\n"),
            Err(WorkspaceError::Empty { .. })
        ));
        assert!(matches!(
            memory.add(" ", "x"),
            Err(WorkspaceError::Empty { .. })
        ));
    }

    #[test]
    fn edit_memory_writes_through_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        edit_memory(&ws, |m| m.add(PEOPLE, "Bo <bo@example.com>").map(drop)).unwrap();
        assert_eq!(
            ws.read(MEMORY_FILE).unwrap().unwrap(),
            b"## People\n\n- Bo <bo@example.com>\n"
        );
        assert_eq!(
            read_memory(&ws).unwrap().people()[0].email.as_deref(),
            Some("bo@example.com")
        );
    }
}
