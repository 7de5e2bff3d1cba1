//! `deskhand skills install PATH|GIT-URL`: copy a skill, or a bundle (a folder of skills), into
//! the workspace's `skills/`. Every skill is checked first and nothing is copied unless all load;
//! the caller shows their permissions and asks before anything is trusted.

use std::path::{Path, PathBuf};

use super::manifest::{self, Manifest, Problem};

/// Why an install was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Nothing that looks like a skill.
    #[error("{0} holds no SKILL.md, neither itself nor in its folders; point at a skill or a bundle of skills")]
    NoSkills(String),
    /// Some skills have problems.
    #[error("nothing installed; fix these first:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// Would replace a skill that is there.
    #[error("skill {0} is already installed at {1}; pass --force to replace it")]
    Exists(String, String),
    /// Fetching a URL failed.
    #[error("could not fetch {url}: {why}")]
    Fetch {
        /// What.
        url: String,
        /// Why.
        why: String,
    },
    /// A bundle may not carry symlinks (they could point anywhere on the machine).
    #[error("{0} is a symbolic link; skills must be plain files and folders")]
    Symlink(String),
    /// File system.
    #[error("{0}")]
    Io(String),
}

/// A skill found in the source, checked.
#[derive(Debug)]
pub struct Found {
    /// Its folder in the source.
    pub dir: PathBuf,
    /// What it declares.
    pub manifest: Manifest,
}

/// Where a bundle comes from, fetched to a local folder (a temp clone for git URLs).
pub struct Source {
    /// The local folder.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Make `spec` (a path or a git URL, optionally `URL//subfolder`) a local folder.
pub fn fetch(spec: &str) -> Result<Source, InstallError> {
    let is_url = ["https://", "http://", "file://", "git@", "ssh://"]
        .iter()
        .any(|p| spec.starts_with(p));
    if !is_url {
        return Ok(Source {
            dir: PathBuf::from(spec),
            _tmp: None,
        });
    }
    // `https://host/repo//skills/x` names a folder inside the repository.
    let (url, sub) = match spec.find("://").map(|i| i + 3) {
        Some(start) => match spec[start..].find("//") {
            Some(j) => (&spec[..start + j], Some(&spec[start + j + 2..])),
            None => (spec, None),
        },
        None => (spec, None),
    };
    let tmp = tempfile::tempdir().map_err(|e| InstallError::Io(e.to_string()))?;
    let out = std::process::Command::new("git")
        .args(["clone", "--quiet", "--depth", "1", "--", url])
        .arg(tmp.path().join("src"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| InstallError::Fetch {
            url: url.into(),
            why: format!(
                "cannot run git ({e}); install git or download the folder and pass its path"
            ),
        })?;
    if !out.status.success() {
        return Err(InstallError::Fetch {
            url: url.into(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let mut dir = tmp.path().join("src");
    if let Some(s) = sub {
        dir = dir.join(s.trim_matches('/'));
    }
    Ok(Source {
        dir,
        _tmp: Some(tmp),
    })
}

/// The skills in `dir` (itself a skill, or a folder of skills), all checked.
pub fn scan(dir: &Path) -> Result<Vec<Found>, InstallError> {
    let dirs: Vec<PathBuf> = if dir.join("SKILL.md").is_file() {
        vec![dir.to_path_buf()]
    } else {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| InstallError::Io(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("SKILL.md").is_file())
            .collect();
        v.sort();
        v
    };
    if dirs.is_empty() {
        return Err(InstallError::NoSkills(dir.display().to_string()));
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for d in dirs {
        let shown = d.display().to_string();
        let on = match manifest::OnDisk::read(&d, &shown) {
            Ok(on) => on,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        match on.manifest(&shown, false) {
            Ok(m) => found.push(Found {
                dir: d,
                manifest: m,
            }),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(InstallError::Invalid(problems));
    }
    Ok(found)
}

/// Copy checked skills into `<workspace>/skills/`. All or nothing: each is copied to a temp
/// folder first, then renamed into place.
pub fn copy_in(
    workspace: &Path,
    found: &[Found],
    force: bool,
) -> Result<Vec<PathBuf>, InstallError> {
    let target = workspace.join("skills");
    std::fs::create_dir_all(&target).map_err(|e| InstallError::Io(e.to_string()))?;
    for f in found {
        let dest = target.join(&f.manifest.front.name);
        if dest.exists() && !force {
            return Err(InstallError::Exists(
                f.manifest.front.name.clone(),
                dest.display().to_string(),
            ));
        }
    }
    let staging = tempfile::tempdir_in(&target).map_err(|e| InstallError::Io(e.to_string()))?;
    for f in found {
        copy_tree(&f.dir, &staging.path().join(&f.manifest.front.name))?;
    }
    let mut out = Vec::new();
    for f in found {
        let dest = target.join(&f.manifest.front.name);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| InstallError::Io(e.to_string()))?;
        }
        std::fs::rename(staging.path().join(&f.manifest.front.name), &dest)
            .map_err(|e| InstallError::Io(e.to_string()))?;
        out.push(dest);
    }
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), InstallError> {
    let io = |e: std::io::Error| InstallError::Io(format!("{}: {e}", from.display()));
    std::fs::create_dir_all(to).map_err(io)?;
    for entry in std::fs::read_dir(from).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        if kind.is_symlink() {
            return Err(InstallError::Symlink(entry.path().display().to_string()));
        }
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name)).map_err(io)?;
        }
    }
    Ok(())
}

/// Trusted skills: name → the hash the person accepted (`.deskhand/trust.json`). An edit changes
/// the hash and so revokes trust.
pub fn trust(workspace: &Path, name: &str, hash: &str) -> std::io::Result<()> {
    let path = workspace.join(".deskhand/trust.json");
    let mut map: serde_json::Map<String, serde_json::Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    map.insert(
        name.to_string(),
        serde_json::Value::String(hash.to_string()),
    );
    deskhand_workspace::write::atomic_write(
        &path,
        &serde_json::to_vec_pretty(&map).unwrap_or_default(),
    )
}

/// Whether `name` is trusted at `hash`.
pub fn is_trusted(workspace: &Path, name: &str, hash: &str) -> bool {
    std::fs::read(workspace.join(".deskhand/trust.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|m| m[name] == hash)
}
