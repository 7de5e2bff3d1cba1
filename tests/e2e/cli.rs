//! The `deskhand` binary as scripts use it: stable flags, `--json` reports, exit codes.

use std::process::Output;

use crate::util::{deskhand, fixture, temp, StaticSite};

fn run(args: &[&str], ws: &std::path::Path) -> Output {
    deskhand()
        .args(args)
        .env("DESKHAND_WORKSPACE", ws)
        .env_remove("DESKHAND_BACKEND")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The terminal report says how each widget was set and which popup was closed first.
#[tokio::test]
async fn browse_fill_says_how_widgets_were_set_and_which_popup_it_closed() {
    let widgets = crate::util::fixture_dir().parent().unwrap().join("widgets");
    let site = StaticSite::serve(&widgets).await.unwrap();
    let ws = temp();
    let fill = |page: &str, fields: &[&str]| {
        let mut args = vec!["browse".to_string(), "fill".into(), site.url(page)];
        for f in fields {
            args.extend(["--field".to_string(), f.to_string()]);
        }
        let ws = ws.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&refs, &ws)
        })
    };
    let out = fill(
        "trip.html",
        &["Travel date=14 Feb 2027", "From=Porto São", "Budget=1250"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for line in [
        "  date picker: opened by focus and click, 2 months forward with its own arrows, clicked 14",
        "  autocomplete: typed \"Porto São\", picked \"Porto São Bento\" from its list of 1",
        "  slider: value 1250 (range 0 to 2000, step 50)",
    ] {
        assert!(said.lines().any(|l| l == line), "{line:?} not in:\n{said}");
    }
    let out = fill(
        "popup.html?at-once",
        &["Name=Ada Lovelace", "Email=ada@example.com"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.lines()
            .next()
            .is_some_and(|l| l.starts_with("· closed a popup over the form: ")
                && l.contains("\"No thanks\"")),
        "{said}"
    );
}

#[tokio::test]
async fn browse_fill_prints_a_json_report_and_fails_with_a_non_zero_exit() {
    let site = StaticSite::serve(&crate::util::fixture_dir())
        .await
        .unwrap();
    let ws = temp();
    let url = site.url("signup.html");
    let out = tokio::task::spawn_blocking({
        let (url, ws) = (url.clone(), ws.path().to_path_buf());
        move || {
            run(
                &[
                    "browse",
                    "fill",
                    &url,
                    "--field",
                    "First name=Ada",
                    "--field",
                    "Subscribe to newsletter=true",
                    "--field",
                    "Country=Germany",
                    "--submit",
                    "Create account",
                    "--json",
                ],
                &ws,
            )
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["report"]["fields"][2]["value"], "Germany");
    assert_eq!(v["report"]["submit"]["navigated"], true);
    // What the command submitted is in the workspace's audit log, without the sent fields.
    let log = std::fs::read_to_string(ws.path().join(".deskhand/audit.jsonl")).unwrap();
    let entry: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "form.submitted")
        .unwrap_or_else(|| panic!("no form.submitted in {log}"));
    assert_eq!(entry["data"]["button"], "Create account");
    assert_eq!(entry["data"]["via"], "deskhand browse");
    let landed = entry["data"]["landed_on"].as_str().unwrap();
    assert!(
        landed.ends_with("submitted.html") && !log.contains("Ada"),
        "{entry}"
    );

    let out = tokio::task::spawn_blocking({
        let ws = ws.path().to_path_buf();
        move || {
            run(
                &[
                    "browse",
                    "--timeout",
                    "1",
                    "fill",
                    &url,
                    "--field",
                    "Favourite colour=red",
                    "--json",
                ],
                &ws,
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["report"]["fields"][0]["status"], "not_found");
    assert!(
        text(&out.stderr).contains("form fill failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn browse_extract_from_saved_files_follows_next_and_writes_csv() {
    let ws = temp();
    let out_file = ws.path().join("out/products.csv");
    let page1 = fixture("products/page-1.html");
    let schema = fixture("products/schema.yaml");
    let out = run(
        &[
            "browse",
            "extract",
            page1.to_str().unwrap(),
            "--schema",
            schema.to_str().unwrap(),
            "--format",
            "csv",
            "--out",
            out_file.to_str().unwrap(),
        ],
        ws.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(
        csv.lines().count(),
        31,
        "header + 30 products across 3 saved pages"
    );
    assert!(csv.starts_with("name,url,price,sku,image,tags"));

    let out = run(
        &[
            "browse",
            "extract",
            fixture("table.html").to_str().unwrap(),
            "--table",
            "#people",
            "--format",
            "json",
        ],
        ws.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 8);

    let out = run(
        &[
            "browse",
            "extract",
            page1.to_str().unwrap(),
            "--schema",
            "/nonexistent.yaml",
        ],
        ws.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent.yaml"));
}

#[test]
fn the_demo_runs_on_the_embedded_default_and_leaves_reports() {
    let ws = temp();
    let out = run(&["demo"], ws.path());
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    for skill in ["status-report", "fill-form", "extract", "weekly-deck"] {
        assert!(
            stdout.contains(&format!("{skill:<14} succeeded")),
            "{stdout}"
        );
    }
    // The status report for the fixture day, from the fake Google through the real code path.
    let reports: Vec<std::path::PathBuf> = std::fs::read_dir(ws.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let find = |prefix: &str, ext: &str| {
        reports
            .iter()
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with(prefix) && n.ends_with(ext)
            })
            .unwrap_or_else(|| panic!("no {prefix}*{ext} in {reports:?}"))
    };
    let md = std::fs::read_to_string(find("status-report-", ".md")).unwrap();
    assert!(
        md.contains("Difference engine demo") && md.contains("Re: Difference engine demo"),
        "{md}"
    );
    assert_eq!(
        &std::fs::read(find("status-report-", ".xlsx")).unwrap()[..2],
        b"PK"
    );
    assert_eq!(
        &std::fs::read(find("fill-form-fill-", ".png")).unwrap()[..4],
        b"\x89PNG"
    );
    let fill: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(find("fill-form-fill-", ".json")).unwrap())
            .unwrap();
    assert_eq!(fill["fields"].as_array().map(Vec::len), Some(20), "{fill}");
    assert_eq!(fill["submit"]["navigated"], true);
    assert_eq!(
        &std::fs::read(find("extract-", ".xlsx")).unwrap()[..2],
        b"PK"
    );
    // The same day as a deck: its PDF, path printed.
    let deck = find("weekly-deck-", ".pdf");
    assert_eq!(&std::fs::read(deck).unwrap()[..5], b"%PDF-");
    assert!(stdout.contains(&deck.display().to_string()), "{stdout}");
    let dash = std::fs::read_to_string(ws.path().join("dashboard.html")).unwrap();
    assert!(
        dash.contains("status-report")
            && dash.contains("Send Charles the corrected logarithm tables")
    );
    // The demo's fake tokens are kept encrypted, never in the clear.
    let secrets = std::fs::read(ws.path().join(".deskhand/demo/secrets.enc")).unwrap();
    assert!(
        !String::from_utf8_lossy(&secrets).contains("ntn_demo"),
        "token stored in the clear"
    );
    // A second run reuses the workspace (and its connections) and succeeds again.
    let again = run(&["demo", "--no-browser"], ws.path());
    assert!(again.status.success(), "{}", text(&again.stderr));
}

#[test]
fn a_bad_config_file_is_named_in_the_error() {
    let ws = temp();
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        "[browser]\nbakend = \"cdp\"\n",
    )
    .unwrap();
    let out = run(&["demo"], ws.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("bakend"),
        "{err}"
    );
}

#[test]
fn dispatch_wait_follows_a_job_and_refusals_reach_the_sender() {
    let ws = temp();
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        "[agent]\napi_port = 0\n",
    )
    .unwrap();
    let mut serve = crate::util::spawn_serve(ws.path());
    let out = run(&["dispatch", "--text", "/noop", "--wait"], ws.path());
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["kind"], "queued");
    assert_eq!(lines.last().unwrap()["state"], "succeeded");
    let out = run(&["dispatch", "no.such.skill"], ws.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown skill") && text(&out.stderr).contains("browser.fill"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &[
            "dispatch",
            "browser.fill",
            "--param",
            "url=not a url",
            "--param",
            "fields={}",
        ],
        ws.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not an http"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["jobs", "list", "--json"], ws.path());
    let jobs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs.len(), 1, "refused jobs are not recorded");
}

#[tokio::test]
async fn browse_extract_scrolls_an_infinite_feed_to_its_end() {
    let site = StaticSite::serve(&crate::util::fixture_dir())
        .await
        .unwrap();
    let ws = temp();
    let schema = ws.path().join("feed.yaml");
    // "@data-i" reads the item's own attribute.
    std::fs::write(&schema, "items: article.feed-item\nfields:\n  i: \"@data-i\"\n  title: { css: h2, optional: true }\n").unwrap();
    let url = site.url("feed.html");
    let ws_path = ws.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &[
                "browse",
                "extract",
                &url,
                "--scroll",
                "--schema",
                schema.to_str().unwrap(),
                "--format",
                "json",
            ],
            &ws_path,
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows.len(),
        100,
        "every item of the feed, after scrolling to its end"
    );
}
