//! Connectors end to end: the real `deskhand` binary against the fake Google and Notion servers
//! (same wire protocol, only the base URLs differ): the OAuth dance with a test playing the
//! browser, sync and incremental sync, every fault, and the stale-connection path.

use std::process::Stdio;
use std::time::Duration;

use deskhand_fake_providers::{FakeData, FakeHandle, FakeMessage, FakeProviders, Fault};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::util::{deskhand, temp};

const CLIENT_ID: &str = "deskhand-test.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-test-secret";
pub(crate) const FILE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A workspace wired to a running fake.
pub struct Env {
    pub fake: FakeProviders,
    pub ws: tempfile::TempDir,
}

impl Env {
    pub async fn start(data: FakeData) -> Env {
        Self::with_config(data, "[secrets]\nstore = \"file\"\n").await
    }

    pub async fn with_config(data: FakeData, extra: &str) -> Env {
        let fake = FakeProviders::start(data).await.expect("fake providers");
        fake.handle().register_client(CLIENT_ID, CLIENT_SECRET);
        let b = fake.base_url();
        let ws = temp();
        std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
        std::fs::write(
            ws.path().join(".deskhand/config.toml"),
            format!(
                "{extra}
[google]
client_id = \"{CLIENT_ID}\"
auth_url = \"{b}/o/oauth2/v2/auth\"
token_url = \"{b}/token\"
gmail_url = \"{b}/gmail/v1/users/me/\"
calendar_url = \"{b}/\"
past_days = 3650
future_days = 3650
[notion]
client_id = \"{CLIENT_ID}\"
auth_url = \"{b}/v1/oauth/authorize\"
token_url = \"{b}/v1/oauth/token\"
api_url = \"{b}/v1/\"
requests_per_second = 100
[retry]
max_attempts = 6
base_delay_ms = 20
max_delay_ms = 200
max_total_ms = 8000
"
            ),
        )
        .unwrap();
        Env { fake, ws }
    }

    pub fn h(&self) -> FakeHandle {
        self.fake.handle()
    }

    pub fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::from(deskhand());
        c.args(args)
            .env("DESKHAND_WORKSPACE", self.ws.path())
            .env("DESKHAND_SECRETS_KEY", FILE_KEY)
            .env("DESKHAND_GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
            .env("DESKHAND_NOTION_CLIENT_SECRET", CLIENT_SECRET)
            .env("DESKHAND_ALLOW_CUSTOM_ENDPOINTS", "1")
            .env_remove("DESKHAND_GOOGLE_CLIENT_ID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs a command to the end: (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.cmd(args).output())
            .await
            .expect("command finished in time")
            .expect("command ran");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "{args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// `deskhand connect <provider>`, playing the person's browser: open the printed URL and
    /// follow the provider's redirect back to the loopback listener.
    pub async fn connect(&self, provider: &str, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["connect", provider, "--no-browser"];
        args.extend_from_slice(extra);
        let mut child = self
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("URL printed in time")
                .unwrap()
                .unwrap_or_else(|| panic!("connect ended before printing a URL: {printed}"));
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("http") {
                break line;
            }
        };
        // Follows the provider's 302 to the loopback redirect, like a browser.
        reqwest::get(&url).await.expect("browser visit");
        let out = child.wait_with_output().await.unwrap();
        let mut stdout = printed;
        while let Ok(Some(l)) = lines.next_line().await {
            stdout.push_str(&l);
            stdout.push('\n');
        }
        (
            out.status.success(),
            stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn connect_google(&self) {
        let (ok, out, err) = self.connect("google", &[]).await;
        assert!(ok, "connect failed:\n{out}\n{err}");
    }
}

fn message(
    id: &str,
    from: &str,
    subject: &str,
    body: &str,
    labels: &[&str],
    when_ms: i64,
) -> FakeMessage {
    let raw = format!(
        "From: {from}\r\nTo: Ada Lovelace <ada@example.com>\r\nSubject: {subject}\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <{id}@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    FakeMessage {
        id: id.into(),
        thread_id: id.into(),
        label_ids: labels.iter().map(|s| s.to_string()).collect(),
        internal_date_ms: when_ms,
        raw,
        snippet: body.chars().take(40).collect(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn fixtures() -> FakeData {
    FakeData::bundled().expect("provider fixtures")
}

fn sync_report<'a>(v: &'a Value, resource: &str) -> &'a Value {
    v["synced"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["resource"] == resource))
        .unwrap_or_else(|| panic!("no {resource} in {v}"))
}

fn connection<'a>(v: &'a Value, id: &str) -> &'a Value {
    v.as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no {id} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_oauth_pkce_sync_and_cache_queries() {
    let env = Env::start(fixtures()).await;
    // An event tomorrow and an all-day one today, so the agenda has something whatever the date.
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    env.h().upsert_event(
        "primary",
        json!({"id": "standup1", "status": "confirmed", "summary": "Team standup",
               "start": {"dateTime": format!("{tomorrow}T09:00:00+01:00"), "timeZone": "Europe/Berlin"},
               "end": {"dateTime": format!("{tomorrow}T09:15:00+01:00"), "timeZone": "Europe/Berlin"}}),
    );
    let today = chrono::Local::now().date_naive();
    env.h().upsert_event(
        "primary",
        json!({"id": "allday1", "status": "confirmed", "summary": "Company offsite",
               "start": {"date": today.to_string()}, "end": {"date": (today + chrono::Duration::days(1)).to_string()}}),
    );

    env.connect_google().await;
    // PKCE and the code exchange happened at the token endpoint, once.
    assert_eq!(env.h().request_count("/token"), 1);

    let conns = env.json(&["connections", "--json"]).await;
    let g = connection(&conns, "google:default");
    assert_eq!(g["state"], "ok");
    assert_eq!(g["identity"], "ada@example.com");
    let scopes: Vec<&str> = g["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        scopes.iter().any(|s| s.ends_with("gmail.readonly")),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s.ends_with("calendar.readonly")),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().all(|s| s.ends_with("readonly")),
        "only read scopes by default: {scopes:?}"
    );

    let first = env.json(&["sync", "--json"]).await;
    let mail = sync_report(&first, "gmail");
    assert_eq!(mail["full"], true);
    let fetched = mail["fetched"].as_u64().unwrap();
    assert!(fetched >= 10, "fixture mail fetched: {mail}");
    // The minimum: one profile, one list page, one get per message.
    assert_eq!(mail["requests"].as_u64().unwrap(), 2 + fetched, "{mail}");
    let cal = sync_report(&first, "calendar:primary");
    assert!(cal["fetched"].as_u64().unwrap() >= 5, "{cal}");

    // Parsed with a MIME parser: encoded-word subject, attachments, threads.
    let found = env
        .json(&["mail", "search", "subject:grüße", "--json"])
        .await;
    let msgs = found["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "{found}");
    assert!(
        msgs[0]["subject"].as_str().unwrap().contains("München"),
        "{found}"
    );
    let att = env
        .json(&["mail", "search", "has:attachment", "--json"])
        .await;
    assert!(
        att["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.as_str().unwrap().ends_with(".pdf"))),
        "{att}"
    );
    let spam = env.json(&["mail", "search", "label:SPAM", "--json"]).await;
    assert_eq!(
        spam["messages"].as_array().unwrap().len(),
        0,
        "spam is not synced: {spam}"
    );
    assert!(found["cache"]["synced_at"].is_string());

    let agenda = env
        .json(&["calendar", "agenda", "--days", "2", "--json"])
        .await;
    let events = agenda["events"].as_array().unwrap();
    let standup = events
        .iter()
        .find(|e| e["id"] == "standup1")
        .unwrap_or_else(|| panic!("{agenda}"));
    assert_eq!(standup["time_zone"], "Europe/Berlin");
    assert!(
        standup["start"]
            .as_str()
            .unwrap()
            .ends_with("09:00:00+01:00"),
        "{standup}"
    );
    let offsite = events
        .iter()
        .find(|e| e["id"] == "allday1")
        .unwrap_or_else(|| panic!("{agenda}"));
    assert_eq!(offsite["all_day"], true);
    assert!(events.iter().all(|e| e["status"] != "cancelled"));
    let (ok, text, _) = env.run(&["calendar", "agenda", "--days", "2"]).await;
    assert!(
        ok && text.contains("Team standup") && text.contains("all day"),
        "{text}"
    );

    // Incremental: one new message, one deleted, one relabelled, one event moved, one cancelled.
    let ids: Vec<String> = env
        .json(&["mail", "search", "", "--limit", "100", "--json"])
        .await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    env.h().add_message(message(
        "new-1",
        "Grace Hopper <grace@example.com>",
        "Quarterly numbers",
        "The budget is attached in spirit.",
        &["INBOX", "UNREAD"],
        now_ms(),
    ));
    env.h().delete_message(&ids[0]);
    env.h().set_labels(&ids[1], &["STARRED"], &[]);
    env.h().cancel_event("primary", "standup1");
    env.h().reset_requests();

    let second = env.json(&["sync", "--json"]).await;
    let mail = sync_report(&second, "gmail");
    assert_eq!(mail["full"], false);
    assert_eq!(
        (
            mail["fetched"].as_u64(),
            mail["deleted"].as_u64(),
            mail["updated"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{mail}"
    );
    assert_eq!(mail["requests"], 2, "one history page + one get: {mail}");
    let cal = sync_report(&second, "calendar:primary");
    assert_eq!(cal["full"], false);
    assert_eq!(cal["requests"], 1, "{cal}");
    assert_eq!(cal["deleted"], 1, "{cal}");
    assert_eq!(env.h().request_count("/calendar/v3"), 1);

    let q = env
        .json(&["mail", "search", "from:grace budget is:unread", "--json"])
        .await;
    assert_eq!(q["messages"][0]["id"], "new-1", "{q}");
    let starred = env.json(&["mail", "search", "is:starred", "--json"]).await;
    assert!(
        starred["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == ids[1].as_str()),
        "{starred}"
    );
    let all = env
        .json(&["mail", "search", "", "--limit", "100", "--json"])
        .await;
    assert!(!all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == ids[0].as_str()));
    let agenda = env
        .json(&["calendar", "agenda", "--days", "2", "--json"])
        .await;
    assert!(
        !agenda["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "standup1"),
        "cancelled event removed"
    );

    // Secrets never land in the workspace in clear, nor in any output.
    let mut seen = String::new();
    for entry in walk(env.ws.path()) {
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry).unwrap_or_default(),
        ));
    }
    for marker in ["1//0g", "ya29.", CLIENT_SECRET] {
        assert!(
            !seen.contains(marker),
            "{marker} found in the workspace files"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_grant_marks_the_connection_stale_until_reconnected() {
    let env = Env::start(FakeData::generated(30, 10, 0)).await;
    env.connect_google().await;
    let (ok, _, err) = env.run(&["sync"]).await;
    assert!(ok, "{err}");

    env.h().revoke_refresh_tokens();
    env.h().expire_access_tokens();
    let (ok, out, err) = env.run(&["sync", "gmail"]).await;
    assert!(!ok, "a revoked grant must fail: {out}");
    assert!(
        err.contains("deskhand connect google"),
        "tells how to fix it: {err}"
    );
    assert!(err.contains("expired or revoked"), "says why: {err}");
    assert!(
        !err.contains("1//0g") && !err.contains("ya29."),
        "no secret in errors: {err}"
    );
    let conns = env.json(&["connections", "--json"]).await;
    assert_eq!(connection(&conns, "google:default")["state"], "stale");
    let (_, table, _) = env.run(&["connections"]).await;
    assert!(
        table.contains("stale") && table.contains("reconnect: deskhand connect google"),
        "{table}"
    );

    // No hammering: a stale connection is not retried against the provider.
    env.h().reset_requests();
    let (ok, _, err) = env.run(&["sync"]).await;
    assert!(!ok && err.contains("reconnect"), "{err}");
    assert_eq!(
        env.h().requests().len(),
        0,
        "stale connection made requests"
    );

    // The cache still answers, and says the connection needs attention.
    let (ok, _, err) = env.run(&["mail", "search", "", "--json"]).await;
    assert!(
        ok && err.contains("warning") && err.contains("deskhand connect google"),
        "{err}"
    );

    // Reconnecting fixes it.
    env.connect_google().await;
    let conns = env.json(&["connections", "--json"]).await;
    assert_eq!(connection(&conns, "google:default")["state"], "ok");
    let (ok, _, err) = env.run(&["sync"]).await;
    assert!(ok, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_never_make_a_connection_stale() {
    let env = Env::start(FakeData::generated(40, 20, 0)).await;
    env.connect_google().await;
    let h = env.h();
    h.inject(
        "/gmail/v1/users/me/messages",
        Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
        1,
    );
    h.inject(
        "/gmail/v1/users/me/messages/",
        Fault::TooManyRequests {
            retry_after_secs: None,
        },
        2,
    );
    h.inject("/gmail/v1/users/me/messages/", Fault::GoogleRateLimit, 2);
    h.inject("/gmail/v1/users/me/messages/", Fault::ServerError(503), 2);
    h.inject("/calendar/v3/", Fault::ServerError(500), 1);
    h.inject("/calendar/v3/", Fault::Slow(Duration::from_millis(300)), 1);
    // The refresh itself meets a server error first: transient, retried.
    h.expire_access_tokens();
    h.inject("/token", Fault::ServerError(503), 1);
    let started = std::time::Instant::now();
    let v = env.json(&["sync", "--json"]).await;
    assert_eq!(sync_report(&v, "gmail")["fetched"], 40, "{v}");
    assert_eq!(sync_report(&v, "calendar:primary")["fetched"], 20, "{v}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let failed: Vec<_> = h
        .requests()
        .into_iter()
        .filter(|r| r.status >= 400)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        failed.len(),
        9,
        "every injected fault was met once: {failed:?}"
    );
    let conns = env.json(&["connections", "--json"]).await;
    assert_eq!(connection(&conns, "google:default")["state"], "ok");

    // A provider that stays down exhausts the budget: an error, not stale.
    h.add_message(message(
        "late-1",
        "x@example.com",
        "late",
        "late",
        &["INBOX"],
        now_ms(),
    ));
    h.inject("/gmail/v1/", Fault::ServerError(500), 100);
    let (ok, _, err) = env.run(&["sync", "gmail"]).await;
    assert!(!ok);
    assert!(err.contains("unavailable after 6 attempts"), "{err}");
    let conns = env.json(&["connections", "--json"]).await;
    let g = connection(&conns, "google:default");
    assert_eq!(g["state"], "error", "{g}");
    h.clear_faults();
    let v = env.json(&["sync", "gmail", "--json"]).await;
    assert_eq!(sync_report(&v, "gmail")["fetched"], 1, "{v}");
    let conns = env.json(&["connections", "--json"]).await;
    assert_eq!(connection(&conns, "google:default")["state"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_once_on_401() {
    let env = Env::start(FakeData::generated(5, 0, 0)).await;
    env.connect_google().await;
    env.h()
        .inject("/gmail/v1/users/me/profile", Fault::Unauthorized, 1);
    env.h().reset_requests();
    let v = env.json(&["sync", "gmail", "--json"]).await;
    assert_eq!(sync_report(&v, "gmail")["fetched"], 5);
    // One refresh at start (new process), one after the 401.
    assert_eq!(env.h().request_count("/token"), 2);
    // A 401 that survives a fresh token is an auth error, not an endless loop.
    env.h()
        .inject("/gmail/v1/users/me/history", Fault::Unauthorized, 10);
    let (ok, _, err) = env.run(&["sync", "gmail"]).await;
    assert!(!ok && err.contains("refused our credentials"), "{err}");
    assert!(env.h().request_count("/gmail/v1/users/me/history") <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cursors_trigger_full_resyncs() {
    let env = Env::start(FakeData::generated(25, 15, 0)).await;
    env.connect_google().await;
    let (ok, _, err) = env.run(&["sync"]).await;
    assert!(ok, "{err}");
    let victim = env
        .json(&["mail", "search", "", "--limit", "1", "--json"])
        .await["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.h().expire_history();
    env.h().invalidate_sync_tokens();
    env.h().delete_message(&victim);
    let v = env.json(&["sync", "--json"]).await;
    let mail = sync_report(&v, "gmail");
    assert_eq!(mail["full"], true, "{mail}");
    assert_eq!(mail["fetched"], 24, "{mail}");
    assert!(
        mail["note"].as_str().unwrap().contains("history expired"),
        "{mail}"
    );
    let cal = sync_report(&v, "calendar:primary");
    assert_eq!(cal["full"], true, "{cal}");
    assert_eq!(cal["fetched"], 15, "{cal}");
    assert!(
        cal["note"].as_str().unwrap().contains("410")
            || cal["note"].as_str().unwrap().contains("expired"),
        "{cal}"
    );
    let all = env
        .json(&["mail", "search", "", "--limit", "100", "--json"])
        .await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_refusals_are_explained() {
    let env = Env::start(FakeData::generated(1, 0, 0)).await;
    env.h().set_deny_consent(true);
    let (ok, _, err) = env.connect("google", &[]).await;
    assert!(!ok && err.contains("denied"), "{err}");
    env.h().set_deny_consent(false);

    // Provider URLs from a workspace config need the person's explicit consent (environment).
    env.h().reset_requests();
    let mut c = env.cmd(&["sync"]);
    c.env_remove("DESKHAND_ALLOW_CUSTOM_ENDPOINTS");
    let out = c.output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("DESKHAND_ALLOW_CUSTOM_ENDPOINTS"),
        "{err}"
    );
    assert_eq!(env.h().requests().len(), 0, "nothing was sent");

    // No client id anywhere: say where to put one.
    std::fs::write(
        env.ws.path().join(".deskhand/config.toml"),
        "[secrets]\nstore = \"file\"\n",
    )
    .unwrap();
    let (ok, _, err) = env.run(&["connect", "google", "--no-browser"]).await;
    assert!(!ok && err.contains("client_id"), "{err}");

    // File store without its key: explicit, never plain text.
    let (ok, _, err) = env
        .run_without_key(&["connect", "notion", "--token-stdin"])
        .await;
    assert!(
        !ok && err.contains("DESKHAND_SECRETS_KEY") && err.contains("openssl rand"),
        "{err}"
    );
}

impl Env {
    pub async fn run_without_key(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = self.cmd(args);
        c.env_remove("DESKHAND_SECRETS_KEY");
        let out = c.output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn run_stdin(&self, args: &[&str], input: &str) -> (bool, String, String) {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notion_internal_token_oauth_sync_and_query() {
    let env = Env::start(fixtures()).await;
    env.h()
        .add_internal_token("ntn_test_internal_token_1234567890");

    let (ok, _, err) = env
        .run_stdin(&["connect", "notion", "--token-stdin"], "ntn_wrong\n")
        .await;
    assert!(!ok && err.contains("token was refused"), "{err}");
    assert!(!err.contains("ntn_wrong"), "the token is not echoed: {err}");

    let (ok, out, err) = env
        .run_stdin(
            &["connect", "notion", "--token-stdin"],
            "ntn_test_internal_token_1234567890\n",
        )
        .await;
    assert!(ok, "{out}{err}");
    let v = env.json(&["sync", "notion", "--json"]).await;
    let n = sync_report(&v, "notion");
    assert!(n["fetched"].as_u64().unwrap() >= 8, "{n}");
    let tasks = env.json(&["notion", "query", "Tasks", "--json"]).await;
    let pages = tasks["pages"].as_array().unwrap();
    assert!(pages.len() >= 8, "{tasks}");
    let done = env
        .json(&["notion", "query", "tasks", "--where", "Done=true", "--json"])
        .await;
    let done_pages = done["pages"].as_array().unwrap();
    assert!(
        !done_pages.is_empty() && done_pages.len() < pages.len(),
        "{done}"
    );
    assert!(done_pages.iter().all(|p| p["properties"]["Done"] == true));

    // Incremental: only pages edited since the last sync come back.
    let id = pages[0]["id"].as_str().unwrap().to_string();
    let mut page = env
        .h()
        .pages_in(tasks["data_source"]["id"].as_str().unwrap())
        .into_iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap();
    page["properties"]["Name"]["title"] = json!([{"type": "text", "text": {"content": "Renamed task"}, "plain_text": "Renamed task"}]);
    // Later than every page so far (Notion's clock only moves forward).
    let latest = pages
        .iter()
        .filter_map(|p| p["last_edited_time"].as_str())
        .max()
        .unwrap()
        .to_string();
    let later = chrono::DateTime::parse_from_rfc3339(&latest)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .max(chrono::Utc::now())
        + chrono::Duration::minutes(1);
    page["last_edited_time"] = json!(later.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    env.h().upsert_page(page);
    let v = env.json(&["sync", "notion", "--json"]).await;
    let n = sync_report(&v, "notion");
    assert_eq!(n["full"], false, "{n}");
    assert!(
        n["fetched"].as_u64().unwrap() < pages.len() as u64,
        "only changes: {n}"
    );
    let tasks = env.json(&["notion", "query", "Tasks", "--json"]).await;
    assert!(
        tasks["pages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["title"] == "Renamed task"),
        "{tasks}"
    );

    let (ok, _, err) = env.run(&["notion", "query", "Nope"]).await;
    assert!(
        !ok && err.contains("Tasks"),
        "lists the known data sources: {err}"
    );

    // OAuth for a public integration: JSON token exchange with HTTP Basic client auth.
    let (ok, out, err) = env.connect("notion", &["--account", "team"]).await;
    assert!(ok, "{out}{err}");
    let conns = env.json(&["connections", "--json"]).await;
    assert_eq!(connection(&conns, "notion:team")["state"], "ok");
    assert_eq!(connection(&conns, "notion:default")["state"], "ok");
}
