//! Marketplaces: a folder (or repository) with `.claude-plugin/marketplace.json` listing plugins
//! by name with their source. Deskhand installs from relative-path sources (inside the
//! marketplace's folder, after `metadata.pluginRoot` when the path is bare) and git sources
//! (`github`, `url`, `git-subdir`); other kinds (npm, pip) are refused with a clear message.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::manifest::inside;

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A folder on this machine.
    Local(PathBuf),
    /// A git repository, optionally a folder inside it, at a branch or tag.
    Git {
        /// What `git clone` is given.
        url: String,
        /// A folder inside the repository.
        subdir: Option<String>,
        /// A branch or tag.
        rev: Option<String>,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(p) => write!(f, "{}", p.display()),
            Source::Git { url, subdir, rev } => {
                write!(f, "{url}")?;
                if let Some(s) = subdir {
                    write!(f, "//{s}")?;
                }
                if let Some(r) = rev {
                    write!(f, " at {r}")?;
                }
                Ok(())
            }
        }
    }
}

/// One plugin listed in a marketplace.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// What the catalogue says of it.
    pub description: String,
    /// Where it comes from.
    pub source: Source,
}

/// One entry of a marketplace: the plugin, or its name and why it cannot be installed.
pub type Entry = Result<Listed, (String, String)>;

/// The marketplace.json of `dir`: `dir/.claude-plugin/marketplace.json`, or `dir/marketplace.json`.
fn file(dir: &Path) -> PathBuf {
    let nested = dir.join(".claude-plugin/marketplace.json");
    if nested.is_file() {
        nested
    } else {
        dir.join("marketplace.json")
    }
}

/// Whether `dir` holds a marketplace.
pub fn is_marketplace(dir: &Path) -> bool {
    file(dir).is_file()
}

/// The plugins `dir`'s marketplace lists; an entry whose source cannot be installed is an error
/// only when it is the one asked for ([`find`]), so it is listed with its reason.
pub fn list(dir: &Path) -> Result<Vec<Entry>, String> {
    let path = file(dir);
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{shown} is not valid JSON: {e}"))?;
    let root = v
        .pointer("/metadata/pluginRoot")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plugins = v
        .get("plugins")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{shown} has no \"plugins\" list"))?;
    let mut out = Vec::new();
    for p in plugins {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(format!("{shown}: a plugin entry has no \"name\""));
        };
        let description = p
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        out.push(
            source(dir, root, p.get("source").unwrap_or(&Value::Null))
                .map(|source| Listed {
                    name: name.to_string(),
                    description,
                    source,
                })
                .map_err(|why| (name.to_string(), why)),
        );
    }
    Ok(out)
}

/// The plugin `name` of `dir`'s marketplace.
pub fn find(dir: &Path, name: &str) -> Result<Listed, String> {
    let all = list(dir)?;
    let mut names = Vec::new();
    for entry in all {
        match entry {
            Ok(l) if l.name == name => return Ok(l),
            Err((n, why)) if n == name => {
                return Err(format!(
                    "plugin {name} of marketplace {}: {why}",
                    dir.display()
                ))
            }
            Ok(l) => names.push(l.name),
            Err((n, _)) => names.push(n),
        }
    }
    Err(format!(
        "marketplace {} lists no plugin {name:?}; it lists: {}",
        dir.display(),
        if names.is_empty() {
            "(none)".into()
        } else {
            names.join(", ")
        }
    ))
}

fn source(dir: &Path, plugin_root: &str, v: &Value) -> Result<Source, String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    match v {
        Value::String(s) => {
            // A bare name is under metadata.pluginRoot.
            let rel = if s.starts_with("./") || plugin_root.is_empty() {
                s.clone()
            } else {
                format!("{}/{s}", plugin_root.trim_end_matches('/'))
            };
            let rel = if rel.starts_with("./") {
                rel
            } else {
                format!("./{rel}")
            };
            inside(dir, &rel).map(Source::Local)
        }
        Value::Object(_) => match text("source").as_deref() {
            Some("github") => {
                let repo = text("repo").ok_or("a github source needs \"repo\": \"owner/name\"")?;
                if repo.split('/').count() != 2 || repo.contains("..") {
                    return Err(format!("github repo {repo:?} must be \"owner/name\""));
                }
                Ok(Source::Git {
                    url: format!("https://github.com/{repo}.git"),
                    subdir: None,
                    rev: text("ref"),
                })
            }
            Some("url") => Ok(Source::Git {
                url: text("url").ok_or("a url source needs \"url\"")?,
                subdir: None,
                rev: text("ref"),
            }),
            Some("git-subdir") => Ok(Source::Git {
                url: text("url").ok_or("a git-subdir source needs \"url\"")?,
                subdir: Some(text("path").ok_or("a git-subdir source needs \"path\"")?),
                rev: text("ref"),
            }),
            Some(other) => Err(format!(
                "source type {other:?} is not supported; Deskhand installs plugins from a \
                 relative path in the marketplace or from git (github, url, git-subdir)"
            )),
            None => Err("its source has no \"source\" type".into()),
        },
        _ => Err("it has no \"source\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_resolve_or_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".claude-plugin")).unwrap();
        std::fs::create_dir_all(dir.path().join("plugins/tidy")).unwrap();
        std::fs::write(
            dir.path().join(".claude-plugin/marketplace.json"),
            json!({"name": "m", "owner": {"name": "o"}, "metadata": {"pluginRoot": "./plugins"},
            "plugins": [
                {"name": "tidy", "source": "tidy", "description": "Tidies"},
                {"name": "gh", "source": {"source": "github", "repo": "acme/gh", "ref": "v1"}},
                {"name": "npm", "source": {"source": "npm", "package": "x"}},
                {"name": "escape", "source": "../elsewhere"},
            ]})
            .to_string(),
        )
        .unwrap();
        assert!(is_marketplace(dir.path()));
        let tidy = find(dir.path(), "tidy").unwrap();
        assert_eq!(
            tidy.source,
            Source::Local(dir.path().join("./plugins/tidy"))
        );
        let gh = find(dir.path(), "gh").unwrap();
        assert_eq!(
            gh.source.to_string(),
            "https://github.com/acme/gh.git at v1"
        );
        let e = find(dir.path(), "npm").unwrap_err();
        assert!(e.contains("\"npm\" is not supported"), "{e}");
        assert!(find(dir.path(), "escape").unwrap_err().contains("outside"));
        assert!(find(dir.path(), "nope")
            .unwrap_err()
            .contains("tidy, gh, npm, escape"));
    }
}
