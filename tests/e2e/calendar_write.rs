//! `calendar.create` and `calendar.update` against the fake Google Calendar: the approval shows
//! the event whole (`--yes` answers it), the event has its guests, time zone and description; a
//! read-only grant is refused with the command that fixes it; `deskhand undo` restores an
//! updated event and deletes a created one.

use deskhand_fake_providers::FakeData;
use serde_json::Value;

use crate::connectors::Env;

const EVENTS: &str = "https://www.googleapis.com/auth/calendar.events";

fn skill(ws: &std::path::Path, name: &str, yaml: &str) {
    let d = ws.join("skills").join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: Calendar test.\n---\n# {name}\n"),
    )
    .unwrap();
    std::fs::write(d.join("skill.yaml"), yaml).unwrap();
}

const CREATE: &str = "permissions:\n  connectors:\n    calendar: write\nsteps:\n  - id: meet\n    uses: calendar.create\n    with:\n      summary: Engine review\n      start: \"2026-12-04T10:00\"\n      end: \"2026-12-04T10:30\"\n      time_zone: Europe/Berlin\n      description: \"Agenda:\\n1. tables\\n2. <b>cards</b>\"\n      location: Room 2\n      attendees: [grace@example.com, charles@engine.example]\n      account: default\n";

const UPDATE: &str = "params:\n  id:\n    type: string\n    required: true\npermissions:\n  connectors:\n    calendar: write\nsteps:\n  - id: move\n    uses: calendar.update\n    with:\n      id: \"{{ params.id }}\"\n      summary: Engine review (moved)\n      start: \"2026-12-04T11:00\"\n      end: \"2026-12-04T11:30\"\n      time_zone: Europe/Berlin\n      account: default\n";

/// The newest job of `skill`.
async fn job_of(env: &Env, skill: &str) -> String {
    let jobs = env.json(&["jobs", "list", "--json"]).await;
    jobs.as_array()
        .unwrap()
        .iter()
        .find(|j| j["skill"] == skill)
        .and_then(|j| j["id"].as_str())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_created_with_its_guests_updated_and_both_undone() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    skill(ws, "plan-meeting", CREATE);
    skill(ws, "move-meeting", UPDATE);
    for s in ["plan-meeting", "move-meeting"] {
        let (ok, out, err) = env.run(&["skills", "trust", s, "--yes"]).await;
        assert!(ok, "{out}{err}");
    }
    let (ok, out, err) = env.connect("google", &[]).await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = env.run(&["skills", "run", "plan-meeting", "--yes"]).await;
    assert!(!ok && err.contains(&format!("--scope {EVENTS}")), "{err}");

    let (ok, out, err) = env.connect("google", &["--scope", EVENTS]).await;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = env.run(&["skills", "run", "plan-meeting", "--yes"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("approved (--yes): external-write on primary: Engine review"),
        "{err}"
    );
    // The approval showed the event whole.
    let approvals = env.json(&["approvals", "list", "--all", "--json"]).await;
    let p = &approvals[0]["preview"];
    assert_eq!(p["summary"], "Engine review", "{approvals}");
    assert_eq!(p["attendees"][1], "charles@engine.example");
    assert_eq!(p["start"]["time_zone"], "Europe/Berlin");
    assert_eq!(p["description"], "Agenda:\n1. tables\n2. <b>cards</b>");

    let created = job_of(&env, "plan-meeting").await;
    let external: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join(format!(".deskhand/journal/{created}/external.json")))
            .unwrap(),
    )
    .unwrap();
    let full = external[0]["id"].as_str().unwrap();
    let (cal, id) = full.rsplit_once('/').unwrap();
    assert_eq!(cal, "primary");
    let e = env
        .h()
        .event("primary", id)
        .expect("the fake has the event");
    assert_eq!(e["summary"], "Engine review");
    assert_eq!(e["location"], "Room 2");
    assert_eq!(e["start"]["timeZone"], "Europe/Berlin");
    assert!(
        e["start"]["dateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-04T09:00:00"),
        "{e}"
    );
    let guests: Vec<&str> = e["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["email"].as_str())
        .collect();
    assert_eq!(guests, ["grace@example.com", "charles@engine.example"]);

    // Moved an hour later, then undone: back as it was.
    let (ok, out, err) = env
        .run(&[
            "skills",
            "run",
            "move-meeting",
            "-p",
            &format!("id={id}"),
            "--yes",
        ])
        .await;
    assert!(ok, "{out}{err}");
    let moved = env.h().event("primary", id).unwrap();
    assert_eq!(moved["summary"], "Engine review (moved)");
    assert!(
        moved["start"]["dateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-04T10:00:00"),
        "{moved}"
    );
    let (ok, out, err) = env
        .run(&["undo", &job_of(&env, "move-meeting").await])
        .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("restored calendar event"), "{out}");
    let back = env.h().event("primary", id).unwrap();
    assert_eq!(back["summary"], "Engine review");
    assert!(
        back["start"]["dateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-04T09:00:00"),
        "{back}"
    );
    assert_eq!(back["attendees"].as_array().map(Vec::len), Some(2));

    // The created event is deleted by undo.
    let (ok, out, err) = env.run(&["undo", &created]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("deleted calendar event"), "{out}");
    assert_eq!(env.h().event("primary", id).unwrap()["status"], "cancelled");
}
