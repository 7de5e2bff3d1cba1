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

use super::actions;
use super::{ParamDef, ParamType};

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

/// What a skill may touch. Deny by default: anything not listed is not allowed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Connector resources and the access needed: `gmail: read`, `notion: write`.
    #[serde(default)]
    pub connectors: BTreeMap<String, Access>,
    /// Browser origins (`https://*.example.com`), or `param:NAME` for the origin of a URL
    /// parameter given at run time.
    #[serde(default)]
    pub browser: Vec<String>,
    /// Workspace paths (globs) the skill may write (and read back).
    #[serde(default)]
    pub workspace: Vec<String>,
    /// Workspace paths (globs) the skill may read when a parameter names a file (an extraction
    /// schema, say). Never `.deskhand/`, never outside the workspace, whatever the glob says.
    #[serde(default)]
    pub read: Vec<String>,
    /// Consequential actions that may run without asking (`submit`, `send`, `overwrite`,
    /// `delete`, `external-write`).
    #[serde(default, rename = "without-asking")]
    pub without_asking: Vec<String>,
}

/// Read or read-and-write.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    Write,
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
    /// Arguments; `{{ params.NAME }}` is replaced by the job's parameter.
    #[serde(default, rename = "with")]
    pub args: Map<String, Value>,
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
    /// Whether skill.yaml exists (false: prompt-only, needs a planner).
    pub executable: bool,
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

    let (front, body) = match split_front_matter(files.skill_md) {
        Some((yaml, body)) => {
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
        trigger: trigger.or_else(|| executable.then(|| format!("/{}", front.name))),
        front,
        body,
        hash,
        params,
        schedule,
        permissions,
        steps,
        executable,
    })
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
        for (k, v) in &s.args {
            if !action.args.iter().any(|a| a.0 == k) {
                p(
                    file,
                    line_of(text, &format!("{k}:")).or(line),
                    format!(
                        "step {:?}: action {} takes no argument {k:?}; it takes {}",
                        s.id,
                        action.name,
                        action
                            .args
                            .iter()
                            .map(|a| a.0)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            for name in param_refs(v) {
                if !params.iter().any(|d| d.name == name) {
                    p(
                        file,
                        line_of(text, &format!("params.{name}")).or(line),
                        format!("step {:?} refers to unknown parameter {name:?}", s.id),
                    );
                }
            }
        }
        for a in action.args.iter().filter(|a| a.2) {
            if !s.args.contains_key(a.0) {
                p(
                    file,
                    line,
                    format!(
                        "step {:?}: action {} needs the argument {:?} in `with`",
                        s.id, action.name, a.0
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

/// The `{{ params.NAME }}` references in an argument value.
pub fn param_refs(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else {
                    break;
                };
                let inner = rest[start + 2..start + end].trim();
                if let Some(name) = inner.strip_prefix("params.") {
                    out.push(name.trim().to_string());
                }
                rest = &rest[start + end + 2..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| out.extend(param_refs(x))),
        Value::Object(o) => o.values().for_each(|x| out.extend(param_refs(x))),
        _ => {}
    }
    out
}

/// Replace `{{ params.NAME }}` in `v`: a string that is only a reference takes the parameter's
/// value with its type; references inside longer text are interpolated. Missing ones become null
/// (alone) or empty (inside text).
pub fn render(v: &Value, params: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
                if let Some(name) = t[2..t.len() - 2].trim().strip_prefix("params.") {
                    return params.get(name.trim()).cloned().unwrap_or(Value::Null);
                }
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else {
                    break;
                };
                out.push_str(&rest[..start]);
                let inner = rest[start + 2..start + end].trim();
                if let Some(name) = inner.strip_prefix("params.") {
                    match params.get(name.trim()) {
                        Some(Value::String(x)) => out.push_str(x),
                        Some(Value::Null) | None => {}
                        Some(x) => out.push_str(&x.to_string()),
                    }
                } else {
                    out.push_str(&rest[start..start + end + 2]);
                }
                rest = &rest[start + end + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render(x, params)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), render(x, params)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Split `---\nYAML\n---\nbody`.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
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
        let mut p = Map::new();
        p.insert("hours".into(), Value::from(6));
        assert_eq!(render(&m.steps[0].args["hours"], &p), Value::from(6));
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
        assert!(!m.executable && m.trigger.is_none() && m.steps.is_empty());
        let yaml_bad = "params:\n  when:\n    type: int\n    default: soon\n";
        let e = read(&files(MD, Some(yaml_bad))).unwrap_err();
        assert!(e[0].to_string().contains("skill.yaml:2:"), "{e:?}");
    }

    #[test]
    fn rendering_interpolates_and_keeps_types() {
        let mut p = Map::new();
        p.insert("url".into(), Value::from("https://x.test/a"));
        p.insert("n".into(), Value::from(3));
        let v = serde_json::json!({"u": "{{params.url}}", "t": "page {{ params.n }} of {{params.url}}", "k": ["{{ params.n }}"]});
        let r = render(&v, &p);
        assert_eq!(r["u"], "https://x.test/a");
        assert_eq!(r["t"], "page 3 of https://x.test/a");
        assert_eq!(r["k"][0], 3);
        let mut refs = param_refs(&v);
        refs.sort();
        assert_eq!(refs, vec!["n", "n", "url", "url"]);
    }
}
