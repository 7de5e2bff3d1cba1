//! `gmail.draft` against the fake Gmail: a reply saved as a draft in its thread with
//! In-Reply-To/References, nothing sent and nothing asked; a read-only grant is refused with the
//! command that fixes it; `deskhand undo` deletes the draft.

use deskhand_fake_providers::FakeData;

use crate::connectors::Env;

const COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";

/// The message from Charles (Message-ID <demo-1@engine.example>) in the bundled mailbox.
const ORIGINAL: &str = "19a8c1f0a1b20005";

fn skill(ws: &std::path::Path) {
    let d = ws.join("skills/reply-draft");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("SKILL.md"),
        "---\nname: reply-draft\ndescription: Draft a reply.\n---\n# reply-draft\n",
    )
    .unwrap();
    std::fs::write(
        d.join("skill.yaml"),
        format!(
            "permissions:\n  connectors:\n    gmail: write\nsteps:\n  - id: draft\n    uses: gmail.draft\n    with:\n      reply_to: {ORIGINAL}\n      body: \"Thursday works. Bcc: nobody\\nAda\"\n      account: default\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_draft_goes_into_its_thread_nothing_is_sent_and_undo_deletes_it() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    skill(ws);
    let (ok, out, err) = env.run(&["skills", "trust", "reply-draft", "--yes"]).await;
    assert!(ok, "{out}{err}");
    // Read-only: refused, saying how to grant it.
    let (ok, out, err) = env.connect("google", &[]).await;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = env.run(&["skills", "run", "reply-draft"]).await;
    assert!(!ok, "{out}");
    assert!(err.contains(&format!("--scope {COMPOSE}")), "{err}");
    assert!(env.h().drafts().is_empty());

    let (ok, out, err) = env.connect("google", &["--scope", COMPOSE]).await;
    assert!(ok, "{out}{err}");
    let sent_before = env.h().sent_messages().len();
    let (ok, out, err) = env.run(&["skills", "run", "reply-draft"]).await;
    assert!(ok, "{out}{err}");
    let drafts = env.h().drafts();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    let (_, thread, raw) = &drafts[0];
    assert_eq!(thread, ORIGINAL, "the reply is in the original's thread");
    for want in [
        "In-Reply-To: <demo-1@engine.example>",
        "References: <demo-1@engine.example>",
        "Subject: Re: Difference engine demo",
        "To: \"Charles Babbage\" <charles@engine.example>",
    ] {
        assert!(raw.contains(want), "{want:?} not in\n{raw}");
    }
    let head = raw.split("\r\n\r\n").next().unwrap();
    assert!(
        !head.to_lowercase().contains("bcc"),
        "the text stays text: {raw}"
    );
    assert_eq!(
        env.h().sent_messages().len(),
        sent_before,
        "nothing was sent"
    );
    let approvals = env.json(&["approvals", "list", "--all", "--json"]).await;
    assert_eq!(
        approvals.as_array().map(Vec::len),
        Some(0),
        "nothing was asked: {approvals}"
    );
    let audit = std::fs::read_to_string(ws.join(".deskhand/audit.jsonl")).unwrap();
    assert!(audit.contains("\"gmail.draft\""), "audited");

    let jobs = env.json(&["jobs", "list", "--json"]).await;
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let (ok, out, err) = env.run(&["undo", &id]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("deleted Gmail draft"), "{out}");
    assert!(env.h().drafts().is_empty(), "undo deleted the draft");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_prep_drafts_an_agenda_per_meeting_with_guests_and_sends_nothing() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    std::fs::write(
        ws.join("TASKS.md"),
        "# Tasks\n\n## Inbox\n\n- [ ] Bring Alan the Enigma notes @alan due:2026-11-27\n- [ ] Book the Lisbon hotel\n",
    )
    .unwrap();
    let (ok, out, err) = env.connect("google", &["--scope", COMPOSE]).await;
    assert!(ok, "{out}{err}");
    let sent_before = env.h().sent_messages().len();
    // The day before "Lunch with Alan" (2026-11-27); the all-day and guest-less ones are left.
    let (ok, out, err) = env
        .run(&["/meeting-prep", "date=2026-11-26", "tz=Europe/Berlin"])
        .await;
    assert!(ok, "{out}{err}");
    let drafts = env.h().drafts();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    let raw = &drafts[0].2;
    for want in [
        "Subject: Agenda: Lunch with Alan",
        "alan@bletchley.example",
        "Bring Alan the Enigma notes (due 2026-11-27)",
        "Anything else?",
    ] {
        assert!(raw.contains(want), "{want:?} not in\n{raw}");
    }
    assert!(
        !raw.contains("Lisbon"),
        "only tasks that name a guest: {raw}"
    );
    assert_eq!(
        env.h().sent_messages().len(),
        sent_before,
        "nothing was sent"
    );
    let jobs = env.json(&["jobs", "list", "--json"]).await;
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let (ok, out, err) = env.run(&["undo", &id]).await;
    assert!(ok, "{out}{err}");
    assert!(env.h().drafts().is_empty(), "undo deleted the draft");
}
