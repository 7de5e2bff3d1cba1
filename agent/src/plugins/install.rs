//! Installing plugins: fetch the source (a folder, a git URL, a marketplace's entry), read and
//! check the whole plugin, copy it into `<workspace>/plugins/NAME/` all or nothing (read-only,
//! no symbolic links), and record it in `.deskhand/plugins.json` with the hash of the whole
//! installed tree, which trust is bound to: an edit of the installed copy turns the plugin off
//! until it is installed again.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{self, Plugin};
use super::marketplace::{self, Source};
use super::servers::ServerKind;
use crate::skills::manifest::Problem;

/// The most files a plugin may hold.
const MAX_FILES: usize = 5_000;
/// The most bytes a plugin may hold.
const MAX_BYTES: u64 = 50 * 1024 * 1024;

/// Why a plugin could not be installed or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The source could not be fetched or found.
    #[error("{0}")]
    Source(String),
    /// The plugin has problems.
    #[error("nothing installed; fix these first:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// A symbolic link leads out of the plugin.
    #[error("{0} is a symbolic link out of the plugin's folder; nothing installed")]
    SymlinkOut(String),
    /// Too big.
    #[error("the plugin holds more than {MAX_FILES} files or {} MiB; nothing installed", MAX_BYTES / 1024 / 1024)]
    TooBig,
    /// Already there.
    #[error("plugin {0} is already installed; `deskhand plugins update {0}` fetches it again")]
    Exists(String),
    /// Not installed.
    #[error("no plugin {0} is installed; `deskhand plugins list` shows them")]
    NotInstalled(String),
    /// File system.
    #[error("{0}")]
    Io(String),
}

fn io(what: impl std::fmt::Display) -> impl Fn(std::io::Error) -> PluginError {
    move |e| PluginError::Io(format!("{what}: {e}"))
}

/// One installed plugin, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Where it came from (what `update` fetches again).
    pub source: String,
    /// Its version when installed.
    #[serde(default)]
    pub version: Option<String>,
    /// SHA-256 of the installed tree the person accepted.
    pub tree: String,
    /// Whether its parts are in use.
    pub enabled: bool,
    /// Whether the person allowed its command hooks to run.
    #[serde(default)]
    pub hooks_allowed: bool,
    /// What it may touch, one line each (an update that adds lines asks again).
    #[serde(default)]
    pub grants: Vec<String>,
    /// When it was installed or last updated (RFC 3339).
    pub installed: String,
}

/// `.deskhand/plugins.json`.
pub type Registry = BTreeMap<String, Record>;

fn registry_path(workspace: &Path) -> PathBuf {
    workspace.join(".deskhand/plugins.json")
}

/// The installed plugins (none when the file is missing).
pub fn registry(workspace: &Path) -> Result<Registry, PluginError> {
    match std::fs::read(registry_path(workspace)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::new()),
        Err(e) => Err(PluginError::Io(format!(".deskhand/plugins.json: {e}"))),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            PluginError::Io(format!(
                ".deskhand/plugins.json is damaged ({e}); remove it and install the plugins again"
            ))
        }),
    }
}

/// Write the registry.
pub fn save(workspace: &Path, r: &Registry) -> Result<(), PluginError> {
    std::fs::create_dir_all(workspace.join(".deskhand")).map_err(io(".deskhand"))?;
    deskhand_workspace::write::atomic_write(
        &registry_path(workspace),
        &serde_json::to_vec_pretty(r).unwrap_or_default(),
    )
    .map_err(io(".deskhand/plugins.json"))
}

/// Where plugin `name` is installed.
pub fn installed_dir(workspace: &Path, name: &str) -> PathBuf {
    workspace.join("plugins").join(name)
}

/// The per-plugin data folder (`${CLAUDE_PLUGIN_DATA}`), kept across updates.
pub fn data_dir(workspace: &Path, name: &str) -> PathBuf {
    workspace.join(".deskhand/plugin-data").join(name)
}

/// A plugin's source, as the person wrote it: a folder, `GIT-URL[//SUBDIR]`, or
/// `MARKETPLACE-DIR#PLUGIN`.
pub fn parse_spec(spec: &str) -> Result<Source, PluginError> {
    if let Some((dir, name)) = spec.rsplit_once('#') {
        let dir = Path::new(dir);
        if !marketplace::is_marketplace(dir) {
            return Err(PluginError::Source(format!(
                "{} holds no .claude-plugin/marketplace.json; MARKETPLACE-DIR#PLUGIN names a \
                 plugin of a marketplace folder",
                dir.display()
            )));
        }
        return marketplace::find(dir, name)
            .map(|l| l.source)
            .map_err(PluginError::Source);
    }
    let is_url = ["https://", "http://", "file://", "git@", "ssh://"]
        .iter()
        .any(|p| spec.starts_with(p));
    if !is_url {
        return Ok(Source::Local(PathBuf::from(spec)));
    }
    let (url, subdir) = match spec.find("://").map(|i| i + 3) {
        Some(start) => match spec[start..].find("//") {
            Some(j) => (
                spec[..start + j].to_string(),
                Some(spec[start + j + 2..].to_string()),
            ),
            None => (spec.to_string(), None),
        },
        None => (spec.to_string(), None),
    };
    Ok(Source::Git {
        url,
        subdir,
        rev: None,
    })
}

/// `spec` as recorded for `update`: folders made absolute, so an update works from anywhere.
pub fn recorded_spec(spec: &str) -> String {
    let abs = |p: &str| {
        Path::new(p)
            .canonicalize()
            .map(|c| c.display().to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    if let Some((dir, name)) = spec.rsplit_once('#') {
        return format!("{}#{name}", abs(dir));
    }
    match parse_spec(spec) {
        Ok(Source::Local(p)) => abs(&p.display().to_string()),
        _ => spec.to_string(),
    }
}

/// A fetched source: a local folder (kept alive with its temporary clone).
pub struct Fetched {
    /// The plugin's folder.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Make a source a local folder (a shallow clone for git).
pub fn fetch(source: &Source) -> Result<Fetched, PluginError> {
    match source {
        Source::Local(p) => {
            if !p.is_dir() {
                return Err(PluginError::Source(format!(
                    "{} is not a folder; give a plugin's folder, a git URL or MARKETPLACE-DIR#PLUGIN",
                    p.display()
                )));
            }
            Ok(Fetched {
                dir: p.clone(),
                _tmp: None,
            })
        }
        Source::Git { url, subdir, rev } => {
            let tmp = tempfile::tempdir().map_err(io("a temporary folder"))?;
            let mut cmd = std::process::Command::new("git");
            cmd.args(["clone", "--quiet", "--depth", "1"]);
            if let Some(r) = rev {
                cmd.args(["--branch", r]);
            }
            let out = cmd
                .arg("--")
                .arg(url)
                .arg(tmp.path().join("src"))
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .map_err(|e| {
                    PluginError::Source(format!(
                        "cannot run git ({e}); install git, or clone {url} and give its folder"
                    ))
                })?;
            if !out.status.success() {
                return Err(PluginError::Source(format!(
                    "could not fetch {url}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let mut dir = tmp.path().join("src");
            if let Some(s) = subdir {
                let s = s.trim_matches('/');
                dir = manifest::inside(&dir, &format!("./{s}")).map_err(PluginError::Source)?;
            }
            Ok(Fetched {
                dir,
                _tmp: Some(tmp),
            })
        }
    }
}

/// Read the plugin at `dir` and check its tree (symbolic links, size) before anything is copied.
pub fn check(dir: &Path) -> Result<Plugin, PluginError> {
    let root = dir.canonicalize().map_err(io(dir.display().to_string()))?;
    let mut files = 0;
    let mut bytes = 0;
    walk_source(&root, &root, &mut files, &mut bytes)?;
    manifest::read(&root).map_err(PluginError::Invalid)
}

fn walk_source(
    root: &Path,
    dir: &Path,
    files: &mut usize,
    bytes: &mut u64,
) -> Result<(), PluginError> {
    for e in std::fs::read_dir(dir).map_err(io(dir.display()))? {
        let e = e.map_err(io(dir.display()))?;
        let path = e.path();
        if e.file_name() == ".git" {
            continue;
        }
        let kind = e.file_type().map_err(io(path.display()))?;
        if kind.is_symlink() {
            let real = path.canonicalize().ok();
            if !real.as_ref().is_some_and(|r| r.starts_with(root)) {
                return Err(PluginError::SymlinkOut(path.display().to_string()));
            }
            if real.as_ref().is_some_and(|r| r.is_dir()) {
                // A link to a folder inside would be copied twice (or loop): refused.
                return Err(PluginError::SymlinkOut(format!(
                    "{} (a link to a folder)",
                    path.display()
                )));
            }
        }
        if kind.is_dir() {
            walk_source(root, &path, files, bytes)?;
        } else {
            *files += 1;
            *bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if *files > MAX_FILES || *bytes > MAX_BYTES {
                return Err(PluginError::TooBig);
            }
        }
    }
    Ok(())
}

/// What a plugin may touch, one line per grant: workflow skills' permissions, MCP servers,
/// hooks. (Prompt-only skills, commands and agents run with the planner's permissions.)
pub fn grants(p: &Plugin) -> Vec<String> {
    let mut out = BTreeSet::new();
    for s in p.skills.iter().filter(|s| s.manifest.executable) {
        let name = &s.manifest.front.name;
        let perms = &s.manifest.permissions;
        for (c, a) in &perms.connectors {
            out.insert(format!("skill {name}: connector {c} ({a:?})").to_lowercase());
        }
        for o in &perms.browser {
            out.insert(format!("skill {name}: browser {o}"));
        }
        for w in &perms.workspace {
            out.insert(format!("skill {name}: writes {w}"));
        }
        for r in &perms.read {
            out.insert(format!("skill {name}: reads {r}"));
        }
        for w in &perms.without_asking {
            out.insert(format!("skill {name}: without asking {w}"));
        }
    }
    for s in &p.servers {
        if !matches!(s.kind, ServerKind::NeedsConfiguration(_)) {
            out.insert(format!("mcp server {}: {}", s.name, s.shown()));
        }
    }
    for h in p.hooks.iter().filter(|h| h.supported()) {
        out.insert(format!(
            "hook {} [{}]: runs {}",
            h.event, h.matcher, h.command
        ));
    }
    out.into_iter().collect()
}

/// Whether the plugin has command hooks that would run.
pub fn has_command_hooks(p: &Plugin) -> bool {
    p.hooks.iter().any(|h| h.supported())
}

/// Copy the checked plugin at `from` to `<workspace>/plugins/NAME/` (replacing an installed one
/// when `replace`), read-only; the installed plugin, read again from the copy, and its tree hash.
pub fn copy_in(
    workspace: &Path,
    from: &Path,
    name: &str,
    replace: bool,
) -> Result<(Plugin, String), PluginError> {
    let plugins = workspace.join("plugins");
    std::fs::create_dir_all(&plugins).map_err(io("plugins/"))?;
    let dest = installed_dir(workspace, name);
    if dest.exists() && !replace {
        return Err(PluginError::Exists(name.to_string()));
    }
    let staging = tempfile::Builder::new()
        .prefix(".install-")
        .tempdir_in(&plugins)
        .map_err(io("plugins/"))?;
    let staged = staging.path().join(name);
    copy_tree(&from.canonicalize().map_err(io(from.display()))?, &staged)?;
    // What runs is what was copied: check and hash the copy, not the source.
    manifest::read(&staged).map_err(PluginError::Invalid)?;
    let hash = tree_hash(&staged)?;
    if dest.exists() {
        make_writable(&dest);
        std::fs::remove_dir_all(&dest).map_err(io(dest.display()))?;
    }
    std::fs::rename(&staged, &dest).map_err(io(dest.display()))?;
    make_read_only(&dest);
    std::fs::create_dir_all(data_dir(workspace, name)).map_err(io("the plugin's data folder"))?;
    let plugin = manifest::read(&dest).map_err(PluginError::Invalid)?;
    Ok((plugin, hash))
}

/// Remove an installed plugin's folder and data.
pub fn remove_files(workspace: &Path, name: &str) -> Result<(), PluginError> {
    let dir = installed_dir(workspace, name);
    if dir.exists() {
        make_writable(&dir);
        std::fs::remove_dir_all(&dir).map_err(io(dir.display()))?;
    }
    let data = data_dir(workspace, name);
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(io(data.display()))?;
    }
    Ok(())
}

/// Copy a checked tree: `.git` left out, a link to a file inside copied as that file.
fn copy_tree(from: &Path, to: &Path) -> Result<(), PluginError> {
    std::fs::create_dir_all(to).map_err(io(to.display()))?;
    for e in std::fs::read_dir(from).map_err(io(from.display()))? {
        let e = e.map_err(io(from.display()))?;
        if e.file_name() == ".git" {
            continue;
        }
        let path = e.path();
        let target = to.join(e.file_name());
        if path.is_dir() && !e.file_type().map_err(io(path.display()))?.is_symlink() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(io(path.display()))?;
        }
    }
    Ok(())
}

/// SHA-256 over every path, kind and content of the tree, in order. A symbolic link counts as
/// its target's name, so one planted later changes the hash.
pub fn tree_hash(root: &Path) -> Result<String, PluginError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut stack = vec![root.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(d.display()))? {
            let e = e.map_err(io(d.display()))?;
            let kind = e.file_type().map_err(io(e.path().display()))?;
            if kind.is_dir() {
                stack.push(e.path());
            }
            entries.push((e.path(), kind));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        let rel = path.strip_prefix(root).unwrap_or(&path);
        h.update(rel.as_os_str().as_encoded_bytes());
        if kind.is_symlink() {
            h.update(b"\0l\0");
            h.update(
                std::fs::read_link(&path)
                    .map_err(io(path.display()))?
                    .as_os_str()
                    .as_encoded_bytes(),
            );
        } else if kind.is_dir() {
            h.update(b"\0d\0");
        } else {
            let meta = std::fs::metadata(&path).map_err(io(path.display()))?;
            let exec = meta.permissions().mode() & 0o111 != 0;
            h.update(if exec { b"\0x\0" } else { b"\0f\0" });
            h.update(std::fs::read(&path).map_err(io(path.display()))?);
        }
        h.update(b"\0");
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Files read-only (executables stay executable), folders read-only: the installed copy is what
/// was accepted.
fn make_read_only(root: &Path) {
    set_modes(root, |m, dir| if dir { 0o555 } else { (m & 0o111) | 0o444 });
}

fn make_writable(root: &Path) {
    set_modes(root, |m, dir| if dir { 0o755 } else { m | 0o200 });
}

fn set_modes(root: &Path, mode: impl Fn(u32, bool) -> u32 + Copy) {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    if meta.is_dir() {
        // Writable first, so the entries can be changed; read-only last.
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755));
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.filter_map(Result::ok) {
                set_modes(&e.path(), mode);
            }
        }
    }
    let m = meta.permissions().mode() & 0o777;
    let _ = std::fs::set_permissions(
        root,
        std::fs::Permissions::from_mode(mode(m, meta.is_dir())),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_hash_sees_every_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x.md"), "x").unwrap();
        let h1 = tree_hash(dir.path()).unwrap();
        assert_eq!(h1, tree_hash(dir.path()).unwrap());
        std::fs::write(dir.path().join("a/x.md"), "y").unwrap();
        let h2 = tree_hash(dir.path()).unwrap();
        assert_ne!(h1, h2);
        std::fs::set_permissions(
            dir.path().join("a/x.md"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(h2, tree_hash(dir.path()).unwrap());
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l")).unwrap();
        assert_ne!(h2, tree_hash(dir.path()).unwrap());
    }

    #[test]
    fn specs_name_folders_urls_and_marketplace_entries() {
        assert_eq!(
            parse_spec("https://example.com/r.git//plugins/x").unwrap(),
            Source::Git {
                url: "https://example.com/r.git".into(),
                subdir: Some("plugins/x".into()),
                rev: None
            }
        );
        assert!(matches!(parse_spec("./here").unwrap(), Source::Local(_)));
        assert!(parse_spec("/nowhere#x").is_err());
    }
}
