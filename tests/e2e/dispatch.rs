//! Dispatch: the queue conformance suite and the agent's faults, on both backends (embedded SQLite
//! and a real NATS JetStream server), plus the HTTP API and the phone page.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deskhand_agent::agent::{Agent, AgentConfig};
use deskhand_agent::job::{Job, JobState};
use deskhand_agent::queue::{Queue, QueueConfig};
use deskhand_agent::store::Store;
use futures::StreamExt;
use serde_json::{json, Map, Value};

use crate::util::{eventually, spawn_serve, temp, NatsServer, StaticSite};

/// A queue backend for one test: the embedded one, or NATS with its own server.
struct Backend {
    url: String,
    nats: Option<NatsServer>,
}

impl Backend {
    fn embedded() -> Backend {
        Backend {
            url: "embedded".into(),
            nats: None,
        }
    }
    fn nats() -> Backend {
        let s = NatsServer::start();
        Backend {
            url: s.url.clone(),
            nats: Some(s),
        }
    }
}

fn qcfg(lease_ms: u64) -> QueueConfig {
    QueueConfig {
        agent: "test".into(),
        lease: Duration::from_millis(lease_ms),
        max_deliveries: 3,
        ..QueueConfig::default()
    }
}

/// This desktop's own device key (what `deskhand dispatch` signs with).
fn local_key(ws: &Path) -> deskhand_agent::guard::devices::DeviceKey {
    let d = deskhand_agent::guard::devices::Devices::new(ws);
    deskhand_agent::guard::devices::DeviceKey::parse(&d.local_secret().unwrap()).unwrap()
}

macro_rules! both_queues {
    ($(async fn $name:ident($b:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() { let $b = Backend::embedded(); $body }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn nats() { let $b = Backend::nats(); $body }
            }
        )*
    };
}

fn noop() -> Job {
    Job::new("noop", Map::new(), "test-device")
}

async fn start_agent(
    b: &Backend,
    ws: &Path,
    lease_ms: u64,
) -> (Agent, tokio::task::JoinHandle<()>) {
    let mut cfg = AgentConfig::new(ws.to_path_buf());
    cfg.queue = b.url.clone();
    cfg.queue_config = qcfg(lease_ms);
    cfg.grace = Duration::from_secs(2);
    let agent = Agent::start(cfg).await.unwrap();
    let a = agent.clone();
    let h = tokio::spawn(async move { a.run().await.unwrap() });
    (agent, h)
}

async fn wait_for_end(store: &Store, id: &str, within: Duration) -> JobState {
    eventually(within, || async {
        store
            .get(id)
            .await
            .ok()
            .map(|r| r.state)
            .filter(|s| s.is_terminal())
    })
    .await
    .unwrap_or_else(|| panic!("job {id} did not end within {within:?}"))
}

both_queues! {
    async fn conformance_delivers_once_per_id_redelivers_after_lease_and_on_release(b) {
        let ws = temp();
        let store = Store::open(ws.path()).unwrap();
        // A lease long enough that a loaded CI machine does not expire it between two calls.
        let q = Queue::open(&b.url, &store, qcfg(3000)).await.unwrap();
        let (a, c) = (noop(), noop());
        q.publish(&a).await.unwrap();
        q.publish(&a).await.unwrap(); // duplicate id: delivered once
        q.publish(&c).await.unwrap();
        let d1 = q.next(Duration::from_secs(5)).await.unwrap().expect("first delivery");
        assert_eq!(Job::from_bytes(&d1.body).unwrap().id, a.id);
        assert_eq!(d1.deliveries, 1);
        let d2 = q.next(Duration::from_secs(5)).await.unwrap().expect("second delivery");
        assert_eq!(Job::from_bytes(&d2.body).unwrap().id, c.id);
        q.ack(d2).await.unwrap();
        // `a` is not acked: after the lease it comes back, counted.
        let again = q.next(Duration::from_secs(10)).await.unwrap().expect("redelivery after lease");
        assert_eq!(Job::from_bytes(&again.body).unwrap().id, a.id);
        assert!(again.deliveries >= 2, "deliveries {}", again.deliveries);
        drop(d1);
        // Released (handed back) deliveries return at once.
        q.release(again).await.unwrap();
        let back = q.next(Duration::from_secs(5)).await.unwrap().expect("after release");
        assert_eq!(Job::from_bytes(&back.body).unwrap().id, a.id);
        q.ack(back).await.unwrap();
        assert!(q.next(Duration::from_millis(1500)).await.unwrap().is_none(), "nothing left after acks");
    }

    async fn jobs_run_with_every_transition_published(b) {
        let ws = temp();
        let site = StaticSite::serve(&crate::util::fixture_dir()).await.unwrap();
        let (agent, h) = start_agent(&b, ws.path(), 5000).await;
        let mut params = Map::new();
        params.insert("url".into(), json!(site.url("products/page-1.html")));
        params.insert("schema".into(), json!({"items": "li.product", "fields": {"name": "a.title", "price": ".price"}, "next": "a.next@href"}));
        let id = agent.submit(Job::new("browser.extract", params, "test")).await.unwrap();
        // Follow it the way a sender does (store polling or NATS subject + KV).
        let events: Vec<_> = agent.queue().watch(agent.store(), &id).await.unwrap().collect().await;
        let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds.last(), Some(&"succeeded"), "{kinds:?}");
        assert!(kinds.contains(&"step"), "{kinds:?}");
        let rec = agent.store().get(&id).await.unwrap();
        assert_eq!(rec.outputs.len(), 1);
        let csv = std::fs::read_to_string(ws.path().join(&rec.outputs[0])).unwrap();
        assert_eq!(csv.lines().count(), 31, "30 products from 3 pages + header");
        if let Queue::Nats(q) = agent.queue() {
            // The phone can read the state from NATS KV without reaching the desktop.
            assert_eq!(q.state_of(&id).await.unwrap().unwrap().state, JobState::Succeeded);
        }
        agent.shutdown();
        h.await.unwrap();
    }

    async fn malformed_and_unknown_jobs_are_dead_lettered_and_serving_goes_on(b) {
        let ws = temp();
        let (agent, h) = start_agent(&b, ws.path(), 5000).await;
        agent.queue().publish_raw("garbage-1", b"{not json".to_vec()).await.unwrap();
        let mut unknown = noop();
        unknown.skill = Some("no.such.skill".into());
        local_key(ws.path()).sign(&mut unknown);
        agent.queue().publish(&unknown).await.unwrap(); // bypasses submit's check, as a remote sender could
        let ok = agent.submit(noop()).await.unwrap();
        assert_eq!(wait_for_end(agent.store(), &ok, Duration::from_secs(20)).await, JobState::Succeeded);
        let uid = unknown.id.to_string();
        assert_eq!(wait_for_end(agent.store(), &uid, Duration::from_secs(20)).await, JobState::Failed);
        let dead = agent.store().dead_letters().await.unwrap();
        assert!(dead.iter().any(|(id, r)| id.is_none() && r.contains("malformed")), "{dead:?}");
        assert!(dead.iter().any(|(id, r)| id.as_deref() == Some(uid.as_str()) && r.contains("unknown skill")), "{dead:?}");
        if let Queue::Nats(q) = agent.queue() {
            let on_stream = q.dead_letters().await.unwrap();
            assert!(on_stream.iter().any(|(_, r)| r.contains("malformed")), "{on_stream:?}");
        }
        agent.shutdown();
        h.await.unwrap();
    }

    async fn unsigned_forged_unknown_replayed_stale_and_revoked_jobs_are_refused(b) {
        use deskhand_agent::guard::devices::{DeviceKey, Devices};
        let ws = temp();
        let (agent, h) = start_agent(&b, ws.path(), 5000).await;
        let devices = Devices::new(ws.path());
        let (phone, secret) = devices.pair("phone").unwrap();
        let key = DeviceKey::parse(&secret).unwrap();
        let mut good = noop();
        key.sign(&mut good);
        agent.queue().publish(&good).await.unwrap();
        let gid = good.id.to_string();
        assert_eq!(wait_for_end(agent.store(), &gid, Duration::from_secs(20)).await, JobState::Succeeded);

        let mut attacks: Vec<(&str, Job)> = Vec::new();
        attacks.push(("not signed", noop()));
        let mut forged = noop();
        key.sign(&mut forged);
        forged.params.insert("url".into(), json!("https://evil.example/"));
        attacks.push(("does not match", forged));
        let stranger = DeviceKey::parse("dh1.dev-stranger.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let mut unknown = noop();
        stranger.sign(&mut unknown);
        attacks.push(("unknown device", unknown));
        let mut replay = noop();
        replay.nonce = good.nonce.clone();
        key.sign(&mut replay);
        attacks.push(("replayed", replay));
        let mut stale = noop();
        key.sign_at(&mut stale, chrono::Utc::now() - chrono::Duration::minutes(30));
        attacks.push(("more than 5 minutes", stale));
        for (_, j) in &attacks {
            agent.queue().publish(j).await.unwrap();
        }
        let expect = attacks.len();
        let dead = eventually(Duration::from_secs(20), || async {
            let d = agent.store().dead_letters().await.unwrap();
            (d.len() >= expect).then_some(d)
        })
        .await
        .expect("every attack dead-lettered");
        for (why, j) in &attacks {
            let id = j.id.to_string();
            assert!(
                dead.iter().any(|(d, r)| d.as_deref() == Some(id.as_str()) && r.contains(why)),
                "{why}: {dead:?}"
            );
            assert!(agent.store().get(&id).await.is_err(), "{why}: a refused job was recorded");
        }
        // A revoked device: its next job is refused too.
        devices.revoke(&phone.id).unwrap();
        let mut late = noop();
        key.sign(&mut late);
        agent.queue().publish(&late).await.unwrap();
        let lid = late.id.to_string();
        eventually(Duration::from_secs(20), || async {
            let d = agent.store().dead_letters().await.unwrap();
            d.iter().any(|(d, r)| d.as_deref() == Some(lid.as_str()) && r.contains("revoked")).then_some(())
        })
        .await
        .expect("the revoked device's job dead-lettered");
        let log = std::fs::read_to_string(ws.path().join(".deskhand/audit.jsonl")).unwrap();
        assert_eq!(log.matches("\"kind\":\"job.refused\"").count(), expect + 1, "{log}");
        agent.shutdown();
        h.await.unwrap();
    }

    async fn sigkill_mid_job_then_restart_completes_exactly_once(b) {
        let ws = temp();
        let site = StaticSite::serve(&crate::util::fixture_dir()).await.unwrap();
        write_config(ws.path(), &b.url, 2);
        let mut params = Map::new();
        params.insert("url".into(), json!(site.url("slow/2500")));
        params.insert("schema".into(), json!({"items": "body", "fields": {"text": "p#slow"}}));
        let store = Store::open(ws.path()).unwrap();
        let q = Queue::open(&b.url, &store, qcfg(2000)).await.unwrap();
        let id = deskhand_agent::agent::submit(&store, &q, &deskhand_agent::skills::Skills::builtin(), Job::new("browser.extract", params, "t")).await.unwrap();
        let mut serve = spawn_serve(ws.path());
        eventually(Duration::from_secs(20), || async { store.get(&id).await.ok().filter(|r| r.state == JobState::Running) })
            .await
            .expect("job started");
        serve.kill().unwrap(); // SIGKILL mid-job
        serve.wait().unwrap();
        let mut serve = spawn_serve(ws.path());
        let end = wait_for_end(&store, &id, Duration::from_secs(40)).await;
        let _ = serve.kill();
        let _ = serve.wait();
        let rec = store.get(&id).await.unwrap();
        assert_eq!(end, JobState::Succeeded, "{:?}", rec.error);
        assert_eq!(rec.attempts, 2, "ran again after the kill");
        let reports: Vec<_> = std::fs::read_dir(ws.path().join("reports")).unwrap().flatten().collect();
        assert_eq!(reports.len(), 1, "exactly one report: {reports:?}");
    }

    async fn chromium_crash_fails_that_job_and_the_next_one_runs(b) {
        let ws = temp();
        let site = StaticSite::serve(&crate::util::fixture_dir()).await.unwrap();
        write_config(ws.path(), &b.url, 10);
        let store = Store::open(ws.path()).unwrap();
        let q = Queue::open(&b.url, &store, qcfg(10_000)).await.unwrap();
        let skills = deskhand_agent::skills::Skills::builtin();
        let mut slow = Map::new();
        slow.insert("url".into(), json!(site.url("slow/4000")));
        slow.insert("schema".into(), json!({"items": "body", "fields": {"text": "p#slow"}}));
        let first = deskhand_agent::agent::submit(&store, &q, &skills, Job::new("browser.extract", slow, "t")).await.unwrap();
        let mut serve = spawn_serve(ws.path());
        let agent_pid = serve.id();
        let chromium = eventually(Duration::from_secs(20), || async { child_named(agent_pid, "chrom") }).await.expect("chromium started");
        eventually(Duration::from_secs(10), || async { store.get(&first).await.ok().filter(|r| r.state == JobState::Running) }).await.unwrap();
        deskhand_browser::process::kill_group(chromium);
        assert_eq!(wait_for_end(&store, &first, Duration::from_secs(30)).await, JobState::Failed);
        let err = store.get(&first).await.unwrap().error.unwrap_or_default();
        assert!(err.to_lowercase().contains("chromium") || err.contains("browser"), "{err}");
        let mut ok = Map::new();
        ok.insert("url".into(), json!(site.url("table.html")));
        ok.insert("schema".into(), json!({"items": "#people tbody tr", "fields": {"name": "td"}}));
        let second = deskhand_agent::agent::submit(&store, &q, &skills, Job::new("browser.extract", ok, "t")).await.unwrap();
        let end = wait_for_end(&store, &second, Duration::from_secs(30)).await;
        let _ = serve.kill();
        let _ = serve.wait();
        assert_eq!(end, JobState::Succeeded, "{:?}", store.get(&second).await.unwrap().error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarts_lose_no_jobs() {
    let mut b = Backend::nats();
    let ws = temp();
    let store = Store::open(ws.path()).unwrap();
    let skills = deskhand_agent::skills::Skills::builtin();
    let mut ids = Vec::new();
    {
        let q = Queue::open(&b.url, &store, qcfg(5000)).await.unwrap();
        for _ in 0..5 {
            ids.push(
                deskhand_agent::agent::submit(&store, &q, &skills, noop())
                    .await
                    .unwrap(),
            );
        }
    }
    // The broker restarts while the jobs are queued (JetStream keeps them on disk).
    b.nats.as_mut().unwrap().restart();
    let (agent, h) = start_agent(&b, ws.path(), 5000).await;
    for id in &ids {
        assert_eq!(
            wait_for_end(agent.store(), id, Duration::from_secs(30)).await,
            JobState::Succeeded
        );
    }
    // And again while the agent is connected: it reconnects and keeps serving.
    b.nats.as_mut().unwrap().restart();
    let late = eventually(Duration::from_secs(20), || async {
        agent.submit(noop()).await.ok()
    })
    .await
    .expect("submit after restart");
    assert_eq!(
        wait_for_end(agent.store(), &late, Duration::from_secs(30)).await,
        JobState::Succeeded
    );
    agent.shutdown();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_nats_server_is_a_clear_error() {
    let ws = temp();
    let store = Store::open(ws.path()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Queue::open(&format!("nats://127.0.0.1:{port}"), &store, qcfg(1000))
        .await
        .err()
        .expect("no server there");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach NATS") && msg.contains("nats-server -js"),
        "{msg}"
    );
}

/// The HTTP API: token, validation, jobs, SSE, cancel; then the phone page in a phone-sized Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_and_phone_page() {
    let ws = temp();
    let site = StaticSite::serve(&crate::util::fixture_dir())
        .await
        .unwrap();
    let (agent, h) = start_agent(&Backend::embedded(), ws.path(), 5000).await;
    let token = deskhand_agent::api::load_or_create_token(ws.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = deskhand_agent::api::router(agent.clone(), token.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let auth = format!("Bearer {token}");

    let r = http.get(format!("{base}/api/jobs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"skill":"noop","extra":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("extra"),
        "{v}"
    );
    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"skill":"nope"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_skill"
    );
    let big = format!(
        r#"{{"skill":"noop","params":{{"x":"{}"}}}}"#,
        "a".repeat(70_000)
    );
    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"text":"/noop"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Server-sent events end with the terminal event.
    let sse = http
        .get(format!("{base}/api/jobs/{id}/events?token={token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sse.contains("event: job") && sse.contains("\"succeeded\""),
        "{sse}"
    );
    let list: Value = http
        .get(format!("{base}/api/jobs"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id);

    // Cancel a running job: it stops its page promptly.
    let slow = json!({"skill": "browser.extract", "params": {"url": site.url("slow/8000"), "schema": {"items": "body", "fields": {"t": "p#slow"}}}});
    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", &auth)
        .json(&slow)
        .send()
        .await
        .unwrap();
    let slow_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    eventually(Duration::from_secs(20), || async {
        agent
            .store()
            .get(&slow_id)
            .await
            .ok()
            .filter(|r| r.state == JobState::Running)
    })
    .await
    .unwrap();
    let r = http
        .post(format!("{base}/api/jobs/{slow_id}/cancel"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        wait_for_end(agent.store(), &slow_id, Duration::from_secs(5)).await,
        JobState::Cancelled
    );
    let r = http
        .post(format!("{base}/api/jobs/{slow_id}/cancel"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "cancelling an ended job is a conflict");

    // A paired device signs each request with its own key instead of holding the token.
    use deskhand_agent::guard::devices::{DeviceKey, Devices};
    use deskhand_agent::guard::requests;
    let devices = Devices::new(ws.path());
    let (tablet, tablet_secret) = devices.pair("tablet").unwrap();
    let tablet_key = DeviceKey::parse(&tablet_secret).unwrap();
    let signed = |method: &str, target: &str, body: &[u8]| {
        format!(
            "{} {}",
            requests::SCHEME,
            requests::sign(&tablet_key, method, target, body, chrono::Utc::now())
        )
    };
    let cred = signed("GET", "/api/jobs?limit=5", b"");
    let r = http
        .get(format!("{base}/api/jobs?limit=5"))
        .header("authorization", &cred)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a signed read is served: {:?}",
        r.text().await
    );
    let r = http
        .get(format!("{base}/api/jobs?limit=5"))
        .header("authorization", &cred)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the same request again is a replay");
    let err = r.json::<Value>().await.unwrap()["error"].clone();
    assert_eq!(err["code"], "replayed_request", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("replayed"),
        "{err}"
    );
    let r = http
        .get(format!("{base}/api/jobs?limit=50"))
        .header("authorization", signed("GET", "/api/jobs?limit=5", b""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a credential for another request");
    // A bare {skill} request is the desktop's to vouch for; a device signs the job itself.
    let body = br#"{"skill":"noop"}"#;
    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", signed("POST", "/api/jobs", body))
        .header("content-type", "application/json")
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut job = Job::new("noop", Map::new(), "tablet");
    tablet_key.sign(&mut job);
    let body = job.to_bytes();
    let r = http
        .post(format!("{base}/api/jobs"))
        .header("authorization", signed("POST", "/api/jobs", &body))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    // Its events stream, with the credential in the query as EventSource sends it.
    let path = format!("/api/jobs/{}/events", job.id);
    let cred = requests::sign(&tablet_key, "GET", &path, b"", chrono::Utc::now());
    let sse = http
        .get(format!("{base}{path}?auth={cred}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sse.contains("succeeded"), "{sse}");
    devices.revoke(&tablet.id).unwrap();
    let r = http
        .get(format!("{base}/api/jobs"))
        .header("authorization", signed("GET", "/api/jobs", b""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let why = r.json::<Value>().await.unwrap()["error"]["message"].clone();
    assert!(why.as_str().unwrap().contains("revoked"), "{why}");
    let refused = deskhand_agent::audit::AuditLog::new(ws.path())
        .read(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "api.refused")
        .count();
    assert_eq!(
        refused, 3,
        "every misuse of a paired device's key is audited"
    );
    // A device nobody paired is answered, and only logged (anyone local could send those).
    let stranger =
        DeviceKey::parse(&Devices::new(temp().path()).pair("stranger").unwrap().1).unwrap();
    let cred = requests::sign(&stranger, "GET", "/api/jobs", b"", chrono::Utc::now());
    let r = http
        .get(format!("{base}/api/jobs"))
        .header("authorization", format!("{} {cred}", requests::SCHEME))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_device"
    );
    let refused_after = deskhand_agent::audit::AuditLog::new(ws.path())
        .read(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "api.refused")
        .count();
    assert_eq!(refused_after, 3);

    // The phone page, at a phone's viewport, runs a job end to end.
    let browser = deskhand_browser::Browser::launch(deskhand_browser::LaunchOptions::default())
        .await
        .unwrap();
    let page = browser.new_page().await.unwrap();
    page.set_viewport(390, 844, 2.0, true).await.unwrap();
    page.goto(&format!("{base}/#token={token}")).await.unwrap();
    page.fill(&deskhand_browser::FillRequest {
        fields: vec![("Skill".into(), json!("noop"))],
        ..Default::default()
    })
    .await
    .unwrap();
    page.click(&deskhand_browser::Locator::Css {
        value: "#run".into(),
    })
    .await
    .unwrap();
    let state = eventually(Duration::from_secs(20), || async {
        page.eval("document.getElementById('job-state').textContent")
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .filter(|s| s.contains("succeeded"))
    })
    .await;
    page.eval("window.scrollTo(0, 0)").await.unwrap();
    let png = page
        .screenshot(&deskhand_browser::Shot::Viewport)
        .await
        .unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("phone-page.png"), &png).unwrap();
    assert!(
        state.is_some(),
        "the phone page did not show the job succeed"
    );

    // Paired with a device key, the page signs its jobs itself (WebCrypto Ed25519); the agent
    // checks them against the device's public key.
    let (phone, secret) = deskhand_agent::guard::devices::Devices::new(ws.path())
        .pair("test phone")
        .unwrap();
    // A fresh context: no token left in this origin's storage by the first page.
    let page = browser.new_isolated_page().await.unwrap();
    page.set_viewport(390, 844, 2.0, true).await.unwrap();
    page.goto(&format!("{base}/#device={secret}"))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        page.eval("localStorage.getItem('deskhand.device')")
            .await
            .ok()
            .filter(|v| v.is_string())
    })
    .await
    .expect("the page took the device key");
    page.fill(&deskhand_browser::FillRequest {
        fields: vec![("Skill".into(), json!("noop"))],
        ..Default::default()
    })
    .await
    .unwrap();
    page.click(&deskhand_browser::Locator::Css {
        value: "#run".into(),
    })
    .await
    .unwrap();
    let signed = eventually(Duration::from_secs(20), || async {
        let rec = agent.store().list(1).await.ok()?.into_iter().next()?;
        let job = Job::from_bytes(&rec.envelope).ok()?;
        (job.origin == phone.id && rec.state == JobState::Succeeded).then_some(job)
    })
    .await;
    let err = page
        .eval("document.getElementById('error').textContent")
        .await
        .unwrap_or_default();
    assert!(
        signed.is_some_and(|j| j.signature.is_some()),
        "the page's signed job did not run (page says {err})"
    );
    // With no token at all, the page watched it to the end over signed requests.
    let seen = eventually(Duration::from_secs(20), || async {
        page.eval("document.getElementById('job-state').textContent")
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .filter(|s| s.contains("succeeded"))
    })
    .await;
    assert!(seen.is_some(), "the device-only page saw its job succeed");
    assert_eq!(
        page.eval("localStorage.getItem('deskhand.token')")
            .await
            .unwrap(),
        Value::Null
    );

    // A mail waiting for approval is shown as it will leave, and as text: markup in it stays
    // inert.
    let text = "Hi Grace,\n<img src=x onerror=\"document.title='pwned'\">\nZoë";
    deskhand_agent::guard::approvals::request(
        agent.store(),
        "01JTESTMAILJOB0000000000000",
        "gmail.send",
        "send",
        "Grace Hopper <grace@example.com>",
        json!({"from": "ada@example.com", "to": "Grace Hopper <grace@example.com>",
               "cc": null, "subject": "Quarterly numbers", "text": text}),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    let shown = eventually(Duration::from_secs(20), || async {
        page.eval("(() => { const m = document.querySelector('#approvals .mail-text'); return m && {text: m.textContent, list: document.getElementById('approvals').textContent, imgs: document.querySelectorAll('#approvals img').length, title: document.title}; })()")
            .await
            .ok()
            .filter(|v| v.is_object())
    })
    .await
    .expect("the phone page shows the mail waiting for approval");
    assert_eq!(shown["text"], text);
    assert!(
        shown["list"]
            .as_str()
            .unwrap()
            .contains("Subject: Quarterly numbers")
            && shown["list"]
                .as_str()
                .unwrap()
                .contains("To: Grace Hopper <grace@example.com>"),
        "{shown}"
    );
    assert_eq!(shown["imgs"], 0, "{shown}");
    assert_ne!(shown["title"], "pwned");
    browser.close().await.unwrap();
    server.abort();
    agent.shutdown();
    h.await.unwrap();
    let _ = Arc::new(());
}

fn write_config(ws: &Path, queue: &str, lease_secs: u64) {
    std::fs::create_dir_all(ws.join(".deskhand")).unwrap();
    std::fs::write(
        ws.join(".deskhand/config.toml"),
        format!("[agent]\nqueue = \"{queue}\"\nname = \"test\"\nlease_secs = {lease_secs}\napi_port = 0\ngrace_secs = 2\nmax_deliveries = 3\n"),
    )
    .unwrap();
}

/// A direct child of `parent` whose command name contains `name` (e.g. the agent's Chromium).
fn child_named(parent: u32, name: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (comm, rest) = (
            stat.split(')').next().unwrap_or_default(),
            stat.rsplit(')').next().unwrap_or_default(),
        );
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent && comm.contains(name) {
            return Some(pid);
        }
    }
    None
}

/// SIGTERM: the daemon stops taking work, gives running jobs the grace period, hands back what is
/// still running, exits cleanly — and the handed-back job completes after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_running_jobs_back_and_they_finish_after_restart() {
    let ws = temp();
    let site = StaticSite::serve(&crate::util::fixture_dir())
        .await
        .unwrap();
    write_config(ws.path(), "embedded", 30);
    let cfg_path = ws.path().join(".deskhand/config.toml");
    let cfg = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("grace_secs = 2", "grace_secs = 1");
    std::fs::write(&cfg_path, cfg).unwrap();
    let store = Store::open(ws.path()).unwrap();
    let q = Queue::open("embedded", &store, qcfg(30_000)).await.unwrap();
    let mut params = Map::new();
    params.insert("url".into(), json!(site.url("slow/4000")));
    params.insert(
        "schema".into(),
        json!({"items": "body", "fields": {"text": "p#slow"}}),
    );
    let id = deskhand_agent::agent::submit(
        &store,
        &q,
        &deskhand_agent::skills::Skills::builtin(),
        Job::new("browser.extract", params, "t"),
    )
    .await
    .unwrap();
    let mut serve = spawn_serve(ws.path());
    eventually(Duration::from_secs(20), || async {
        store
            .get(&id)
            .await
            .ok()
            .filter(|r| r.state == JobState::Running)
    })
    .await
    .expect("running");
    std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || serve.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful exit, got {status}");
    let rec = store.get(&id).await.unwrap();
    assert_eq!(
        rec.state,
        JobState::Queued,
        "handed back, not lost or failed"
    );
    let kinds: Vec<_> = store
        .events(&id, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(kinds.iter().any(|m| m.contains("handed back")), "{kinds:?}");
    let mut serve = spawn_serve(ws.path());
    let end = wait_for_end(&store, &id, Duration::from_secs(30)).await;
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(end, JobState::Succeeded);
}
