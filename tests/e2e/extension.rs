//! The Chrome extension against real parts: the daemon, `deskhand native-host` started by a real
//! headless Chromium that loads the unpacked extension, and fixture pages in that browser's tabs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deskhand_browser::{Browser, LaunchOptions, Locator};
use serde_json::Value;

use crate::util::{eventually, fixture_dir, temp, StaticSite};

/// A daemon, a Chromium with the extension loaded, and the fixture site.
struct Desk {
    ws: tempfile::TempDir,
    _udd: tempfile::TempDir,
    site: StaticSite,
    serve: std::process::Child,
    browser: Option<Browser>,
    id: String,
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}

fn run(ws: &Path, args: &[&str]) -> (bool, String, String) {
    crate::util::run_cli(ws, args)
}

fn install(ws: &Path, udd: &Path) -> Value {
    let (ok, out, err) = run(
        ws,
        &[
            "extension",
            "install",
            "--browser",
            "chromium",
            "--user-data-dir",
            &udd.to_string_lossy(),
            "--allow-origin",
            "http://127.0.0.1",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    serde_json::from_str(&out).expect("install --json")
}

async fn launch_with(udd: &Path, ext: &Path) -> Browser {
    let opts = LaunchOptions {
        profile: Some(udd.to_path_buf()),
        action_timeout: Duration::from_secs(10),
        extra_args: vec![
            format!("--load-extension={}", ext.display()),
            format!("--disable-extensions-except={}", ext.display()),
        ],
        ..Default::default()
    };
    Browser::launch(opts)
        .await
        .expect("launch chromium with the extension")
}

async fn connected(ws: &Path, within: Duration) -> Option<Value> {
    eventually(within, || async {
        let (ok, out, _) = run(ws, &["extension", "status", "--json"]);
        let v: Value = serde_json::from_str(&out).ok()?;
        (ok && v["connected"] == true).then_some(v)
    })
    .await
}

impl Desk {
    async fn start() -> Desk {
        let ws = temp();
        let udd = temp();
        let site = StaticSite::serve(&fixture_dir())
            .await
            .expect("serve fixtures");
        let installed = install(ws.path(), udd.path());
        let serve = crate::util::spawn_serve(ws.path());
        let ext = PathBuf::from(installed["extension_dir"].as_str().unwrap());
        let browser = launch_with(udd.path(), &ext).await;
        let desk = Desk {
            id: installed["id"].as_str().unwrap().to_string(),
            ws,
            _udd: udd,
            site,
            serve,
            browser: Some(browser),
        };
        let status = connected(desk.ws.path(), Duration::from_secs(40)).await;
        let status = status.expect("the extension did not connect to the agent");
        // Chromium derived the same id from the manifest key as we did.
        assert_eq!(status["extension"]["extension_id"], desk.id.as_str());
        desk
    }

    fn browser(&self) -> &Browser {
        self.browser.as_ref().unwrap()
    }

    fn dispatch(&self, skill: &str, params: &[String], wait: bool) -> (bool, String, String) {
        let mut args = vec!["dispatch".to_string(), skill.to_string()];
        for p in params {
            args.push("--param".into());
            args.push(p.clone());
        }
        if wait {
            args.push("--wait".into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(self.ws.path(), &refs)
    }

    fn job(&self, id: &str) -> Value {
        let (_, out, _) = run(self.ws.path(), &["jobs", "show", id]);
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    async fn ended(&self, id: &str) -> Value {
        eventually(Duration::from_secs(60), || async {
            let j = self.job(id);
            matches!(
                j["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
            .then_some(j)
        })
        .await
        .unwrap_or_else(|| panic!("job {id} did not end: {}", self.job(id)))
    }

    fn output(&self, job: &Value, ext: &str) -> Value {
        let path = job["outputs"]
            .as_array()
            .and_then(|o| {
                o.iter()
                    .filter_map(|p| p.as_str().or(p["path"].as_str()))
                    .find(|p| p.ends_with(ext))
            })
            .unwrap_or_else(|| panic!("no .{ext} output in {job}"))
            .to_string();
        let text = std::fs::read_to_string(self.ws.path().join(&path)).unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fill_extract_scroll_and_click_in_the_persons_own_tabs() {
    let desk = Desk::start().await;
    // A tab the person has open: the job finds it by URL and fills it where it is.
    let tab = desk.browser().new_page().await.unwrap();
    tab.goto(&desk.site.url("signup.html")).await.unwrap();
    // The person can see which tabs a job could name.
    let (ok, tabs, err) = run(desk.ws.path(), &["extension", "tabs", "--json"]);
    assert!(ok, "{err}");
    assert!(tabs.contains("/signup.html"), "{tabs}");
    let values = std::fs::read_to_string(fixture_dir().join("signup.values.json")).unwrap();
    let (ok, out, err) = desk.dispatch(
        "fill-form",
        &[
            format!("url={}", desk.site.url("signup.html")),
            format!("values={values}"),
            "target=tab:*/signup.html".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // The page in the person's tab holds the values, seen from outside the extension.
    let email = tab
        .eval("document.getElementById('email').value")
        .await
        .unwrap();
    assert_eq!(email, "zoe.odegard@example.com");
    let country = tab
        .eval("document.getElementById('country').selectedOptions[0].textContent")
        .await
        .unwrap();
    assert_eq!(country, "Norway");
    assert_eq!(
        tab.eval("document.getElementById('newsletter').checked")
            .await
            .unwrap(),
        true
    );
    // The same report as a headless fill: every field matched.
    let report = desk.output(&job, "json");
    assert_eq!(
        report["fields"].as_array().map(|f| f.len()),
        Some(20),
        "{report}"
    );

    // Widgets in the person's tab: the extension runs the same in-page code, which opens the
    // jQuery UI date picker and steps its months, picks from the autocomplete's list and moves
    // the slider.
    let widgets = StaticSite::serve(&fixture_dir().parent().unwrap().join("widgets"))
        .await
        .expect("serve widgets");
    let trip = desk.browser().new_page().await.unwrap();
    trip.goto(&widgets.url("trip.html")).await.unwrap();
    let values = serde_json::json!({"Traveller name": "Zoë", "Travel date": "2027-02-14",
        "From": "Porto São", "Budget": 1250});
    let (ok, out, err) = desk.dispatch(
        "fill-form",
        &[
            format!("url={}", widgets.url("trip.html")),
            format!("values={values}"),
            "target=tab:*/trip.html".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let report = desk.output(&job, "json");
    // The values came as a JSON object, so the fields come back in its key order.
    let kinds: std::collections::BTreeMap<&str, &str> = report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap(),
                f["widget"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("Budget", "slider"),
            ("From", "autocomplete"),
            ("Travel date", "date picker"),
            ("Traveller name", "-"),
        ]
        .into(),
        "{report}"
    );
    assert_eq!(
        trip.eval(
            "['date', 'from', 'budget'].map((i) => document.getElementById(i).value).join('|')"
        )
        .await
        .unwrap(),
        "02/14/2027|Porto São Bento|1250"
    );

    // Extract, in a tab the job opens.
    let schema = std::fs::read_to_string(fixture_dir().join("products/schema.yaml")).unwrap();
    let schema: Value = serde_norway::from_str(&schema).unwrap();
    let (ok, out, err) = desk.dispatch(
        "browser.extract",
        &[
            format!("url={}", desk.site.url("products/page-1.html")),
            format!("schema={schema}"),
            "format=json".into(),
            "max_pages=2".into(),
            "target=tab:new".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let records = desk.output(&job, "json");
    assert_eq!(records.as_array().map(|r| r.len()), Some(20), "{records}");

    // Scroll an infinite feed until 35 items are there.
    let (ok, out, err) = desk.dispatch(
        "browser.scroll",
        &[
            format!("url={}", desk.site.url("feed.html")),
            "selector=article.feed-item".into(),
            "count=35".into(),
            // This checks the extension's plumbing; the feed-ended rule is tested in interact.rs.
            // On a loaded 2-core machine 1.5 s without a new item is not a reliable end signal.
            "idle_ms=5000".into(),
            "target=tab:new".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let report = desk.output(&job, "json");
    assert!(report["items"].as_u64().unwrap_or(0) >= 35, "{report}");
    assert_eq!(report["stopped"], "count_reached");

    // A site the person has not allowed: a clear refusal from the extension, nothing done.
    let other = desk
        .site
        .url("widgets.html")
        .replace("127.0.0.1", "localhost");
    let (ok, out, err) = desk.dispatch(
        "browser.scroll",
        &[
            format!("url={other}"),
            "selector=section".into(),
            "target=tab:new".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Allow on this site"),
        "{job}"
    );
}

/// In the person's own browser the job's origins are enforced by the browser itself (session
/// rules of `declarativeNetRequest`): a page that tries to lead the job's tab to another origin
/// is stopped before the request leaves, the refusal is audited, and the tab is free again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_tab_cannot_be_led_to_another_origin_and_is_free_again_after() {
    let desk = Desk::start().await;
    let evil = StaticSite::serve(&fixture_dir()).await.unwrap();
    let schema = r#"{"items": "li.product", "fields": {"name": "a.title"}}"#;
    // 1. A tab the job opens: its first page sends it elsewhere on load.
    let attack = desk
        .site
        .url(&format!("attacks/js-nav.html?to={}", evil.url("x")));
    let (ok, out, err) = desk.dispatch(
        "browser.extract",
        &[
            format!("url={attack}"),
            format!("schema={schema}"),
            "target=tab:new".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{job}"
    );
    // 2. The person's own tab, named by its URL: the same page, reached by a job's navigation.
    let tab = desk.browser().new_page().await.unwrap();
    tab.goto(&desk.site.url("widgets.html")).await.unwrap();
    let (ok, out, err) = desk.dispatch(
        "browser.extract",
        &[
            format!("url={attack}"),
            format!("schema={schema}"),
            "target=tab:*/widgets.html".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "failed", "{job}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        evil.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a request reached the other origin"
    );
    let audit = std::fs::read_to_string(desk.ws.path().join(".deskhand/audit.jsonl")).unwrap();
    let refused = audit
        .lines()
        .filter(|l| l.contains("\"guard.refused\"") && l.contains(&evil.addr.to_string()))
        .count();
    assert!(refused >= 2, "both refusals are audited:\n{audit}");
    // 3. The job is over: the person's tab goes wherever the person sends it.
    tab.goto(&evil.url("products/page-1.html")).await.unwrap();
    assert!(
        evil.hits.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the tab's filters were lifted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_waits_for_approval_and_the_popup_answers_it() {
    let desk = Desk::start().await;
    let tab = desk.browser().new_page().await.unwrap();
    tab.goto(&desk.site.url("widgets.html")).await.unwrap();
    let (ok, out, err) = desk.dispatch(
        "browser.click",
        &[
            format!("url={}", desk.site.url("widgets.html")),
            "text=Save draft".into(),
            "target=tab:*/widgets.html".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job_id = out.trim().to_string();
    // The popup, opened as a page: it lists the approval; the person clicks Approve.
    let popup_url = format!("chrome-extension://{}/popup/popup.html", desk.id);
    let approve = Locator::Css {
        value: "#approvals button.approve".into(),
    };
    let mut approved = false;
    for _ in 0..40 {
        // The popup reads the list when it opens; open it again until the approval is there,
        // as a person would.
        let popup = desk.browser().new_page_at(&popup_url).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        if popup.count("#approvals button.approve").await.unwrap_or(0) > 0 {
            popup.click(&approve).await.unwrap();
            approved = true;
            let said = eventually(Duration::from_secs(10), || async {
                let t = popup
                    .eval("document.getElementById('approvals').textContent")
                    .await
                    .ok()?;
                t.as_str()
                    .is_some_and(|t| t.contains("Approved"))
                    .then_some(())
            })
            .await;
            assert!(said.is_some(), "the popup did not confirm");
            // Its recent jobs list the waiting one.
            let jobs = popup
                .eval("document.getElementById('jobs').textContent")
                .await
                .unwrap();
            assert!(
                jobs.as_str().unwrap_or_default().contains(&job_id),
                "{jobs}"
            );
            break;
        }
        let _ = popup.close().await;
    }
    assert!(approved, "the popup never showed the approval");
    let job = desk.ended(&job_id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        tab.eval("document.getElementById('w-status').textContent")
            .await
            .unwrap(),
        "draft saved"
    );
    let log = std::fs::read_to_string(desk.ws.path().join(".deskhand/audit.jsonl")).unwrap();
    assert!(
        log.contains("extension popup") && log.contains("page.clicked"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_worker_fails_its_command_and_the_next_one_works() {
    let desk = Desk::start().await;
    let feed = desk.browser().new_page().await.unwrap();
    feed.goto(&desk.site.url("feed.html")).await.unwrap();
    // Scroll to the end of the feed with a long idle wait: the command is in flight for seconds.
    let (ok, out, err) = desk.dispatch(
        "browser.scroll",
        &[
            format!("url={}", desk.site.url("feed.html")),
            "selector=article.feed-item".into(),
            "idle_ms=20000".into(),
            "target=tab:*/feed.html".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let first = out.trim().to_string();
    let running = eventually(Duration::from_secs(30), || async {
        (desk.job(&first)["state"] == "running").then_some(())
    })
    .await;
    assert!(running.is_some(), "{}", desk.job(&first));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped = desk
        .browser()
        .stop_service_workers(&format!("chrome-extension://{}/", desk.id))
        .await
        .unwrap();
    assert_eq!(stopped, 1, "the extension's service worker was not running");
    let job = desk.ended(&first).await;
    let events = job.to_string();
    assert!(
        events.contains("disconnected"),
        "the stop was not reported: {job}"
    );
    // Waking the worker again (any tab event does) reconnects it, and the next job works.
    feed.goto(&desk.site.url("products/page-1.html"))
        .await
        .unwrap();
    assert!(connected(desk.ws.path(), Duration::from_secs(30))
        .await
        .is_some());
    let (ok, out, err) = desk.dispatch(
        "browser.scroll",
        &[
            format!("url={}", desk.site.url("products/page-1.html")),
            "selector=li.product".into(),
            "count=5".into(),
            "target=tab:*/page-1.html".into(),
        ],
        false,
    );
    assert!(ok, "{err}");
    let job = desk.ended(out.trim()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extension_a_tab_job_fails_clearly_or_falls_back_to_headless() {
    let ws = temp();
    let site = StaticSite::serve(&fixture_dir()).await.unwrap();
    let mut serve = crate::util::spawn_serve(ws.path());
    let dispatch = |extra: &[&str]| {
        let mut args = vec![
            "dispatch".to_string(),
            "browser.scroll".into(),
            "--param".into(),
            format!("url={}", site.url("feed.html")),
            "--param".into(),
            "selector=article.feed-item".into(),
            "--param".into(),
            "count=5".into(),
            "--param".into(),
            "target=tab:active".into(),
        ];
        for e in extra {
            args.push("--param".into());
            args.push(e.to_string());
        }
        args.push("--wait".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(ws.path(), &refs)
    };
    let (failed_ok, failed_out, failed_err) = dispatch(&[]);
    let (fell_ok, fell_out, fell_err) = dispatch(&["fallback=headless"]);
    let (_, status, _) = run(ws.path(), &["extension", "status", "--json"]);
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(!failed_ok, "{failed_out}");
    assert!(
        (failed_out.clone() + &failed_err).contains("extension is not connected"),
        "{failed_out}{failed_err}"
    );
    assert!(fell_ok, "{fell_out}{fell_err}");
    assert!(serde_json::from_str::<Value>(&status).unwrap()["connected"] == false);
}

/// Chrome's id for an unpacked extension without a key: the hash of its folder's path.
fn id_for_path(p: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(p.to_string_lossy().as_bytes())
        .iter()
        .take(16)
        .flat_map(|b| [b >> 4, b & 15])
        .map(|d| (b'a' + d) as char)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_refuses_an_extension_with_another_id() {
    let ws = temp();
    let udd = temp();
    let installed = install(ws.path(), udd.path());
    let mut serve = crate::util::spawn_serve(ws.path());
    // An impostor: the same files without the key, so Chrome gives it another id; the host
    // manifest is edited to let Chrome start the host for it anyway.
    let copy = temp();
    let ext = PathBuf::from(installed["extension_dir"].as_str().unwrap());
    let impostor = copy.path().join("impostor");
    copy_dir(&ext, &impostor);
    let manifest_path = impostor.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("key");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let other_id = id_for_path(&impostor);
    let host_path = PathBuf::from(installed["host_manifest"].as_str().unwrap());
    let mut host: Value =
        serde_json::from_str(&std::fs::read_to_string(&host_path).unwrap()).unwrap();
    host["allowed_origins"] = serde_json::json!([format!("chrome-extension://{other_id}/")]);
    std::fs::write(&host_path, host.to_string()).unwrap();

    let browser = launch_with(udd.path(), &impostor).await;
    let refused = eventually(Duration::from_secs(30), || async {
        let log =
            std::fs::read_to_string(ws.path().join(".deskhand/audit.jsonl")).unwrap_or_default();
        (log.contains("extension.refused") && log.contains(&other_id)).then_some(log)
    })
    .await;
    let (_, status, _) = run(ws.path(), &["extension", "status", "--json"]);
    drop(browser);
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        refused.is_some(),
        "the native host did not refuse the impostor"
    );
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["connected"], false, "{status}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
