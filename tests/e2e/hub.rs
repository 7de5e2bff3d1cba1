//! Dispatch from anywhere (docs/hub.md): the shipped hub config (TLS, a WebSocket listener with
//! TLS and allowed origins, one account, per-user permissions) on a real `nats-server`; the
//! desktop connects out with its nkey; the phone page, served by a static host, runs in a
//! phone-sized Chromium over `wss://`: it sends a signed job, approves its overwrite, downloads
//! the file from the hub's object store and gets the bytes; a job sent while the desktop is down
//! waits in the hub and runs once when it is back; the hub refuses wrong keys and a phone's
//! reach into another agent's subjects.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use deskhand_agent::guard::devices::DeviceKey;
use deskhand_agent::job::{Job, JobState};
use deskhand_agent::store::Store;
use serde_json::json;

use crate::util::{certificates, deskhand, eventually, free_port, temp, Daemon, NatsServer};

const SKILL: &str = r#"params:
  text:
    type: text
    required: true
    description: What to write.
permissions:
  workspace: ["notes/**"]
steps:
  - id: write
    uses: file.write
    with:
      path: notes/from-phone.txt
      text: "{{ params.text }}"
"#;

/// Where the desktop's daemon writes what it says (shown when the page waits in vain).
static DESKTOP_LOG: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

/// Run the CLI on `ws`: its stdout, or a panic with what it said.
fn cli(ws: &Path, args: &[&str]) -> String {
    let out = deskhand()
        .args(args)
        .env("DESKHAND_WORKSPACE", ws)
        .env_remove("DESKHAND_QUEUE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "deskhand {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The base64 SHA-256 of a certificate's public key: what Chromium is told to trust.
fn spki_hash(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            cert.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn text_of(page: &deskhand_browser::Page, expr: &str) -> String {
    page.eval(expr)
        .await
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

async fn until_text(page: &deskhand_browser::Page, expr: &str, want: &str, secs: u64) -> String {
    let got = eventually(Duration::from_secs(secs), || async {
        let t = text_of(page, expr).await;
        t.contains(want).then_some(t)
    })
    .await;
    match got {
        Some(t) => t,
        None => panic!(
            "{expr} never said {want:?}; it says {:?}; page error: {:?}; connection: {:?}; desktop said: {}",
            text_of(page, expr).await,
            text_of(page, "document.getElementById('error').textContent").await,
            text_of(page, "document.getElementById('conn').title").await,
            DESKTOP_LOG
                .lock()
                .unwrap()
                .clone()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        ),
    }
}

/// A file of `docs/hub/`, as shipped.
fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/hub")
            .join(name),
    )
    .unwrap()
}

/// The shipped hub config with this test's certificates, ports, page origin and users (from
/// accounts.conf with `users` filled in). The store is the test's (`-sd`).
fn hub_conf(certs: &Path, ws_port: u16, leaf_port: u16, origin: &str, users: &[String]) -> String {
    let listed: String = users.iter().map(|u| format!("      {u}\n")).collect();
    let accounts =
        shipped("accounts.conf").replace("    users: [\n", &format!("    users: [\n{listed}"));
    shipped("hub.conf")
        .replace(
            "\"./hub-cert.pem\"",
            &format!("{:?}", certs.join("server.pem")),
        )
        .replace(
            "\"./hub-key.pem\"",
            &format!("{:?}", certs.join("server-key.pem")),
        )
        .replace("store_dir: \"./hub-data\"", "")
        .replace("port: 8443", &format!("port: {ws_port}"))
        .replace("port: 7422", &format!("port: {leaf_port}"))
        .replace("https://phone.example.com", origin)
        .replace("include \"./accounts.conf\"", &accounts)
}

/// Run the CLI's `pair --hub` on `ws`: the device key and the phone's users entry.
fn pair_phone(ws: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["pair", "Ada's phone"];
    all.extend_from_slice(args);
    let out = cli(ws, &all);
    let link = out
        .lines()
        .map(str::trim)
        .find(|l| l.contains("#hub="))
        .expect("pair prints the link")
        .to_string();
    let entry = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("{ nkey: U") && l.contains("permissions"))
        .expect("pair prints the hub's users entry")
        .to_string();
    (link, entry)
}

/// Run `hub key --out FILE` on `ws`: the desktop's users entry.
fn desktop_key(ws: &Path, file: &Path) -> String {
    let out = cli(ws, &["hub", "key", "--out", file.to_str().unwrap()]);
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("{ nkey: U"))
        .expect("hub key prints the users entry")
        .to_string()
}

/// The device key in a pairing link's fragment.
fn device_of(link: &str) -> DeviceKey {
    let secret = url::form_urlencoded::parse(link.split_once('#').unwrap().1.as_bytes())
        .find(|(k, _)| k == "device")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    DeviceKey::parse(&secret).unwrap()
}

/// Click the first element matching `css` once there is one (at most 30 s): its `data-key`.
async fn click_when_there(page: &deskhand_browser::Page, css: &str, key: &str) -> Option<String> {
    let js = format!(
        "(() => {{ const b = document.querySelector({}); if (!b) return null; b.click(); return b.dataset[{}]; }})()",
        serde_json::to_string(css).unwrap(),
        serde_json::to_string(key).unwrap()
    );
    eventually(Duration::from_secs(30), || async {
        page.eval(&js)
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from))
    })
    .await
}

/// A NATS client as the phone's hub identity (the nkey derived from its device key, replies on
/// its own inbox prefix, as the page has them).
async fn as_phone(
    url: &str,
    ca: &Path,
    device: &DeviceKey,
    seed: String,
    violations: tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::with_nkey(seed)
        .custom_inbox_prefix(deskhand_agent::hub::users::inbox_prefix(device.id()))
        .add_root_certificates(ca.to_path_buf())
        .require_tls(true)
        .event_callback(move |e| {
            let v = violations.clone();
            async move {
                if let async_nats::Event::ServerError(e) = e {
                    let _ = v.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_reaches_the_desktop_through_the_hub_and_jobs_wait_while_it_sleeps() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("no openssl: skipped");
        return;
    }
    let certs = temp();
    certificates(certs.path());
    let cert = |f: &str| certs.path().join(f);
    let ws = temp();
    let w = ws.path();

    // The desktop's hub key and the phone's pairing, as a person makes them.
    let key_file = w.join("hub.nk");
    let desktop_entry = desktop_key(w, &key_file);
    let ws_port = free_port();
    let hub_ws = format!("wss://127.0.0.1:{ws_port}");
    let page_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/phone");
    let site = deskhand_agent::site::StaticSite::serve(&page_dir)
        .await
        .unwrap();
    let page_url = site.url("");
    let (link, phone_entry) = pair_phone(
        w,
        &["--hub", &hub_ws, "--agent", "desk", "--page", &page_url],
    );
    let phone_key = device_of(&link);
    // A second desktop of the same person on the same hub, paired with the same phone.
    let ws2 = temp();
    let w2 = ws2.path();
    let key_file2 = w2.join("hub.nk");
    let desktop_entry2 = desktop_key(w2, &key_file2);
    let (link2, phone_entry2) = pair_phone(
        w2,
        &["--hub", &hub_ws, "--agent", "desk2", "--page", &page_url],
    );

    // The hub: the shipped config, its ports and files moved to this test's.
    let origin = page_url.trim_end_matches('/').to_string();
    let conf = hub_conf(
        certs.path(),
        ws_port,
        free_port(),
        &origin,
        &[desktop_entry, phone_entry, desktop_entry2, phone_entry2],
    );
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("hub.conf"), &conf).unwrap();
    let hub = NatsServer::start_with(&conf);
    let hub_tls = hub.url.replace("nats://", "tls://");

    // The desktops: their queue is the hub, reached with their keys and the hub's CA.
    for (dir, name, key) in [(w, "desk", &key_file), (w2, "desk2", &key_file2)] {
        std::fs::create_dir_all(dir.join(".deskhand")).unwrap();
        std::fs::write(
            dir.join(".deskhand/config.toml"),
            format!(
                "[agent]\nqueue = \"{hub_tls}\"\nname = \"{name}\"\n\n[nats]\nnkey_file = {:?}\nca_file = {:?}\n",
                key,
                cert("ca.pem")
            ),
        )
        .unwrap();
    }
    let skill = w.join("skills/hub-note");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: hub-note\ndescription: Write a note from the phone.\n---\n# hub-note\n",
    )
    .unwrap();
    std::fs::write(skill.join("skill.yaml"), SKILL).unwrap();
    cli(w, &["skills", "trust", "hub-note", "--yes"]);
    std::fs::create_dir_all(w.join("notes")).unwrap();
    std::fs::write(w.join("notes/from-phone.txt"), "old words\n").unwrap();
    *DESKTOP_LOG.lock().unwrap() = Some(w.with_extension("serve.log"));
    let mut desktop = Some(Daemon::start(w));

    // The phone page, phone-sized, trusting the hub's certificate only.
    let browser = deskhand_browser::Browser::launch(deskhand_browser::LaunchOptions {
        extra_args: vec![format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_hash(&cert("server.pem"))
        )],
        ..Default::default()
    })
    .await
    .unwrap();
    let page = browser.new_page().await.unwrap();
    page.set_viewport(390, 844, 2.0, true).await.unwrap();
    page.goto(&link).await.unwrap();
    until_text(
        &page,
        "document.getElementById('conn-text').textContent",
        "seen",
        30,
    )
    .await;
    assert_eq!(
        text_of(&page, "location.hash").await,
        "",
        "the key leaves the address bar"
    );

    // A signed job through the hub; its overwrite is approved on the phone.
    until_text(
        &page,
        "document.getElementById('skill').textContent",
        "hub-note",
        20,
    )
    .await;
    page.fill(&deskhand_browser::FillRequest {
        fields: vec![("Skill".into(), json!("hub-note"))],
        ..Default::default()
    })
    .await
    .unwrap();
    let words = "Written on the phone, through the hub — ünïcode ✓\n";
    page.eval(&format!(
        "(() => {{ const t = document.querySelector('#params textarea'); t.value = {}; return true; }})()",
        serde_json::to_string(words).unwrap()
    ))
    .await
    .unwrap();
    page.click(&deskhand_browser::Locator::Css {
        value: "#run".into(),
    })
    .await
    .unwrap();
    let approve = click_when_there(
        &page,
        "#approvals button.primary[data-approval]",
        "approval",
    )
    .await;
    assert!(
        approve.is_some(),
        "the overwrite never waited on the phone: {}",
        text_of(&page, "document.getElementById('job').textContent").await
    );
    until_text(
        &page,
        "document.getElementById('job-state').textContent",
        "succeeded",
        30,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(w.join("notes/from-phone.txt")).unwrap(),
        words
    );
    // The file, from the hub's object store, byte for byte.
    let clicked = click_when_there(&page, "#job-outputs button[data-object]", "object")
        .await
        .expect("the finished job lists its file with a Download button");
    assert!(clicked.ends_with("/notes/from-phone.txt"), "{clicked}");
    let got = eventually(Duration::from_secs(20), || async {
        page.eval("(async () => { const a = document.querySelector('#job-outputs a.file-link'); if (!a) return null; const b = new Uint8Array(await (await fetch(a.href)).arrayBuffer()); return Array.from(b); })()")
            .await
            .ok()
            .filter(|v| v.is_array())
    })
    .await
    .expect("the download finished");
    let bytes: Vec<u8> = serde_json::from_value(got).unwrap();
    assert_eq!(bytes, words.as_bytes());
    let png = page
        .screenshot(&deskhand_browser::Shot::Viewport)
        .await
        .unwrap();
    std::fs::write(artifacts.join("phone-hub.png"), &png).unwrap();

    // The desktop goes to sleep; a job sent now waits at the hub, and the page says so.
    drop(desktop.take());
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
    until_text(
        &page,
        "document.getElementById('job-log').textContent",
        "Waiting for the desktop",
        30,
    )
    .await;
    let waiting = text_of(&page, "document.getElementById('job-id').textContent").await;
    assert_eq!(waiting.len(), 26, "a job id: {waiting:?}");
    // Wakes up: it runs, once, and the page follows it to the end.
    desktop = Some(Daemon::start(w));
    until_text(
        &page,
        "document.getElementById('job-state').textContent",
        "succeeded",
        40,
    )
    .await;
    drop(desktop.take());
    let store = Store::open(w).unwrap();
    let rec = store.get(&waiting).await.unwrap();
    assert_eq!(rec.state, JobState::Succeeded);
    assert_eq!(rec.attempts, 1, "ran exactly once");
    let job = Job::from_bytes(&rec.envelope).unwrap();
    assert_eq!(job.origin, phone_key.id(), "signed by the phone");

    // The second desktop: its link adds it to the page's list; the person picks either.
    let _desktop2 = Daemon::start(w2);
    page.goto(&link2).await.unwrap();
    until_text(
        &page,
        "document.getElementById('conn-text').textContent",
        "desk2 · seen",
        30,
    )
    .await;
    let agents = page
        .eval("Array.from(document.querySelectorAll('#agent-pick option'), o => o.textContent)")
        .await
        .unwrap();
    assert_eq!(agents.as_array().map(Vec::len), Some(2), "{agents}");
    assert!(
        agents.to_string().contains("desk @") && agents.to_string().contains("desk2 @"),
        "{agents}"
    );
    let desk_again = Daemon::start(w);
    // Picking the first (up again) shows its jobs (the one that waited for it is there), not the second's.
    page.eval("(() => { const s = document.getElementById('agent-pick'); s.value = '0'; s.dispatchEvent(new Event('change')); return true; })()")
        .await
        .unwrap();
    until_text(
        &page,
        "document.getElementById('recent').textContent",
        "noop",
        30,
    )
    .await;
    until_text(
        &page,
        "document.getElementById('conn-text').textContent",
        "desk · seen",
        30,
    )
    .await;

    // A page from an origin the hub does not allow cannot connect (the desktop's own API serves
    // the same page on another port, so another origin).
    page.goto(&format!(
        "{}/{}",
        desk_again.api,
        &link[link.find('#').unwrap()..]
    ))
    .await
    .unwrap();
    until_text(
        &page,
        "document.getElementById('error').textContent",
        "Cannot reach the hub",
        30,
    )
    .await;
    drop(desk_again);

    // Installable and offline: the shell comes from the service worker's cache when the page's
    // host is gone. (Through ChromeDriver: under the CDP driver a service worker never finishes
    // installing — chromiumoxide detaches it while it is paused at start; see the issue note.)
    let wd = deskhand_browser::Browser::launch(deskhand_browser::LaunchOptions {
        backend: deskhand_browser::Backend::WebDriver,
        extra_args: vec![format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_hash(&cert("server.pem"))
        )],
        ..Default::default()
    })
    .await
    .unwrap();
    let page = wd.new_page().await.unwrap();
    page.goto(&link).await.unwrap();
    until_text(
        &page,
        "document.getElementById('agent-pick').textContent",
        "desk",
        30,
    )
    .await;
    let cached = eventually(Duration::from_secs(20), || async {
        page.eval("caches.open('deskhand-shell-v1').then(c => c.keys()).then(k => k.map(r => new URL(r.url).pathname))")
            .await
            .ok()
            .filter(|v| v.as_array().is_some_and(|a| a.len() >= 4))
    })
    .await
    .expect("the service worker cached the page's shell");
    assert!(cached.to_string().contains("nats.js"), "{cached}");
    let manifest = page
        .eval("fetch('manifest.webmanifest').then(r => r.json())")
        .await
        .unwrap();
    assert_eq!(manifest["display"], "standalone");
    drop(site);
    page.goto(&page_url).await.unwrap();
    until_text(
        &page,
        "document.getElementById('agent-pick').textContent",
        "desk",
        20,
    )
    .await;
    page.close().await.unwrap();
    wd.close().await.unwrap();

    // The hub keeps each phone to its own agent, and refuses keys it does not know.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let seed = phone_key.hub_nkey().seed().unwrap();
    let phone = as_phone(&hub_tls, &cert("ca.pem"), &phone_key, seed, tx)
        .await
        .unwrap();
    phone
        .publish("deskhand.other.jobs", "{}".into())
        .await
        .unwrap();
    let _sub = phone.subscribe("deskhand.other.events.>").await.unwrap();
    phone.flush().await.unwrap();
    let mut said = Vec::new();
    while said.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(e)) => said.push(e.to_lowercase()),
            _ => break,
        }
    }
    assert!(
        said.iter()
            .any(|e| e.contains("permissions violation for publish to \"deskhand.other.jobs\"")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|e| e
                .contains("permissions violation for subscription to \"deskhand.other.events.>\"")),
        "{said:?}"
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let refused = as_phone(&hub_tls, &cert("ca.pem"), &phone_key, stranger, tx).await;
    let Err(err) = refused else {
        panic!("the hub took a key it does not know")
    };
    assert!(
        err.to_string().to_lowercase().contains("authorization"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_desktop_gets_the_jobs_the_phone_sent_while_it_was_off_and_works_without_the_hub() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("no openssl: skipped");
        return;
    }
    let certs = temp();
    certificates(certs.path());
    let ca = certs.path().join("ca.pem");
    let ws = temp();
    let w = ws.path();
    let key_file = w.join("hub.nk");
    let desktop_entry = desktop_key(w, &key_file);
    let (link, phone_entry) = pair_phone(
        w,
        &[
            "--hub",
            "wss://hub.invalid/",
            "--agent",
            "desk",
            "--domain",
            "desk",
        ],
    );
    assert!(link.ends_with("&domain=desk"), "{link}");
    assert!(phone_entry.contains("$JS.desk.API.STREAM.MSG.GET.KV_deskhand_desk_jobs"));
    let phone_key = device_of(&link);

    // The hub, and the desktop's own server as its leaf: both from the shipped files.
    let leaf_port = free_port();
    let mut hub = Some(NatsServer::start_with(&hub_conf(
        certs.path(),
        free_port(),
        leaf_port,
        "http://127.0.0.1:1",
        &[desktop_entry, phone_entry],
    )));
    let hub_tls = hub.as_ref().unwrap().url.replace("nats://", "tls://");
    let seed = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    let leaf_conf = shipped("leaf.conf")
        .replace(
            "tls://hub.example.com:7422",
            &format!("tls://127.0.0.1:{leaf_port}"),
        )
        .replace("$DESKHAND_HUB_SEED", &format!("{seed:?}"))
        .replace(
            "# tls { ca_file: \"./hub-ca.pem\" }",
            &format!("tls {{ ca_file: {ca:?} }}"),
        )
        .replace("store_dir: \"./desk-data\"", "")
        .replace("listen: 127.0.0.1:4222", "");
    assert!(!leaf_conf.contains("hub.example.com") && !leaf_conf.contains("$DESKHAND"));
    let mut leaf = NatsServer::start_with(&leaf_conf);
    // The leaf has reached the hub once the hub's JetStream answers through it.
    let local = async_nats::connect(&leaf.url).await.unwrap();
    let through = async_nats::jetstream::with_domain(local.clone(), "hub");
    eventually(Duration::from_secs(20), || async {
        through.query_account().await.ok()
    })
    .await
    .expect("the leaf connects to the hub");
    drop(local);

    std::fs::create_dir_all(w.join(".deskhand")).unwrap();
    std::fs::write(
        w.join(".deskhand/config.toml"),
        format!(
            "[agent]\nqueue = \"{}\"\nname = \"desk\"\n\n[nats]\nhub_domain = \"hub\"\n",
            leaf.url
        ),
    )
    .unwrap();
    let desktop = Daemon::start(w);
    // The phone's view through the hub: presence, read in the desktop's domain.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let phone = as_phone(
        &hub_tls,
        &ca,
        &phone_key,
        phone_key.hub_nkey().seed().unwrap(),
        tx,
    )
    .await
    .unwrap();
    let last = std::sync::Mutex::new(String::new());
    let presence = eventually(Duration::from_secs(20), || async {
        let m = phone
            .request(
                "$JS.desk.API.STREAM.MSG.GET.KV_deskhand_desk_jobs",
                r#"{"last_by_subj":"$KV.deskhand_desk_jobs.presence"}"#.into(),
            )
            .await;
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                *last.lock().unwrap() = e.to_string();
                return None;
            }
        };
        *last.lock().unwrap() = String::from_utf8_lossy(&m.payload).into_owned();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
        v["message"]["data"].as_str().map(String::from)
    })
    .await;
    assert!(
        presence.is_some(),
        "the phone reads the leaf's presence through the hub: {}",
        last.lock().unwrap()
    );

    // The desktop is off, its server too; the phone's job waits at the hub.
    drop(desktop);
    leaf.stop();
    let mut job = Job::new("noop", Default::default(), "phone");
    phone_key.sign(&mut job);
    let id = job.id.to_string();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.as_str());
    let ack = phone
        .request_with_headers("deskhand.desk.jobs", headers, job.to_bytes().into())
        .await
        .unwrap();
    let ack = String::from_utf8_lossy(&ack.payload).to_string();
    assert!(ack.contains("DESKHAND_DESK_INBOX"), "{ack}");

    // Back on: the job comes down from the hub and runs, once.
    leaf.resume();
    let desktop = Daemon::start(w);
    let store = Store::open(w).unwrap();
    let rec = eventually(Duration::from_secs(40), || async {
        store.get(&id).await.ok().filter(|r| r.state.is_terminal())
    })
    .await
    .expect("the job the phone sent while the desktop was off ran");
    assert_eq!(rec.state, JobState::Succeeded, "{:?}", rec.error);
    assert_eq!(rec.attempts, 1);
    assert_eq!(
        Job::from_bytes(&rec.envelope).unwrap().origin,
        phone_key.id()
    );

    // The hub goes away: the desktop's own JetStream still takes and runs its jobs.
    drop(phone);
    drop(hub.take());
    let out = deskhand()
        .args(["dispatch", "noop", "--wait"])
        .env("DESKHAND_WORKSPACE", w)
        .env_remove("DESKHAND_QUEUE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(desktop);
}
