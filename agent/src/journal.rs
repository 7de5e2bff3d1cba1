//! The undo journal: before a job first changes a workspace file, what was there is kept in
//! `.deskhand/journal/<job>/` (the bytes, or "did not exist"); after the write, the new content's
//! hash. `deskhand undo JOB` puts every file back, newest change first, but refuses when a file
//! changed after the job (someone edited it since) unless forced, showing the difference.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use deskhand_workspace::{atomic_write, sha256_hex, Workspace};

/// One file a job changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Workspace-relative path.
    pub path: String,
    /// SHA-256 before the job, or `None` if the job created it.
    pub before: Option<String>,
    /// SHA-256 after the job's last write.
    pub after: Option<String>,
    /// File holding the old bytes, inside the job's journal folder.
    pub blob: Option<String>,
}

/// Journal failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// File system.
    #[error("journal {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Workspace refused a path.
    #[error(transparent)]
    Workspace(#[from] deskhand_workspace::WorkspaceError),
    /// Nothing recorded.
    #[error("job {0} changed no workspace files (or its journal is gone); `deskhand history` lists jobs that did")]
    Nothing(String),
    /// Undoing moves would replace files created since at the old names.
    #[error("not undone: {} now exist(s) where job {job} moved files from; they were made after the job and are not replaced. Move or rename them, then undo again", paths.join(", "))]
    WouldClobber {
        /// The job.
        job: String,
        /// The old names now taken.
        paths: Vec<String>,
    },
    /// Files changed since the job.
    #[error("not undone: {} changed after job {job}; pass --force to put the job's earlier content back anyway\n{diff}", paths.join(", "))]
    ChangedSince {
        /// The job.
        job: String,
        /// Which files.
        paths: Vec<String>,
        /// What differs (unified diff of text files).
        diff: String,
    },
}

/// Something a job created outside the workspace.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct External {
    /// `notion.page`.
    pub kind: String,
    /// The connection it was created through (`notion:work`).
    pub connection: String,
    /// Its id there.
    pub id: String,
    /// What it was before the job changed it (a calendar event updated), to put back on undo;
    /// absent for something the job created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
}

/// One line of a job's move log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MoveEntry {
    /// A file moved (workspace-relative), with what it was when it moved.
    Moved {
        /// Where it was.
        from: String,
        /// Where it went.
        to: String,
        /// Its size.
        size: u64,
        /// Its modification time, ns since the epoch (a rename keeps it; i64, since serde's
        /// untagged enums cannot carry an i128).
        mtime_ns: i64,
    },
    /// A folder the job made for its moves.
    Made {
        /// Workspace-relative.
        dir: String,
    },
    /// The entries after this one are relative to `root`: a folder outside the workspace the
    /// person granted (absolute), or the workspace again (empty).
    Root {
        /// The folder, absolute; empty for the workspace.
        root: String,
    },
}

/// A job's move log, open for appending.
#[derive(Debug)]
pub struct MoveLog {
    file: std::fs::File,
    path: PathBuf,
}

impl MoveLog {
    /// Append one entry (one `write`, so a crash leaves whole lines).
    pub fn record(&mut self, e: &MoveEntry) -> Result<(), JournalError> {
        use std::io::Write;
        let mut line = serde_json::to_vec(e).unwrap_or_default();
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Flush to disk; the log's SHA-256 (what the audit log keeps of it).
    pub fn finish(self) -> Result<String, JournalError> {
        self.file.sync_all().map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        let bytes = std::fs::read(&self.path).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        Ok(sha256_hex(&bytes))
    }
}

/// A file's modification time in ns since the epoch (0 when unknown).
pub fn mtime_of(m: &std::fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The journal of one workspace.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    files: Workspace,
}

impl Journal {
    /// The journal in `<workspace>/.deskhand/journal/`.
    pub fn new(workspace: &Path) -> Journal {
        Journal {
            dir: workspace.join(".deskhand/journal"),
            files: Workspace::new(workspace),
        }
    }

    fn io(&self, path: &Path, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn index(&self, job: &str) -> PathBuf {
        self.dir.join(job).join("changes.json")
    }

    /// The changes a job made, in order.
    pub fn changes(&self, job: &str) -> Result<Vec<Change>, JournalError> {
        let p = self.index(job);
        match std::fs::read(&p) {
            Ok(b) => Ok(serde_json::from_slice(&b).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(self.io(&p, e)),
        }
    }

    fn save(&self, job: &str, changes: &[Change]) -> Result<(), JournalError> {
        let p = self.index(job);
        atomic_write(&p, &serde_json::to_vec_pretty(changes).unwrap_or_default())
            .map_err(|e| self.io(&p, e))
    }

    /// Keep what is at `rel` now, unless this job already did (call before changing it).
    pub fn before(&self, job: &str, rel: &str) -> Result<(), JournalError> {
        let mut changes = self.changes(job)?;
        if changes.iter().any(|c| c.path == rel) {
            return Ok(());
        }
        let old = self.files.read(rel)?;
        let blob = match &old {
            Some(bytes) => {
                let name = format!("{}.before", changes.len() + 1);
                let p = self.dir.join(job).join(&name);
                atomic_write(&p, bytes).map_err(|e| self.io(&p, e))?;
                Some(name)
            }
            None => None,
        };
        changes.push(Change {
            path: rel.to_string(),
            before: old.as_deref().map(sha256_hex),
            after: None,
            blob,
        });
        self.save(job, &changes)
    }

    /// Has this job already changed `rel` (a redelivered job rewriting its own output)?
    pub fn touched(&self, job: &str, rel: &str) -> bool {
        self.changes(job)
            .map(|c| c.iter().any(|c| c.path == rel))
            .unwrap_or(false)
    }

    /// Record what the job left at `rel` (call after changing it).
    pub fn after(&self, job: &str, rel: &str) -> Result<(), JournalError> {
        let mut changes = self.changes(job)?;
        let now = self.files.hash_of(rel)?;
        if let Some(c) = changes.iter_mut().find(|c| c.path == rel) {
            c.after = now;
        }
        self.save(job, &changes)
    }

    /// Record something a job created outside the workspace (a Notion page), so undo can
    /// archive it.
    pub fn created_external(
        &self,
        job: &str,
        kind: &str,
        connection: &str,
        id: &str,
    ) -> Result<(), JournalError> {
        self.external_change(job, kind, connection, id, None)
    }

    /// Record something outside the workspace the job changed, with what it was before.
    pub fn changed_external(
        &self,
        job: &str,
        kind: &str,
        connection: &str,
        id: &str,
        before: serde_json::Value,
    ) -> Result<(), JournalError> {
        self.external_change(job, kind, connection, id, Some(before))
    }

    fn external_change(
        &self,
        job: &str,
        kind: &str,
        connection: &str,
        id: &str,
        before: Option<serde_json::Value>,
    ) -> Result<(), JournalError> {
        let mut list = self.externals(job)?;
        list.push(External {
            kind: kind.to_string(),
            connection: connection.to_string(),
            id: id.to_string(),
            before,
        });
        let p = self.dir.join(job).join("external.json");
        atomic_write(&p, &serde_json::to_vec_pretty(&list).unwrap_or_default())
            .map_err(|e| self.io(&p, e))
    }

    /// What a job created outside the workspace.
    pub fn externals(&self, job: &str) -> Result<Vec<External>, JournalError> {
        let p = self.dir.join(job).join("external.json");
        match std::fs::read(&p) {
            Ok(b) => Ok(serde_json::from_slice(&b).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(self.io(&p, e)),
        }
    }

    /// Jobs with journal entries, newest first (ULIDs sort by time).
    pub fn jobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.path().join("changes.json").is_file()
                            || e.path().join("external.json").is_file()
                    })
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.reverse();
        v
    }

    fn moves_path(&self, job: &str) -> PathBuf {
        self.dir.join(job).join("moves.jsonl")
    }

    /// The move log of `job`, appended to as its files move (one line per move, written before
    /// the move, so a move cut short is still known).
    pub fn move_log(&self, job: &str) -> Result<MoveLog, JournalError> {
        let p = self.moves_path(job);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| self.io(d, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| self.io(&p, e))?;
        Ok(MoveLog { file, path: p })
    }

    /// The moves `job` recorded, in order.
    pub fn moves(&self, job: &str) -> Result<Vec<MoveEntry>, JournalError> {
        let p = self.moves_path(job);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(t
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(self.io(&p, e)),
        }
    }

    /// Move back what `job` moved, newest first; folders it made are removed when empty. A file
    /// no longer where the job put it, or changed there, is a change since (refused unless
    /// `force`, then left); a file now at an old name is never replaced.
    fn undo_moves(&self, job: &str, force: bool) -> Result<Vec<String>, JournalError> {
        let moves = self.moves(job)?;
        let workspace = self.files.root().to_path_buf();
        // Each entry's folder: the workspace, or a granted one named by a `Root` entry before it.
        let mut roots = Vec::with_capacity(moves.len());
        let mut root = workspace.clone();
        for m in &moves {
            if let MoveEntry::Root { root: r } = m {
                root = if r.is_empty() {
                    workspace.clone()
                } else {
                    PathBuf::from(r)
                };
            }
            roots.push(root.clone());
        }
        let shown = |root: &Path, rel: &str| {
            if root == workspace {
                rel.to_string()
            } else {
                root.join(rel).display().to_string()
            }
        };
        let now_of = |root: &Path, rel: &str| std::fs::symlink_metadata(root.join(rel)).ok();
        let (mut changed, mut clobber) = (Vec::new(), Vec::new());
        for (m, root) in moves.iter().zip(&roots) {
            let now_of = |rel: &str| now_of(root, rel);
            if let MoveEntry::Moved {
                from,
                to,
                size,
                mtime_ns,
            } = m
            {
                match now_of(to) {
                    Some(meta)
                        if meta.is_file()
                            && meta.len() == *size
                            && mtime_of(&meta) == *mtime_ns =>
                    {
                        if now_of(from).is_some() {
                            clobber.push(shown(root, from));
                        }
                    }
                    // Logged but never moved (the run stopped between the two).
                    None if now_of(from).is_some() => {}
                    _ => changed.push(shown(root, to)),
                }
            }
        }
        if !clobber.is_empty() {
            return Err(JournalError::WouldClobber {
                job: job.to_string(),
                paths: clobber,
            });
        }
        if !changed.is_empty() && !force {
            return Err(JournalError::ChangedSince {
                job: job.to_string(),
                paths: changed,
                diff: String::new(),
            });
        }
        let mut done = Vec::new();
        for (m, root) in moves.iter().zip(&roots).rev() {
            match m {
                MoveEntry::Moved { from, to, .. } => {
                    if changed.contains(&shown(root, to)) || now_of(root, to).is_none() {
                        continue;
                    }
                    let (src, dst) = (root.join(to), root.join(from));
                    if let Some(d) = dst.parent() {
                        std::fs::create_dir_all(d).map_err(|e| self.io(d, e))?;
                    }
                    std::fs::rename(&src, &dst).map_err(|e| self.io(&src, e))?;
                    done.push(shown(root, from));
                }
                MoveEntry::Made { dir } => {
                    // Only if empty: the person may have put files there since.
                    let _ = std::fs::remove_dir(root.join(dir));
                }
                MoveEntry::Root { .. } => {}
            }
        }
        Ok(done)
    }

    /// Put back what was there before `job`. Returns the paths restored or removed.
    pub fn undo(&self, job: &str, force: bool) -> Result<Vec<String>, JournalError> {
        let moved_back = if self.moves_path(job).exists() {
            Some(self.undo_moves(job, force)?)
        } else {
            None
        };
        let changes = self.changes(job)?;
        if let (Some(done), true) = (&moved_back, changes.is_empty()) {
            let d = self.dir.join(job);
            std::fs::remove_dir_all(&d).map_err(|e| self.io(&d, e))?;
            return Ok(done.clone());
        }
        if changes.is_empty() {
            if self.externals(job)?.is_empty() {
                return Err(JournalError::Nothing(job.to_string()));
            }
            // Only outside changes (undone by the caller): the journal goes all the same.
            let d = self.dir.join(job);
            std::fs::remove_dir_all(&d).map_err(|e| self.io(&d, e))?;
            return Ok(vec![]);
        }
        let mut changed = Vec::new();
        let mut diff = String::new();
        for c in &changes {
            let now = self.files.hash_of(&c.path)?;
            if now != c.after {
                changed.push(c.path.clone());
                let job_text = c
                    .after
                    .as_ref()
                    .map(|_| "(the job's version)")
                    .unwrap_or("(deleted by the job)");
                let current = self
                    .files
                    .read(&c.path)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let before = self.before_text(job, c);
                diff.push_str(&format!(
                    "--- {} as it was before the job\n+++ {} now {job_text}\n",
                    c.path, c.path
                ));
                for d in similar::TextDiff::from_lines(&before, &current)
                    .unified_diff()
                    .context_radius(2)
                    .iter_hunks()
                {
                    diff.push_str(&d.to_string());
                }
            }
        }
        if !changed.is_empty() && !force {
            return Err(JournalError::ChangedSince {
                job: job.to_string(),
                paths: changed,
                diff,
            });
        }
        // What the moves put back, then what the writes restored.
        let mut done = moved_back.unwrap_or_default();
        for c in changes.iter().rev() {
            match &c.blob {
                Some(b) => {
                    let p = self.dir.join(job).join(b);
                    let bytes = std::fs::read(&p).map_err(|e| self.io(&p, e))?;
                    self.files.write(&c.path, &bytes)?;
                }
                None => {
                    let p = self.files.resolve(&c.path)?;
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(self.io(&p, e)),
                    }
                }
            }
            done.push(c.path.clone());
        }
        // Undone once: the journal goes, so a second undo cannot clobber later work.
        let d = self.dir.join(job);
        std::fs::remove_dir_all(&d).map_err(|e| self.io(&d, e))?;
        Ok(done)
    }

    fn before_text(&self, job: &str, c: &Change) -> String {
        c.blob
            .as_ref()
            .and_then(|b| std::fs::read(self.dir.join(job).join(b)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_restores_changed_and_removes_created_files_and_refuses_after_later_edits() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::new(d.path());
        let j = Journal::new(d.path());
        ws.write("TASKS.md", b"- [ ] one\n").unwrap();
        for (rel, bytes) in [
            ("TASKS.md", &b"- [x] one\n"[..]),
            ("reports/r.md", b"report"),
        ] {
            j.before("J1", rel).unwrap();
            ws.write(rel, bytes).unwrap();
            j.after("J1", rel).unwrap();
        }
        assert_eq!(j.jobs(), vec!["J1"]);
        // Someone edits TASKS.md after the job: undo refuses and shows the difference.
        ws.write("TASKS.md", b"- [x] one\n- [ ] two\n").unwrap();
        let e = j.undo("J1", false).unwrap_err().to_string();
        assert!(
            e.contains("TASKS.md") && e.contains("+- [ ] two") && e.contains("--force"),
            "{e}"
        );
        assert!(
            d.path().join("reports/r.md").exists(),
            "nothing undone on refusal"
        );
        let done = j.undo("J1", true).unwrap();
        assert_eq!(done, vec!["reports/r.md", "TASKS.md"]);
        assert_eq!(
            std::fs::read_to_string(d.path().join("TASKS.md")).unwrap(),
            "- [ ] one\n"
        );
        assert!(!d.path().join("reports/r.md").exists());
        assert!(matches!(j.undo("J1", false), Err(JournalError::Nothing(_))));
    }
}
