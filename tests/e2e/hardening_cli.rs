//! Terminal output is safe (issue 14): hostile parameters are refused at submission, hostile text
//! that still arrives (a page, a file, a skill, an old job, the audit log) is printed with its
//! control characters escaped, and a reader that goes away (`| head -1`) ends a command quietly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Map, Value};

use crate::util::{deskhand, temp, Daemon};

/// Retitles the terminal (OSC 0), clears it (CSI 2J, then the one-byte C1 CSI), reverses what
/// follows (RLO) and returns to the start of the line (CR).
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}2J\u{202e}gnp.exe\r";

/// The first character a terminal must not receive raw (this test's own list, so it also runs
/// against code from before the fix).
fn raw_control(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        matches!(c,
            '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

fn run(ws: &Path, args: &[&str]) -> (bool, String, String) {
    crate::util::run_cli(ws, args)
}

/// Fails (printing the output escaped, never raw) when `text` holds a raw control character.
fn assert_clean(what: &str, text: &str) {
    if let Some(c) = raw_control(text) {
        panic!(
            "`deskhand {what}` printed {c:?} raw:\n{}",
            text.escape_debug()
        );
    }
}

/// Runs a command that must succeed and print nothing raw; returns its stdout.
fn shown(ws: &Path, args: &[&str]) -> String {
    let (ok, out, err) = run(ws, args);
    let what = args.join(" ");
    assert!(ok, "`deskhand {what}` failed: {}", err.escape_debug());
    assert_clean(&what, &out);
    assert_clean(&what, &err);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_parameters_are_refused_by_the_api_and_the_cli() {
    let ws = temp();
    let w = ws.path();
    let daemon = Daemon::start(w);
    let (api, token) = (&daemon.api, &daemon.token);
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("{api}/api/jobs"))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
    };

    // A one-line parameter with an escape sequence, and a multi-line `text` one with one.
    for (skill, params, name) in [
        ("gmail.search", json!({"query": HOSTILE}), "query"),
        (
            "gmail.send",
            json!({"to": "ada@example.com", "subject": "Hi", "body": format!("hello\n{HOSTILE}")}),
            "body",
        ),
        (
            "gmail.send",
            json!({"to": "ada@example.com", "subject": "Hi\nBcc: eve@example.com", "body": "x"}),
            "subject",
        ),
    ] {
        let r = post(json!({"skill": skill, "params": params}))
            .await
            .expect("API reachable");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{skill} {name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(body["error"]["code"], "invalid_job", "{body}");
        assert!(message.contains("control character"), "{message}");
        assert!(
            message.contains(&format!("{name:?}")),
            "names the parameter: {message}"
        );
        assert_clean("the API's error", message);
    }

    // The CLI refuses the same, and says so without echoing the sequence.
    let (ok, out, err) = run(
        w,
        &[
            "dispatch",
            "gmail.search",
            "--param",
            &format!("query={HOSTILE}"),
        ],
    );
    assert!(
        !ok,
        "dispatch of a hostile parameter succeeded: {}",
        out.escape_debug()
    );
    assert!(err.contains("\"query\""), "{}", err.escape_debug());
    assert_clean("dispatch", &err);
    // A trigger line is checked the same way.
    let (ok, _, err) = run(
        w,
        &[
            "dispatch",
            "--text",
            &format!("/gmail.search query={HOSTILE}"),
        ],
    );
    assert!(!ok, "a hostile trigger line was accepted");
    assert_clean("dispatch --text", &err);

    // A paired device (the phone page, the extension) is held to the same rule.
    let paired = shown(w, &["pair", "phone"]);
    let key = paired
        .split("--device-key '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("pair prints the key");
    let (ok, _, err) = run(
        w,
        &[
            "dispatch",
            "--device-key",
            key,
            "gmail.search",
            "--param",
            &format!("query={HOSTILE}"),
        ],
    );
    assert!(!ok, "a device-signed hostile job was accepted");
    assert!(err.contains("\"query\""), "{}", err.escape_debug());

    // Multi-line text is still accepted where the type allows it.
    let (ok, _, err) = run(
        w,
        &[
            "dispatch",
            "gmail.send",
            "--param",
            "to=ada@example.com",
            "--param",
            "subject=Minutes",
            "--param",
            "body=line 1\r\n\tline 2\n",
        ],
    );
    assert!(ok, "a multi-line body was refused: {}", err.escape_debug());

    let listed = shown(w, &["jobs", "list"]);
    assert!(
        !listed.contains("gmail.search"),
        "a refused job was stored: {listed}"
    );
    shown(w, &["audit", "show"]);
}

/// Plants hostile text where it can still come from: jobs stored before this check existed, a
/// step's error quoting a page, a file a job named after a page title, a log entry, TASKS.md, a
/// workspace skill.
async fn plant(w: &Path) -> String {
    let store = deskhand_agent::store::Store::open(w).unwrap();
    let mut params = Map::new();
    params.insert("title".into(), Value::String(HOSTILE.into()));
    let job = deskhand_agent::job::Job::new(format!("old-skill{HOSTILE}"), params, "cli@test");
    let id = job.id.to_string();
    store.insert(&job).await.unwrap();
    store
        .transition(&id, deskhand_agent::job::Transition::Start { steps: 1 })
        .await
        .unwrap();
    store
        .transition(
            &id,
            deskhand_agent::job::Transition::Fail(format!("the page said {HOSTILE}")),
        )
        .await
        .unwrap();
    store
        .audit()
        .record("page.title", Some(&id), json!({ "title": HOSTILE }));
    let journal = deskhand_agent::journal::Journal::new(w);
    let file = format!("reports/{}.md", HOSTILE.replace('/', "-"));
    journal.before(&id, &file).unwrap();
    std::fs::write(
        w.join("TASKS.md"),
        format!("# Tasks\n\n## Inbox\n- [ ] Pay {HOSTILE} now\n"),
    )
    .unwrap();
    let skill = w.join("skills/helpful");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        format!(
            "---\nname: helpful\ndescription: \"Helps\\e]0;owned\\a\\e[2J \\u202Eexe.\"\n---\n# Helpful\n{HOSTILE}\n"
        ),
    )
    .unwrap();
    drop(store);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_that_still_arrives_is_printed_escaped() {
    let ws = temp();
    let w = ws.path();
    let id = plant(w).await;

    let jobs = shown(w, &["jobs", "list"]);
    assert!(jobs.contains("\\x1b]0;owned"), "shown, escaped: {jobs}");
    let v: Value = serde_json::from_str(&shown(w, &["jobs", "list", "--json"])).unwrap();
    assert!(v.to_string().contains("owned"), "{v}");
    let v: Value = serde_json::from_str(&shown(w, &["jobs", "show", &id])).unwrap();
    assert!(
        v["error"].as_str().unwrap_or_default().ends_with(HOSTILE),
        "JSON output keeps the value: {v}"
    );

    let history = shown(w, &["history"]);
    assert!(
        history.contains(&id) && history.contains("\\x1b"),
        "{history}"
    );

    let audit = shown(w, &["audit", "show"]);
    assert!(audit.contains("page.title"), "{audit}");
    let last = shown(w, &["audit", "show", "--json"]);
    let entry = last
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["kind"] == "page.title")
        .expect("the entry is shown as JSON");
    assert_eq!(
        entry["data"]["title"], HOSTILE,
        "the same value when parsed"
    );

    let tasks = shown(w, &["tasks", "list"]);
    assert!(tasks.contains("Pay \\x1b]0;owned"), "{tasks}");
    let v: Value = serde_json::from_str(&shown(w, &["tasks", "list", "--json"])).unwrap();
    assert!(v.to_string().contains("owned"), "{v}");

    let skills = shown(w, &["skills", "list"]);
    assert!(skills.contains("helpful"), "{skills}");
    shown(w, &["skills", "list", "--json"]);
    let show = shown(w, &["skills", "show", "helpful"]);
    assert!(show.contains("\\u{202e}"), "{show}");
}

/// Reads one line of a command's output, closes the pipe, and checks the command ended with
/// status 0 and no panic, as `deskhand CMD | head -1` would see it.
fn head_1(w: &Path, args: &[&str]) {
    let mut child = deskhand()
        .args(args)
        .env("DESKHAND_WORKSPACE", w)
        .env_remove("DESKHAND_QUEUE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deskhand");
    let mut first = String::new();
    {
        let mut r = BufReader::new(child.stdout.take().unwrap());
        r.read_line(&mut first).unwrap();
    } // the read end closes here, like `head -1` exiting
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let what = args.join(" ");
    assert!(!first.is_empty(), "`deskhand {what}` printed nothing");
    assert_eq!(
        out.status.code(),
        Some(0),
        "`deskhand {what} | head -1`: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "`deskhand {what} | head -1`: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_history_audit_and_tasks_quietly() {
    let ws = temp();
    let w = ws.path();
    // Far more than a pipe buffer (64 KiB) of each, so the writer is still writing when the
    // reader leaves.
    let store = deskhand_agent::store::Store::open(w).unwrap();
    let audit = store.audit();
    let long = "x".repeat(400);
    let journal = deskhand_agent::journal::Journal::new(w);
    for i in 0..600 {
        audit.record("test.note", None, json!({ "n": i, "text": long }));
        let job = ulid::Ulid::new().to_string();
        journal
            .before(&job, &format!("reports/{i:04}-{}.md", "y".repeat(200)))
            .unwrap();
    }
    drop(store);
    let mut tasks = String::from("# Tasks\n\n## Inbox\n");
    for i in 0..4000 {
        tasks.push_str(&format!(
            "- [ ] Task number {i} with some words to make it longer\n"
        ));
    }
    std::fs::write(w.join("TASKS.md"), tasks).unwrap();

    for args in [
        &["history", "--limit", "1000"][..],
        &["audit", "show"],
        &["tasks", "list"],
    ] {
        head_1(w, args);
    }
}

#[test]
fn page_text_extracted_to_stdout_is_escaped_and_json_keeps_its_value() {
    let ws = temp();
    let w = ws.path();
    let page = w.join("page.html");
    std::fs::write(
        &page,
        format!(
            "<html><head><title>Shop{HOSTILE}</title></head><body><table id=\"t\">\
             <tr><th>Name</th></tr><tr><td>Eve{HOSTILE}x</td></tr></table></body></html>"
        ),
    )
    .unwrap();
    let page = page.to_str().unwrap();
    let csv = shown(
        w,
        &[
            "browse", "extract", page, "--table", "#t", "--format", "csv",
        ],
    );
    assert!(csv.contains("Eve\\x1b]0;owned"), "{csv}");
    for format in ["json", "jsonl"] {
        let out = shown(
            w,
            &[
                "browse", "extract", page, "--table", "#t", "--format", format,
            ],
        );
        let text = out.lines().next().unwrap_or_default().to_string();
        let v: Value = serde_json::from_str(if format == "json" { &out } else { &text })
            .unwrap_or_else(|e| panic!("{format}: {e}: {}", out.escape_debug()));
        let cell = v.to_string();
        // The HTML parser turns CR into LF; the rest arrives as it was on the page.
        assert!(
            cell.contains("\\u001b]0;owned")
                && cell.contains('\u{9b}')
                && cell.contains('\u{202e}'),
            "{format}: {}",
            cell.escape_debug()
        );
    }
}
