//! `files.organize` on 10,000 files through a real job, then `deskhand undo`: the tree (names,
//! sizes, contents, modification times) is exactly what it was; name conflicts get " (2)", a
//! symbolic link pointing out of the workspace is never moved; the built-in `organize-folder`
//! moves nothing by default (a dry run).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::util::{run_cli, temp};

/// Names, sizes, contents and modification times of every file and link under `dir` (the
/// agent's own folder aside), sorted.
fn tree(dir: &Path) -> Vec<(String, u64, Vec<u8>, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".deskhand") || rel == "dashboard.html" || rel.starts_with("reports")
            {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                std::fs::read_link(&p)
                    .unwrap()
                    .to_string_lossy()
                    .as_bytes()
                    .to_vec()
            };
            out.push((rel, m.len(), bytes, deskhand_agent::journal::mtime_of(&m)));
        }
    }
    out.sort();
    out
}

#[test]
fn ten_thousand_files_sorted_then_undone_leave_the_tree_as_it_was() {
    let ws = temp();
    let w = ws.path();
    let inbox = w.join("inbox");
    std::fs::create_dir_all(inbox.join("Images")).unwrap();
    let exts = [
        "png", "pdf", "csv", "zip", "mp3", "txt", "xlsx", "bin", "jpg", "md",
    ];
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for i in 0..10_000u64 {
        let p = inbox.join(format!("file-{i:05}.{}", exts[(i % 10) as usize]));
        std::fs::write(&p, format!("content of {i}\n").repeat((i % 7 + 1) as usize)).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(epoch + Duration::from_secs(i * 3600))
            .unwrap();
    }
    // Taken names, and a link out of the workspace.
    std::fs::write(inbox.join("Images/file-00000.png"), b"an older picture").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", inbox.join("elsewhere.txt")).unwrap();
    let before = tree(w);

    // The built-in skill's default is a dry run: nothing moves.
    let (ok, out, err) = run_cli(w, &["/organize-folder", "folder=inbox"]);
    assert!(ok, "{out}{err}");
    assert_eq!(tree(w), before);

    let plan = std::fs::read_dir(w.join("reports"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .next()
        .expect("the dry run wrote its plan");
    assert!(
        plan.contains("10000 file(s) to move (a dry run"),
        "{}",
        &plan[..300]
    );
    assert!(plan.contains("inbox/Images/file-00000 (2).png"));
    assert!(plan.contains("inbox/elsewhere.txt: a symbolic link"));

    // The built-in skill with --yes: the plan is approved as a whole, then carried out.
    let (ok, out, err) = run_cli(
        w,
        &[
            "skills",
            "run",
            "organize-folder",
            "-p",
            "folder=inbox",
            "-p",
            "dry_run=false",
            "--yes",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(err.contains("approved (--yes): move on inbox"), "{err}");
    let left: Vec<String> = std::fs::read_dir(&inbox)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        std::fs::read(inbox.join("Images/file-00000 (2).png")).unwrap(),
        b"content of 0\n"
    );
    assert_eq!(
        std::fs::read(inbox.join("Images/file-00000.png")).unwrap(),
        b"an older picture"
    );
    assert!(inbox.join("Documents/file-00001.pdf").is_file());
    assert!(std::fs::symlink_metadata(inbox.join("elsewhere.txt"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_dir(inbox.join("Audio")).unwrap().count(),
        1000,
        "every mp3 in Audio"
    );

    let (ok, out, err) = run_cli(w, &["jobs", "list", "--json"]);
    assert!(ok, "{err}");
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["skill"] == "organize-folder" && j["state"] == "succeeded")
        .and_then(|j| j["id"].as_str())
        .unwrap()
        .to_string();
    let (ok, out, err) = run_cli(w, &["undo", &id]);
    assert!(ok, "{out}{err}");
    assert!(tree(w) == before, "the tree is not as it was after undo");
    assert!(
        !inbox.join("Audio").exists(),
        "the folders it made are gone"
    );
}

#[test]
fn a_move_a_rename_and_a_delete_are_journaled_and_undone_and_never_overwrite() {
    let ws = temp();
    let w = ws.path();
    std::fs::create_dir_all(w.join("notes")).unwrap();
    std::fs::write(w.join("notes/a.txt"), b"alpha").unwrap();
    std::fs::write(w.join("notes/b.txt"), b"beta").unwrap();
    std::fs::write(w.join("notes/c.txt"), b"gamma").unwrap();
    let skill = w.join("skills/tidy");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: tidy\ndescription: Move, rename, delete.\n---\n# tidy\n",
    )
    .unwrap();
    let yaml = "permissions:\n  workspace: [\"notes/**\"]\n  without-asking: [move, delete]\nsteps:\n  - id: move\n    uses: file.move\n    with: {from: notes/a.txt, to: notes/old/a.txt}\n  - id: rename\n    uses: file.move\n    needs: [move]\n    with: {from: notes/b.txt, to: notes/b-renamed.txt}\n  - id: delete\n    uses: file.delete\n    needs: [rename]\n    with: {path: notes/c.txt}\n";
    std::fs::write(skill.join("skill.yaml"), yaml).unwrap();
    let (ok, out, err) = run_cli(w, &["skills", "trust", "tidy", "--yes"]);
    assert!(ok, "{out}{err}");
    let before = tree(w);
    let (ok, out, err) = run_cli(w, &["skills", "run", "tidy"]);
    assert!(ok, "{out}{err}");
    assert_eq!(std::fs::read(w.join("notes/old/a.txt")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read(w.join("notes/b-renamed.txt")).unwrap(),
        b"beta"
    );
    assert!(!w.join("notes/c.txt").exists() && !w.join("notes/a.txt").exists());
    let audit = std::fs::read_to_string(w.join(".deskhand/audit.jsonl")).unwrap_or_default();
    assert!(
        audit.contains("file.moved") && audit.contains("file.deleted"),
        "audited"
    );

    let (_, out, _) = run_cli(w, &["jobs", "list", "--json"]);
    let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let (ok, out, err) = run_cli(w, &["undo", &id]);
    assert!(ok, "{out}{err}");
    assert!(tree(w) == before, "undo put everything back");
    assert!(!w.join("notes/old").exists());

    // A move onto an existing file is refused, and nothing changes.
    std::fs::write(
        skill.join("skill.yaml"),
        "permissions:\n  workspace: [\"notes/**\"]\n  without-asking: [move]\nsteps:\n  - id: move\n    uses: file.move\n    with: {from: notes/a.txt, to: notes/b.txt}\n",
    )
    .unwrap();
    let (ok, out, err) = run_cli(w, &["skills", "trust", "tidy", "--yes"]);
    assert!(ok, "{out}{err}");
    let again = tree(w);
    let (ok, out, err) = run_cli(w, &["skills", "run", "tidy"]);
    assert!(!ok, "{out}");
    assert!(err.contains("never replaces a file"), "{err}");
    assert!(tree(w) == again);
}
