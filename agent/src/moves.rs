//! Moving workspace files with a move log: each file moves only if it is still what was planned
//! (size and modification time) and its new name is still free, never through a symbolic link;
//! every folder made and every move is in the job's move log before it happens, so `deskhand
//! undo` can put everything back (see [`crate::journal`]). `files.organize`, `file.move` and
//! `file.delete` all move through here.

use std::collections::HashSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use crate::journal::{mtime_of, MoveEntry, MoveLog};

/// One planned move (workspace-relative paths) and what the file was when planned.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Move {
    /// Where it is.
    pub from: String,
    /// Where it goes.
    pub to: String,
    /// Its size when planned.
    pub size: u64,
    /// Its modification time when planned (ns since the epoch).
    #[serde(skip)]
    pub mtime_ns: i64,
}

/// What the moves of a plan came to.
#[derive(Debug, Default)]
pub struct Moved {
    /// Files moved.
    pub moved: usize,
    /// Files left: `(path, why)`.
    pub skipped: Vec<(String, String)>,
}

/// Is `rel` a relative path that stays inside `root` without passing a symbolic link (for the
/// folders outside the workspace a person granted, where the workspace's own resolver does not
/// apply)?
pub fn stays_inside(root: &Path, rel: &str) -> Result<(), String> {
    let path = Path::new(rel);
    if rel.is_empty()
        || path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err("not a plain path inside the granted folder".into());
    }
    let mut at = root.to_path_buf();
    let parts: Vec<_> = path.components().collect();
    for part in &parts[..parts.len() - 1] {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symbolic link: moves never pass one",
                    at.display()
                ))
            }
            Ok(m) if !m.is_dir() => return Err(format!("{} is not a folder", at.display())),
            _ => {}
        }
    }
    Ok(())
}

/// Move the planned files under `root`, each only if it is still what was planned and its new
/// name is still free; every folder made and every move goes into `log` first.
pub fn carry_out(root: &Path, moves: &[Move], log: &mut MoveLog) -> Result<Moved, String> {
    let mut made = HashSet::new();
    let mut done = Moved::default();
    let busy = crate::open_files::open_for_writing();
    for m in moves {
        let (src, dst) = (root.join(&m.from), root.join(&m.to));
        let still = std::fs::symlink_metadata(&src)
            .ok()
            .filter(|meta| meta.is_file() && meta.len() == m.size && mtime_of(meta) == m.mtime_ns);
        let Some(meta) = still else {
            done.skipped
                .push((m.from.clone(), "changed or gone since the plan".into()));
            continue;
        };
        if busy.contains(&crate::open_files::id_of(&meta)) {
            done.skipped
                .push((m.from.clone(), crate::open_files::WHY.into()));
            continue;
        }
        if std::fs::symlink_metadata(&dst).is_ok() {
            done.skipped
                .push((m.from.clone(), format!("{} was taken since the plan", m.to)));
            continue;
        }
        let parent = m.to.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
        if !parent.is_empty() && made.insert(parent.to_string()) {
            // Each folder this run makes, outermost first, so undo can remove it.
            let mut new_dirs = Vec::new();
            let mut cur = Path::new(parent);
            while !cur.as_os_str().is_empty() && std::fs::symlink_metadata(root.join(cur)).is_err()
            {
                new_dirs.push(cur.to_string_lossy().into_owned());
                cur = cur.parent().unwrap_or(Path::new(""));
            }
            for d in new_dirs.iter().rev() {
                log.record(&MoveEntry::Made { dir: d.clone() })
                    .map_err(|e| e.to_string())?;
            }
            std::fs::create_dir_all(root.join(parent))
                .map_err(|e| format!("making {parent}: {e}"))?;
        }
        log.record(&MoveEntry::Moved {
            from: m.from.clone(),
            to: m.to.clone(),
            size: m.size,
            mtime_ns: m.mtime_ns,
        })
        .map_err(|e| e.to_string())?;
        std::fs::rename(&src, &dst).map_err(|e| format!("moving {}: {e}", m.from))?;
        done.moved += 1;
    }
    Ok(done)
}
