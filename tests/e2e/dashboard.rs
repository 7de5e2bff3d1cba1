//! The live dashboard (`deskhand serve` → `/dashboard`) in real Chromium: board and list views
//! (screenshots kept as artifacts), a drag moves one task line of TASKS.md and nothing else, a
//! tick and an add go through the guard as jobs (undone by `deskhand undo`), a change made on
//! disk reaches the open page, a stale edit is refused, and a hostile customization in
//! `.deskhand/dashboard/` is inert (no script runs, nothing is fetched, warnings shown).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deskhand_browser::{Browser, LaunchOptions, Locator, Page, Shot};
use serde_json::{json, Value};

use crate::util::{eventually, run_cli, temp, Daemon, StaticSite};

/// The dashboard's TASKS.md (`fixtures/workspace/dashboard/`).
fn tasks_fixture() -> std::path::PathBuf {
    crate::util::fixture_dir()
        .parent()
        .unwrap()
        .join("workspace/dashboard/TASKS.md")
}

fn css(s: &str) -> Locator {
    Locator::Css { value: s.into() }
}

async fn text(page: &Page, expr: &str) -> String {
    let v = page.eval(expr).await.unwrap();
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}

/// A local server that counts every connection made to it (the "attacker" a hostile theme
/// would load from).
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            use tokio::io::AsyncWriteExt;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    (format!("http://{addr}"), hits)
}

/// Wait until the open page shows `needle` inside `selector`.
async fn shows(page: &Page, selector: &str, needle: &str) -> bool {
    let expr = format!(
        "Array.from(document.querySelectorAll({})).map(e => e.textContent).join('\\n')",
        serde_json::to_string(selector).unwrap()
    );
    eventually(Duration::from_secs(15), || async {
        text(page, &expr).await.contains(needle).then_some(())
    })
    .await
    .is_some()
}

/// A `noop` job through the API (jobs for the chart; a job rewrites dashboard.html).
async fn post_noop(d: &Daemon) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/jobs", d.api))
        .bearer_auth(&d.token)
        .json(&json!({"skill": "noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// The succeeded jobs of one skill, newest first.
async fn jobs_of(d: &Daemon, skill: &str) -> Vec<Value> {
    let list: Value = reqwest::Client::new()
        .get(format!("{}/api/jobs?limit=50", d.api))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["skill"] == skill)
        .collect()
}

fn artifacts() -> std::path::PathBuf {
    let a = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&a).unwrap();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_dashboard_edits_tasks_md_through_the_guard_and_follows_the_file() {
    let ws = temp();
    let tasks_path = ws.path().join("TASKS.md");
    let original = std::fs::read_to_string(tasks_fixture()).unwrap();
    std::fs::write(&tasks_path, &original).unwrap();
    let d = Daemon::start(ws.path());
    let http = reqwest::Client::new();
    // Some jobs for the chart.
    for _ in 0..3 {
        post_noop(&d).await;
    }

    // Without the token the content is refused; the page itself holds no data.
    let r = http
        .get(format!("{}/api/dashboard", d.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{}/dashboard", d.api))
        .send()
        .await
        .unwrap();
    let policy = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        policy.starts_with("default-src 'none'; script-src 'self'"),
        "{policy}"
    );
    assert!(!r.text().await.unwrap().contains("Lisbon"));

    let (ok, url, err) = run_cli(ws.path(), &["dashboard"]);
    assert!(ok, "{err}");
    let url = url.trim().to_string();
    assert_eq!(url, format!("{}/dashboard#token={}", d.api, d.token));

    let browser = Browser::launch(LaunchOptions::default()).await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.set_viewport(1280, 900, 1.0, false).await.unwrap();
    page.goto(&url).await.unwrap();
    assert!(
        shows(
            &page,
            ".board .column[data-section='Inbox']",
            "Book the Lisbon hotel"
        )
        .await
    );
    // The token left the address bar (it stays in the tab's session storage).
    assert_eq!(text(&page, "location.hash").await, "");
    assert!(
        shows(&page, "#chart-jobs figcaption", "(3 jobs)").await
            || shows(&page, "#chart-jobs figcaption", "jobs)").await
    );

    // Both views, kept for a person to look at.
    std::fs::write(
        artifacts().join("dashboard-board.png"),
        page.screenshot(&Shot::FullPage).await.unwrap(),
    )
    .unwrap();
    page.click(&css("label[for=view-list]")).await.unwrap();
    assert_eq!(
        text(
            &page,
            "getComputedStyle(document.querySelector('.list')).display"
        )
        .await,
        "grid"
    );
    assert_eq!(
        text(
            &page,
            "getComputedStyle(document.querySelector('.board')).display"
        )
        .await,
        "none"
    );
    std::fs::write(
        artifacts().join("dashboard-list.png"),
        page.screenshot(&Shot::FullPage).await.unwrap(),
    )
    .unwrap();
    page.click(&css("label[for=view-board]")).await.unwrap();

    // Drag "Book the Lisbon hotel" from Inbox to Doing: that one line moves, verbatim, to the
    // end of Doing's tasks; every other line stays as it was.
    page.drag(
        &css(".board li.task[data-text^='Book the Lisbon hotel'] .title"),
        &css(".board .column[data-section='Doing'] h3"),
    )
    .await
    .unwrap();
    let moved_line = "- [ ] Book the Lisbon hotel due:2026-12-20 #travel";
    let mut expected: Vec<&str> = original.lines().filter(|l| *l != moved_line).collect();
    let at = expected.iter().position(|l| l.contains("Note G")).unwrap() + 1;
    expected.insert(at, moved_line);
    let expected = expected.join("\n") + "\n";
    let after_drag = eventually(Duration::from_secs(15), || async {
        let now = std::fs::read_to_string(&tasks_path).unwrap();
        (now != original).then_some(now)
    })
    .await;
    let status = text(&page, "document.getElementById('status').textContent").await;
    let after_drag = after_drag
        .unwrap_or_else(|| panic!("the drag did not change TASKS.md; the page says {status:?}"));
    assert_eq!(after_drag, expected);
    assert!(
        shows(
            &page,
            ".board .column[data-section='Doing']",
            "Book the Lisbon hotel"
        )
        .await
    );
    assert!(shows(&page, "#status", "Moved").await);
    let moves = jobs_of(&d, "tasks.move").await;
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0]["state"], "succeeded");

    // Tick "Water the plants": only the character in its box changes.
    page.click(&css(
        ".board li.task[data-text='Water the plants'] input[type=checkbox]",
    ))
    .await
    .unwrap();
    let after_tick = eventually(Duration::from_secs(15), || async {
        let now = std::fs::read_to_string(&tasks_path).unwrap();
        (now != after_drag).then_some(now)
    })
    .await
    .expect("the tick changed TASKS.md");
    assert_eq!(
        after_tick,
        after_drag.replace("*  [ ]  Water the plants", "*  [x]  Water the plants")
    );

    // Add a task under "Waiting on" from the form.
    page.fill(&deskhand_browser::FillRequest {
        fields: vec![(
            "New task".into(),
            json!("Ask Mary about the <b>tables</b> due:2026-12-24"),
        )],
        ..Default::default()
    })
    .await
    .unwrap();
    page.eval("document.querySelector('#add-task select').value = 'Waiting on'")
        .await
        .unwrap();
    page.click(&css("#add-task button")).await.unwrap();
    let after_add = eventually(Duration::from_secs(15), || async {
        let now = std::fs::read_to_string(&tasks_path).unwrap();
        (now != after_tick).then_some(now)
    })
    .await
    .expect("the add changed TASKS.md");
    assert_eq!(
        after_add,
        after_tick.replace(
            "- [ ] Charles: the corrected tables @charles\n",
            "- [ ] Charles: the corrected tables @charles\n- [ ] Ask Mary about the <b>tables</b> due:2026-12-24\n"
        )
    );
    // Shown as text, in its column.
    assert!(
        shows(
            &page,
            ".board .column[data-section='Waiting on'] .title",
            "Ask Mary about the <b>tables</b>"
        )
        .await
    );

    // Each edit was a job: `deskhand undo` takes the add, the tick and the drag back (newest
    // first), and the file is the fixture again, byte for byte.
    for skill in ["tasks.add", "tasks.done", "tasks.move"] {
        let job = jobs_of(&d, skill).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (ok, out, err) = run_cli(ws.path(), &["undo", &job]);
        assert!(ok, "undo {skill}: {out}{err}");
    }
    assert_eq!(std::fs::read_to_string(&tasks_path).unwrap(), original);
    assert!(
        shows(
            &page,
            ".board .column[data-section='Inbox']",
            "Book the Lisbon hotel"
        )
        .await
    );

    // A change made on disk (the person's editor) reaches the open page by itself.
    std::fs::write(
        &tasks_path,
        format!("{original}- [ ] Written by hand in an editor\n"),
    )
    .unwrap();
    assert!(shows(&page, ".board", "Written by hand in an editor").await);

    // An edit of a task that changed since the page showed it is refused, and says so.
    let r = http
        .post(format!("{}/api/dashboard/tasks", d.api))
        .bearer_auth(&d.token)
        .json(&json!({"op": "move", "line": 7, "text": "Reply to Grace (an older text)", "section": "Done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let why = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("no longer in TASKS.md"), "{why}");
    let r = http
        .post(format!("{}/api/dashboard/tasks", d.api))
        .bearer_auth(&d.token)
        .json(&json!({"op": "fly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let audit = deskhand_agent::audit::AuditLog::new(ws.path())
        .read(None)
        .unwrap();
    assert!(audit.iter().filter(|e| e.kind == "file.written").count() >= 3);
    drop(page);
    drop(browser);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_dashboard_customization_is_inert_in_both_pages() {
    let ws = temp();
    std::fs::copy(tasks_fixture(), ws.path().join("TASKS.md")).unwrap();
    let (evil, hits) = counting_server().await;
    let dir = ws.path().join(".deskhand/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("theme.toml"),
        format!(
            "[light]\naccent = \"#ff0066\"\ncard = \"</style><script>document.title='pwned'</script>\"\n\
             bg = \"url({evil}/theme.png)\"\nline = \"red; background-image: image-set('{evil}/set.png' 1x)\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("extra.css"),
        format!("body {{ background: url({evil}/extra.png) }}\n@import '{evil}/import.css';\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("layout.toml"),
        "panels = [\"tasks\", \"weather\"]\n",
    )
    .unwrap();
    let d = Daemon::start(ws.path());
    // A job, so dashboard.html is written with the customization too.
    post_noop(&d).await;
    let html_file = ws.path().join("dashboard.html");
    assert!(eventually(Duration::from_secs(15), || async {
        std::fs::read_to_string(&html_file)
            .ok()
            .filter(|h| h.contains("#ff0066"))
            .map(|_| ())
    })
    .await
    .is_some());

    let browser = Browser::launch(LaunchOptions::default()).await.unwrap();
    let live = browser.new_page().await.unwrap();
    live.goto(&format!("{}/dashboard#token={}", d.api, d.token))
        .await
        .unwrap();
    assert!(shows(&live, ".board", "Book the Lisbon hotel").await);
    let site = StaticSite::serve(ws.path()).await.unwrap();
    let file = browser.new_page().await.unwrap();
    file.goto(&site.url("dashboard.html")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (page, scripts) in [(&live, 1), (&file, 0)] {
        assert_ne!(text(page, "document.title").await, "pwned");
        assert_eq!(
            text(page, "String(document.scripts.length)").await,
            scripts.to_string()
        );
        // The good value applies; the rest is left out and said so.
        assert_eq!(
            text(
                page,
                "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
            )
            .await,
            "#ff0066"
        );
        let warnings = text(page, "Array.from(document.querySelectorAll('[role=alert]')).map(e => e.textContent).join('\\n')").await;
        assert!(warnings.contains("extra.css was not applied"), "{warnings}");
        assert!(warnings.contains("layout.toml is not valid"), "{warnings}");
        assert!(warnings.contains("[light] card was left out"), "{warnings}");
        assert!(warnings.contains("[light] bg was left out"), "{warnings}");
        assert!(warnings.contains("[light] line was left out"), "{warnings}");
        // The built-in layout: every panel.
        assert_eq!(
            text(
                page,
                "String(document.querySelectorAll('main > section').length)"
            )
            .await,
            "6"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the page fetched from the attacker's server"
    );
}
