//! Line-preserving Markdown plumbing shared by TASKS.md and MEMORY.md.
//!
//! A file is kept as its exact lines, each with its own line ending, so writing back an
//! unedited file reproduces it byte for byte and an edit touches only the lines it must.
//! Only the Markdown that matters here is recognised: ATX headings (`## Name`) and fenced
//! code blocks (inside which nothing counts). Setext headings are treated as text.

use std::fmt;

/// One line of a file and the ending that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The line without its ending.
    pub text: String,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without a newline.
    pub eol: &'static str,
}

/// What a line is, for our purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An ATX heading with its text.
    Heading(String),
    /// A code fence line or a line inside a fenced block.
    Code,
    /// Anything else.
    Text,
}

/// A file as lines plus their classification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Doc {
    pub lines: Vec<Line>,
    pub kinds: Vec<Kind>,
}

impl Doc {
    /// Splits `text` on `\n`, keeping a preceding `\r` as part of the ending.
    pub fn parse(text: &str) -> Self {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, eol, next) = match rest.find('\n') {
                Some(i) if rest[..i].ends_with('\r') => (&rest[..i - 1], "\r\n", &rest[i + 1..]),
                Some(i) => (&rest[..i], "\n", &rest[i + 1..]),
                None => (rest, "", ""),
            };
            lines.push(Line {
                text: line.to_owned(),
                eol,
            });
            rest = next;
        }
        let mut doc = Self {
            lines,
            kinds: Vec::new(),
        };
        doc.reclassify();
        doc
    }

    /// Recomputes `kinds` after the lines changed.
    pub fn reclassify(&mut self) {
        let mut fence: Option<(char, usize)> = None;
        self.kinds = self
            .lines
            .iter()
            .map(|line| {
                if let Some((ch, len)) = fence {
                    if closes_fence(&line.text, ch, len) {
                        fence = None;
                    }
                    Kind::Code
                } else if let Some(open) = opens_fence(&line.text) {
                    fence = Some(open);
                    Kind::Code
                } else if let Some(text) = heading(&line.text) {
                    Kind::Heading(text.to_owned())
                } else {
                    Kind::Text
                }
            })
            .collect();
    }

    /// The line ending this file mostly uses: that of its first line, `\n` if none.
    pub fn eol(&self) -> &'static str {
        self.lines
            .iter()
            .map(|l| l.eol)
            .find(|eol| !eol.is_empty())
            .unwrap_or("\n")
    }

    /// Heading texts in file order.
    pub fn headings(&self) -> impl Iterator<Item = &str> {
        self.kinds.iter().filter_map(|k| match k {
            Kind::Heading(text) => Some(text.as_str()),
            _ => None,
        })
    }

    /// For each line, the text of the nearest heading above it ("" before the first).
    pub fn sections(&self) -> Vec<&str> {
        let mut current = "";
        self.kinds
            .iter()
            .map(|k| {
                if let Kind::Heading(text) = k {
                    current = text;
                }
                current
            })
            .collect()
    }

    /// Inserts a line at `at`, giving a preceding unterminated last line an ending.
    pub fn insert(&mut self, at: usize, text: String) {
        let eol = self.eol();
        if let Some(prev) = at.checked_sub(1).and_then(|i| self.lines.get_mut(i)) {
            if prev.eol.is_empty() {
                prev.eol = eol;
            }
        }
        self.lines.insert(at, Line { text, eol });
        self.reclassify();
    }

    /// Removes line `at`, keeping a missing final newline missing.
    pub fn remove(&mut self, at: usize) -> Line {
        let removed = self.lines.remove(at);
        if removed.eol.is_empty() && at == self.lines.len() {
            // A blank line without its ending would vanish from the file (and stay in `lines`
            // as a line no parse gives back): it keeps its ending (found by fuzzing, issue 14).
            if let Some(last) = self.lines.last_mut().filter(|l| !l.text.is_empty()) {
                last.eol = "";
            }
        }
        self.reclassify();
        removed
    }

    /// Inserts `text` as a new item of `section`: after the section's last item (and any
    /// indented lines that continue it), else right after its heading and one blank line,
    /// else under a new `## section` at the end of the file. `""` is the part before the
    /// first heading. Returns the new line's index.
    pub fn add_to_section(
        &mut self,
        section: &str,
        is_item: impl Fn(&Line, &Kind) -> bool,
        text: String,
    ) -> usize {
        // The name as its heading reads back (`## Later #` is the section "Later"), so adding
        // to "Later #" twice finds the section the first call made (found by fuzzing, issue 14).
        let written = format!("## {}", section.trim());
        let target = heading(&written).unwrap_or_default();
        let (start, heading) = if target.is_empty() {
            (0, None)
        } else {
            match self.kinds.iter().position(
                |k| matches!(k, Kind::Heading(h) if h.to_lowercase() == target.to_lowercase()),
            ) {
                Some(h) => (h + 1, Some(h)),
                None => return self.append_section(target, text),
            }
        };
        let end = self.kinds[start..]
            .iter()
            .position(|k| matches!(k, Kind::Heading(_)))
            .map_or(self.lines.len(), |i| start + i);
        let item = |i: usize| is_item(&self.lines[i], &self.kinds[i]);

        let at = if let Some(last) = (start..end).rev().find(|&i| item(i)) {
            let mut at = last + 1;
            while at < end
                && self.kinds[at] == Kind::Text
                && !item(at)
                && self.lines[at].text.starts_with([' ', '\t'])
                && !self.lines[at].text.trim().is_empty()
            {
                at += 1;
            }
            at
        } else if heading.is_some() && start < end && self.lines[start].text.trim().is_empty() {
            start + 1
        } else {
            start
        };
        self.insert(at, text);
        at
    }

    fn append_section(&mut self, section: &str, text: String) -> usize {
        let mut at = self.lines.len();
        // A code block left open runs to the end of the file and would swallow the new
        // section: close it first, so the person's lines read as before (issue 14, fuzzing).
        if let Some((ch, len)) = self.open_fence_at_end() {
            self.insert(at, ch.to_string().repeat(len));
            at += 1;
        }
        if self.lines.last().is_some_and(|l| !l.text.trim().is_empty()) {
            self.insert(at, String::new());
            at += 1;
        }
        // A closing run keeps a name's own trailing `#` (`## Later # #` reads back as "Later #").
        let heading = if section.ends_with('#') {
            format!("## {section} #")
        } else {
            format!("## {section}")
        };
        self.insert(at, heading);
        self.insert(at + 1, String::new());
        self.insert(at + 2, text);
        at + 2
    }
}

impl fmt::Display for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            f.write_str(&line.text)?;
            f.write_str(line.eol)?;
        }
        Ok(())
    }
}

impl Doc {
    /// The fence of a code block still open at the end of the file, if any.
    fn open_fence_at_end(&self) -> Option<(char, usize)> {
        let mut fence = None;
        for line in &self.lines {
            match fence {
                Some((ch, len)) if closes_fence(&line.text, ch, len) => fence = None,
                Some(_) => {}
                None => fence = opens_fence(&line.text),
            }
        }
        fence
    }
}

/// Makes caller text safe to put on one line: line breaks become spaces, ends trimmed.
pub(crate) fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ").trim().to_owned()
}

/// The text of an ATX heading (`#` to `######`, at most three spaces of indent).
pub(crate) fn heading(line: &str) -> Option<&str> {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    if spaces > 3 {
        return None;
    }
    let body = &line[spaces..];
    let hashes = body.len() - body.trim_start_matches('#').len();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &body[hashes..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    // An optional closing run of `#` counts only when separated by a space.
    let without_close = rest.trim_end_matches('#');
    let text = if without_close.is_empty() || without_close.ends_with([' ', '\t']) {
        without_close.trim_end()
    } else {
        rest
    };
    Some(text)
}

/// A fence opener: at least three backticks or tildes (indent allowed for list items).
fn opens_fence(line: &str) -> Option<(char, usize)> {
    let body = line.trim_start();
    let ch = body.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = body.len() - body.trim_start_matches(ch).len();
    if len < 3 {
        return None;
    }
    // A backtick fence's info string may not contain backticks (that is inline code).
    if ch == '`' && body[len..].contains('`') {
        return None;
    }
    Some((ch, len))
}

fn closes_fence(line: &str, ch: char, len: usize) -> bool {
    let body = line.trim_start();
    let run = body.len() - body.trim_start_matches(ch).len();
    run >= len && body[run..].trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_unterminated_last_line_keeps_a_blank_line_before_it() {
        // Used to give "a\n": the blank line lost its ending and so vanished.
        let mut doc = Doc::parse("a\n\nlast");
        doc.remove(2);
        assert_eq!(doc.to_string(), "a\n\n");
        assert_eq!(doc, Doc::parse("a\n\n"));
        let mut doc = Doc::parse("a\nlast");
        doc.remove(1);
        assert_eq!(doc.to_string(), "a");
    }

    #[test]
    fn a_section_added_after_an_open_code_block_closes_it_first() {
        // Used to put the heading and item inside the code block, where nothing counts.
        for (text, fence) in [("~~~", "~~~"), ("x\n````rust\ncode\n", "````")] {
            let mut doc = Doc::parse(text);
            let at = doc.add_to_section("Inbox", |_, _| false, "- [ ] t".into());
            assert_eq!(doc.lines[at - 4].text, fence, "{text:?}");
            assert_eq!(doc.kinds[at - 2], Kind::Heading("Inbox".into()), "{text:?}");
            assert_eq!(doc.kinds[at], Kind::Text, "{text:?}");
            assert!(doc.to_string().starts_with(text));
        }
    }

    #[test]
    fn round_trips_any_text() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\r\nb",
            "a\r\n\r\nb\n",
            "\r",
            "x\r\ry\n",
            "ü\n\n\t\n",
        ] {
            assert_eq!(Doc::parse(text).to_string(), text, "{text:?}");
        }
    }

    #[test]
    fn headings_and_fences() {
        let doc =
            Doc::parse("# Title #\n```\n# not\n```\n## Two\n####### seven\n#tag\n~~~~\n~~~\n");
        assert_eq!(doc.headings().collect::<Vec<_>>(), ["Title", "Two"]);
        assert_eq!(doc.kinds[2], Kind::Code);
        assert_eq!(doc.kinds[7], Kind::Code);
        assert_eq!(
            doc.kinds[8],
            Kind::Code,
            "a shorter run does not close the fence"
        );
        assert_eq!(heading("## C# notes"), Some("C# notes"));
        assert_eq!(heading("##"), Some(""));
    }

    #[test]
    fn insert_and_remove_respect_endings() {
        let mut doc = Doc::parse("a\r\nb");
        doc.insert(2, "c".into());
        assert_eq!(doc.to_string(), "a\r\nb\r\nc\r\n");
        let mut doc = Doc::parse("a\nb");
        doc.remove(1);
        assert_eq!(doc.to_string(), "a");
    }
}
