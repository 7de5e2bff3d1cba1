//! Reading a plugin folder in the Claude Code plugin format: `.claude-plugin/plugin.json`
//! (optional: without it the folder's name is the plugin's), `skills/`, `commands/`, `agents/`,
//! `hooks/hooks.json` and `.mcp.json`. Component paths in plugin.json start with `./` and stay
//! inside the plugin; `skills` adds to the default folder, `commands` and `agents` replace
//! theirs. Fields Deskhand does not know are warnings, never errors: plugins are written for
//! other agents too.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use super::agents::{self, AgentDef};
use super::commands::{self, CommandDef};
use super::hooks::{self, Hook};
use super::servers::{self, Server};
use crate::skills::manifest::{self, Manifest, Problem};

/// A plugin, read and checked.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Its name: lowercase letters, digits and single hyphens.
    pub name: String,
    /// `version` of plugin.json.
    pub version: Option<String>,
    /// What it is for.
    pub description: String,
    /// The folder it was read from.
    pub root: PathBuf,
    /// Its skills (Agent Skills; a `skill.yaml` beside one makes it a workflow).
    pub skills: Vec<PluginSkill>,
    /// Its slash commands.
    pub commands: Vec<CommandDef>,
    /// Its sub-agents.
    pub agents: Vec<AgentDef>,
    /// Its MCP servers.
    pub servers: Vec<Server>,
    /// Its hooks.
    pub hooks: Vec<Hook>,
    /// Fields and parts that are ignored, said at install.
    pub warnings: Vec<String>,
}

/// One skill of a plugin.
#[derive(Debug, Clone)]
pub struct PluginSkill {
    /// Its folder.
    pub dir: PathBuf,
    /// What it declares (its own name, without the plugin's).
    pub manifest: Manifest,
}

/// plugin.json fields Deskhand reads.
const READ_FIELDS: &[&str] = &[
    "name",
    "version",
    "description",
    "skills",
    "commands",
    "agents",
    "hooks",
    "mcpServers",
];
/// plugin.json fields that only describe the plugin (shown, not used).
const INFO_FIELDS: &[&str] = &[
    "author",
    "homepage",
    "repository",
    "license",
    "keywords",
    "$schema",
];

/// Whether `name` is a plugin name: `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "plugin name {name:?} must be lowercase letters, digits and single hyphens, starting \
             with a letter (at most 64 characters)"
        ))
    }
}

/// Read the plugin in `root`; every problem, or a whole plugin.
pub fn read(root: &Path) -> Result<Plugin, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let shown = root.display().to_string();
    let mut bad = |file: &str, message: String| {
        problems.push(Problem {
            file: file.to_string(),
            line: None,
            message,
        })
    };
    let json_file = ".claude-plugin/plugin.json".to_string();
    let json: Map<String, Value> = match std::fs::read(root.join(".claude-plugin/plugin.json")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => {
            bad(&json_file, format!("cannot read: {e}"));
            Map::new()
        }
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                bad(&json_file, "must be a JSON object".into());
                Map::new()
            }
            Err(e) => {
                bad(&json_file, format!("is not valid JSON: {e}"));
                Map::new()
            }
        },
    };
    let has_json = root.join(".claude-plugin/plugin.json").is_file();
    for k in json.keys() {
        if !READ_FIELDS.contains(&k.as_str()) && !INFO_FIELDS.contains(&k.as_str()) {
            warnings.push(format!(
                "{json_file}: field {k:?} is not supported and is ignored"
            ));
        }
    }
    let name = match json.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(_) => {
            bad(&json_file, "\"name\" must be a string".into());
            String::new()
        }
        None if has_json => {
            bad(
                &json_file,
                "\"name\" is required when plugin.json is present".into(),
            );
            String::new()
        }
        None => root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_default(),
    };
    if let Err(m) = check_name(&name) {
        bad(if has_json { &json_file } else { shown.as_str() }, m);
    }
    let text = |k: &str| json.get(k).and_then(Value::as_str).map(String::from);
    let version = text("version");
    let description = text("description").unwrap_or_default();

    // Component locations: the defaults, and what plugin.json adds or puts instead.
    let paths = |field: &str, problems: &mut Vec<Problem>| -> Option<Vec<PathBuf>> {
        let v = json.get(field)?;
        let list: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) if a.iter().all(Value::is_string) => {
                a.iter().filter_map(Value::as_str).collect()
            }
            _ => {
                problems.push(Problem {
                    file: json_file.clone(),
                    line: None,
                    message: format!("{field:?} must be a path or a list of paths"),
                });
                return Some(vec![]);
            }
        };
        let mut out = Vec::new();
        for p in list {
            match inside(root, p) {
                Ok(path) => out.push(path),
                Err(m) => problems.push(Problem {
                    file: json_file.clone(),
                    line: None,
                    message: format!("{field:?}: {m}"),
                }),
            }
        }
        Some(out)
    };
    let mut skill_dirs = vec![root.join("skills")];
    skill_dirs.extend(paths("skills", &mut problems).unwrap_or_default());
    let command_paths =
        paths("commands", &mut problems).unwrap_or_else(|| vec![root.join("commands")]);
    let agent_paths = paths("agents", &mut problems).unwrap_or_else(|| vec![root.join("agents")]);

    let mut plugin = Plugin {
        name: name.clone(),
        version,
        description,
        root: root.to_path_buf(),
        skills: vec![],
        commands: vec![],
        agents: vec![],
        servers: vec![],
        hooks: vec![],
        warnings: vec![],
    };
    read_skills(root, &skill_dirs, &mut plugin, &mut problems, &mut warnings);
    for (f, n) in md_files(&command_paths) {
        match commands::read(root, &f, n) {
            Ok((c, w)) => {
                warnings.extend(w);
                plugin.commands.push(c);
            }
            Err(p) => problems.push(p),
        }
    }
    for (f, n) in md_files(&agent_paths) {
        match agents::read(root, &f, n) {
            Ok((a, w)) => {
                warnings.extend(w);
                plugin.agents.push(a);
            }
            Err(p) => problems.push(p),
        }
    }
    // Hooks and MCP servers: their default file, a path in plugin.json, or inline there.
    let component = |field: &str, default: &str, problems: &mut Vec<Problem>| {
        let mut bad = |message: String| {
            problems.push(Problem {
                file: json_file.clone(),
                line: None,
                message,
            });
            None
        };
        match json.get(field) {
            Some(Value::Object(inline)) => Some((json_file.clone(), Value::Object(inline.clone()))),
            Some(Value::String(p)) => match inside(root, p) {
                Ok(path) => read_json(root, &path, problems),
                Err(m) => bad(format!("{field:?}: {m}")),
            },
            Some(_) => bad(format!("{field:?} must be a path or an object")),
            None => read_json(root, &root.join(default), problems),
        }
    };
    let fault = |file: String, message: String| Problem {
        file,
        line: None,
        message,
    };
    if let Some((file, v)) = component("hooks", "hooks/hooks.json", &mut problems) {
        match hooks::parse(&file, &v) {
            Ok((h, w)) => {
                plugin.hooks = h;
                warnings.extend(w);
            }
            Err(m) => problems.push(fault(file, m)),
        }
    }
    if let Some((file, v)) = component("mcpServers", ".mcp.json", &mut problems) {
        match servers::parse(&name, &file, &v) {
            Ok((s, w)) => {
                plugin.servers = s;
                warnings.extend(w);
            }
            Err(m) => problems.push(fault(file, m)),
        }
    }
    let mut seen = BTreeMap::new();
    for n in plugin
        .skills
        .iter()
        .map(|s| s.manifest.front.name.as_str())
        .chain(plugin.commands.iter().map(|c| c.name.as_str()))
    {
        if seen.insert(n.to_string(), ()).is_some() {
            problems.push(Problem {
                file: shown.clone(),
                line: None,
                message: format!(
                    "two skills or commands are named {n:?}; /{name}:{n} must name one thing"
                ),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    plugin.warnings = warnings;
    Ok(plugin)
}

fn read_skills(
    root: &Path,
    dirs: &[PathBuf],
    plugin: &mut Plugin,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) {
    let mut folders = Vec::new();
    for d in dirs {
        if d.join("SKILL.md").is_file() {
            folders.push(d.clone());
        } else if let Ok(entries) = std::fs::read_dir(d) {
            folders.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("SKILL.md").is_file()),
            );
        }
    }
    folders.sort();
    folders.dedup();
    for f in folders {
        let shown = relative(root, &f);
        let read = manifest::OnDisk::read(&f, &shown).map_err(|p| vec![p]);
        match read.and_then(|on| on.manifest(&shown, true)) {
            Ok(m) => {
                warnings.extend(m.warnings.iter().cloned());
                plugin.skills.push(PluginSkill {
                    dir: f,
                    manifest: m,
                });
            }
            Err(p) => problems.extend(p),
        }
    }
}

/// The `.md` files of the given files and folders (folders recursively), sorted, each with its
/// name: the file's stem, with the subfolders under the given folder before it
/// (`commands/git/commit.md` is `git:commit`).
fn md_files(paths: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            out.push((p.clone(), stem));
        } else if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.filter_map(Result::ok) {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "md") {
                        let name = path
                            .strip_prefix(p)
                            .unwrap_or(&path)
                            .with_extension("")
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy().to_string())
                            .collect::<Vec<_>>()
                            .join(":");
                        out.push((path, name));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn read_json(root: &Path, path: &Path, problems: &mut Vec<Problem>) -> Option<(String, Value)> {
    let file = relative(root, path);
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            problems.push(Problem {
                file,
                line: None,
                message: format!("cannot read: {e}"),
            });
            None
        }
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(v) => Some((file, v)),
            Err(e) => {
                problems.push(Problem {
                    file,
                    line: None,
                    message: format!("is not valid JSON: {e}"),
                });
                None
            }
        },
    }
}

/// `p` (a component path from plugin.json) inside `root`: written `./…`, no `..`, and not
/// leading out through a symbolic link.
pub fn inside(root: &Path, p: &str) -> Result<PathBuf, String> {
    if !p.starts_with("./") {
        return Err(format!(
            "{p:?} must be relative to the plugin's folder and start with \"./\""
        ));
    }
    let rel = Path::new(p);
    if rel.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(format!("{p:?} leads outside the plugin's folder"));
    }
    let full = root.join(rel);
    if let (Ok(real), Ok(base)) = (full.canonicalize(), root.canonicalize()) {
        if !real.starts_with(&base) {
            return Err(format!("{p:?} leads outside the plugin's folder"));
        }
    }
    Ok(full)
}

/// `path` as shown relative to the plugin (`commands/hello.md`).
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_follow_the_format() {
        assert!(check_name("productivity").is_ok());
        assert!(check_name("git-tools2").is_ok());
        for bad in ["", "Git", "-x", "x-", "a--b", "a_b", "9lives"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn component_paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("extra")).unwrap();
        assert!(inside(dir.path(), "./extra").is_ok());
        assert!(inside(dir.path(), "extra").is_err());
        assert!(inside(dir.path(), "./../x").is_err());
        assert!(inside(dir.path(), "./a/../../x").is_err());
        std::os::unix::fs::symlink("/etc", dir.path().join("out")).unwrap();
        let e = inside(dir.path(), "./out").unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }
}
