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
    let id = succeeded(&out, "organize-folder");
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

/// `deskhand` with `HOME` set (for `~/Downloads`) and no user config.
fn run_at_home(ws: &Path, home: &Path, args: &[&str]) -> (bool, String, String) {
    crate::util::run_cli_with(
        ws,
        args,
        &[
            ("HOME", home.as_os_str()),
            ("DESKHAND_USER_CONFIG", std::ffi::OsStr::new("")),
        ],
    )
}

/// The id of the newest succeeded job of `skill` in `jobs list --json` output.
fn succeeded(jobs_json: &str, skill: &str) -> String {
    let jobs: serde_json::Value = serde_json::from_str(jobs_json).unwrap();
    jobs.as_array()
        .unwrap()
        .iter()
        .find(|j| j["skill"] == skill && j["state"] == "succeeded")
        .and_then(|j| j["id"].as_str())
        .unwrap()
        .to_string()
}

#[test]
fn a_granted_folder_outside_the_workspace_is_sorted_and_undone_and_no_other_is() {
    let ws = temp();
    let w = ws.path();
    let home = temp();
    let downloads = home.path().join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    for (n, bytes) in [
        ("report.pdf", "pdf"),
        ("photo.png", "png"),
        ("old.zip", "zip"),
    ] {
        std::fs::write(downloads.join(n), bytes).unwrap();
    }
    // A download still being written (this process holds it open), and an Images folder that
    // is a link to somewhere else.
    let part = downloads.join("movie.mp4.part");
    let writing = std::fs::File::create(&part).unwrap();
    let elsewhere = temp();
    std::os::unix::fs::symlink(elsewhere.path(), downloads.join("Images")).unwrap();
    let other = temp();
    std::fs::write(other.path().join("notes.txt"), "x").unwrap();
    std::fs::create_dir_all(w.join(".deskhand")).unwrap();
    std::fs::write(
        w.join(".deskhand/config.toml"),
        format!(
            "[[files.granted]]\npath = \"~/Downloads\"\nskills = [\"organize-folder\"]\n\n\
             [[files.granted]]\npath = {:?}\nskills = [\"someone-else\"]\n",
            other.path().display().to_string()
        ),
    )
    .unwrap();
    let before = tree(&downloads);
    let run = |folder: &str| {
        run_at_home(
            w,
            home.path(),
            &[
                "skills",
                "run",
                "organize-folder",
                "-p",
                &format!("folder={folder}"),
                "-p",
                "dry_run=false",
                "--yes",
            ],
        )
    };

    // A folder nobody granted, and one granted to another skill: refused, saying how to grant.
    let stranger = temp();
    let (ok, out, err) = run(&stranger.path().display().to_string());
    assert!(!ok, "{out}");
    assert!(
        err.contains("not granted") && err.contains("[[files.granted]]"),
        "{err}"
    );
    let (ok, _, err) = run(&other.path().display().to_string());
    assert!(!ok);
    assert!(err.contains("granted to [\"someone-else\"] only"), "{err}");
    assert!(other.path().join("notes.txt").is_file());

    // The granted one: sorted, but never into the link, never the file being written.
    let (ok, out, err) = run("~/Downloads");
    assert!(ok, "{out}{err}");
    assert!(downloads.join("Documents/report.pdf").is_file());
    assert!(downloads.join("Archives/old.zip").is_file());
    assert!(
        downloads.join("photo.png").is_file(),
        "not moved into the link"
    );
    assert!(part.is_file(), "the file being written stays");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let plan = std::fs::read_dir(w.join("reports"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(plan.contains("open for writing"), "{plan}");
    assert!(plan.contains("symbolic link"), "{plan}");

    // Undone: the folder is as it was.
    let (ok, out, err) = run_at_home(w, home.path(), &["jobs", "list", "--json"]);
    assert!(ok, "{err}");
    let id = succeeded(&out, "organize-folder");
    let (ok, out, err) = run_at_home(w, home.path(), &["undo", &id]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&downloads.join("report.pdf").display().to_string()),
        "{out}"
    );
    assert!(
        tree(&downloads) == before,
        "the folder is not as it was after undo"
    );
    assert!(!downloads.join("Documents").exists());
    drop(writing);
}
