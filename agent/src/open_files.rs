//! Which files some program has open for writing, so a sort never moves a file that is still
//! being written (a download in progress, a document being saved). On Linux each open file of a
//! process is a link in `/proc/PID/fd/`, whose permission bits say how it was opened (`w` for
//! writing); only the person's own processes are visible, which are the ones that matter here.
//! Elsewhere the set is empty and a file still being written shows up only as a change of size
//! or time between the plan and the move (which also skips it).

use std::collections::HashSet;

/// Why a file some program is writing stays where it is.
pub const WHY: &str = "open for writing by a program (still being written?)";

/// A file's identity: device and inode.
pub type FileId = (u64, u64);

/// The files open for writing by any process this user can see, right now.
#[cfg(target_os = "linux")]
pub fn open_for_writing() -> HashSet<FileId> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut out = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        // Another user's process, or one that just ended: nothing to read.
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let writable = std::fs::symlink_metadata(fd.path())
                .is_ok_and(|m| m.permissions().mode() & 0o200 != 0);
            if !writable {
                continue;
            }
            if let Ok(m) = std::fs::metadata(fd.path()) {
                if m.is_file() {
                    out.insert((m.dev(), m.ino()));
                }
            }
        }
    }
    out
}

/// Not known on this system: empty.
#[cfg(not(target_os = "linux"))]
pub fn open_for_writing() -> HashSet<FileId> {
    HashSet::new()
}

/// The identity of a file's metadata.
pub fn id_of(m: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_file_held_open_for_writing_is_seen_and_one_open_for_reading_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (w, r) = (dir.path().join("w.part"), dir.path().join("r.txt"));
        std::fs::write(&r, b"x").unwrap();
        let writer = std::fs::File::create(&w).unwrap();
        let reader = std::fs::File::open(&r).unwrap();
        let busy = open_for_writing();
        assert!(busy.contains(&id_of(&std::fs::metadata(&w).unwrap())));
        assert!(!busy.contains(&id_of(&std::fs::metadata(&r).unwrap())));
        drop((writer, reader));
        assert!(!open_for_writing().contains(&id_of(&std::fs::metadata(&w).unwrap())));
    }
}
