//! Schedules end to end: the real daemon claims due slots from the ledger, runs each at most once
//! (also across a `kill -9` and restart), collapses slots missed while it was down into one run (or
//! skips them), records every run's outcome, and holds a sleep inhibitor while it works.

use std::time::Duration;

use chrono::Utc;
use deskhand_schedule::{Ledger, Missed, NewSchedule};
use serde_json::{Map, Value};

use crate::util::{deskhand, eventually, temp};

fn ledger(ws: &std::path::Path) -> Ledger {
    std::fs::create_dir_all(ws.join(".deskhand")).unwrap();
    Ledger::open(ws.join(".deskhand/schedules.db")).unwrap()
}

fn serve(ws: &std::path::Path, inhibit: &std::path::Path) -> std::process::Child {
    deskhand()
        .args(["serve", "--port", "0"])
        .env("DESKHAND_WORKSPACE", ws)
        .env("DESKHAND_INHIBIT_COMMAND", inhibit)
        .env("DESKHAND_SCHEDULE_TICK_MS", "200")
        .env_remove("DESKHAND_QUEUE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start deskhand serve")
}

fn runs(ws: &std::path::Path, id: &str) -> Vec<Value> {
    let out = deskhand()
        .args(["schedule", "runs", id, "--json"])
        .env("DESKHAND_WORKSPACE", ws)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// A stand-in for systemd-inhibit: records its arguments, then sleeps until killed.
fn fake_inhibitor(dir: &std::path::Path) -> std::path::PathBuf {
    let script = dir.join("fake-inhibit");
    let log = dir.join("inhibit.log");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexec cat\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_slots_run_once_on_wake_or_are_skipped_and_never_run_twice() {
    let ws = temp();
    let tools = temp();
    let inhibit = fake_inhibitor(tools.path());
    // Schedules made three hours ago: the agent was "down" for three hourly slots.
    let three_hours_ago = Utc::now() - chrono::Duration::hours(3) - chrono::Duration::minutes(1);
    let l = ledger(ws.path());
    let once = l
        .add(
            NewSchedule {
                cron: "@hourly".into(),
                tz: "Europe/Berlin".into(),
                skill: "noop".into(),
                params: Map::new(),
                missed: Missed::RunOnce,
            },
            three_hours_ago,
        )
        .unwrap();
    let skip = l
        .add(
            NewSchedule {
                cron: "0 * * * *".into(),
                tz: "UTC".into(),
                skill: "noop".into(),
                params: Map::new(),
                missed: Missed::Skip,
            },
            three_hours_ago,
        )
        .unwrap();
    drop(l);

    let mut agent = serve(ws.path(), &inhibit);
    let got = eventually(Duration::from_secs(30), || async {
        let r = runs(ws.path(), &once.id);
        (r.len() == 1 && r[0]["outcome"]["kind"] == "ok").then_some(r)
    })
    .await;
    // The phone page's view: the same runs over the local API.
    let api: Vec<Value> =
        serde_json::from_value(crate::util::api_get(ws.path(), "/api/schedules").await).unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    let mine = api
        .iter()
        .find(|s| s["id"] == once.id.as_str())
        .expect("schedule listed");
    assert_eq!(mine["last_run"]["outcome"]["kind"], "ok", "{mine}");
    let got = got.unwrap_or_else(|| {
        panic!(
            "the missed slots did not run once with outcome ok: {:?}",
            runs(ws.path(), &once.id)
        )
    });
    assert!(got[0]["missed"].as_u64().unwrap() >= 3, "{got:?}");
    let job = got[0]["job_id"]
        .as_str()
        .expect("a job behind the run")
        .to_string();
    let skipped = runs(ws.path(), &skip.id);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["outcome"]["kind"], "skipped", "{skipped:?}");
    assert!(skipped[0]["job_id"].is_null(), "a skipped slot has no job");

    // The job is in the job list with its schedule as origin, and succeeded.
    let out = deskhand()
        .args(["jobs", "show", &job])
        .env("DESKHAND_WORKSPACE", ws.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("succeeded"), "{shown}");

    // Next due times are in the future: no burst, and a restart after kill -9 runs nothing again.
    let list: Vec<Value> = serde_json::from_slice(
        &deskhand()
            .args(["schedule", "list", "--json"])
            .env("DESKHAND_WORKSPACE", ws.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for s in &list {
        let next = chrono::DateTime::parse_from_rfc3339(s["next_due"].as_str().unwrap()).unwrap();
        assert!(next > Utc::now(), "{s}");
    }
    let mut again = serve(ws.path(), &inhibit);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(runs(ws.path(), &once.id).len(), 1, "a slot ran twice");

    // The inhibitor was taken while the job ran, with systemd-inhibit's arguments.
    let log = std::fs::read_to_string(tools.path().join("inhibit.log")).unwrap_or_default();
    assert!(
        log.contains("--what=sleep") && log.contains("--mode=block"),
        "{log}"
    );
    // And released: no fake inhibitor outlives the agent.
    let left = crate::util::wait_gone(&inhibit.display().to_string(), Duration::from_secs(5));
    assert!(left.is_empty(), "inhibitor still running: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_from_the_cli_and_a_job_with_dst_and_clear_errors() {
    let ws = temp();
    let run = |args: &[&str]| {
        let out = deskhand()
            .args(args)
            .env("DESKHAND_WORKSPACE", ws.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // `/schedule` in a job: the trigger line keeps the quoted cron together.
    let (ok, out, err) = run(&[
        "/schedule",
        "30 2 * * *",
        "status-report",
        "tz=Europe/Berlin",
    ]);
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = run(&[
        "schedule",
        "add",
        "@daily",
        "inbox-digest",
        "-p",
        "hours=12",
        "--tz",
        "America/New_York",
        "--missed",
        "skip",
    ]);
    assert!(ok, "{out}\n{err}");
    let (_, out, _) = run(&["schedule", "list", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 2);
    let berlin = list.iter().find(|s| s["skill"] == "status-report").unwrap();
    let next = chrono::DateTime::parse_from_rfc3339(berlin["next_due"].as_str().unwrap()).unwrap();
    let local = next.with_timezone(&"Europe/Berlin".parse::<chrono_tz::Tz>().unwrap());
    assert_eq!(local.format("%H:%M").to_string(), "02:30", "{berlin}");
    let digest = list.iter().find(|s| s["skill"] == "inbox-digest").unwrap();
    assert_eq!(digest["params"]["hours"], 12);
    let id = digest["id"].as_str().unwrap().to_string();
    let (ok, _, _) = run(&["schedule", "pause", &id]);
    assert!(ok);
    let (_, out, _) = run(&["schedule", "list"]);
    assert!(out.contains("paused"), "{out}");
    let (ok, _, _) = run(&["schedule", "resume", &id]);
    assert!(ok);
    let (ok, _, _) = run(&["schedule", "remove", &id]);
    assert!(ok);
    let (_, out, _) = run(&["schedule", "list", "--json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 1);

    // Bad input: said plainly, nothing added.
    let (ok, _, err) = run(&["schedule", "add", "61 * * * *", "status-report"]);
    assert!(!ok && err.to_lowercase().contains("cron"), "{err}");
    let (ok, _, err) = run(&[
        "schedule",
        "add",
        "@daily",
        "status-report",
        "--tz",
        "Europe/Berln",
    ]);
    assert!(
        !ok && err.contains("Europe/Berln") && err.contains("IANA"),
        "{err}"
    );
    let (ok, _, err) = run(&["schedule", "add", "@daily", "no-such-skill"]);
    assert!(!ok && err.contains("unknown skill"), "{err}");
    let (ok, _, err) = run(&[
        "schedule",
        "add",
        "0 8 * * *",
        "status-report",
        "-p",
        "date=tomorrow",
    ]);
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
    let (_, out, _) = run(&["schedule", "list", "--json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 1);
}
