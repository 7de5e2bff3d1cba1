//! Jobs that depend on a connection: they run through the daemon, are held (not failed) while the
//! connection needs the person, and resume by themselves after `deskhand connect`.

use std::time::Duration;

use deskhand_fake_providers::FakeData;
use serde_json::Value;

use crate::connectors::Env;
use crate::util::eventually;

impl Env {
    /// `deskhand serve` on this workspace with its environment; killed on drop.
    fn serve(&self) -> tokio::process::Child {
        let mut c = self.cmd(&["serve"]);
        // Its output is kept beside the workspace, to explain a job that never moved.
        let log = std::fs::File::create(self.serve_log()).expect("serve log");
        c.env_remove("DESKHAND_QUEUE")
            .stdout(std::process::Stdio::null())
            .stderr(log);
        c.spawn().expect("deskhand serve")
    }

    fn serve_log(&self) -> std::path::PathBuf {
        self.ws.path().join("serve.log")
    }

    async fn job(&self, id: &str) -> Value {
        self.json(&["jobs", "show", id]).await
    }

    async fn dispatch(&self, args: &[&str]) -> String {
        let mut a = vec!["dispatch"];
        a.extend_from_slice(args);
        let (ok, out, err) = self.run(&a).await;
        assert!(ok, "dispatch: {err}");
        out.split_whitespace().next().expect("job id").to_string()
    }

    async fn until_state(&self, id: &str, state: &str) -> Value {
        match eventually(Duration::from_secs(30), || async {
            let j = self.job(id).await;
            (j["state"] == state).then_some(j)
        })
        .await
        {
            Some(j) => j,
            None => panic!(
                "job {id} never reached {state}: {}\ndaemon said:\n{}",
                self.job(id).await,
                std::fs::read_to_string(self.serve_log()).unwrap_or_default()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_jobs_resume_after_reconnect_on_the_embedded_queue() {
    held_job_resumes_after_reconnect("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_jobs_resume_after_reconnect_on_nats() {
    let nats = crate::util::NatsServer::start();
    held_job_resumes_after_reconnect(&nats.url).await;
}

async fn held_job_resumes_after_reconnect(queue: &str) {
    let env = Env::with_config(
        FakeData::generated(12, 6, 0),
        &format!("[secrets]\nstore = \"file\"\n[agent]\napi_port = 0\nqueue = \"{queue}\"\n"),
    )
    .await;
    env.connect_google().await;
    let mut daemon = env.serve();

    let ok = env
        .dispatch(&["calendar.agenda", "--param", "days=3650"])
        .await;
    let done = env.until_state(&ok, "succeeded").await;
    let report = env.ws.path().join(done["outputs"][0].as_str().unwrap());
    let body: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(body["connection"], "google:default");
    assert!(body["count"].as_u64().unwrap() > 0, "{body}");

    env.h().revoke_refresh_tokens();
    env.h().expire_access_tokens();
    let held = env
        .dispatch(&[
            "gmail.search",
            "--param",
            "query=newer_than:3650d",
            "--param",
            "limit=5",
        ])
        .await;
    let j = env.until_state(&held, "held").await;
    let why = j["error"].as_str().unwrap_or_default();
    assert!(why.contains("deskhand connect google"), "clear reason: {j}");
    let (_, listing, _) = env.run(&["jobs", "list"]).await;
    assert!(listing.contains("held"), "{listing}");
    // The phone sees why, through the API.
    let conns = crate::util::api_get(env.ws.path(), "/api/connections").await;
    assert_eq!(conns[0]["state"], "stale", "{conns}");

    // A second job on the same connection is held at once, without asking Google.
    env.h().reset_requests();
    let second = env
        .dispatch(&["gmail.search", "--param", "query=is:unread"])
        .await;
    env.until_state(&second, "held").await;
    assert_eq!(env.h().request_count("/token"), 0, "no hammering");

    // Cancelling a held job works; reconnecting resumes the other.
    let (ok_cancel, _, err) = env.run(&["jobs", "cancel", &second]).await;
    assert!(ok_cancel, "{err}");
    env.until_state(&second, "cancelled").await;
    env.connect_google().await;
    let done = env.until_state(&held, "succeeded").await;
    let report = env.ws.path().join(done["outputs"][0].as_str().unwrap());
    let body: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(body["count"], 5, "{body}");
    let events: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        events.contains(&"held") && events.iter().filter(|k| **k == "running").count() == 2,
        "{events:?}"
    );
    assert_eq!(
        env.job(&second).await["state"],
        "cancelled",
        "a cancelled job stays cancelled"
    );

    let _ = daemon.kill().await;
    let _ = daemon.wait().await;
}
