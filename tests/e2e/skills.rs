//! Skills end to end: the real `deskhand` binary runs the built-in skills against the fake Google
//! and Notion servers and the fixture site; skill loading and installing; TASKS.md and MEMORY.md
//! from the CLI; the dashboard in real Chromium with hostile content.

use std::path::Path;

use deskhand_fake_providers::{FakeData, FakeMessage};
use serde_json::{json, Value};

use crate::connectors::Env;

const DAY: &str = "date=2026-11-26";
const TZ: &str = "tz=Europe/Berlin";

fn fixtures() -> FakeData {
    FakeData::bundled().expect("fixtures load")
}

fn seed_workspace(ws: &Path) {
    for f in ["TASKS.md", "MEMORY.md"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/workspace")
                .join(f),
            ws.join(f),
        )
        .unwrap();
    }
}

fn read(ws: &Path, rel: &str) -> String {
    std::fs::read_to_string(ws.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The paths a `skills run`/trigger printed, relative to the workspace.
fn outputs(ws: &Path, stdout: &str) -> Vec<String> {
    let prefix = format!("{}/", ws.display());
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix).map(String::from))
        .filter(|p| p.starts_with("reports/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_report_cross_references_calendar_mail_and_tasks() {
    let env = Env::start(fixtures()).await;
    env.connect_google().await;
    seed_workspace(env.ws.path());
    let ws = env.ws.path();
    let before_tasks = read(ws, "TASKS.md");

    let (ok, out, err) = env.run(&["/status-report", DAY, TZ]).await;
    assert!(ok, "status-report failed:\n{out}\n{err}");
    let outs = outputs(ws, &out);
    let md_rel = outs
        .iter()
        .find(|p| p.ends_with(".md"))
        .expect("a markdown report");
    let xlsx_rel = outs
        .iter()
        .find(|p| p.ends_with(".xlsx"))
        .expect("an xlsx report");
    let md = read(ws, md_rel);
    // Calendar: today's meeting and tomorrow's lunch, in Berlin time, with MEMORY.md's names.
    assert!(md.contains("Thursday 26 November 2026"), "{md}");
    assert!(
        md.contains("14:00–15:30") && md.contains("Difference engine demo"),
        "{md}"
    );
    assert!(md.contains("Lunch with Alan"), "{md}");
    assert!(
        md.contains("Charles Babbage (Difference Engine; send tables as CSV)"),
        "{md}"
    );
    // Mail since the start of yesterday: Charles's unread reply and Alan's flagged mail; not the
    // spam, not older mail, not newsletters.
    assert!(
        md.contains("Re: Difference engine demo") && md.contains("Lunch on Friday?"),
        "{md}"
    );
    assert!(
        !md.contains("You have won") && !md.contains("Compiler meeting notes"),
        "{md}"
    );
    assert!(!md.contains("punched cards"), "{md}");
    // Tasks: overdue and due soon; done ones left out.
    let overdue = md
        .split("## Overdue tasks")
        .nth(1)
        .unwrap()
        .split("## ")
        .next()
        .unwrap();
    assert!(
        overdue.contains("Send Charles the corrected logarithm tables"),
        "{overdue}"
    );
    assert!(!md.contains("Renew the library card"), "{md}");
    let soon = md
        .split("## Due today or tomorrow")
        .nth(1)
        .unwrap()
        .split("## ")
        .next()
        .unwrap();
    assert!(
        soon.contains("Reply to Grace") && soon.contains("Book the Lisbon hotel"),
        "{soon}"
    );
    // Cross-references: a meeting with someone who mailed, and their open task.
    let cross = md
        .split("## Cross-references")
        .nth(1)
        .unwrap()
        .split("## ")
        .next()
        .unwrap();
    assert!(
        cross.contains("Difference engine demo")
            && cross.contains("Re: Difference engine demo")
            && cross.contains("Send Charles the corrected logarithm tables"),
        "{cross}"
    );
    assert!(
        cross.contains("Lunch with Alan") && cross.contains("Lunch on Friday?"),
        "{cross}"
    );
    let xlsx = std::fs::read(ws.join(xlsx_rel)).unwrap();
    assert_eq!(&xlsx[..2], b"PK", "an xlsx is a zip");
    // One sheet per source.
    let text = String::from_utf8_lossy(&xlsx);
    assert!(text.contains("xl/worksheets/sheet4.xml"), "four sheets");
    assert_eq!(
        read(ws, "TASKS.md"),
        before_tasks,
        "the report only reads TASKS.md"
    );
    let dash = read(ws, "dashboard.html");
    assert!(
        dash.contains("status-report")
            && dash.contains("Send Charles the corrected logarithm tables")
    );

    // The next report starts where this one ended: the same mail is not reported twice.
    let (ok, out2, err) = env.run(&["/status-report", DAY, TZ]).await;
    assert!(ok, "{err}");
    let md2 = read(
        ws,
        outputs(ws, &out2)
            .iter()
            .find(|p| p.ends_with(".md"))
            .unwrap(),
    );
    assert!(
        !md2.contains("Lunch on Friday?"),
        "mail already reported came again:\n{md2}"
    );
    assert!(
        md2.contains("Difference engine demo"),
        "the calendar is still shown"
    );
    let log = read(ws, ".deskhand/audit.jsonl");
    assert!(
        !log.contains("GOCSPX") && !log.contains("AAECAwQF"),
        "a secret reached the audit log"
    );
    assert!(
        log.contains(md_rel.as_str()),
        "the report's write is audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_a_connection_says_how_to_fix_it() {
    let env = Env::start(fixtures()).await;
    let (ok, _, err) = env.run(&["/status-report", DAY, TZ]).await;
    assert!(!ok);
    assert!(
        err.contains("held") && err.contains("deskhand connect google"),
        "{err}"
    );
    let (ok, _, err) = env.run(&["/no-such-skill"]).await;
    assert!(
        !ok && err.contains("unknown skill") && err.contains("status-report"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_digest_groups_by_sender_and_thread() {
    let mut data = fixtures();
    let hostile = "<img src=x onerror=alert(1)> | pipes";
    data.messages.push(FakeMessage {
        id: "19a8c1f0a1b200ff".into(),
        thread_id: "19a8c1f0a1b20005".into(),
        label_ids: vec!["INBOX".into(), "UNREAD".into()],
        internal_date_ms: 1_795_600_000_000,
        raw: format!("From: Charles Babbage <charles@engine.example>\r\nTo: ada@example.com\r\nSubject: {hostile}\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nMore tables.\r\n"),
        snippet: "More tables.".into(),
    });
    let env = Env::start(data).await;
    env.connect_google().await;
    let ws = env.ws.path();
    let (ok, out, err) = env
        .run(&[
            "/inbox-digest",
            "hours=72",
            "until=2026-11-26T23:00:00Z",
            TZ,
        ])
        .await;
    assert!(ok, "{out}\n{err}");
    let md = read(
        ws,
        outputs(ws, &out)
            .iter()
            .find(|p| p.ends_with(".md"))
            .unwrap(),
    );
    // Charles has the most mail (three in the window, one thread of two), so he comes first.
    let charles = md.find("## Charles Babbage").expect("charles section");
    let alan = md.find("## Alan Turing").expect("alan section");
    assert!(charles < alan, "{md}");
    assert!(md.contains("3 message(s)"), "{md}");
    assert!(!md.contains("You have won"), "spam is left out:\n{md}");
    assert!(
        !md.contains("<img"),
        "markup in mail is escaped in Markdown:\n{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_form_and_extract_skills_run_on_the_fixture_site() {
    let env = Env::start(fixtures()).await;
    let ws = env.ws.path();
    let site = deskhand_agent::site::StaticSite::serve(&crate::util::fixture_dir())
        .await
        .unwrap();
    let values =
        std::fs::read_to_string(crate::util::fixture_dir().join("signup.values.json")).unwrap();
    let (ok, out, err) = env
        .run(&[
            "skills",
            "run",
            "fill-form",
            "-p",
            &format!("url={}", site.url("signup.html")),
            "-p",
            &format!("values={values}"),
        ])
        .await;
    assert!(ok, "{out}\n{err}");
    let outs = outputs(ws, &out);
    let png = outs
        .iter()
        .find(|p| p.ends_with(".png"))
        .expect("a screenshot");
    assert_eq!(&std::fs::read(ws.join(png)).unwrap()[1..4], b"PNG");
    let report: Value = serde_json::from_str(&read(
        ws,
        outs.iter().find(|p| p.ends_with(".json")).unwrap(),
    ))
    .unwrap();
    // Filled, not submitted: submitting asks first (tests/e2e/guard.rs).
    assert!(report["submit"].is_null(), "{report}");
    assert!(
        report["fields"].as_array().is_some_and(|f| !f.is_empty()),
        "{report}"
    );

    let schema =
        std::fs::read_to_string(crate::util::fixture_dir().join("products/schema.yaml")).unwrap();
    let schema: Value = serde_norway::from_str(&schema).unwrap();
    let (ok, out, err) = env
        .run(&[
            "/extract",
            &format!("url={}", site.url("products/page-1.html")),
            &format!("schema={schema}"),
            "format=xlsx",
        ])
        .await;
    assert!(ok, "{out}\n{err}");
    let xlsx = outputs(ws, &out)
        .into_iter()
        .find(|p| p.ends_with(".xlsx"))
        .expect("xlsx");
    assert_eq!(&std::fs::read(ws.join(xlsx)).unwrap()[..2], b"PK");
    // A bad parameter is refused before anything runs, with the reason.
    let (ok, _, err) = env
        .run(&["/extract", "url=javascript:alert(1)", "schema={}"])
        .await;
    assert!(!ok && err.contains("not an http"), "{err}");

    // The audit log: every job received or refused, steps, files and the submit; no password.
    let log = read(ws, ".deskhand/audit.jsonl");
    assert!(
        !log.contains("correct-horse"),
        "a password reached the audit log"
    );
    for kind in [
        "job.received",
        "job.started",
        "step.started",
        "file.written",
        "job.ended",
        "job.refused",
    ] {
        assert!(
            log.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} in:\n{log}"
        );
    }
    let (ok, out, err) = env.run(&["audit", "verify"]).await;
    assert!(ok && out.contains("intact"), "{out}{err}");
    // Editing one entry is caught, at that entry.
    let mut lines: Vec<String> = log.lines().map(String::from).collect();
    lines[2] = lines[2].replacen("\"kind\":\"", "\"kind\":\"x", 1);
    std::fs::write(ws.join(".deskhand/audit.jsonl"), lines.join("\n") + "\n").unwrap();
    let (ok, _, err) = env.run(&["audit", "verify"]).await;
    assert!(
        !ok && err.contains("line 3") && err.contains("changed"),
        "{err}"
    );
    // Cutting whole entries off the end leaves a valid chain; the signed head catches it.
    let whole: Vec<&str> = log.lines().collect();
    let cut = whole[..whole.len() - 2].join("\n") + "\n";
    std::fs::write(ws.join(".deskhand/audit.jsonl"), cut).unwrap();
    let (ok, _, err) = env.run(&["audit", "verify"]).await;
    assert!(!ok && err.contains("cut off"), "{err}");
}

fn write_skill(dir: &Path, name: &str, md_extra: &str, yaml: Option<&str>) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: Test skill {name}.\n{md_extra}---\n# {name}\n"),
    )
    .unwrap();
    if let Some(y) = yaml {
        std::fs::write(d.join("skill.yaml"), y).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skills_load_with_every_problem_located_and_bundles_install_all_or_nothing() {
    let env = Env::start(fixtures()).await;
    let ws = env.ws.path();
    // A broken skill in the workspace: listed as not loaded, with file and line, never run.
    write_skill(
        &ws.join("skills"),
        "broken",
        "",
        Some("params:\n  n:\n    type: int\nsteps:\n  - id: a\n    uses: mail.teleport\n"),
    );
    let (ok, out, _) = env.run(&["skills", "list"]).await;
    assert!(ok);
    assert!(
        out.contains("status-report") && out.contains("/inbox-digest"),
        "{out}"
    );
    assert!(
        out.contains("broken/skill.yaml:6") && out.contains("mail.teleport"),
        "{out}"
    );
    let (ok, _, err) = env.run(&["/broken"]).await;
    assert!(
        !ok && err.contains("did not load") && err.contains("skill.yaml:6"),
        "{err}"
    );

    // A bundle: one workflow, one prompt-only skill written for another agent.
    let bundle = crate::util::temp();
    write_skill(
        bundle.path(),
        "weekly-digest",
        "license: MIT\n",
        Some("trigger: /weekly\nparams:\n  hours:\n    type: int\n    default: 168\npermissions:\n  connectors:\n    gmail: read\n  workspace: [\"reports/**\"]\nsteps:\n  - id: mail\n    uses: gmail.sync\n  - id: digest\n    uses: report.inbox-digest\n    needs: [mail]\n    with:\n      hours: \"{{ params.hours }}\"\n"),
    );
    write_skill(bundle.path(), "pdf-helper", "", None);
    // Without --yes and without a terminal, nothing is installed.
    let (ok, out, err) = env
        .run(&["skills", "install", bundle.path().to_str().unwrap()])
        .await;
    assert!(!ok && err.contains("--yes"), "{err}");
    assert!(
        out.contains("gmail (read)") && out.contains("reports/**"),
        "permissions shown first:\n{out}"
    );
    assert!(!ws.join("skills/weekly-digest").exists());
    // A bundle with one bad skill installs nothing.
    write_skill(bundle.path(), "Bad_Name", "", None);
    let (ok, _, err) = env
        .run(&[
            "skills",
            "install",
            "--yes",
            bundle.path().to_str().unwrap(),
        ])
        .await;
    assert!(
        !ok && err.contains("nothing installed") && err.contains("Bad_Name"),
        "{err}"
    );
    assert!(!ws.join("skills/weekly-digest").exists());
    std::fs::remove_dir_all(bundle.path().join("Bad_Name")).unwrap();

    // From a git URL (a real local repository), with the bundle in a subfolder.
    let repo = crate::util::temp();
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    git(&["init", "-q"]);
    let sub = repo.path().join("bundle");
    std::fs::create_dir_all(&sub).unwrap();
    for s in ["weekly-digest", "pdf-helper"] {
        let from = bundle.path().join(s);
        std::fs::create_dir_all(sub.join(s)).unwrap();
        for f in std::fs::read_dir(&from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), sub.join(s).join(f.file_name())).unwrap();
        }
    }
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "skills"]);
    let url = format!("file://{}//bundle", repo.path().display());
    let (ok, out, err) = env.run(&["skills", "install", "--yes", &url]).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        ws.join("skills/weekly-digest/skill.yaml").exists()
            && ws.join("skills/pdf-helper/SKILL.md").exists()
    );
    let trust: Value = serde_json::from_str(&read(ws, ".deskhand/trust.json")).unwrap();
    assert!(
        trust["weekly-digest"]
            .as_str()
            .is_some_and(|h| h.len() == 64),
        "{trust}"
    );
    let list: Value = env.json(&["skills", "list", "--json"]).await;
    let find = |n: &str| {
        list["skills"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("weekly-digest")["trigger"], "/weekly");
    assert_eq!(find("pdf-helper")["kind"], "prompt-only");
    // Trusted at install, its trigger runs the planner (which says what to set: no model here).
    let (ok, _, err) = env.run(&["/pdf-helper"]).await;
    assert!(!ok && err.contains("DESKHAND_MODEL_PROVIDER"), "{err}");
    // Installing again without --force refuses to replace.
    let (ok, _, err) = env.run(&["skills", "install", "--yes", &url]).await;
    assert!(!ok && err.contains("--force"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_memory_edits_keep_every_other_line_byte_identical() {
    let env = Env::start(fixtures()).await;
    let ws = env.ws.path();
    seed_workspace(ws);
    let before = read(ws, "TASKS.md");
    let (ok, out, err) = env.run(&["tasks", "done", "Book the Lisbon"]).await;
    assert!(ok, "{out}{err}");
    let after = read(ws, "TASKS.md");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        vec![(
            "- [ ] Book the Lisbon hotel due:2026-11-27 #travel",
            "- [x] Book the Lisbon hotel due:2026-11-27 #travel"
        )]
    );
    let (ok, _, _) = env
        .run(&[
            "tasks",
            "add",
            "Call Katherine @katherine due:2026-12-02",
            "--section",
            "Inbox",
        ])
        .await;
    assert!(ok);
    let (ok, _, _) = env.run(&["tasks", "move", "Learn the harp", "Doing"]).await;
    assert!(ok);
    let tasks: Value = env.json(&["tasks", "list", "--json"]).await;
    let harp = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "Learn the harp")
        .unwrap();
    assert_eq!(harp["section"], "Doing");
    assert!(tasks
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["owner"] == "katherine"));
    let (ok, _, err) = env.run(&["tasks", "done", "the"]).await;
    assert!(
        !ok && err.contains("ambiguous") || err.contains("matches"),
        "{err}"
    );
    let (ok, _, _) = env
        .run(&[
            "memory",
            "add",
            "People",
            "Katherine Johnson <katherine@nasa.example> — trajectories",
        ])
        .await;
    assert!(ok);
    let mem = read(ws, "MEMORY.md");
    assert!(
        mem.starts_with("# Memory\n\nWhat Deskhand's skills should know"),
        "{mem}"
    );
    let people = mem
        .split("## People")
        .nth(1)
        .unwrap()
        .split("## ")
        .next()
        .unwrap();
    assert!(
        people.contains("Katherine Johnson <katherine@nasa.example>"),
        "{mem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notion_tasks_sync_both_ways() {
    let env = Env::start(fixtures()).await;
    let ws = env.ws.path();
    env.h().add_internal_token("ntn_skills_test");
    let (ok, _, err) = env
        .run_stdin(&["connect", "notion", "--token-stdin"], "ntn_skills_test\n")
        .await;
    assert!(ok, "{err}");
    std::fs::write(ws.join("TASKS.md"), "# Tasks\n\n## Inbox\n\n- [ ] Write the grant proposal due:2026-12-04 #work\n- [x] Already finished\n").unwrap();
    let ds = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c01";
    let pages_before = env.h().pages_in(ds).len();

    let (ok, out, err) = env.run(&["/notion-tasks"]).await;
    assert!(ok, "{out}\n{err}");
    let first_job = out
        .split_whitespace()
        .nth(1)
        .expect("the job id is printed")
        .to_string();
    let tasks = read(ws, "TASKS.md");
    // Our open task became a page, linked by an invisible comment; Notion's pages came in.
    let pages = env.h().pages_in(ds);
    assert_eq!(pages.len(), pages_before + 1, "exactly one page created");
    let created = pages
        .iter()
        .find(|p| p.to_string().contains("Write the grant proposal"))
        .expect("page created");
    let id = created["id"].as_str().unwrap();
    assert!(
        tasks.contains(&format!(
            "- [ ] Write the grant proposal due:2026-12-04 #work <!-- notion:{id} -->"
        )),
        "{tasks}"
    );
    assert!(tasks.contains("## Notion"), "{tasks}");
    let from_notion = tasks.lines().filter(|l| l.contains("<!-- notion:")).count();
    assert_eq!(from_notion, pages_before + 1, "{tasks}");
    assert!(
        tasks.contains("- [x] Already finished\n"),
        "done local tasks are not pushed"
    );

    // Done in Notion → done in the file; a due date changed in the file → changed in Notion.
    let mut page = created.clone();
    page["properties"]["Status"] = json!({"type": "status", "status": {"name": "Done"}});
    env.h().upsert_page(page);
    let edited = read(ws, "TASKS.md").replace(
        "Write the grant proposal due:2026-12-04",
        "Write the grant proposal due:2026-12-11",
    );
    std::fs::write(ws.join("TASKS.md"), &edited).unwrap();
    let (ok, out, err) = env.run(&["/notion-tasks"]).await;
    assert!(ok, "{out}\n{err}");
    let tasks = read(ws, "TASKS.md");
    assert!(
        tasks.contains(&format!(
            "- [x] Write the grant proposal due:2026-12-11 #work <!-- notion:{id} -->"
        )),
        "{tasks}"
    );
    let now = env
        .h()
        .pages_in(ds)
        .into_iter()
        .find(|p| p["id"] == id)
        .unwrap();
    assert_eq!(
        now["properties"]["Due"]["date"]["start"], "2026-12-11",
        "{now}"
    );
    assert_eq!(
        env.h().pages_in(ds).len(),
        pages_before + 1,
        "no duplicates on the second run"
    );

    // Undo: the second run's change to TASKS.md goes back, but not over a later hand edit.
    let job = out
        .split_whitespace()
        .nth(1)
        .expect("the job id is printed")
        .to_string();
    let (ok, hist, _) = env.run(&["history"]).await;
    assert!(
        ok && hist.contains(&job) && hist.contains("changed TASKS.md"),
        "{hist}"
    );
    let after_job = read(ws, "TASKS.md");
    std::fs::write(
        ws.join("TASKS.md"),
        format!("{after_job}- [ ] Added by hand\n"),
    )
    .unwrap();
    let (ok, _, err) = env.run(&["undo", &job]).await;
    assert!(
        !ok && err.contains("--force") && err.contains("+- [ ] Added by hand"),
        "{err}"
    );
    let (ok, out, err) = env.run(&["undo", &job, "--force"]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(
        read(ws, "TASKS.md"),
        edited,
        "TASKS.md is as it was before the job"
    );
    let (ok, _, err) = env.run(&["audit", "verify"]).await;
    assert!(ok, "{err}");
    assert!(read(ws, ".deskhand/audit.jsonl").contains("job.undone"));

    // Undoing the first run archives the page it created in Notion (and puts TASKS.md back).
    let (ok, out, err) = env.run(&["undo", &first_job, "--force"]).await;
    assert!(
        ok && out.contains(&format!("archived Notion page {id}")),
        "{out}{err}"
    );
    let page = env
        .h()
        .pages_in(ds)
        .into_iter()
        .find(|p| p["id"] == id)
        .unwrap();
    assert_eq!(page["archived"], true, "{page}");
    assert!(read(ws, ".deskhand/audit.jsonl").contains("notion.archived"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_escapes_hostile_content_and_runs_no_script() {
    let mut data = fixtures();
    let payloads = [
        "<img src=x onerror=\"document.title='pwned'\">",
        "</script><script>document.title='pwned'</script>",
    ];
    for (i, p) in payloads.iter().enumerate() {
        data.messages.push(FakeMessage {
            id: format!("19a8c1f0a1b2f0{i:02}"),
            thread_id: format!("19a8c1f0a1b2f0{i:02}"),
            label_ids: vec!["INBOX".into(), "UNREAD".into()],
            internal_date_ms: 1_795_650_000_000 + i as i64,
            raw: format!("From: Mallory <mallory@evil.example>\r\nTo: ada@example.com\r\nSubject: {p}\r\nDate: Wed, 25 Nov 2026 20:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nhi\r\n"),
            snippet: "hi".into(),
        });
    }
    let env = Env::start(data).await;
    env.connect_google().await;
    let ws = env.ws.path();
    std::fs::write(
        ws.join("TASKS.md"),
        format!("# Tasks\n\n## Inbox\n\n- [ ] {} due:2026-11-20\n- [ ] Normal task\n\n## Doing\n\n- [ ] {}\n", payloads[0], payloads[1]),
    )
    .unwrap();
    let (ok, out, err) = env.run(&["/status-report", DAY, TZ]).await;
    assert!(ok, "{out}\n{err}");
    let html = read(ws, "dashboard.html");
    assert!(
        !html.contains("<img") && !html.contains("<script"),
        "unescaped markup in the dashboard"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the dashboard makes no requests"
    );

    let browser = deskhand_browser::Browser::launch(deskhand_browser::LaunchOptions::default())
        .await
        .unwrap();
    let page = browser.new_page().await.unwrap();
    // Served over loopback like any page (a file:// URL would work the same for the person).
    let site = deskhand_agent::site::StaticSite::serve(ws).await.unwrap();
    page.goto(&site.url("dashboard.html")).await.unwrap();
    let seen = page
        .eval("JSON.stringify({title: document.title, imgs: document.images.length, scripts: document.scripts.length, text: document.body.innerText})")
        .await
        .unwrap();
    let seen: Value = serde_json::from_str(seen.as_str().unwrap()).unwrap();
    assert_ne!(seen["title"], "pwned", "a script ran");
    assert_eq!(seen["imgs"], 0);
    assert_eq!(seen["scripts"], 0);
    let text = seen["text"].as_str().unwrap();
    assert!(
        text.contains(payloads[0]) && text.contains("Normal task"),
        "hostile text shows as text:\n{text}"
    );
    assert!(
        text.contains("status-report"),
        "recent jobs listed:\n{text}"
    );
    let png = page
        .screenshot(&deskhand_browser::Shot::FullPage)
        .await
        .unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("dashboard.png"), &png).unwrap();
    assert!(png.len() > 10_000, "the dashboard rendered something");
    browser.close().await.unwrap();
}
