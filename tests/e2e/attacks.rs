//! The attack suite by surface: the same hostile reads, tried from every way a job reaches the
//! agent (the CLI, the API with the desktop's token, the API signed by a paired device, a step of
//! a trusted workspace skill, the extension's popup through the native host). Each must be
//! refused by the guard and audited, or fail without saying what the file holds; no secret may
//! reach an answer, the audit log or the dashboard. Prints a table of attempts and outcomes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use deskhand_agent::guard::devices::{DeviceKey, Devices};
use deskhand_agent::guard::requests;
use deskhand_agent::job::Job;
use serde_json::{json, Map, Value};

use crate::util::{deskhand, eventually, temp, Daemon};

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Refused by the guard, with a `guard.refused` entry in the audit log.
    Refused,
    /// Allowed to read (the skill's globs cover it) but failed without quoting the file.
    FailedSafely,
}

/// One hostile path and what the guard must do with it.
struct Attack {
    what: &'static str,
    path: String,
    /// Readable by a built-in action run on its own (schema files: `**/*.yaml|yml|json`).
    action_may_read: bool,
    /// Readable by the workspace skill, which declares `read: ["**"]`.
    skill_may_read: bool,
}

impl Attack {
    /// What must become of it on a surface: a file the job may read fails without quoting it,
    /// anything else is refused.
    fn expected(&self, surface: &str) -> Outcome {
        let may = if surface == "skill step" {
            self.skill_may_read
        } else {
            self.action_may_read
        };
        if may {
            Outcome::FailedSafely
        } else {
            Outcome::Refused
        }
    }
}

/// The daemon under attack, its workspace and the secrets that must not leak.
struct Target {
    // First, so it stops before the folders it works in are removed.
    daemon: Daemon,
    ws: tempfile::TempDir,
    outside: tempfile::TempDir,
    secrets: Vec<(String, String)>,
    site: String,
}

const SKILL_YAML: &str = "params:
  url: {type: url, required: true}
  schema: {type: json, required: true}
permissions:
  browser: [\"param:url\"]
  workspace: [\"reports/**\"]
  read: [\"**\"]
steps:
  - id: grab
    uses: browser.extract
    with:
      url: \"{{ params.url }}\"
      schema: \"{{ params.schema }}\"
";

impl Target {
    async fn start() -> Target {
        let ws = temp();
        let outside = temp();
        let w = ws.path();
        // Secrets and canaries: inside the agent's folder, outside the workspace, and in
        // workspace files a skill may well be allowed to read.
        std::fs::create_dir_all(w.join(".deskhand")).unwrap();
        std::fs::write(w.join(".deskhand/canary.yaml"), "PRIVATE-CANARY-5c1f\n").unwrap();
        std::fs::write(outside.path().join("canary.yaml"), "OUTSIDE-CANARY-91aa\n").unwrap();
        std::fs::create_dir_all(w.join("schemas")).unwrap();
        std::fs::write(w.join("schemas/canary.yaml"), "ALLOWED-CANARY-0d3e\n").unwrap();
        std::fs::write(
            w.join("schemas/keyed.json"),
            r#"{"items": "li", "fields": {"n": {"css": "a", "KEYED-CANARY-77b2": 1}}}"#,
        )
        .unwrap();
        std::fs::write(w.join("notes.txt"), "NOTES-CANARY-e4f0\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), w.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(w.join(".deskhand/canary.yaml"), w.join("inner.yaml")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(w.join("pipe.yaml"))
            .status()
            .expect("mkfifo runs");
        assert!(fifo.success());
        let dir = w.join("skills/leaky");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("SKILL.md"),
            "---\nname: leaky\ndescription: Extract with a schema the caller names.\n---\n",
        )
        .unwrap();
        std::fs::write(dir.join("skill.yaml"), SKILL_YAML).unwrap();
        let out = deskhand()
            .args(["skills", "trust", "leaky", "--yes"])
            .env("DESKHAND_WORKSPACE", w)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let daemon = Daemon::start(w);
        // This desktop's own key (made on first use, as the first CLI job would).
        let device_key = Devices::new(w).local_secret().unwrap();
        assert!(w.join(".deskhand/device.key").exists());
        let secrets = vec![
            ("device key".into(), device_key),
            ("API token".into(), daemon.token.clone()),
            ("private canary".into(), "PRIVATE-CANARY-5c1f".into()),
            ("outside canary".into(), "OUTSIDE-CANARY-91aa".into()),
            ("allowed canary".into(), "ALLOWED-CANARY-0d3e".into()),
            ("key canary".into(), "KEYED-CANARY-77b2".into()),
            ("notes canary".into(), "NOTES-CANARY-e4f0".into()),
        ];
        Target {
            daemon,
            ws,
            outside,
            secrets,
            // Never opened: every attempt ends at the schema, before Chromium.
            site: "http://127.0.0.1:9/".into(),
        }
    }

    fn attacks(&self) -> Vec<Attack> {
        let a = |what, path: &str, action_may_read, skill_may_read| Attack {
            what,
            path: path.to_string(),
            action_may_read,
            skill_may_read,
        };
        vec![
            a("the device key", ".deskhand/device.key", false, false),
            a("the API token", ".deskhand/api-token", false, false),
            a(
                "the private folder, another case",
                ".DESKHAND/canary.yaml",
                false,
                false,
            ),
            a(
                "`..` into the private folder",
                "schemas/../.deskhand/canary.yaml",
                false,
                false,
            ),
            a(
                "an absolute path outside",
                &self.outside.path().join("canary.yaml").to_string_lossy(),
                false,
                false,
            ),
            a(
                "a symlinked folder leading outside",
                "elsewhere/canary.yaml",
                false,
                false,
            ),
            a(
                "a symlink into the private folder",
                "inner.yaml",
                false,
                false,
            ),
            a("a FIFO (would block a reader)", "pipe.yaml", false, false),
            a("a file no read glob covers", "notes.txt", false, true),
            a(
                "a readable file that is no schema",
                "schemas/canary.yaml",
                true,
                true,
            ),
            a(
                "a schema with an unknown key",
                "schemas/keyed.json",
                true,
                true,
            ),
        ]
    }

    fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// The job's record once it ended, read with the desktop's token.
    async fn ended(&self, id: &str) -> Value {
        eventually(Duration::from_secs(60), || async {
            let r = self
                .http()
                .get(format!("{}/api/jobs/{id}", self.daemon.api))
                .bearer_auth(&self.daemon.token)
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            matches!(
                v["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled" | "dead")
            )
            .then_some(v)
        })
        .await
        .unwrap_or_else(|| panic!("job {id} did not end"))
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.ws.path().join(".deskhand/audit.jsonl")).unwrap_or_default()
    }

    /// The refusals audited for a job.
    fn refusals_of(&self, job: &str) -> Vec<Value> {
        self.audit()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == "guard.refused" && e["job"] == job)
            .collect()
    }
}

/// The surfaces, in the order of the table.
const SURFACES: [&str; 5] = [
    "CLI",
    "API, desktop token",
    "API, paired device",
    "skill step",
    "extension popup",
];

fn params(t: &Target, path: &str) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("url".into(), t.site.clone().into());
    p.insert("schema".into(), path.into());
    p
}

/// Send a job to the API; the new job's id and the API's answer.
async fn post_job(request: reqwest::RequestBuilder) -> (String, Value) {
    let created: Value = request.send().await.unwrap().json().await.unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    (id, created)
}

/// Submit one attempt on a surface; the job id and every text the surface answered.
async fn attempt(
    t: &Target,
    surface: &str,
    path: &str,
    tablet: &DeviceKey,
    host: &mut NativeHost,
) -> (String, String) {
    match surface {
        "CLI" | "skill step" => {
            let (skill, schema_arg) = if surface == "CLI" {
                ("browser.extract", format!("schema={path}"))
            } else {
                ("leaky", format!("schema={path}"))
            };
            let out = deskhand()
                .args([
                    "dispatch",
                    skill,
                    "--param",
                    &format!("url={}", t.site),
                    "--param",
                    &schema_arg,
                    "--wait",
                ])
                .env("DESKHAND_WORKSPACE", t.ws.path())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            // Not on a terminal, --wait prints the job's events as JSON lines.
            let id = stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find_map(|v| v["job_id"].as_str().map(String::from))
                .unwrap_or_else(|| panic!("no job id from the CLI: {stdout}\n{stderr}"));
            let detail = t.ended(&id).await;
            (id, format!("{stdout}\n{stderr}\n{detail}"))
        }
        "API, desktop token" => {
            let (id, created) = post_job(
                t.http()
                    .post(format!("{}/api/jobs", t.daemon.api))
                    .bearer_auth(&t.daemon.token)
                    .json(&json!({"skill": "browser.extract", "params": params(t, path)})),
            )
            .await;
            let detail = t.ended(&id).await;
            (id, format!("{created}\n{detail}"))
        }
        "API, paired device" => {
            let signed = |method: &str, target: &str, body: &[u8]| {
                format!(
                    "{} {}",
                    requests::SCHEME,
                    requests::sign(tablet, method, target, body, chrono::Utc::now())
                )
            };
            let mut job = Job::new("browser.extract", params(t, path), tablet.id());
            tablet.sign(&mut job);
            let body = job.to_bytes();
            let (id, created) = post_job(
                t.http()
                    .post(format!("{}/api/jobs", t.daemon.api))
                    .header("authorization", signed("POST", "/api/jobs", &body))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
            t.ended(&id).await;
            // What the phone reads back, signed as the phone signs it.
            let target = format!("/api/jobs/{id}");
            let detail: Value = t
                .http()
                .get(format!("{}{target}", t.daemon.api))
                .header("authorization", signed("GET", &target, b""))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                detail["state"].is_string(),
                "the device may read its job: {detail}"
            );
            (id, format!("{created}\n{detail}"))
        }
        "extension popup" => {
            let reply = host.request(
                "run",
                json!({"skill": "browser.extract", "params": params(t, path)}),
            );
            let id = reply["result"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{reply}"))
                .to_string();
            let detail = t.ended(&id).await;
            (id, format!("{reply}\n{detail}"))
        }
        other => unreachable!("{other}"),
    }
}

/// `deskhand native-host`, spoken to as Chrome speaks to it (4-byte length, then JSON).
pub(crate) struct NativeHost {
    child: Child,
    rid: u64,
}

impl NativeHost {
    pub(crate) fn start(ws: &Path) -> NativeHost {
        let origin = format!(
            "chrome-extension://{}/",
            deskhand_agent::extension::extension_id()
        );
        let child = deskhand()
            .args(["native-host", &origin])
            .env("DESKHAND_WORKSPACE", ws)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut h = NativeHost { child, rid: 0 };
        h.send(&json!({"type": "hello", "extension_id": deskhand_agent::extension::extension_id(), "version": "test"}));
        h
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(&(body.len() as u32).to_ne_bytes()).unwrap();
        stdin.write_all(body.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn read(&mut self) -> Value {
        let stdout = self.child.stdout.as_mut().unwrap();
        let mut len = [0u8; 4];
        stdout.read_exact(&mut len).expect("the host answers");
        let mut body = vec![0u8; u32::from_ne_bytes(len) as usize];
        stdout.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// A popup request, as the extension's worker sends it; its reply.
    pub(crate) fn request(&mut self, op: &str, args: Value) -> Value {
        self.rid += 1;
        let rid = self.rid;
        self.send(&json!({"type": "request", "rid": rid, "op": op, "args": args}));
        tokio::task::block_in_place(|| loop {
            let msg = self.read();
            if msg["reply"] == rid {
                return msg;
            }
        })
    }
}

impl Drop for NativeHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_reads_are_refused_on_every_surface_and_nothing_leaks() {
    let t = Target::start().await;
    let (_, tablet_secret) = Devices::new(t.ws.path()).pair("tablet").unwrap();
    let tablet = DeviceKey::parse(&tablet_secret).unwrap();
    let mut host = NativeHost::start(t.ws.path());
    // The host relays to the daemon once both are up; the first request proves the link.
    let first = eventually(Duration::from_secs(30), || {
        let r = host.request("jobs", json!({}));
        async move { (r["ok"] == true).then_some(r) }
    })
    .await;
    assert!(first.is_some(), "the native host never reached the agent");

    let mut table: BTreeMap<usize, (usize, usize, usize)> = BTreeMap::new();
    // What each surface answered, all attempts together.
    let mut answers: BTreeMap<usize, String> = BTreeMap::new();
    let mut failures = Vec::new();
    for (si, surface) in SURFACES.iter().enumerate() {
        for a in t.attacks() {
            let (id, said) = attempt(&t, surface, &a.path, &tablet, &mut host).await;
            answers.entry(si).or_default().push_str(&said);
            let refused = t.refusals_of(&id);
            let detail = t.ended(&id).await;
            let error = detail["error"].as_str().unwrap_or_default().to_string();
            let outcome = if detail["state"] != "failed" {
                None
            } else if !refused.is_empty()
                && refused.iter().all(|e| e["data"]["what"] == "file read")
                && error.contains("refused")
            {
                Some(Outcome::Refused)
            } else if refused.is_empty() && error.contains("schema file") {
                Some(Outcome::FailedSafely)
            } else {
                None
            };
            let ok = outcome == Some(a.expected(surface));
            let row = table.entry(si).or_default();
            row.0 += 1;
            match outcome {
                Some(Outcome::Refused) => row.1 += 1,
                Some(Outcome::FailedSafely) => row.2 += 1,
                None => {}
            }
            if !ok {
                failures.push(format!(
                    "{surface}: {} ({}): {:?} — state {}, error {error:?}, refusals {refused:?}",
                    a.what, a.path, outcome, detail["state"]
                ));
            }
        }
    }

    // Nothing the guard protects is in any answer, the audit log or the dashboard.
    let secrets_in = |text: &str| -> Vec<&str> {
        t.secrets
            .iter()
            .filter(|(_, secret)| text.contains(secret.as_str()))
            .map(|(name, _)| name.as_str())
            .collect()
    };
    let mut leaks = Vec::new();
    let mut printed = String::from(
        "\n| surface | attempts | refused + audited | failed without quoting the file | secrets in its answers |\n|---|---|---|---|---|\n",
    );
    for (si, (n, refused, safe)) in &table {
        let found = secrets_in(&answers[si]);
        printed.push_str(&format!(
            "| {} | {n} | {refused} | {safe} | {} |\n",
            SURFACES[*si],
            found.len()
        ));
        leaks.extend(
            found
                .iter()
                .map(|f| format!("{f} in answers on {}", SURFACES[*si])),
        );
    }
    let dashboard = std::fs::read_to_string(t.ws.path().join("dashboard.html")).unwrap_or_default();
    for (place, text) in [("audit log", t.audit()), ("dashboard", dashboard)] {
        let found = secrets_in(&text);
        printed.push_str(&format!("\nsecrets in the {place}: {}", found.len()));
        leaks.extend(found.iter().map(|f| format!("{f} in the {place}")));
    }
    printed.push_str(&format!(" (of {} watched)\n", t.secrets.len()));
    println!("{printed}");
    // Kept with the test's output for the closing note.
    let _ = std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("attack-table.md"),
        &printed,
    );
    assert!(failures.is_empty(), "{printed}\n{}", failures.join("\n"));
    assert!(leaks.is_empty(), "{printed}\nleaked: {leaks:?}");
    assert_eq!(
        table.values().map(|r| r.0).sum::<usize>(),
        5 * t.attacks().len()
    );
}
