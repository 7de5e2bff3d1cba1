//! The one way this crate writes into the workspace folder.
//!
//! Every write goes through [`Workspace`] (and from there [`atomic_write`]) so that a
//! later policy guard can wrap a single choke point. Paths are workspace-relative and are
//! checked before any disk access: no absolute paths, no `..`, nothing under the agent's
//! private `.deskhand/` folder, and no symlink that leads out of the workspace.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::WorkspaceError;

/// Name of the agent's private folder inside the workspace, never written through this API.
pub const PRIVATE_DIR: &str = ".deskhand";

/// Default name of the workspace folder in the person's home directory.
pub const DEFAULT_DIR_NAME: &str = "Deskhand";

/// Writes `bytes` to `path` so readers see either the old or the new content, never a mix.
///
/// Creates missing parent directories, writes a temporary file in the same directory,
/// flushes it to disk, renames it over `path` and flushes the directory so the rename
/// itself survives a crash. An existing file keeps its permissions; a new one gets the
/// usual `0o666` minus umask rather than the temporary file's private `0o600`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;

    let mut builder = tempfile::Builder::new();
    builder.prefix(".deskhand-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    if let Ok(meta) = fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing on Windows; NTFS journals the rename.
    Ok(())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What a successful write put on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    /// Normalised workspace-relative path, `/`-separated.
    pub rel: String,
    /// Number of bytes written.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the bytes written.
    pub sha256: String,
}

/// One file found by [`Workspace::files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Normalised workspace-relative path, `/`-separated.
    pub rel: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The files under a folder (see [`Workspace::files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The files, sorted by path.
    pub files: Vec<FileInfo>,
    /// False when the walk stopped at its limit before seeing everything.
    pub complete: bool,
}

/// The person's workspace folder; every read and write of its files goes through here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// A workspace rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The workspace folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Turns a workspace-relative path into a full path, refusing anything that could
    /// reach outside the workspace or into the agent's private folder.
    ///
    /// Symlinks inside the workspace are allowed as long as they resolve inside it. The
    /// check happens before the caller's I/O, so a symlink swapped in between is not
    /// caught: this guards against mistakes, not against a hostile local user.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, WorkspaceError> {
        let parts = normalise(rel)?;
        let full = parts.iter().fold(self.root.clone(), |p, c| p.join(c));

        let canonical_root = match self.root.canonicalize() {
            Ok(root) => root,
            // Nothing exists yet, so nothing below the root can be a symlink.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(full),
            Err(e) => return Err(WorkspaceError::io("open the workspace", &self.root, e)),
        };
        let mut prefix = self.root.clone();
        for part in &parts {
            prefix.push(part);
            if fs::symlink_metadata(&prefix).is_err() {
                break; // Nothing below a missing component exists.
            }
            let real = prefix
                .canonicalize()
                .map_err(|_| refused(rel, "it goes through a broken symlink"))?;
            let inside = real
                .strip_prefix(&canonical_root)
                .map_err(|_| refused(rel, "a symlink in it leads outside the workspace"))?;
            if is_private(inside) {
                return Err(refused(
                    rel,
                    "a symlink in it leads into the agent's private folder",
                ));
            }
        }
        Ok(full)
    }

    /// Writes `bytes` to `rel` atomically.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<Written, WorkspaceError> {
        let path = self.resolve(rel)?;
        self.write_resolved(rel, &path, bytes)
    }

    /// Reads `rel`; `None` if it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, WorkspaceError> {
        let path = self.resolve(rel)?;
        read_path(&path)
    }

    /// Reads a file a job named, at most `max` bytes: the path is resolved as for a write
    /// (inside the workspace, never `.deskhand/`, no symlink out), then the file actually
    /// opened is the canonical path, which must be a regular file. A FIFO or device would block
    /// or never end; a larger file is refused rather than cut.
    pub fn read_named(&self, rel: &str, max: u64) -> Result<Vec<u8>, WorkspaceError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.resolve(rel)?;
        let real = path.canonicalize().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => refused(rel, "there is no such file in the workspace"),
            _ => WorkspaceError::io("open", &path, e),
        })?;
        let root = self
            .root
            .canonicalize()
            .map_err(|e| WorkspaceError::io("open the workspace", &self.root, e))?;
        match real.strip_prefix(&root) {
            Ok(inside) if !is_private(inside) => {}
            Ok(_) => return Err(refused(rel, "it is in the agent's private folder")),
            Err(_) => return Err(refused(rel, "a symlink in it leads outside the workspace")),
        }
        // O_NOFOLLOW: a symlink swapped in for the file after the check is not followed.
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever;
        // it changes nothing for the regular files that pass the check below.
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&real)
            .map_err(|e| WorkspaceError::io("open", &path, e))?;
        let meta = f
            .metadata()
            .map_err(|e| WorkspaceError::io("open", &path, e))?;
        if !meta.is_file() {
            return Err(refused(rel, "it is not a regular file"));
        }
        if meta.len() > max {
            return Err(refused(rel, "it is larger than a job may read"));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| WorkspaceError::io("read", &path, e))?;
        if bytes.len() as u64 > max {
            return Err(refused(rel, "it is larger than a job may read"));
        }
        Ok(bytes)
    }

    /// SHA-256 (hex) of the current content of `rel`; `None` if it does not exist.
    pub fn hash_of(&self, rel: &str) -> Result<Option<String>, WorkspaceError> {
        Ok(self.read(rel)?.map(|bytes| sha256_hex(&bytes)))
    }

    /// Writes `bytes` to `rel` only if its current hash is `expected` (`None`: only if
    /// it does not exist); otherwise fails with [`WorkspaceError::Changed`].
    ///
    /// Between the check and the final rename there is a window of a few system calls in
    /// which an edit by another program would be overwritten. Files the person edits by
    /// hand are saved far less often than that, so this is accepted rather than locked.
    pub fn write_if_unchanged(
        &self,
        rel: &str,
        expected: Option<&str>,
        bytes: &[u8],
    ) -> Result<Written, WorkspaceError> {
        let path = self.resolve(rel)?;
        let found = read_path(&path)?.map(|current| sha256_hex(&current));
        if found.as_deref() != expected {
            return Err(WorkspaceError::Changed {
                rel: rel.to_owned(),
                expected: expected.map(str::to_owned),
                found,
                attempts: 1,
            });
        }
        self.write_resolved(rel, &path, bytes)
    }

    /// Read-modify-write of the text file `rel` that never loses a concurrent edit.
    ///
    /// `f` gets the current text (`None`: the file is missing) and returns the new text,
    /// or `None` to leave the file alone. If the file changes between the read and the
    /// write, it is read again and `f` is re-applied to the new version, so the other
    /// edit is kept; after `max_attempts` rounds this gives up with
    /// [`WorkspaceError::Changed`]. Because `f` may run several times it should not have
    /// side effects beyond computing the text.
    ///
    /// Returns the text now on disk (`None` if the file is still missing).
    pub fn edit(
        &self,
        rel: &str,
        max_attempts: u32,
        mut f: impl FnMut(Option<&str>) -> Result<Option<String>, WorkspaceError>,
    ) -> Result<Option<String>, WorkspaceError> {
        let max_attempts = max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = match self.read(rel)? {
                Some(bytes) => {
                    Some(
                        String::from_utf8(bytes).map_err(|_| WorkspaceError::NotText {
                            rel: rel.to_owned(),
                        })?,
                    )
                }
                None => None,
            };
            let Some(updated) = f(current.as_deref())? else {
                return Ok(current);
            };
            let expected = current.as_deref().map(|text| sha256_hex(text.as_bytes()));
            match self.write_if_unchanged(rel, expected.as_deref(), updated.as_bytes()) {
                Ok(_) => return Ok(Some(updated)),
                Err(WorkspaceError::Changed {
                    expected, found, ..
                }) if attempt >= max_attempts => {
                    return Err(WorkspaceError::Changed {
                        rel: rel.to_owned(),
                        expected,
                        found,
                        attempts: attempt,
                    })
                }
                Err(WorkspaceError::Changed { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
    }

    /// The regular files under the folder `rel` (`""`: the whole workspace), sorted, as
    /// normalised `/`-separated relative paths with their sizes. Never the private folder;
    /// symlinks are not followed (a link is not listed, a linked folder not entered), so a walk
    /// cannot leave the workspace. At most `max_visited` entries are looked at; the listing says
    /// whether it is complete. A missing folder lists nothing; `rel` naming a file lists it.
    pub fn files(&self, rel: &str, max_visited: usize) -> Result<Listing, WorkspaceError> {
        let rel = rel.trim_matches('/');
        let (start, prefix) = if rel.is_empty() || rel == "." {
            (self.root.clone(), Vec::new())
        } else {
            (self.resolve(rel)?, normalise(rel)?)
        };
        let mut out = Listing {
            files: Vec::new(),
            complete: true,
        };
        let meta = match fs::symlink_metadata(&start) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(WorkspaceError::io("list", &start, e)),
        };
        if meta.is_file() {
            out.files.push(FileInfo {
                rel: prefix.join("/"),
                bytes: meta.len(),
            });
            return Ok(out);
        }
        // A folder named by the caller may itself be a symlink `resolve` accepted (it leads
        // inside the workspace); below it, nothing is followed.
        let mut stack = vec![(start, prefix)];
        let mut visited = 0usize;
        while let Some((dir, parts)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(WorkspaceError::io("list", &dir, e)),
            };
            for entry in entries {
                visited += 1;
                if visited > max_visited {
                    out.complete = false;
                    stack.clear();
                    break;
                }
                let Ok(entry) = entry else { continue };
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue; // Not Unicode: it could not be named in a relative path either.
                };
                let mut child = parts.clone();
                child.push(name);
                if is_private(Path::new(&child[0])) {
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push((entry.path(), child));
                } else if kind.is_file() {
                    let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    out.files.push(FileInfo {
                        rel: child.join("/"),
                        bytes,
                    });
                }
            }
        }
        out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    fn write_resolved(
        &self,
        rel: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Written, WorkspaceError> {
        // Write through a (checked, in-workspace) symlink rather than replacing the link.
        let target = match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => path
                .canonicalize()
                .map_err(|e| WorkspaceError::io("follow the symlink", path, e))?,
            _ => path.to_path_buf(),
        };
        atomic_write(&target, bytes).map_err(|e| WorkspaceError::io("write", path, e))?;
        Ok(Written {
            rel: normalise(rel)?.join("/"),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        })
    }
}

fn read_path(path: &Path) -> Result<Option<Vec<u8>>, WorkspaceError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WorkspaceError::io("read", path, e)),
    }
}

fn refused(rel: &str, reason: &'static str) -> WorkspaceError {
    WorkspaceError::Refused {
        rel: rel.to_owned(),
        reason,
    }
}

/// Splits `rel` into plain components, refusing anything that is not a simple
/// relative path or that points into the private folder.
fn normalise(rel: &str) -> Result<Vec<String>, WorkspaceError> {
    if rel.contains('\0') {
        return Err(refused(rel, "it contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(part) => parts.push(part.to_owned()),
                None => return Err(refused(rel, "it is not valid Unicode")),
            },
            Component::CurDir => {}
            Component::ParentDir => return Err(refused(rel, "it contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(rel, "it is absolute"))
            }
        }
    }
    if parts.is_empty() {
        return Err(refused(rel, "it is empty"));
    }
    if is_private(Path::new(&parts[0])) {
        return Err(refused(rel, "it is in the agent's private folder"));
    }
    Ok(parts)
}

/// Whether a workspace-relative path lies in the private folder. Case-insensitive
/// because macOS and Windows folders usually are.
fn is_private(inside: &Path) -> bool {
    match inside.components().next() {
        Some(Component::Normal(first)) => first
            .to_str()
            .is_some_and(|first| first.eq_ignore_ascii_case(PRIVATE_DIR)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        (dir, ws)
    }

    #[test]
    fn atomic_write_creates_parents_and_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.txt");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_existing_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script.sh");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o750)).unwrap();
        atomic_write(&path, b"new").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o750
        );
        // A new file is not left private to the owner like a temp file would be.
        let fresh = dir.path().join("fresh.txt");
        atomic_write(&fresh, b"x").unwrap();
        assert_ne!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_named_read_stays_on_plain_files_inside_the_workspace() {
        let (dir, ws) = workspace();
        let outside = tempfile::tempdir().unwrap();
        let w = dir.path();
        fs::create_dir_all(w.join(".deskhand")).unwrap();
        fs::write(w.join(".deskhand/device.key"), "SECRET").unwrap();
        fs::write(outside.path().join("o.yaml"), "OUTSIDE").unwrap();
        fs::write(w.join("ok.yaml"), "items: li").unwrap();
        fs::write(w.join("big.yaml"), vec![b'x'; 2048]).unwrap();
        std::os::unix::fs::symlink(outside.path(), w.join("out")).unwrap();
        std::os::unix::fs::symlink(w.join(".deskhand/device.key"), w.join("in.yaml")).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(w.join("pipe.yaml"))
            .status()
            .unwrap()
            .success());
        assert_eq!(ws.read_named("ok.yaml", 1024).unwrap(), b"items: li");
        for (rel, why) in [
            (".deskhand/device.key", "private"),
            (".DESKHAND/device.key", "private"),
            ("x/../.deskhand/device.key", "`..`"),
            ("out/o.yaml", "outside"),
            ("in.yaml", "private"),
            ("pipe.yaml", "not a regular file"),
            ("big.yaml", "larger"),
            ("missing.yaml", "no such file"),
        ] {
            let e = ws.read_named(rel, 1024).unwrap_err().to_string();
            assert!(e.contains(why), "{rel}: {e}");
            assert!(
                !e.contains("SECRET") && !e.contains("OUTSIDE"),
                "{rel}: {e}"
            );
        }
        let abs = outside.path().join("o.yaml");
        assert!(ws.read_named(&abs.to_string_lossy(), 1024).is_err());
    }

    #[test]
    fn resolve_refuses_escapes_and_private_paths() {
        let (_dir, ws) = workspace();
        for bad in [
            "",
            ".",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/../b",
            ".deskhand/state.db",
            "./.deskhand/x",
            ".Deskhand/x",
            ".deskhand",
            "a\0b",
        ] {
            assert!(
                matches!(ws.resolve(bad), Err(WorkspaceError::Refused { .. })),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(
            ws.resolve("./reports/q3.csv").unwrap(),
            ws.root().join("reports/q3.csv")
        );
        assert!(
            ws.resolve("notes/.deskhand/x").is_ok(),
            "only the top-level folder is private"
        );
    }

    #[cfg(unix)]
    #[test]
    fn resolve_refuses_symlinks_leading_outside_or_private() {
        let (dir, ws) = workspace();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        fs::create_dir(dir.path().join(".deskhand")).unwrap();
        std::os::unix::fs::symlink(dir.path().join(".deskhand"), dir.path().join("priv")).unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();

        assert!(matches!(
            ws.resolve("out/x.txt"),
            Err(WorkspaceError::Refused { .. })
        ));
        assert!(matches!(
            ws.write("out/x.txt", b"x"),
            Err(WorkspaceError::Refused { .. })
        ));
        assert!(!outside.path().join("x.txt").exists());
        assert!(matches!(
            ws.resolve("priv/x"),
            Err(WorkspaceError::Refused { .. })
        ));
        ws.write("alias/x.txt", b"ok").unwrap();
        assert_eq!(fs::read(dir.path().join("real/x.txt")).unwrap(), b"ok");
    }

    #[cfg(unix)]
    #[test]
    fn writing_through_an_inside_symlink_keeps_the_link() {
        let (dir, ws) = workspace();
        fs::write(dir.path().join("real.md"), b"old").unwrap();
        std::os::unix::fs::symlink("real.md", dir.path().join("link.md")).unwrap();
        ws.write("link.md", b"new").unwrap();
        assert!(fs::symlink_metadata(dir.path().join("link.md"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(dir.path().join("real.md")).unwrap(), b"new");
    }

    #[test]
    fn write_read_and_hash_agree() {
        let (_dir, ws) = workspace();
        assert_eq!(ws.read("a.txt").unwrap(), None);
        assert_eq!(ws.hash_of("a.txt").unwrap(), None);
        let written = ws.write("./sub//a.txt", b"hello").unwrap();
        assert_eq!(written.rel, "sub/a.txt");
        assert_eq!(written.bytes, 5);
        assert_eq!(
            written.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            ws.read("sub/a.txt").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(ws.hash_of("sub/a.txt").unwrap(), Some(written.sha256));
    }

    #[test]
    fn write_if_unchanged_checks_the_current_hash() {
        let (_dir, ws) = workspace();
        ws.write_if_unchanged("f.txt", None, b"v1").unwrap();
        let err = ws.write_if_unchanged("f.txt", None, b"again").unwrap_err();
        assert!(matches!(err, WorkspaceError::Changed { ref found, .. } if found.is_some()));

        let v1 = ws.hash_of("f.txt").unwrap().unwrap();
        ws.write_if_unchanged("f.txt", Some(&v1), b"v2").unwrap();
        let err = ws
            .write_if_unchanged("f.txt", Some(&v1), b"v3")
            .unwrap_err();
        assert!(matches!(err, WorkspaceError::Changed { .. }));
        assert_eq!(ws.read("f.txt").unwrap().unwrap(), b"v2");
    }

    #[test]
    fn edit_reapplies_on_a_concurrent_change() {
        let (_dir, ws) = workspace();
        ws.write("notes.md", b"a\n").unwrap();
        let mut calls = 0;
        let result = ws
            .edit("notes.md", 3, |text| {
                calls += 1;
                if calls == 1 {
                    // The person saves the file between our read and our write.
                    ws.write("notes.md", b"a\nperson\n").unwrap();
                }
                Ok(Some(format!("{}agent\n", text.unwrap_or(""))))
            })
            .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(result.as_deref(), Some("a\nperson\nagent\n"));
        assert_eq!(ws.read("notes.md").unwrap().unwrap(), b"a\nperson\nagent\n");
    }

    #[test]
    fn edit_gives_up_after_max_attempts() {
        let (_dir, ws) = workspace();
        let mut calls = 0;
        let err = ws
            .edit("busy.md", 2, |_| {
                calls += 1;
                ws.write("busy.md", format!("person {calls}").as_bytes())
                    .unwrap();
                Ok(Some("agent".to_owned()))
            })
            .unwrap_err();
        assert_eq!(calls, 2);
        assert!(matches!(err, WorkspaceError::Changed { attempts: 2, .. }));
        assert!(err.to_string().contains("try again"));
        assert_eq!(ws.read("busy.md").unwrap().unwrap(), b"person 2");
    }

    #[test]
    fn edit_without_change_does_not_write() {
        let (_dir, ws) = workspace();
        assert_eq!(ws.edit("missing.md", 1, |_| Ok(None)).unwrap(), None);
        assert_eq!(ws.read("missing.md").unwrap(), None);
        ws.write("bin", &[0xff, 0xfe]).unwrap();
        assert!(matches!(
            ws.edit("bin", 1, |_| Ok(None)),
            Err(WorkspaceError::NotText { .. })
        ));
    }

    #[test]
    fn files_lists_the_workspace_but_never_the_private_folder_or_a_link_out() {
        let (dir, ws) = workspace();
        ws.write("TASKS.md", b"- [ ] x\n").unwrap();
        ws.write("reports/a.csv", b"a,b\n").unwrap();
        ws.write("reports/sub/b.md", b"b").unwrap();
        fs::create_dir_all(dir.path().join(".deskhand")).unwrap();
        fs::write(dir.path().join(".deskhand/agent.key"), b"secret").unwrap();
        fs::create_dir_all(dir.path().join(".DESKHAND")).ok();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("passwd"), b"root").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("passwd"), dir.path().join("p")).unwrap();

        let all = ws.files("", 1000).unwrap();
        let names: Vec<&str> = all.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["TASKS.md", "reports/a.csv", "reports/sub/b.md"]);
        assert!(all.complete);
        assert_eq!(all.files[1].bytes, 4);
        let sub = ws.files("reports/", 1000).unwrap();
        assert_eq!(sub.files.len(), 2);
        assert_eq!(
            ws.files("reports/a.csv", 10).unwrap().files[0].rel,
            "reports/a.csv"
        );
        assert!(ws.files("nothing/here", 10).unwrap().files.is_empty());
        assert!(ws.files(".deskhand", 10).is_err());
        assert!(ws.files("../", 10).is_err());
        assert!(
            ws.files("out", 10).is_err(),
            "a link out is refused by name"
        );
        let cut = ws.files("", 2).unwrap();
        assert!(!cut.complete);
    }
}
