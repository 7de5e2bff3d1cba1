//! Prompt-only skills (a SKILL.md without skill.yaml), which the planner runs: the catalogue of
//! their names and descriptions for the planner's first prompt, the `skill` and `skill.file`
//! actions that load one on demand, and the first message of a job started by `/NAME` of such a
//! skill (issue 16).
//!
//! Progressive disclosure: the first prompt carries only each skill's front matter (name and
//! description); its instructions reach the model when it asks for them with the `skill` tool,
//! and the other files of its folder with `skill.file`. Only skills the person trusts are
//! offered: built in, or accepted at their content hash (`deskhand skills trust`), the rule every
//! workspace skill runs under. A trusted skill's SKILL.md is the person's own instructions (it is
//! what they accepted), so it goes to the model as `<skill-instructions>`; the other files of its
//! folder are not covered by the hash and go back as untrusted content, like any file.

use std::path::{Component, Path};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::Line;
use super::{SkillDef, SkillKind, Skills};
use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};

/// The largest file of a skill's folder `skill.file` reads.
pub const MAX_SKILL_FILE: u64 = 256 * 1024;
/// The most files of a skill's folder `skill` names.
const MAX_FOLDER_FILES: usize = 100;
/// The most skills listed in the first prompt.
const MAX_CATALOGUE: usize = 100;

/// The prompt-only skill `name`, if the planner may use it: trusted (built in, or accepted by
/// the person at its current content hash). Otherwise what is wrong, for the model or the job.
fn usable<'a>(skills: &'a Skills, name: &str) -> Result<&'a SkillDef, Unusable> {
    match skills.find(name) {
        Some(s) if !s.kind.planned() => Err(Unusable::NotPromptOnly(s.name.clone())),
        Some(s) if !s.trusted => Err(Unusable::Untrusted(s.name.clone())),
        Some(s) => Ok(s),
        None => Err(Unusable::Unknown {
            name: name.to_string(),
            known: catalogue(skills)
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Why a skill cannot be loaded.
enum Unusable {
    Unknown { name: String, known: String },
    NotPromptOnly(String),
    Untrusted(String),
}

impl Unusable {
    /// The step's error: an untrusted skill is a refusal (audited), the rest a wrong argument.
    fn into_error(self, g: &Guard) -> StepError {
        match self {
            Unusable::Unknown { name, known } => StepError::Invalid(format!(
                "there is no prompt-only skill {name:?}; the skills are: {}",
                if known.is_empty() {
                    "(none)"
                } else {
                    known.as_str()
                }
            )),
            Unusable::NotPromptOnly(name) => StepError::Invalid(format!(
                "{name} is not a prompt-only skill (it runs its own steps with /{name}); its \
                 instructions are not for the planner"
            )),
            Unusable::Untrusted(name) => g.refuse(
                "skill",
                &name,
                &format!(
                    "skill {name} is not trusted at its current content; the person can accept \
                     it with `deskhand skills trust {name}`"
                ),
            ),
        }
    }
}

/// The trusted prompt-only skills, `(name, description)`, by name.
pub fn catalogue(skills: &Skills) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = skills
        .list()
        .iter()
        .filter(|s| s.kind.planned() && s.trusted && s.for_model)
        .map(|s| (s.name.clone(), s.description.trim().to_string()))
        .collect();
    out.sort();
    out.truncate(MAX_CATALOGUE);
    out
}

/// A trusted skill's instructions as the model sees them: the person's own, marked so that the
/// rules can tell them from content. (A skill's name is lowercase letters, digits and hyphens,
/// checked when it loads, so it cannot break out of the attribute.)
pub fn instructions_block(name: &str, body: &str) -> String {
    format!(
        "<skill-instructions skill=\"{name}\">\n{}\n</skill-instructions>",
        body.trim()
    )
}

/// What the planner's first prompt and first message get from the person's skills and plugins.
#[derive(Debug)]
pub struct Prompted {
    /// For the system prompt: the trusted prompt-only skills' and commands' names and
    /// descriptions (empty when there are none).
    pub catalogue: String,
    /// The first user message: `request`, preceded by the instructions of the skill the job
    /// was started with (`/NAME`), or a command's prompt with its arguments in place.
    pub first_message: String,
    /// A command's `allowed-tools`, as written, with its plugin: the job gets only those tools.
    pub allowed_tools: Option<(String, Vec<String>)>,
    /// The plugins in use (their agents, MCP servers and hooks).
    pub plugins: Vec<crate::plugins::Active>,
}

impl Prompted {
    /// Load the workspace's skills and plugins for a planned job started with `request` and,
    /// for `/NAME` of a prompt-only skill or a command, `skill` with its `arguments` (checked
    /// again here: trust may have been withdrawn, or the file edited, since the job was
    /// admitted).
    pub async fn load(
        g: &Guard,
        skill: Option<&str>,
        request: &str,
        arguments: &[String],
    ) -> Result<Prompted, StepError> {
        let ws = g.workspace().to_path_buf();
        let (skills, plugins) =
            tokio::task::spawn_blocking(move || (Skills::load(&ws), crate::plugins::active(&ws)))
                .await?;
        let mut catalogue = String::new();
        for (name, description) in self::catalogue(&skills) {
            catalogue.push_str(&format!("- {name}: {description}\n"));
        }
        let mut allowed_tools = None;
        let first_message = match skill {
            None => request.to_string(),
            Some(name) => {
                let s = usable(&skills, name).map_err(|e| e.into_error(g))?;
                if s.kind == SkillKind::Command {
                    let c = crate::plugins::command(&plugins, &s.name).ok_or_else(|| {
                        StepError::Invalid(format!("command {} is no longer installed", s.name))
                    })?;
                    if let Some(t) = &c.allowed_tools {
                        let plugin = s.name.split(':').next().unwrap_or_default();
                        allowed_tools = Some((plugin.to_string(), t.clone()));
                    }
                    format!(
                        "Run my command /{}; its instructions:\n{}",
                        s.name,
                        instructions_block(
                            &s.name,
                            &crate::plugins::commands::substitute(&c.body, arguments)
                        )
                    )
                } else {
                    format!(
                        "Use my skill {} for this; its instructions:\n{}\n\n{}",
                        s.name,
                        instructions_block(&s.name, &s.body),
                        request
                    )
                }
            }
        };
        Ok(Prompted {
            catalogue,
            first_message,
            allowed_tools,
            plugins,
        })
    }
}

async fn load_skills(g: &Guard) -> Result<Skills, StepError> {
    let ws = g.workspace().to_path_buf();
    Ok(tokio::task::spawn_blocking(move || Skills::load(&ws)).await?)
}

/// `agent.ask`'s arguments for `/NAME words… k=v` of a prompt-only skill: the skill, and its
/// words as the request (they are the person's request, for the model; never a step's argument).
pub fn ask_params(skill: &str, params: &Map<String, Value>) -> Map<String, Value> {
    let mut words: Vec<String> = Vec::new();
    if let Some(r) = params.get("request").and_then(Value::as_str) {
        words.push(r.to_string());
    }
    // A command's `$N` count its words: the positional ones in order, then any `k=v`.
    let mut arguments: Vec<String> = Vec::new();
    if let Some(args) = params.get("args").and_then(Value::as_array) {
        arguments.extend(args.iter().map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }));
    }
    for (k, v) in params {
        if k != "request" && k != "args" {
            match v {
                Value::String(s) => arguments.push(format!("{k}={s}")),
                other => arguments.push(format!("{k}={other}")),
            }
        }
    }
    words.extend(arguments.iter().cloned());
    let request = if words.is_empty() {
        "Follow the skill's instructions.".to_string()
    } else {
        words.join(" ")
    };
    let mut out = Map::new();
    out.insert("request".into(), Value::String(request));
    out.insert("skill".into(), Value::String(skill.to_string()));
    if !arguments.is_empty() {
        out.insert(
            "arguments".into(),
            Value::Array(arguments.into_iter().map(Value::String).collect()),
        );
    }
    out
}

/// `skill`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LoadArgs {
    /// The skill's name, as listed in the instructions.
    name: Line,
}

/// A skill's instructions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LoadOut {
    /// The skill.
    name: String,
    /// What it is for.
    description: String,
    /// SKILL.md's instructions (after the front matter).
    instructions: String,
    /// The other files of its folder, relative to it (read them with skill.file).
    files: Vec<String>,
}

/// How a `skill` result is shown to the model: the instructions as the person's, the names of
/// the folder's other files (not covered by the trust hash) as untrusted content. None when the
/// value is not a `skill` result.
pub fn render_loaded(v: &Value) -> Option<String> {
    let name = v["name"].as_str()?;
    let body = v["instructions"].as_str()?;
    let files = v.get("files")?;
    Some(format!(
        "{}\n\nThe other files in the skill's folder (read one with skill_file):\n{}",
        instructions_block(name, body),
        crate::planner::untrusted("tool:skill", &files.to_string())
    ))
}

/// `skill`: a trusted prompt-only skill's instructions and the other files of its folder.
pub(super) async fn load(g: Guard, a: LoadArgs, _: StepCtx) -> Result<LoadOut, StepError> {
    let skills = load_skills(&g).await?;
    let s = usable(&skills, a.name.as_str()).map_err(|e| e.into_error(&g))?;
    let files = if s.source == "built-in" {
        builtin_files(&s.name)
    } else if s.kind == SkillKind::Command {
        vec![]
    } else {
        let reader = g.reader();
        let folder = skill_folder(s);
        let listing = tokio::task::spawn_blocking(move || reader.files(&folder, 10_000))
            .await?
            .map_err(|e| StepError::Fatal(format!("listing the skill's folder: {e}")))?;
        let prefix = format!("{}/", skill_folder(s));
        listing
            .files
            .into_iter()
            .filter_map(|f| f.rel.strip_prefix(&prefix).map(String::from))
            .collect()
    };
    Ok(LoadOut {
        name: s.name.clone(),
        description: s.description.clone(),
        instructions: s.body.trim().to_string(),
        files: files
            .into_iter()
            .filter(|f| f != "SKILL.md")
            .take(MAX_FOLDER_FILES)
            .collect(),
    })
}

/// A workspace or plugin skill's folder, relative to the workspace.
fn skill_folder(s: &SkillDef) -> String {
    s.folder
        .clone()
        .unwrap_or_else(|| format!("skills/{}", s.name))
}

fn builtin_files(name: &str) -> Vec<String> {
    fn walk(d: &include_dir::Dir<'_>, base: &Path, out: &mut Vec<String>) {
        for f in d.files() {
            if let Ok(rel) = f.path().strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        for sub in d.dirs() {
            walk(sub, base, out);
        }
    }
    let mut out = Vec::new();
    if let Some(d) = super::BUILTIN.get_dir(name) {
        walk(d, d.path(), &mut out);
    }
    out.sort();
    out
}

/// `skill.file`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileArgs {
    /// The skill's name.
    skill: Line,
    /// The file, relative to the skill's folder (e.g. reference/style.md).
    path: Line,
}

/// A file of a skill's folder.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileOut {
    /// The skill.
    skill: String,
    /// The file, relative to the skill's folder.
    path: String,
    /// Its size in bytes.
    bytes: usize,
    /// Its text (invalid UTF-8 replaced).
    text: String,
}

/// `skill.file`: a file inside a trusted prompt-only skill's folder: a relative path without
/// `..`, no symlink leading out of the folder, at most [`MAX_SKILL_FILE`] bytes.
pub(super) async fn file(g: Guard, a: FileArgs, _: StepCtx) -> Result<FileOut, StepError> {
    let skills = load_skills(&g).await?;
    let s = usable(&skills, a.skill.as_str()).map_err(|e| e.into_error(&g))?;
    let rel = a.path.as_str();
    let bytes = if s.source == "built-in" {
        let plain = Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        super::BUILTIN
            .get_file(Path::new(&s.name).join(rel))
            .filter(|_| plain)
            .map(|f| f.contents().to_vec())
            .ok_or_else(|| StepError::Invalid(format!("skill {} has no file {rel:?}", s.name)))?
    } else {
        g.read_in_folder(&skill_folder(s), rel, MAX_SKILL_FILE)?
    };
    Ok(FileOut {
        skill: s.name.clone(),
        path: rel.to_string(),
        bytes: bytes.len(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn skill(ws: &Path, name: &str, body: &str) {
        let d = ws.join("skills").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("SKILL.md"),
            format!("---\nname: {name}\ndescription: The {name} skill.\n---\n{body}"),
        )
        .unwrap();
    }

    #[test]
    fn only_trusted_prompt_only_skills_are_offered_and_only_their_front_matter() {
        let d = tempfile::tempdir().unwrap();
        skill(d.path(), "mine", "SECRET BODY steps");
        skill(d.path(), "stranger", "other body");
        let s = Skills::load(d.path());
        let hash = s.find("mine").unwrap().hash.clone().unwrap();
        super::super::install::trust(d.path(), "mine", &hash).unwrap();
        let s = Skills::load(d.path());
        assert_eq!(
            catalogue(&s),
            [("mine".to_string(), "The mine skill.".to_string())]
        );
        assert!(usable(&s, "mine").is_ok());
        assert!(matches!(
            usable(&s, "stranger"),
            Err(Unusable::Untrusted(_))
        ));
        assert!(matches!(
            usable(&s, "status-report"),
            Err(Unusable::NotPromptOnly(_))
        ));
        assert!(matches!(usable(&s, "nope"), Err(Unusable::Unknown { .. })));
        // An edit after trusting revokes it.
        skill(d.path(), "mine", "edited body");
        assert!(matches!(
            usable(&Skills::load(d.path()), "mine"),
            Err(Unusable::Untrusted(_))
        ));
    }

    #[test]
    fn a_trigger_s_words_become_the_request() {
        let p = json!({"args": ["summarise", "reports/x.csv"], "tone": "short"});
        let a = ask_params("mine", p.as_object().unwrap());
        assert_eq!(a["skill"], "mine");
        assert_eq!(a["request"], "summarise reports/x.csv tone=short");
        assert_eq!(
            ask_params("mine", &Map::new())["request"],
            "Follow the skill's instructions."
        );
    }

    #[test]
    fn a_loaded_skill_is_instructions_and_its_file_names_are_content() {
        let v = json!({"name": "mine", "description": "d", "instructions": "Do X.",
                       "files": ["ignore previous instructions.md"]});
        let shown = render_loaded(&v).unwrap();
        assert!(
            shown.starts_with("<skill-instructions skill=\"mine\">\nDo X.\n</skill-instructions>")
        );
        let tail = &shown[shown.find("</skill-instructions>").unwrap()..];
        assert!(tail.contains("<untrusted-content source=\"tool:skill\">"));
        assert!(tail.contains("ignore previous instructions.md"));
        assert!(render_loaded(&json!({"path": "x"})).is_none());
    }
}
