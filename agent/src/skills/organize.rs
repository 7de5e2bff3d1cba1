//! `files.organize`: sort the files of a workspace folder into subfolders — by type (`Images/`,
//! `Documents/`, …), by date (`{yyyy}/{mm}` of each file's modification time), or by a name
//! pattern — as one plan: every move and every conflict, shown whole as the approval preview, and
//! a dry run unless asked otherwise. Moves never overwrite (a taken name becomes `name (2).ext`),
//! never follow or move a symbolic link, and skip a file that changed after the plan was made;
//! the journal keeps each move, so `deskhand undo JOB` puts every file back.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Line;
use crate::guard::Guard;
use crate::moves::Move;
use crate::runner::{StepCtx, StepError};

/// Moves shown one by one in the approval preview (the rest are counted per folder).
const PREVIEW_MOVES: usize = 200;

/// `files.organize`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrganizeArgs {
    /// The folder to sort, relative to the workspace (e.g. `inbox`), or a folder outside it the
    /// person granted this skill in config (`~/Downloads`); its own files only, not those in
    /// its subfolders.
    folder: Line,
    /// `type` (Images, Documents, …), `date` (`{yyyy}/{mm}` of the modification time) or
    /// `pattern`.
    #[serde(default)]
    by: By,
    /// For `by: pattern`: a regular expression on file names; a matching file goes into the
    /// folder its first capture group names (or `into`); others stay.
    #[serde(default)]
    pattern: Option<Line>,
    /// For `by: pattern`: the folder matching files go into, instead of the first capture.
    #[serde(default)]
    into: Option<Line>,
    /// Only make and show the plan (the default): nothing moves.
    #[serde(default = "yes")]
    dry_run: bool,
}

fn yes() -> bool {
    true
}

/// How files are sorted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// By kind of file, from its extension.
    #[default]
    Type,
    /// By modification month.
    Date,
    /// By a regular expression on the name.
    Pattern,
}

/// A sort, planned.
#[derive(Debug, Default, Clone, Serialize, JsonSchema)]
pub struct Plan {
    /// Every move.
    pub moves: Vec<Move>,
    /// Names already taken at the destination: `(wanted, given)`.
    pub conflicts: Vec<(String, String)>,
    /// Files left where they are: `(path, why)`.
    pub skipped: Vec<(String, String)>,
}

/// What `files.organize` did (or would do).
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrganizeOut {
    /// Only planned.
    dry_run: bool,
    /// Files moved (0 on a dry run).
    moved: usize,
    /// Files planned to move, per destination folder.
    folders: BTreeMap<String, usize>,
    /// Names already taken: `[wanted, given]`.
    conflicts: Vec<(String, String)>,
    /// Files left: `[path, why]`, including those that changed after the plan.
    skipped: Vec<(String, String)>,
    /// The first moves.
    moves: Vec<Move>,
    /// The whole plan as Markdown, when the skill may write reports.
    plan: Option<String>,
}

/// The folder a file of this extension goes into when sorting by type.
pub fn kind_of(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return "Other",
    };
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "svg" | "heic" | "bmp" | "tif" | "tiff" => {
            "Images"
        }
        "pdf" | "doc" | "docx" | "odt" | "rtf" | "txt" | "md" | "pages" | "epub" => "Documents",
        "xls" | "xlsx" | "ods" | "csv" | "tsv" | "numbers" => "Spreadsheets",
        "ppt" | "pptx" | "odp" | "key" => "Presentations",
        "zip" | "tar" | "gz" | "tgz" | "bz2" | "xz" | "7z" | "rar" | "zst" => "Archives",
        "mp3" | "wav" | "flac" | "m4a" | "ogg" | "aac" | "opus" => "Audio",
        "mp4" | "mov" | "mkv" | "avi" | "webm" | "m4v" => "Video",
        "deb" | "rpm" | "dmg" | "pkg" | "exe" | "msi" | "appimage" | "apk" => "Installers",
        "ics" | "vcf" | "eml" => "Mail and calendar",
        _ => "Other",
    }
}

/// `name (2).ext`, `name (3).ext`, … for a taken `name.ext`.
fn numbered(name: &str, n: u32) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
        _ => format!("{name} ({n})"),
    }
}

/// The subfolder `name` goes into, or `None` when it stays.
fn destination(
    name: &str,
    meta: &std::fs::Metadata,
    by: By,
    pattern: Option<&regex::Regex>,
    into: Option<&str>,
) -> Option<String> {
    match by {
        By::Type => Some(kind_of(name).to_string()),
        By::Date => {
            let t: chrono::DateTime<chrono::Local> = meta.modified().ok()?.into();
            Some(t.format("%Y/%m").to_string())
        }
        By::Pattern => {
            let caps = pattern?.captures(name)?;
            let folder = into
                .map(str::to_string)
                .or_else(|| caps.get(1).map(|m| m.as_str().trim().to_string()))?;
            // A capture names one folder: no separators, no way up.
            let clean: String = folder
                .chars()
                .map(|c| if matches!(c, '/' | '\\') { '-' } else { c })
                .collect();
            (!clean.is_empty() && clean != "." && clean != "..").then_some(clean)
        }
    }
}

/// Why nothing may go into the subfolder `sub` of `dir`: a part of it is a symbolic link or a
/// file. `None` when it is (or can be made) a plain folder.
fn blocked(dir: &Path, sub: &str) -> Option<String> {
    let mut at = dir.to_path_buf();
    for part in sub.split('/') {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Some(format!(
                    "its folder {sub} is a symbolic link: nothing is moved into one"
                ))
            }
            Ok(m) if !m.is_dir() => return Some(format!("{sub} is a file, not a folder")),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Plan the sort of `dir` (the folder `rel` of the workspace): its own files, not subfolders.
pub fn plan(
    dir: &Path,
    rel: &str,
    by: By,
    pattern: Option<&regex::Regex>,
    into: Option<&str>,
) -> std::io::Result<Plan> {
    let rel = rel.trim_matches('/');
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    let mut entries: Vec<(String, std::fs::Metadata)> = Vec::new();
    let mut plan = Plan::default();
    let busy = crate::open_files::open_for_writing();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = e.metadata()?; // does not follow a symlink
        if meta.file_type().is_symlink() {
            plan.skipped
                .push((join(rel, &name), "a symbolic link: never moved".into()));
        } else if meta.is_file() {
            if name.starts_with('.') {
                plan.skipped.push((join(rel, &name), "hidden".into()));
            } else if busy.contains(&crate::open_files::id_of(&meta)) {
                plan.skipped
                    .push((join(rel, &name), crate::open_files::WHY.into()));
            } else {
                entries.push((name, meta));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // Names taken at each destination: on disk now, or by an earlier move of this plan.
    let mut taken: HashSet<String> = HashSet::new();
    let mut listed: HashSet<String> = HashSet::new();
    for (name, meta) in entries {
        let Some(sub) = destination(&name, &meta, by, pattern, into) else {
            continue;
        };
        let folder = join(rel, &sub);
        // A destination that is a link (or a file) could lead anywhere: nothing goes into it.
        if let Some(bad) = blocked(dir, &sub) {
            plan.skipped.push((join(rel, &name), bad));
            continue;
        }
        if listed.insert(folder.clone()) {
            if let Ok(rd) = std::fs::read_dir(dir.join(&sub)) {
                for e in rd.flatten() {
                    taken.insert(join(&folder, &e.file_name().to_string_lossy()));
                }
            }
        }
        let wanted = join(&folder, &name);
        let mut to = wanted.clone();
        let mut n = 2;
        while taken.contains(&to) {
            to = join(&folder, &numbered(&name, n));
            n += 1;
        }
        if to != wanted {
            plan.conflicts.push((wanted, to.clone()));
        }
        taken.insert(to.clone());
        plan.moves.push(Move {
            from: join(rel, &name),
            to,
            size: meta.len(),
            mtime_ns: crate::journal::mtime_of(&meta),
        });
    }
    Ok(plan)
}

/// `files.organize`: plan, show the plan (the approval), move.
pub(super) async fn organize(
    g: Guard,
    a: OrganizeArgs,
    _: StepCtx,
) -> Result<OrganizeOut, StepError> {
    let pattern = match (a.by, &a.pattern) {
        (By::Pattern, Some(p)) => Some(regex::Regex::new(p.as_str()).map_err(|e| {
            StepError::Invalid(format!("files.organize: pattern {:?}: {e}", p.as_str()))
        })?),
        (By::Pattern, None) => {
            return Err(StepError::Invalid(
                "files.organize by pattern needs `pattern` (a regular expression on names)".into(),
            ))
        }
        _ => None,
    };
    // A folder outside the workspace the person granted this skill, or a workspace folder.
    let outside = g.granted_folder(a.folder.as_str())?;
    let (dir, rel) = match &outside {
        Some(dir) => (dir.clone(), String::new()),
        None => g.folder(a.folder.as_str())?,
    };
    let into = a.into.as_ref().map(|l| l.0.clone());
    let by = a.by;
    let plan = tokio::task::spawn_blocking(move || {
        plan(&dir, &rel, by, pattern.as_ref(), into.as_deref())
    })
    .await?
    .map_err(|e| StepError::Fatal(format!("files.organize: reading {}: {e}", a.folder)))?;
    let mut folders: BTreeMap<String, usize> = BTreeMap::new();
    for m in &plan.moves {
        let f = m.to.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        *folders.entry(f.to_string()).or_default() += 1;
    }
    let mut out = OrganizeOut {
        dry_run: a.dry_run,
        moved: 0,
        folders,
        conflicts: plan.conflicts.clone(),
        skipped: plan.skipped.clone(),
        moves: plan.moves.iter().take(PREVIEW_MOVES).cloned().collect(),
        plan: None,
    };
    // The whole plan as a Markdown file, where the skill may write reports.
    let report_path = g.output_path("md");
    let write_report = g.may_write(&report_path);
    if write_report {
        g.write_file(
            &report_path,
            plan_markdown(a.folder.as_str(), by, &plan, a.dry_run).into_bytes(),
        )
        .await?;
        out.plan = Some(report_path.clone());
    }
    if a.dry_run || plan.moves.is_empty() {
        return Ok(out);
    }
    let report = g
        .move_files(a.folder.as_str(), outside.as_deref(), &plan.moves, &out)
        .await?;
    out.moved = report.moved;
    out.skipped.extend(report.skipped);
    Ok(out)
}

/// The plan for a person to read: folders and counts, conflicts, what stays, every move.
fn plan_markdown(folder: &str, by: By, plan: &Plan, dry_run: bool) -> String {
    use std::fmt::Write as _;
    let mut md = format!(
        "# Sorting {folder} by {}

{} file(s) to move{}.

",
        match by {
            By::Type => "type",
            By::Date => "month",
            By::Pattern => "name pattern",
        },
        plan.moves.len(),
        if dry_run {
            " (a dry run: nothing was moved)"
        } else {
            ""
        }
    );
    let mut folders: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &plan.moves {
        *folders
            .entry(m.to.rsplit_once('/').map(|(d, _)| d).unwrap_or(""))
            .or_default() += 1;
    }
    md.push_str(
        "| Folder | Files |
|---|---:|
",
    );
    for (f, n) in &folders {
        let _ = writeln!(md, "| {} | {n} |", md_cell(f));
    }
    if !plan.conflicts.is_empty() {
        md.push_str(
            "
## Names already taken

",
        );
        for (wanted, given) in &plan.conflicts {
            let _ = writeln!(md, "- {} → {}", md_cell(wanted), md_cell(given));
        }
    }
    if !plan.skipped.is_empty() {
        md.push_str(
            "
## Left where they are

",
        );
        for (p, why) in &plan.skipped {
            let _ = writeln!(md, "- {}: {why}", md_cell(p));
        }
    }
    md.push_str(
        "
## Moves

| From | To |
|---|---|
",
    );
    for m in &plan.moves {
        let _ = writeln!(md, "| {} | {} |", md_cell(&m.from), md_cell(&m.to));
    }
    md
}

/// A file name as Markdown table text: its pipes and markup characters escaped.
fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    fn by_type_with_conflicts_hidden_files_and_links_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for n in [
            "a.PNG",
            "b.pdf",
            "c.xlsx",
            "d.zip",
            "e",
            "f.tar.gz",
            ".hidden.png",
        ] {
            touch(p, n, b"x");
        }
        std::fs::create_dir(p.join("Images")).unwrap();
        touch(&p.join("Images"), "a.PNG", b"older");
        std::os::unix::fs::symlink("/etc/passwd", p.join("link.txt")).unwrap();
        let plan = plan(p, "inbox", By::Type, None, None).unwrap();
        let moves: Vec<(&str, &str)> = plan
            .moves
            .iter()
            .map(|m| (m.from.as_str(), m.to.as_str()))
            .collect();
        assert_eq!(
            moves,
            [
                ("inbox/a.PNG", "inbox/Images/a (2).PNG"),
                ("inbox/b.pdf", "inbox/Documents/b.pdf"),
                ("inbox/c.xlsx", "inbox/Spreadsheets/c.xlsx"),
                ("inbox/d.zip", "inbox/Archives/d.zip"),
                ("inbox/e", "inbox/Other/e"),
                ("inbox/f.tar.gz", "inbox/Archives/f.tar.gz"),
            ]
        );
        assert_eq!(
            plan.conflicts,
            [(
                "inbox/Images/a.PNG".to_string(),
                "inbox/Images/a (2).PNG".to_string()
            )]
        );
        let skipped: Vec<&str> = plan.skipped.iter().map(|s| s.0.as_str()).collect();
        assert!(skipped.contains(&"inbox/link.txt") && skipped.contains(&"inbox/.hidden.png"));
    }

    /// Names, sizes, contents and modification times of every file under `dir`, sorted.
    fn tree(dir: &Path) -> Vec<(String, u64, Vec<u8>, i64)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                    let bytes = if m.is_file() {
                        std::fs::read(&p).unwrap()
                    } else {
                        vec![]
                    };
                    out.push((rel, m.len(), bytes, crate::journal::mtime_of(&m)));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn moves_skip_what_changed_and_undo_puts_everything_back_byte_for_byte() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path();
        let inbox = ws.join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        for n in ["a.png", "b.pdf", "c.csv", "d.txt"] {
            touch(&inbox, n, n.as_bytes());
        }
        std::fs::create_dir(inbox.join("Images")).unwrap();
        touch(&inbox.join("Images"), "a.png", b"already here");
        let before = tree(ws);
        let plan = plan(&inbox, "inbox", By::Type, None, None).unwrap();
        assert_eq!(plan.conflicts.len(), 1);
        // After the plan: one file is rewritten, one destination is taken.
        std::thread::sleep(std::time::Duration::from_millis(5));
        touch(&inbox, "d.txt", b"edited after the plan");
        std::fs::create_dir(inbox.join("Spreadsheets")).unwrap();
        touch(&inbox.join("Spreadsheets"), "c.csv", b"someone else's");
        let journal = crate::journal::Journal::new(ws);
        let mut log = journal.move_log("J").unwrap();
        let done = crate::moves::carry_out(ws, &plan.moves, &mut log).unwrap();
        log.finish().unwrap();
        assert_eq!(done.moved, 2, "{:?}", done.skipped);
        let why: Vec<&str> = done.skipped.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(why, ["inbox/c.csv", "inbox/d.txt"]);
        assert_eq!(
            std::fs::read(inbox.join("Images/a (2).png")).unwrap(),
            b"a.png"
        );
        // Undo: everything back, the folders it made gone (Spreadsheets is someone else's).
        std::fs::remove_file(inbox.join("Spreadsheets/c.csv")).unwrap();
        std::fs::remove_dir(inbox.join("Spreadsheets")).unwrap();
        touch(&inbox, "d.txt", b"d.txt");
        let restored = journal.undo("J", false).unwrap();
        assert_eq!(restored.len(), 2);
        let after = tree(ws);
        let without_journal: Vec<_> = after
            .into_iter()
            .filter(|t| !t.0.starts_with(".deskhand"))
            .collect();
        let before_d: Vec<_> = before
            .into_iter()
            .filter(|t| t.0 != "inbox/d.txt")
            .collect();
        let after_d: Vec<_> = without_journal
            .into_iter()
            .filter(|t| t.0 != "inbox/d.txt")
            .collect();
        assert_eq!(before_d, after_d);
        assert!(
            !inbox.join("Documents").exists(),
            "the folder it made is gone"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_still_being_written_is_never_moved() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path();
        let inbox = ws.join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        for n in ["done.pdf", "late.pdf"] {
            touch(&inbox, n, b"x");
        }
        // A download in progress when the plan is made: left out of the plan.
        let writing = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(inbox.join("movie.mp4.part"))
            .unwrap();
        let p = plan(&inbox, "inbox", By::Type, None, None).unwrap();
        assert!(p
            .skipped
            .contains(&("inbox/movie.mp4.part".into(), crate::open_files::WHY.into())));
        assert_eq!(p.moves.len(), 2);
        // A file opened for writing after the plan: skipped when the moves are made.
        let late = std::fs::OpenOptions::new()
            .write(true)
            .open(inbox.join("late.pdf"))
            .unwrap();
        let journal = crate::journal::Journal::new(ws);
        let mut log = journal.move_log("J").unwrap();
        let done = crate::moves::carry_out(ws, &p.moves, &mut log).unwrap();
        assert_eq!(done.moved, 1);
        assert_eq!(
            done.skipped,
            [(
                "inbox/late.pdf".to_string(),
                crate::open_files::WHY.to_string()
            )]
        );
        assert!(inbox.join("late.pdf").exists() && inbox.join("Documents/done.pdf").exists());
        drop((writing, late));
    }

    #[test]
    fn undo_never_replaces_a_file_made_since_at_an_old_name() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path();
        let inbox = ws.join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        touch(&inbox, "a.png", b"mine");
        let plan = plan(&inbox, "inbox", By::Type, None, None).unwrap();
        let journal = crate::journal::Journal::new(ws);
        let mut log = journal.move_log("J").unwrap();
        crate::moves::carry_out(ws, &plan.moves, &mut log).unwrap();
        log.finish().unwrap();
        touch(&inbox, "a.png", b"a new one");
        let err = journal.undo("J", true).unwrap_err().to_string();
        assert!(
            err.contains("inbox/a.png") && err.contains("not replaced"),
            "{err}"
        );
        assert_eq!(std::fs::read(inbox.join("a.png")).unwrap(), b"a new one");
        assert_eq!(std::fs::read(inbox.join("Images/a.png")).unwrap(), b"mine");
    }

    #[test]
    fn by_pattern_and_by_date() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for n in [
            "invoice-acme-1.pdf",
            "invoice-acme-2.pdf",
            "invoice-globex-1.pdf",
            "notes.txt",
            "invoice-../x.pdf",
        ] {
            if !n.contains('/') {
                touch(p, n, b"x");
            }
        }
        let re = regex::Regex::new(r"^invoice-([a-z]+)-").unwrap();
        let plan = plan(p, "", By::Pattern, Some(&re), None).unwrap();
        let to: Vec<&str> = plan.moves.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(
            to,
            [
                "acme/invoice-acme-1.pdf",
                "acme/invoice-acme-2.pdf",
                "globex/invoice-globex-1.pdf"
            ]
        );
        let plan2 = super::plan(p, "", By::Pattern, Some(&re), Some("Invoices")).unwrap();
        assert!(plan2.moves.iter().all(|m| m.to.starts_with("Invoices/")));
        let plan3 = super::plan(p, "", By::Date, None, None).unwrap();
        let month = chrono::Local::now().format("%Y/%m").to_string();
        assert_eq!(plan3.moves.len(), 4);
        assert!(
            plan3.moves.iter().all(|m| m.to.starts_with(&month)),
            "{:?}",
            plan3.moves
        );
    }
}
