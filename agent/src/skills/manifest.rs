//! Reading a skill folder: `SKILL.md` (an Agent Skill: YAML front matter with the format's fields
//! only, then prose) and, beside it, Deskhand's `skill.yaml` (trigger, typed params, schedule,
//! permissions, steps). Every problem is reported with its file and line, and a skill with any
//! problem is not loaded at all.
//!
//! The Agent Skills format (<https://agentskills.io/specification>) allows exactly `name`,
//! `description`, `license`, `compatibility`, `metadata` and `allowed-tools`; its reference
//! validator refuses anything else, which is why the executable part lives in `skill.yaml`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{actions, template};
use super::{ParamDef, ParamType};
pub use crate::guard::{Access, Permissions};

/// One problem found while loading a skill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The file, as shown to the person (`skills/status-report/skill.yaml`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The SKILL.md front matter, exactly the Agent Skills fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// Lowercase letters, digits and hyphens; equal to the folder name.
    pub name: String,
    /// What the skill does and when to use it.
    pub description: String,
    /// License name or bundled file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Environment requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<String>,
    /// Free key/value strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Space-separated pre-approved tools (experimental in the format).
    #[serde(
        default,
        rename = "allowed-tools",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_tools: Option<String>,
}

/// One parameter as written in skill.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<serde_norway::Value>,
    #[serde(default)]
    description: String,
}

/// One step as written in skill.yaml.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique within the skill.
    pub id: String,
    /// The action it runs (`gmail.sync`, `report.status`, ...).
    pub uses: String,
    /// Arguments: values, or templates over the job's parameters and the results of the steps
    /// this one needs (`{{ params.url }}`, `{{ steps.extract.path }}`; see [`super::template`]).
    #[serde(default, rename = "with")]
    pub args: Map<String, Value>,
    /// Where the step's output goes, instead of `reports/<skill>-<step>-<job>.<ext>`; must match
    /// the skill's workspace globs, and no two steps may name the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Steps whose output this one needs.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Per-attempt timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// skill.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkillYaml {
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    params: indexmap::IndexMap<String, ParamSpec>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    permissions: Permissions,
    #[serde(default)]
    steps: Vec<StepSpec>,
}

/// A skill folder, read and checked.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The Agent Skill part.
    pub front: FrontMatter,
    /// The prose body of SKILL.md.
    pub body: String,
    /// SHA-256 (hex) of SKILL.md and skill.yaml together: trust is bound to it.
    pub hash: String,
    /// `/name` unless skill.yaml says otherwise.
    pub trigger: Option<String>,
    /// Parameters.
    pub params: Vec<ParamDef>,
    /// A suggested schedule (cron), not installed by itself.
    pub schedule: Option<String>,
    /// What it may touch.
    pub permissions: Permissions,
    /// Steps; empty for a prompt-only skill.
    pub steps: Vec<StepSpec>,
    /// Whether skill.yaml exists (false: prompt-only, run by the planner).
    pub executable: bool,
    /// Fields ignored in a lenient read (`file: what`).
    pub warnings: Vec<String>,
}

/// The files of one skill folder, as text.
pub struct Files<'a> {
    /// The folder's name.
    pub folder: &'a str,
    /// How to name the folder in messages (`skills/status-report`).
    pub shown: &'a str,
    /// SKILL.md.
    pub skill_md: &'a str,
    /// skill.yaml, if present.
    pub skill_yaml: Option<&'a str>,
    /// A plugin's skill, written for Claude Code: front matter fields beyond the Agent Skills
    /// ones are warned about and ignored, and a missing `name` is the folder's.
    pub lenient: bool,
}

/// Read one skill folder; all problems or a whole manifest, never half.
pub fn read(files: &Files<'_>) -> Result<Manifest, Vec<Problem>> {
    let md_file = format!("{}/SKILL.md", files.shown);
    let yaml_file = format!("{}/skill.yaml", files.shown);
    let mut problems = Vec::new();
    let mut p = |file: &str, line: Option<usize>, message: String| {
        problems.push(Problem {
            file: file.to_string(),
            line,
            message,
        })
    };

    let mut warnings = Vec::new();
    let (front, body) = match split_front_matter(files.skill_md) {
        Some((yaml, body)) => {
            let kept;
            let yaml = if files.lenient {
                kept = lenient_front(yaml, files.folder, &md_file, &mut warnings);
                kept.as_str()
            } else {
                yaml
            };
            let front = match serde_norway::from_str::<FrontMatter>(yaml) {
                Ok(f) => Some(f),
                Err(e) => {
                    // The front matter starts on line 2, after the opening `---`.
                    let line = e.location().map(|l| yaml_line(yaml, l.line()) + 1);
                    p(
                        &md_file,
                        line,
                        format!(
                            "front matter is not a valid Agent Skill: {}{}",
                            strip_location(&e.to_string()),
                            if e.to_string().contains("unknown field") {
                                " (Deskhand's own settings belong in skill.yaml)"
                            } else {
                                ""
                            }
                        ),
                    );
                    None
                }
            };
            (front, body.to_string())
        }
        None => {
            p(
                &md_file,
                Some(1),
                "SKILL.md must start with YAML front matter between `---` lines".into(),
            );
            (None, String::new())
        }
    };
    if let Some(f) = &front {
        let line = |key: &str| line_of(files.skill_md, &format!("{key}:"));
        if let Err(m) = check_name(&f.name) {
            p(&md_file, line("name"), m);
        } else if f.name != files.folder {
            p(
                &md_file,
                line("name"),
                format!(
                    "name {:?} must equal the folder name {:?}; rename one of them",
                    f.name, files.folder
                ),
            );
        }
        if f.description.trim().is_empty() || f.description.chars().count() > 1024 {
            p(
                &md_file,
                line("description"),
                "description must be 1 to 1024 characters saying what the skill does and when to use it".into(),
            );
        }
        if f.compatibility
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.chars().count() > 500)
        {
            p(
                &md_file,
                line("compatibility"),
                "compatibility must be 1 to 500 characters".into(),
            );
        }
    }

    let mut manifest_rest = None;
    if let Some(yaml) = files.skill_yaml {
        match serde_norway::from_str::<SkillYaml>(if yaml.trim().is_empty() { "{}" } else { yaml })
        {
            Ok(y) => manifest_rest = Some(check_yaml(y, yaml, &yaml_file, &mut p)),
            Err(e) => p(
                &yaml_file,
                e.location().map(|l| yaml_line(yaml, l.line())),
                strip_location(&e.to_string()),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let front = front.expect("no problems means the front matter parsed");
    let hash = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(files.skill_md.as_bytes());
        h.update([0u8]);
        h.update(files.skill_yaml.unwrap_or_default().as_bytes());
        hex(&h.finalize())
    };
    let executable = files.skill_yaml.is_some();
    let (trigger, params, schedule, permissions, steps) = manifest_rest.unwrap_or_default();
    Ok(Manifest {
        // A prompt-only skill's `/name` runs the planner with its instructions.
        trigger: trigger.or_else(|| Some(format!("/{}", front.name))),
        front,
        body,
        hash,
        params,
        schedule,
        permissions,
        steps,
        executable,
        warnings,
    })
}

/// The Agent Skills fields of a plugin skill's front matter, as YAML; every other field is a
/// warning (Claude Code adds its own, such as `argument-hint` or `model`). Not a mapping: given
/// back as it is, for the strict reader to say what is wrong.
fn lenient_front(yaml: &str, folder: &str, file: &str, warnings: &mut Vec<String>) -> String {
    const KNOWN: &[&str] = &[
        "name",
        "description",
        "license",
        "compatibility",
        "metadata",
        "allowed-tools",
    ];
    let Ok(serde_norway::Value::Mapping(mut map)) = serde_norway::from_str(yaml) else {
        return yaml.to_string();
    };
    let unknown: Vec<String> = map
        .keys()
        .filter_map(|k| k.as_str())
        .filter(|k| !KNOWN.contains(k))
        .map(String::from)
        .collect();
    for k in unknown {
        map.remove(k.as_str());
        warnings.push(format!("{file}: front matter field {k:?} is ignored"));
    }
    if !map.contains_key("name") {
        map.insert("name".into(), folder.into());
    }
    // `allowed-tools` may be a YAML list in Claude Code; the format says a space-separated string.
    if let Some(serde_norway::Value::Sequence(tools)) = map.get("allowed-tools") {
        let joined: Vec<String> = tools
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        map.insert("allowed-tools".into(), joined.join(" ").into());
    }
    serde_norway::to_string(&map).unwrap_or_else(|_| yaml.to_string())
}

type Checked = (
    Option<String>,
    Vec<ParamDef>,
    Option<String>,
    Permissions,
    Vec<StepSpec>,
);

fn check_yaml(
    y: SkillYaml,
    text: &str,
    file: &str,
    p: &mut impl FnMut(&str, Option<usize>, String),
) -> Checked {
    if let Some(t) = &y.trigger {
        if !t.starts_with('/') || check_name(t.trim_start_matches('/')).is_err() {
            p(
                file,
                line_of(text, "trigger:"),
                format!("trigger {t:?} must be '/' and a name of lowercase letters, digits and hyphens, e.g. /status-report"),
            );
        }
    }
    let mut params = Vec::new();
    for (name, spec) in &y.params {
        let line = line_of(text, &format!("{name}:"));
        let kind = match spec.kind.as_str() {
            "url" => ParamType::Url,
            "string" => ParamType::String,
            "text" => ParamType::Text,
            "json" => ParamType::Json,
            "bool" | "boolean" => ParamType::Bool,
            "int" | "integer" => ParamType::Int,
            "date" => ParamType::Date,
            other => {
                p(
                    file,
                    line,
                    format!("parameter {name:?} has unknown type {other:?}; use url, string, text, json, bool, int or date"),
                );
                continue;
            }
        };
        let mut def = ParamDef {
            name: name.clone(),
            kind,
            required: spec.required,
            default: None,
            description: spec.description.clone(),
        };
        if let Some(d) = &spec.default {
            let json = serde_json::to_value(d).unwrap_or(Value::Null);
            match super::coerce(&def, json) {
                Ok(v) => def.default = Some(v),
                Err(e) => p(
                    file,
                    line,
                    format!("default of parameter {name:?} does not fit its type: {e}"),
                ),
            }
        }
        params.push(def);
    }
    if let Some(cron) = &y.schedule {
        if let Err(e) = deskhand_schedule::Cron::parse(cron, "UTC") {
            p(file, line_of(text, "schedule:"), format!("schedule: {e}"));
        }
    }
    for kind in y.permissions.connectors.keys() {
        if !matches!(kind.as_str(), "gmail" | "calendar" | "notion") {
            p(
                file,
                line_of(text, &format!("{kind}:")),
                format!("unknown connector {kind:?} in permissions; use gmail, calendar or notion"),
            );
        }
    }
    for a in &y.permissions.without_asking {
        if !actions::CONSEQUENTIAL.contains(&a.as_str()) {
            p(
                file,
                line_of(text, a),
                format!(
                    "unknown consequential action {a:?}; use one of {}",
                    actions::CONSEQUENTIAL.join(", ")
                ),
            );
        }
    }
    for b in &y.permissions.browser {
        if let Some(param) = b.strip_prefix("param:") {
            if !params
                .iter()
                .any(|d| d.name == param && d.kind == ParamType::Url)
            {
                p(
                    file,
                    line_of(text, b),
                    format!("browser permission {b:?} names no url parameter {param:?}"),
                );
            }
        }
    }
    let ids: Vec<&str> = y.steps.iter().map(|s| s.id.as_str()).collect();
    for (i, s) in y.steps.iter().enumerate() {
        let line = line_of(text, &format!("id: {}", s.id)).or_else(|| line_of(text, "steps:"));
        if ids[..i].contains(&s.id.as_str()) {
            p(file, line, format!("two steps have the id {:?}", s.id));
        }
        for n in &s.needs {
            if !ids.contains(&n.as_str()) {
                p(
                    file,
                    line,
                    format!("step {:?} needs unknown step {n:?}", s.id),
                );
            }
        }
        let Some(action) = actions::find(&s.uses) else {
            p(
                file,
                line_of(text, &format!("uses: {}", s.uses)).or(line),
                format!(
                    "step {:?} uses unknown action {:?}; known actions: {}",
                    s.id,
                    s.uses,
                    actions::names().join(", ")
                ),
            );
            continue;
        };
        let args = action.params();
        for (k, v) in &s.args {
            let at = line_of(text, &format!("{k}:")).or(line);
            let Some(def) = args.iter().find(|a| &a.name == k) else {
                p(
                    file,
                    at,
                    format!(
                        "step {:?}: action {} takes no argument {k:?}; it takes {}",
                        s.id,
                        action.name,
                        args.iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            match template::refs(v) {
                Ok(refs) if refs.is_empty() => {
                    // A plain value: it must fit the argument's type now, not when it runs.
                    if let Err(e) = super::coerce(def, v.clone()) {
                        p(file, at, format!("step {:?}: argument {k:?}: {e}", s.id));
                    }
                }
                Ok(refs) => {
                    for r in refs {
                        if let Some(m) = bad_ref(&r, s, &y.steps, &params) {
                            p(file, at, format!("step {:?}: argument {k:?}: {m}", s.id));
                        }
                    }
                }
                Err(e) => p(file, at, format!("step {:?}: argument {k:?}: {e}", s.id)),
            }
        }
        for a in args.iter().filter(|a| a.required) {
            if !s.args.contains_key(&a.name) {
                p(
                    file,
                    line,
                    format!(
                        "step {:?}: action {} needs the argument {:?} in `with`",
                        s.id, action.name, a.name
                    ),
                );
            }
        }
        if let Some(path) = &s.path {
            let at = line_of(text, &format!("path: {path}")).or(line);
            if !action.writes_output() {
                p(
                    file,
                    at,
                    format!(
                        "step {:?}: action {} writes no output file to name",
                        s.id, action.name
                    ),
                );
            } else if !actions::path_allowed(&y.permissions.workspace, path) {
                p(
                    file,
                    at,
                    format!(
                        "step {:?}: path {path:?} is not in the skill's workspace permissions; \
                         add a glob matching it",
                        s.id
                    ),
                );
            }
            let stem = crate::guard::with_extension(path, "");
            if let Some(other) = y.steps[..i].iter().find(|o| {
                o.path
                    .as_deref()
                    .is_some_and(|q| crate::guard::with_extension(q, "") == stem)
            }) {
                p(
                    file,
                    at,
                    format!(
                        "steps {:?} and {:?} would write the same file {path:?}; give each its own path",
                        other.id, s.id
                    ),
                );
            }
        }
        if let Err(m) = action.permitted(&y.permissions) {
            p(
                file,
                line,
                format!("step {:?} ({}) needs permission: {m}", s.id, action.name),
            );
        }
    }
    if let Some(cycle) = needs_cycle(&y.steps) {
        let first = cycle[0];
        let message = if cycle.len() == 2 {
            format!("step {first:?} needs itself; a step cannot wait for its own output")
        } else {
            let path: Vec<String> = cycle.iter().map(|id| format!("{id:?}")).collect();
            format!(
                "steps wait for each other in a cycle: {}; remove one of these `needs`",
                path.join(" -> ")
            )
        };
        p(
            file,
            line_of(text, &format!("id: {first}")).or_else(|| line_of(text, "steps:")),
            message,
        );
    }
    (y.trigger, params, y.schedule, y.permissions, y.steps)
}

/// What is wrong with a template's reference in step `s`, if anything.
fn bad_ref(
    r: &template::Ref,
    s: &StepSpec,
    steps: &[StepSpec],
    params: &[ParamDef],
) -> Option<String> {
    match r {
        template::Ref::Param(name) => (!params.iter().any(|d| &d.name == name))
            .then(|| format!("refers to unknown parameter {name:?}")),
        template::Ref::Job => None,
        template::Ref::Unknown(name) => Some(format!(
            "refers to {name:?}; templates know only {}",
            template::ROOTS
                .iter()
                .map(|r| format!("{r}.…"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        template::Ref::Step { id, field } => {
            let Some(other) = steps.iter().find(|o| &o.id == id) else {
                return Some(format!("refers to unknown step {id:?}"));
            };
            if !s.needs.contains(id) {
                return Some(format!(
                    "refers to step {id:?}, which it does not wait for; add {id:?} to its `needs`"
                ));
            }
            let fields = actions::find(&other.uses)?.output_fields();
            match field {
                Some(f) if !fields.is_empty() && !fields.contains(f) => Some(format!(
                    "step {id:?} ({}) gives no {f:?}; it gives {}",
                    other.uses,
                    fields.join(", ")
                )),
                _ => None,
            }
        }
    }
}

/// The first cycle in the steps' `needs`, as step ids from a step back to itself
/// (`[a, a]` for a step that needs itself), or None when the steps can run in some order.
fn needs_cycle(steps: &[StepSpec]) -> Option<Vec<&str>> {
    // Depth-first search with three colours; the stack holds the path being explored.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        i: usize,
        steps: &'a [StepSpec],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<&'a str>> {
        marks[i] = Mark::Open;
        path.push(i);
        for n in &steps[i].needs {
            let Some(j) = steps.iter().position(|s| &s.id == n) else {
                continue; // reported as an unknown step elsewhere
            };
            match marks[j] {
                Mark::Open => {
                    let from = path.iter().position(|&k| k == j).unwrap_or(0);
                    let mut ids: Vec<&str> =
                        path[from..].iter().map(|&k| steps[k].id.as_str()).collect();
                    ids.push(steps[j].id.as_str());
                    return Some(ids);
                }
                Mark::New => {
                    if let Some(c) = visit(j, steps, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; steps.len()];
    for i in 0..steps.len() {
        if marks[i] == Mark::New {
            if let Some(c) = visit(i, steps, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// A skill folder's files, read from disk.
pub struct OnDisk {
    /// The folder's name.
    pub folder: String,
    /// SKILL.md.
    pub skill_md: String,
    /// skill.yaml, if present.
    pub skill_yaml: Option<String>,
}

impl OnDisk {
    /// Read the skill folder `dir` (shown in messages as `shown`); a problem names the file.
    pub fn read(dir: &std::path::Path, shown: &str) -> Result<OnDisk, Problem> {
        let skill_md = std::fs::read_to_string(dir.join("SKILL.md")).map_err(|e| Problem {
            file: format!("{shown}/SKILL.md"),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Ok(OnDisk {
            folder: dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string(),
            skill_yaml: read_steps_file(dir, shown)?,
            skill_md,
        })
    }

    /// Read and check the skill: [`read`] of these files.
    pub fn manifest(&self, shown: &str, lenient: bool) -> Result<Manifest, Vec<Problem>> {
        read(&Files {
            folder: &self.folder,
            shown,
            skill_md: &self.skill_md,
            skill_yaml: self.skill_yaml.as_deref(),
            lenient,
        })
    }
}

/// A skill folder's `skill.yaml`: `Ok(None)` when there is none, a problem when it exists but is
/// not a readable UTF-8 file (never mistaken for a missing file, which would make it prompt-only).
pub fn read_steps_file(folder: &std::path::Path, shown: &str) -> Result<Option<String>, Problem> {
    let path = folder.join("skill.yaml");
    let file = format!("{shown}/skill.yaml");
    let problem = |line, message: String| Problem {
        file: file.clone(),
        line,
        message,
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(problem(None, format!("cannot be read: {e}"))),
    };
    if !meta.is_file() {
        return Err(problem(
            None,
            "is not a regular file (a folder or a link); a skill's steps belong in a plain file named skill.yaml".into(),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| problem(None, format!("cannot be read: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            let column = 1 + good.iter().rev().take_while(|&&b| b != b'\n').count();
            Err(problem(
                Some(line),
                format!("is not valid UTF-8 text (column {column}); save it as UTF-8"),
            ))
        }
    }
}

/// Agent Skills name rules: 1–64 of a-z, 0-9 and `-`, not at either end, never two in a row.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 1-64 lowercase letters, digits and single hyphens, not starting or ending with a hyphen"
        ))
    }
}

/// Split `---\nYAML\n---\nbody`.
pub(crate) fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

/// A line serde_norway reported, kept inside `text`: at the end of input it points one past an
/// unterminated last line (found by fuzzing, issue 14). Lines end as YAML ends them: `\n`,
/// `\r\n`, a lone `\r`, NEL, LS or PS.
fn yaml_line(text: &str, line: usize) -> usize {
    let breaks = text
        .replace("\r\n", "\n")
        .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .count();
    line.clamp(1, breaks + 1)
}

/// 1-based line of the first line containing `needle` (for messages about parsed values).
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// serde_norway appends " at line N column M"; we print the line ourselves.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(md: &'a str, yaml: Option<&'a str>) -> Files<'a> {
        Files {
            folder: "weekly-note",
            shown: "skills/weekly-note",
            skill_md: md,
            skill_yaml: yaml,
            lenient: false,
        }
    }

    const MD: &str = "---\nname: weekly-note\ndescription: Writes a note.\nlicense: MIT\nmetadata:\n  author: ada\n---\n# Weekly note\nProse.\n";

    #[test]
    fn a_problem_at_the_end_of_a_file_is_on_its_last_line() {
        // serde_norway says line 3 for this two-line file (the end of input, past its last line).
        let e = read(&files(MD, Some("trigger: /weekly-note\nsteps (\"x\""))).unwrap_err();
        assert_eq!(e[0].line, Some(2), "{e:?}");
    }

    #[test]
    fn a_valid_skill_loads_with_its_trigger_and_typed_params() {
        let yaml = "params:\n  hours:\n    type: int\n    default: 24\nsteps:\n  - id: digest\n    uses: report.inbox-digest\n    with:\n      hours: \"{{ params.hours }}\"\npermissions:\n  connectors:\n    gmail: read\n  workspace: [\"reports/**\"]\n";
        let m = read(&files(MD, Some(yaml))).unwrap();
        assert_eq!(m.trigger.as_deref(), Some("/weekly-note"));
        assert_eq!(m.params[0].default, Some(Value::from(24)));
        assert_eq!(m.front.metadata["author"], "ada");
        assert!(m.body.starts_with("# Weekly note"));
        assert_eq!(m.steps[0].args["hours"], "{{ params.hours }}");
    }

    #[test]
    fn every_problem_is_reported_with_file_and_line() {
        let md = "---\nname: Weekly_Note\ndescription: x\ntrigger: /x\n---\nbody";
        let errs = read(&files(md, None)).unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .starts_with("skills/weekly-note/SKILL.md:4:")
                && errs[0].message.contains("unknown field `trigger`")
                && errs[0].message.contains("skill.yaml"),
            "{errs:?}"
        );
        let yaml = "params:\n  n:\n    type: number\nsteps:\n  - id: a\n    uses: gmail.sync\n  - id: b\n    uses: mail.teleport\n    needs: [zz]\n";
        let errs = read(&files(MD, Some(yaml))).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("skill.yaml:2:") && e.contains("unknown type \"number\"")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("skill.yaml:5:")
                && e.contains("needs permission")
                && e.contains("gmail")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("skill.yaml:8:")
                    && e.contains("unknown action \"mail.teleport\"")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("unknown step \"zz\"")),
            "{text:?}"
        );
        let bad_name = MD.replace("name: weekly-note", "name: other-name");
        assert!(read(&files(&bad_name, None)).unwrap_err()[0]
            .message
            .contains("must equal the folder name"));
        assert!(
            check_name("a--b").is_err() && check_name("-a").is_err() && check_name("ok-1").is_ok()
        );
    }

    #[test]
    fn cycles_in_needs_are_load_errors_with_line_and_step_ids() {
        let yaml = "steps:\n  - id: pull\n    uses: gmail.sync\n    needs: [write]\n  - id: sum\n    uses: gmail.sync\n    needs: [pull]\n  - id: write\n    uses: gmail.sync\n    needs: [sum]\npermissions:\n  connectors:\n    gmail: read\n";
        let errs = read(&files(MD, Some(yaml))).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("skills/weekly-note/skill.yaml:2:")
                    && e.contains("\"pull\" -> \"write\" -> \"sum\" -> \"pull\"")),
            "{text:?}"
        );
        let own = "steps:\n  - id: a\n    uses: gmail.sync\n  - id: b\n    uses: gmail.sync\n    needs: [a, b]\npermissions:\n  connectors:\n    gmail: read\n";
        let errs = read(&files(MD, Some(own))).unwrap_err();
        assert!(
            errs.len() == 1
                && errs[0]
                    .to_string()
                    .starts_with("skills/weekly-note/skill.yaml:4:")
                && errs[0].message.contains("step \"b\" needs itself"),
            "{errs:?}"
        );
        let fine = own.replace("needs: [a, b]", "needs: [a]");
        assert!(read(&files(MD, Some(&fine))).is_ok());
    }

    #[test]
    fn a_skill_md_alone_is_prompt_only() {
        let m = read(&files(MD, None)).unwrap();
        assert!(!m.executable && m.steps.is_empty());
        assert_eq!(m.trigger.as_deref(), Some(&*format!("/{}", m.front.name)));
        let yaml_bad = "params:\n  when:\n    type: int\n    default: soon\n";
        let e = read(&files(MD, Some(yaml_bad))).unwrap_err();
        assert!(e[0].to_string().contains("skill.yaml:2:"), "{e:?}");
    }

    #[test]
    fn step_references_are_checked_at_load_with_their_line() {
        let head = "permissions:\n  connectors:\n    gmail: write\n  browser: [\"https://example.com\"]\n  workspace: [\"reports/**\"]\nsteps:\n  - id: extract\n    uses: browser.extract\n    with:\n      url: https://example.com/\n      schema: {items: li, fields: {a: b}}\n";
        let mail = |body: &str, needs: &str| {
            format!("{head}  - id: mail\n    uses: gmail.send\n{needs}    with:\n      to: a@example.com\n      subject: Done\n      body: \"{body}\"\n")
        };
        let ok = mail(
            "{{ steps.extract.count }} records in {{ steps.extract.path }}",
            "    needs: [extract]\n",
        );
        assert!(
            read(&files(MD, Some(&ok))).is_ok(),
            "{:?}",
            read(&files(MD, Some(&ok))).err()
        );
        let cases = [
            (
                mail("{{ steps.extrakt.path }}", "    needs: [extract]\n"),
                "unknown step \"extrakt\"",
            ),
            (
                mail("{{ steps.extract.path }}", ""),
                "add \"extract\" to its `needs`",
            ),
            (
                mail("{{ steps.extract.file }}", "    needs: [extract]\n"),
                "gives no \"file\"; it gives",
            ),
            (
                mail("{{ env.HOME }}", "    needs: [extract]\n"),
                "templates know only",
            ),
            (
                mail("{{ steps.extract.path ", "    needs: [extract]\n"),
                "template syntax",
            ),
        ];
        for (yaml, want) in cases {
            let errs = read(&files(MD, Some(&yaml))).unwrap_err();
            let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            let body_line = yaml.lines().position(|l| l.contains("body:")).unwrap() + 1;
            assert!(
                text.iter()
                    .any(|e| e.contains(&format!("skill.yaml:{body_line}:")) && e.contains(want)),
                "{want}: {text:?}"
            );
        }
    }

    #[test]
    fn output_paths_and_literal_arguments_are_checked_at_load() {
        let yaml = "permissions:\n  browser: [\"https://example.com\"]\n  workspace: [\"reports/**\"]\nsteps:\n  - id: a\n    uses: browser.extract\n    path: reports/leads.csv\n    with:\n      url: https://example.com/\n      schema: {items: li, fields: {a: b}}\n  - id: b\n    uses: browser.extract\n    path: reports/leads.json\n    with:\n      url: https://example.com/\n      schema: {items: li, fields: {a: b}}\n      max_pages: many\n  - id: c\n    uses: browser.extract\n    path: elsewhere/x.csv\n    with:\n      url: https://example.com/\n      schema: {items: li, fields: {a: b}}\n";
        let errs = read(&files(MD, Some(yaml))).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("skill.yaml:13:") && e.contains("same file")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("skill.yaml:17:") && e.contains("\"max_pages\"")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("skill.yaml:20:") && e.contains("workspace permissions")),
            "{text:?}"
        );
    }
}
