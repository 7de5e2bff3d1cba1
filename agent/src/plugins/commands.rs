//! A plugin's slash commands, `commands/*.md`: Markdown whose body is the prompt, with optional
//! front matter (`description`, `argument-hint`, `allowed-tools`, `model`,
//! `disable-model-invocation`). `/PLUGIN:COMMAND args` runs the planner with the body, its
//! `$ARGUMENTS`, `$ARGUMENTS[N]` and `$N` (0-based) replaced by the arguments, or the arguments
//! appended as `ARGUMENTS: …` when the body has no placeholder.

use std::path::Path;

use serde_norway::{Mapping, Value};

use super::manifest::relative;
use crate::skills::manifest::{split_front_matter, Problem};

/// One command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandDef {
    /// Its name inside the plugin (the file's stem; `sub:stem` in a subfolder).
    pub name: String,
    /// Its file, relative to the plugin.
    pub file: String,
    /// What it does (front matter, or the body's first line).
    pub description: String,
    /// How its arguments are written (`<issue> [priority]`), for people.
    pub argument_hint: Option<String>,
    /// The tools it may use, as written (`Read`, `mcp__server__tool`, `file_read`); `None`: all.
    pub allowed_tools: Option<Vec<String>>,
    /// The model it asks for (shown; Deskhand uses the configured one).
    pub model: Option<String>,
    /// Only the person may run it: not offered to the model as a skill.
    pub disable_model_invocation: bool,
    /// The prompt.
    pub body: String,
}

/// Front matter fields of a command.
const FIELDS: &[&str] = &[
    "description",
    "argument-hint",
    "allowed-tools",
    "model",
    "disable-model-invocation",
];

/// The front matter of `text` as a mapping (empty when there is none) and the body.
pub(super) fn front(file: &str, text: &str) -> Result<(Mapping, String), Problem> {
    let problem = |message: String| Problem {
        file: file.to_string(),
        line: None,
        message,
    };
    match split_front_matter(text) {
        None => Ok((Mapping::new(), text.to_string())),
        Some((yaml, body)) if yaml.trim().is_empty() => Ok((Mapping::new(), body.to_string())),
        Some((yaml, body)) => match serde_norway::from_str::<Value>(yaml) {
            Ok(Value::Mapping(m)) => Ok((m, body.to_string())),
            Ok(_) => Err(problem("front matter must be a YAML mapping".into())),
            Err(e) => Err(problem(format!("front matter is not valid YAML: {e}"))),
        },
    }
}

/// A list of tool names: a YAML list, or one string separated by commas or spaces (outside
/// parentheses, so `Bash(git add:*)` stays one).
pub(super) fn tool_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Sequence(s) => Some(
            s.iter()
                .filter_map(|t| t.as_str().map(|t| t.trim().to_string()))
                .filter(|t| !t.is_empty())
                .collect(),
        ),
        Value::String(s) => {
            let mut out = Vec::new();
            let mut cur = String::new();
            let mut depth = 0u32;
            for c in s.chars() {
                match c {
                    '(' => {
                        depth += 1;
                        cur.push(c)
                    }
                    ')' => {
                        depth = depth.saturating_sub(1);
                        cur.push(c)
                    }
                    ',' | ' ' | '\t' if depth == 0 => {
                        if !cur.trim().is_empty() {
                            out.push(cur.trim().to_string());
                        }
                        cur.clear();
                    }
                    _ => cur.push(c),
                }
            }
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            Some(out)
        }
        _ => None,
    }
}

/// A Markdown file of a plugin with its front matter (a command, an agent), read.
pub(super) struct MdFile {
    /// Its path relative to the plugin.
    pub file: String,
    /// The front matter (empty when there is none).
    pub front: Mapping,
    /// What follows it.
    pub body: String,
    /// Fields outside `fields`, which are ignored.
    pub warnings: Vec<String>,
}

impl MdFile {
    /// Read `path`; front matter fields outside `fields` become warnings.
    pub fn read(root: &Path, path: &Path, fields: &[&str]) -> Result<MdFile, Problem> {
        let file = relative(root, path);
        let text = std::fs::read_to_string(path).map_err(|e| Problem {
            file: file.clone(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        let (front, body) = front(&file, &text)?;
        let warnings = front
            .keys()
            .filter_map(Value::as_str)
            .filter(|k| !fields.contains(k))
            .map(|k| format!("{file}: front matter field {k:?} is ignored"))
            .collect();
        Ok(MdFile {
            file,
            front,
            body,
            warnings,
        })
    }

    /// A problem in this file.
    pub fn problem(&self, message: String) -> Problem {
        Problem {
            file: self.file.clone(),
            line: None,
            message,
        }
    }

    /// A string field, if given.
    pub fn string(&self, k: &str) -> Result<Option<String>, Problem> {
        match self.front.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.problem(format!("{k:?} must be a string"))),
        }
    }

    /// A list of tool names, if given.
    pub fn tools(&self, k: &str) -> Result<Option<Vec<String>>, Problem> {
        match self.front.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => tool_list(v)
                .map(Some)
                .ok_or_else(|| self.problem(format!("{k:?} must be a string or a list"))),
        }
    }
}

/// Read one command file; the command and the warnings about ignored fields.
/// `stem` is its name as found (`git:commit`).
pub fn read(root: &Path, path: &Path, stem: String) -> Result<(CommandDef, Vec<String>), Problem> {
    let md = MdFile::read(root, path, FIELDS)?;
    let problem = |m: String| md.problem(m);
    let body = &md.body;
    if stem.is_empty()
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
    {
        return Err(problem(format!(
            "command name {stem:?} (from the file name) may only hold letters, digits, '-' and '_'"
        )));
    }
    let description = md.string("description")?.unwrap_or_else(|| {
        body.lines()
            .map(|l| l.trim().trim_start_matches('#').trim())
            .find(|l| !l.is_empty())
            .unwrap_or("(no description)")
            .chars()
            .take(200)
            .collect()
    });
    let allowed_tools = md.tools("allowed-tools")?;
    let disable_model_invocation = match md.front.get("disable-model-invocation") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(problem(
                "\"disable-model-invocation\" must be true or false".into(),
            ))
        }
    };
    Ok((
        CommandDef {
            name: stem,
            file: md.file.clone(),
            description,
            argument_hint: md.string("argument-hint")?,
            allowed_tools,
            model: md.string("model")?,
            disable_model_invocation,
            body: body.trim().to_string(),
        },
        md.warnings.clone(),
    ))
}

/// The body with the arguments in place: `$ARGUMENTS` (all, space-separated), `$ARGUMENTS[N]`
/// and `$N` (the N-th, 0-based; empty when not given). A body without any placeholder gets
/// `ARGUMENTS: …` appended when there are arguments.
pub fn substitute(body: &str, args: &[String]) -> String {
    let all = args.join(" ");
    let nth = |n: usize| args.get(n).cloned().unwrap_or_default();
    let mut out = String::with_capacity(body.len() + all.len());
    let mut used = false;
    let mut rest = body;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("ARGUMENTS") {
            used = true;
            if let Some((n, len)) = index(tail) {
                out.push_str(&nth(n));
                rest = &tail[len..];
            } else {
                out.push_str(&all);
                rest = tail;
            }
        } else {
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                out.push('$');
                rest = after;
            } else {
                used = true;
                out.push_str(&nth(digits.parse().unwrap_or(usize::MAX)));
                rest = &after[digits.len()..];
            }
        }
    }
    out.push_str(rest);
    if !used && !args.is_empty() {
        out.push_str(&format!("\n\nARGUMENTS: {all}"));
    }
    out
}

/// `[N]` at the start of `s`: N and the length taken.
fn index(s: &str) -> Option<(usize, usize)> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    let n = inner[..end].parse().ok()?;
    Some((n, end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn placeholders_are_replaced() {
        let a = args(&["123", "high"]);
        assert_eq!(
            substitute("Fix issue $0 with priority $1.", &a),
            "Fix issue 123 with priority high."
        );
        assert_eq!(
            substitute(
                "All: $ARGUMENTS; first $ARGUMENTS[0], third [$ARGUMENTS[2]]",
                &a
            ),
            "All: 123 high; first 123, third []"
        );
        assert_eq!(
            substitute("Costs $ 5 and $x", &a),
            "Costs $ 5 and $x\n\nARGUMENTS: 123 high"
        );
        assert_eq!(substitute("No arguments here.", &[]), "No arguments here.");
        assert_eq!(substitute("$ARGUMENTS[", &a), "123 high[");
    }

    #[test]
    fn tool_lists_keep_parentheses_together() {
        let v = Value::String("Bash(git add:*), Read Grep".into());
        assert_eq!(
            tool_list(&v).unwrap(),
            vec!["Bash(git add:*)", "Read", "Grep"]
        );
    }

    #[test]
    fn a_command_file_reads_with_defaults_and_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let cmds = dir.path().join("commands/git");
        std::fs::create_dir_all(&cmds).unwrap();
        std::fs::write(
            cmds.join("commit.md"),
            "---\ndescription: Commit\nargument-hint: <msg>\ncolor: blue\nallowed-tools: [Read]\n---\nCommit with $ARGUMENTS\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("commands/plain.md"),
            "# Say hello\n\nHello $1",
        )
        .unwrap();
        let (c, w) = read(dir.path(), &cmds.join("commit.md"), "git:commit".into()).unwrap();
        assert_eq!(c.name, "git:commit");
        assert_eq!(c.allowed_tools, Some(vec!["Read".to_string()]));
        assert_eq!(c.argument_hint.as_deref(), Some("<msg>"));
        assert!(w[0].contains("color"), "{w:?}");
        let (p, _) = read(
            dir.path(),
            &dir.path().join("commands/plain.md"),
            "plain".into(),
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.description.as_str()),
            ("plain", "Say hello")
        );
        std::fs::write(
            dir.path().join("commands/bad.md"),
            "---\ndisable-model-invocation: maybe\n---\nx",
        )
        .unwrap();
        assert!(read(
            dir.path(),
            &dir.path().join("commands/bad.md"),
            "bad".into()
        )
        .is_err());
    }
}
