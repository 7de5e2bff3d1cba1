//! The agent's end of the extension link: a Unix socket in `.deskhand/` (mode 0600, no TCP port)
//! that the native host connects to. Commands for tabs go out with an id and wait for their
//! answer; when the link drops (the browser stopped the service worker, or closed) every command
//! in flight fails at once with that reason. The popup's requests (approvals, jobs, "run a skill
//! on this tab") come in the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskhand_browser::{Error as BrowserError, LinkFuture, TabLink};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Notify};

use super::{extension_id, origin_id};
use crate::agent::Agent;

/// How long a command waits for the extension to connect (its service worker may be waking up).
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How long a command waits for its answer unless it names its own timeout.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

type Answer = Result<Value, BrowserError>;

struct Conn {
    generation: u64,
    tx: mpsc::UnboundedSender<String>,
    pending: HashMap<u64, (String, oneshot::Sender<Answer>)>,
    hello: Value,
}

/// The link to the extension: who is connected, and the commands waiting for answers.
pub struct ExtensionHub {
    socket: PathBuf,
    conn: Mutex<Option<Conn>>,
    changed: Notify,
    next_id: AtomicU64,
    expected_id: String,
    /// When and why the link last dropped, to explain a later "not connected".
    last_drop: Mutex<Option<(chrono::DateTime<chrono::Local>, String)>>,
}

impl ExtensionHub {
    /// A hub for a workspace (not listening yet).
    pub fn new(workspace: &Path) -> Arc<ExtensionHub> {
        Arc::new(ExtensionHub {
            socket: socket_path(workspace),
            conn: Mutex::new(None),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
            expected_id: extension_id(),
            last_drop: Mutex::new(None),
        })
    }

    /// The extension's hello (id, version) while it is connected.
    pub fn connected(&self) -> Option<Value> {
        self.lock().as_ref().map(|c| c.hello.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Conn>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listen on the workspace's socket and serve the native host and status queries until
    /// the agent stops.
    pub async fn serve(self: Arc<Self>, agent: Agent) -> std::io::Result<()> {
        let path = &self.socket;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A socket left by an agent that died: nobody answers on it, so it can go.
        if path.exists() && UnixStream::connect(path).await.is_err() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot listen on {}: {e}; is another agent running on this workspace?",
                    path.display()
                ),
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        tracing::info!(socket = %path.display(), "extension link listening");
        loop {
            let (stream, _) = listener.accept().await?;
            let hub = Arc::clone(&self);
            let agent = agent.clone();
            tokio::spawn(async move {
                if let Err(e) = hub.connection(stream, agent).await {
                    tracing::debug!(error = %e, "extension link connection ended");
                }
            });
        }
    }

    async fn connection(self: Arc<Self>, stream: UnixStream, agent: Agent) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let Some(first) = lines.next_line().await? else {
            return Ok(());
        };
        let first: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
        match first["role"].as_str() {
            Some("status") => {
                let v = json!({"connected": self.connected().is_some(), "extension": self.connected(),
                               "expected_id": self.expected_id});
                write.write_all(format!("{v}\n").as_bytes()).await?;
                return Ok(());
            }
            Some("tabs") => {
                let v = match self.command(json!({"op": "tabs"})).await {
                    Ok(tabs) => json!({"ok": true, "tabs": tabs}),
                    Err(e) => json!({"ok": false, "error": e.to_string()}),
                };
                write.write_all(format!("{v}\n").as_bytes()).await?;
                return Ok(());
            }
            Some("host") => {}
            _ => return Ok(()),
        }
        // The host checked the caller already; checking again here costs nothing.
        let origin = first["origin"].as_str().unwrap_or_default();
        if origin_id(origin) != Some(self.expected_id.as_str()) {
            agent.store().audit().record(
                "extension.refused",
                None,
                json!({"origin": origin, "expected": self.expected_id}),
            );
            return Ok(());
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if write.write_all(line.as_bytes()).await.is_err()
                    || write.write_all(b"\n").await.is_err()
                {
                    break;
                }
            }
        });
        let mut generation = None;
        while let Some(line) = lines.next_line().await? {
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                tracing::warn!("the native host sent a line that is not JSON");
                continue;
            };
            if msg["type"] == "hello" {
                generation = Some(self.attach(msg.clone(), tx.clone()));
                let welcome = json!({"type": "welcome", "agent": {"pid": std::process::id()}});
                let _ = tx.send(welcome.to_string());
                agent.store().audit().record(
                    "extension.connected",
                    None,
                    json!({"extension": msg["extension_id"], "version": msg["version"]}),
                );
            } else if msg["type"] == "request" {
                let tx = tx.clone();
                let agent = agent.clone();
                tokio::spawn(async move {
                    let rid = msg["rid"].clone();
                    let reply = match super::popup::answer(&agent, &msg).await {
                        Ok(result) => json!({"reply": rid, "ok": true, "result": result}),
                        Err(message) => {
                            json!({"reply": rid, "ok": false, "error": {"code": "refused", "message": message}})
                        }
                    };
                    let _ = tx.send(reply.to_string());
                });
            } else if let Some(id) = msg["id"].as_u64() {
                self.resolve(id, &msg);
            }
        }
        if let Some(g) = generation {
            self.detach(g);
        }
        writer.abort();
        Ok(())
    }

    fn attach(&self, hello: Value, tx: mpsc::UnboundedSender<String>) -> u64 {
        let generation = self.next_id.fetch_add(1, Ordering::Relaxed);
        let old = self.lock().replace(Conn {
            generation,
            tx,
            pending: HashMap::new(),
            hello,
        });
        if let Some(old) = old {
            fail_all(old, "the extension reconnected");
        }
        self.changed.notify_waiters();
        generation
    }

    fn detach(&self, generation: u64) {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(|c| c.generation == generation) {
            let old = guard.take().expect("checked above");
            drop(guard);
            let why =
                "the extension disconnected (the browser stopped its service worker, or closed)";
            *self.last_drop.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((chrono::Local::now(), why.to_string()));
            fail_all(old, why);
        }
    }

    fn resolve(&self, id: u64, msg: &Value) {
        let waiter = self
            .lock()
            .as_mut()
            .and_then(|c| c.pending.remove(&id))
            .map(|(_, w)| w);
        let Some(waiter) = waiter else { return };
        let answer = if msg["ok"] == true {
            Ok(msg["result"].clone())
        } else {
            let code = msg["error"]["code"].as_str().unwrap_or("error").to_string();
            let message = msg["error"]["message"]
                .as_str()
                .unwrap_or("the extension reported an error without a message")
                .to_string();
            Err(match code.as_str() {
                "navigation" | "error_page" => BrowserError::Navigation {
                    url: String::new(),
                    reason: message,
                },
                _ => BrowserError::Extension { code, message },
            })
        };
        let _ = waiter.send(answer);
    }

    /// Send one command to the extension and wait for its answer.
    pub async fn command(&self, mut cmd: Value) -> Answer {
        let op = cmd["op"].as_str().unwrap_or("?").to_string();
        let timeout = cmd["timeout_ms"]
            .as_u64()
            .map(|ms| Duration::from_millis(ms) + Duration::from_secs(5))
            .unwrap_or(COMMAND_TIMEOUT);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        cmd["id"] = id.into();
        let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
        let rx = loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a connect in between is not missed.
            changed.as_mut().enable();
            {
                let mut guard = self.lock();
                if let Some(c) = guard.as_mut() {
                    let (tx, rx) = oneshot::channel();
                    c.pending.insert(id, (op.clone(), tx));
                    if c.tx.send(cmd.to_string()).is_ok() {
                        break rx;
                    }
                    c.pending.remove(&id);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let since = match &*self.last_drop.lock().unwrap_or_else(|p| p.into_inner()) {
                    Some((at, why)) => format!(
                        " ({why} at {}, and has not come back)",
                        at.format("%H:%M:%S")
                    ),
                    None => String::new(),
                };
                return Err(BrowserError::Extension {
                    code: "not_connected".into(),
                    message: format!("the Deskhand extension is not connected{since}: is your browser open with the extension loaded (`deskhand extension install` shows the folder), and is this agent running?"),
                });
            }
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(BrowserError::Extension {
                code: "disconnected".into(),
                message: format!("the extension link closed while running {op}; run the job again"),
            }),
            Err(_) => {
                if let Some(c) = self.lock().as_mut() {
                    c.pending.remove(&id);
                }
                Err(BrowserError::Extension {
                    code: "timeout".into(),
                    message: format!(
                        "the extension did not answer {op} within {} s",
                        timeout.as_secs()
                    ),
                })
            }
        }
    }
}

fn fail_all(conn: Conn, why: &str) {
    for (_, (op, waiter)) in conn.pending {
        let _ = waiter.send(Err(BrowserError::Extension {
            code: "disconnected".into(),
            message: format!("{why} while running {op}; run the job again"),
        }));
    }
}

impl TabLink for ExtensionHub {
    fn send(&self, command: Value) -> LinkFuture<'_> {
        Box::pin(self.command(command))
    }
}

/// The socket the native host and `deskhand extension status` connect to.
pub fn socket_path(workspace: &Path) -> PathBuf {
    workspace.join(".deskhand/extension.sock")
}

/// Ask a running agent whether the extension is connected.
pub async fn status(workspace: &Path) -> std::io::Result<Value> {
    ask(workspace, "status").await
}

/// The tabs of the person's browser, through a running agent.
pub async fn tabs(workspace: &Path) -> std::io::Result<Value> {
    ask(workspace, "tabs").await
}

async fn ask(workspace: &Path, role: &str) -> std::io::Result<Value> {
    let path = socket_path(workspace);
    let stream = UnixStream::connect(&path).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "no agent is listening on {} ({e}); start it with `deskhand serve`",
                path.display()
            ),
        )
    })?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{}\n", json!({"role": role})).as_bytes())
        .await?;
    let mut lines = BufReader::new(read).lines();
    let line = lines.next_line().await?.unwrap_or_default();
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
