//! Popups under the navigation guard (CDP only).
//!
//! A page's own request interception never sees a window it opens (`window.open`, a
//! `target=_blank` link or form): the popup is a new target, and its first request leaves before
//! anyone could attach to it. So a second, raw CDP connection asks the browser to attach to every
//! new page *paused* (`Target.setAutoAttach` with `waitForDebuggerOnStart`). A page opened from a
//! guarded page (same isolated context, or the guarded page as opener) gets the same document
//! check on its own session before it is let go; every other page is let go at once. A popup
//! whose first document is refused is closed, so no blank window lingers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, NavigationCheck, NavigationSource, Result};

/// Guarded pages by isolated context and by target, and the sessions of popups under a check.
#[derive(Default)]
struct Registry {
    by_context: HashMap<String, NavigationCheck>,
    by_target: HashMap<String, NavigationCheck>,
    /// Popup session id → (its target id, its check).
    sessions: HashMap<String, (String, NavigationCheck)>,
}

impl Registry {
    /// The check a new page inherits, if it was opened from a guarded one.
    fn inherited(&self, info: &Value) -> Option<NavigationCheck> {
        let field = |k: &str| info.get(k).and_then(Value::as_str);
        field("browserContextId")
            .and_then(|c| self.by_context.get(c))
            .or_else(|| field("openerId").and_then(|o| self.by_target.get(o)))
            .cloned()
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<std::result::Result<Value, String>>>>>;

/// The browser-wide popup watcher: one per Chromium, started by the first guarded page.
pub(crate) struct Popups {
    out: mpsc::UnboundedSender<Value>,
    registry: Arc<Mutex<Registry>>,
    pending: Pending,
    next_id: std::sync::atomic::AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Popups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps a page's popups guarded until the page is closed ([`Registration::release`]).
pub(crate) struct Registration {
    registry: Arc<Mutex<Registry>>,
    out: mpsc::UnboundedSender<Value>,
    context: Option<String>,
    target: String,
    released: bool,
}

impl Registration {
    /// The page is closed (its context disposed): nothing of it can open a window any more.
    pub(crate) fn release(mut self) {
        self.released = true;
    }

    /// Whether the watcher still holds new windows; when its connection is gone they open freely.
    pub(crate) fn alive(&self) -> bool {
        !self.out.is_closed()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.released {
            // Dropped without being closed (a step cut off by its timeout): the page may still
            // run scripts. End it in the browser, and keep its entries, so a window it opens
            // meanwhile is still held and checked.
            let (method, params) = match &self.context {
                Some(c) => (
                    "Target.disposeBrowserContext",
                    json!({"browserContextId": c}),
                ),
                None => ("Target.closeTarget", json!({"targetId": self.target})),
            };
            let _ = self.out.send(command("", method, params));
            return;
        }
        let mut r = lock(&self.registry);
        if let Some(c) = &self.context {
            r.by_context.remove(c);
        }
        r.by_target.remove(&self.target);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn gone(what: impl std::fmt::Display) -> Error {
    Error::BrowserGone(format!("popup guard connection: {what}"))
}

impl Popups {
    /// Connect to the browser's DevTools endpoint and start attaching to new pages paused.
    pub(crate) async fn start(ws_url: &str) -> Result<Popups> {
        let (ws, _) = async_tungstenite::tokio::connect_async(ws_url)
            .await
            .map_err(gone)?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Value>();
        let registry = Arc::new(Mutex::new(Registry::default()));
        let pending: Pending = Arc::default();
        let (reg, pend, replies) = (Arc::clone(&registry), Arc::clone(&pending), out.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = outgoing.recv() => {
                        let Some(msg) = msg else { break };
                        if sink.send(Message::text(msg.to_string())).await.is_err() {
                            break;
                        }
                    }
                    msg = stream.next() => {
                        let text = match msg {
                            Some(Ok(Message::Text(t))) => t,
                            Some(Ok(_)) => continue,
                            _ => break,
                        };
                        let Ok(msg) = serde_json::from_str::<Value>(&text) else { continue };
                        on_message(&reg, &pend, &replies, msg);
                    }
                }
            }
            // The connection is gone: whoever waits on an answer hears so. Chromium resumes the
            // targets this session held paused when it detaches.
            for (_, tx) in lock(&pend).drain() {
                let _ = tx.send(Err("the connection closed".into()));
            }
        });
        let popups = Popups {
            out,
            registry,
            pending,
            next_id: std::sync::atomic::AtomicU64::new(1),
            task,
        };
        popups
            .call(
                "Target.setAutoAttach",
                json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true,
                       "filter": [{"type": "page"}]}),
            )
            .await?;
        Ok(popups)
    }

    /// Whether the connection is up (a watcher whose connection dropped is replaced).
    pub(crate) fn alive(&self) -> bool {
        !self.out.is_closed()
    }

    /// Send a browser-level command and wait for its answer.
    async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        self.out
            .send(json!({"id": id, "method": method, "params": params}))
            .map_err(|_| gone("closed"))?;
        match tokio::time::timeout(std::time::Duration::from_secs(10), rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(message))) => Err(Error::Protocol {
                backend: "cdp",
                message: format!("{method}: {message}"),
            }),
            Ok(Err(_)) => Err(gone("closed")),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(gone(format!("no answer to {method} within 10 s")))
            }
        }
    }

    /// Guard every page opened from `target` (or anywhere in its isolated `context`) with `check`.
    pub(crate) fn register(
        &self,
        context: Option<String>,
        target: String,
        check: NavigationCheck,
    ) -> Registration {
        let mut r = lock(&self.registry);
        if let Some(c) = &context {
            r.by_context.insert(c.clone(), Arc::clone(&check));
        }
        r.by_target.insert(target.clone(), check);
        Registration {
            registry: Arc::clone(&self.registry),
            out: self.out.clone(),
            context,
            target,
            released: false,
        }
    }
}

/// Fire-and-forget commands carry ids from 10^9 up, so they never meet a `call`'s (Chromium wants
/// ids that fit an i32).
fn command(session: &str, method: &str, params: Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000_000);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut msg = json!({"id": id, "method": method, "params": params});
    if !session.is_empty() {
        msg["sessionId"] = session.into();
    }
    msg
}

fn on_message(
    registry: &Mutex<Registry>,
    pending: &Pending,
    out: &mpsc::UnboundedSender<Value>,
    msg: Value,
) {
    if let Some(id) = msg.get("id").and_then(Value::as_u64) {
        if let Some(tx) = lock(pending).remove(&id) {
            let answer = match msg.get("error") {
                Some(e) => Err(e["message"].as_str().unwrap_or("error").to_string()),
                None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = tx.send(answer);
        }
        return;
    }
    let session = msg.get("sessionId").and_then(Value::as_str).unwrap_or("");
    let params = &msg["params"];
    // Commands to one session run in order, so interception is on before the page resumes.
    let send = |m: Value| {
        let _ = out.send(m);
    };
    match msg.get("method").and_then(Value::as_str) {
        Some("Target.attachedToTarget") => {
            let Some(child) = params["sessionId"].as_str() else {
                return;
            };
            let info = &params["targetInfo"];
            let target = info["targetId"].as_str().unwrap_or_default().to_string();
            let check = {
                let mut r = lock(registry);
                // A guarded page itself (its attach seen late) is no popup.
                let check = if r.by_target.contains_key(&target) {
                    None
                } else {
                    r.inherited(info)
                };
                if let Some(check) = &check {
                    // A popup's own popups are guarded too.
                    r.by_target.insert(target.clone(), Arc::clone(check));
                    r.sessions
                        .insert(child.to_string(), (target.clone(), Arc::clone(check)));
                }
                check
            };
            let waiting = params["waitingForDebugger"].as_bool() == Some(true);
            if check.is_some() {
                tracing::debug!(%target, "popup of a guarded page: intercepting its documents");
                // Resume it only once interception is confirmed; if it cannot be, close it.
                let enable = command(
                    child,
                    "Fetch.enable",
                    json!({"patterns": [{"urlPattern": "*", "resourceType": "Document"}]}),
                );
                let (tx, rx) = oneshot::channel();
                if let Some(id) = enable["id"].as_u64() {
                    lock(pending).insert(id, tx);
                }
                send(enable);
                let (out, child) = (out.clone(), child.to_string());
                tokio::spawn(async move {
                    let next = match rx.await {
                        Ok(Ok(_)) if waiting => {
                            command(&child, "Runtime.runIfWaitingForDebugger", json!({}))
                        }
                        Ok(Ok(_)) => return,
                        other => {
                            tracing::warn!(?other, %target, "could not intercept a popup: closing it");
                            command("", "Target.closeTarget", json!({"targetId": target}))
                        }
                    };
                    let _ = out.send(next);
                });
                return;
            }
            if waiting {
                send(command(child, "Runtime.runIfWaitingForDebugger", json!({})));
            }
            {
                // Not ours to watch: let chromiumoxide's own session have it.
                send(command(
                    "",
                    "Target.detachFromTarget",
                    json!({"sessionId": child}),
                ));
            }
        }
        Some("Fetch.requestPaused") => {
            let Some((target, check)) = lock(registry).sessions.get(session).cloned() else {
                return;
            };
            let Some(id) = params["requestId"].as_str() else {
                return;
            };
            let url = params["request"]["url"].as_str().unwrap_or_default();
            if check(url, NavigationSource::Popup) {
                send(command(
                    session,
                    "Fetch.continueRequest",
                    json!({"requestId": id}),
                ));
            } else {
                send(command(
                    session,
                    "Fetch.failRequest",
                    json!({"requestId": id, "errorReason": "BlockedByClient"}),
                ));
                // The popup's own window was refused its document: close it.
                if params["frameId"].as_str() == Some(target.as_str()) {
                    send(command(
                        "",
                        "Target.closeTarget",
                        json!({"targetId": target}),
                    ));
                }
            }
        }
        Some("Target.detachedFromTarget") => {
            let mut r = lock(registry);
            if let Some((target, _)) = r
                .sessions
                .remove(params["sessionId"].as_str().unwrap_or(""))
            {
                r.by_target.remove(&target);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &'static str) -> NavigationCheck {
        Arc::new(move |url: &str, _| url.starts_with(allowed))
    }

    #[test]
    fn a_new_page_inherits_the_check_of_its_context_or_its_opener() {
        let mut r = Registry::default();
        r.by_context.insert("ctx".into(), check("http://a/"));
        r.by_target.insert("opener".into(), check("http://b/"));
        let by_ctx = r
            .inherited(&json!({"browserContextId": "ctx", "openerId": "opener"}))
            .unwrap();
        assert!(by_ctx("http://a/x", NavigationSource::Popup));
        let by_opener = r
            .inherited(&json!({"browserContextId": "other", "openerId": "opener"}))
            .unwrap();
        assert!(by_opener("http://b/x", NavigationSource::Popup));
        assert!(r
            .inherited(&json!({"browserContextId": "other", "openerId": "x"}))
            .is_none());
        assert!(r.inherited(&json!({})).is_none());
    }

    #[tokio::test]
    async fn a_refused_popup_is_failed_and_closed_and_an_allowed_one_continues() {
        let registry = Mutex::new(Registry::default());
        registry
            .lock()
            .unwrap()
            .by_context
            .insert("ctx".into(), check("http://ok/"));
        let pending: Pending = Arc::default();
        let (out, mut sent) = mpsc::unbounded_channel();
        on_message(
            &registry,
            &pending,
            &out,
            json!({"method": "Target.attachedToTarget", "params": {"sessionId": "S",
                "waitingForDebugger": true,
                "targetInfo": {"targetId": "T", "browserContextId": "ctx", "type": "page"}}}),
        );
        let methods = |sent: &mut mpsc::UnboundedReceiver<Value>| {
            std::iter::from_fn(|| sent.try_recv().ok())
                .map(|m| format!("{}@{}", m["method"], m["sessionId"]))
                .collect::<Vec<_>>()
        };
        // Held until Chromium confirms interception; then resumed.
        let enable = sent.try_recv().unwrap();
        assert_eq!(enable["method"], "Fetch.enable");
        assert!(sent.try_recv().is_err(), "not resumed before the answer");
        on_message(
            &registry,
            &pending,
            &out,
            json!({"id": enable["id"], "result": {}}),
        );
        tokio::task::yield_now().await;
        assert_eq!(
            methods(&mut sent),
            ["\"Runtime.runIfWaitingForDebugger\"@\"S\""]
        );
        let paused = |url: &str| {
            json!({"method": "Fetch.requestPaused", "sessionId": "S",
                "params": {"requestId": "R", "frameId": "T", "request": {"url": url}}})
        };
        on_message(&registry, &pending, &out, paused("http://ok/page"));
        assert_eq!(methods(&mut sent), ["\"Fetch.continueRequest\"@\"S\""]);
        on_message(&registry, &pending, &out, paused("http://evil/"));
        assert_eq!(
            methods(&mut sent),
            ["\"Fetch.failRequest\"@\"S\"", "\"Target.closeTarget\"@null"]
        );
        // A page of another context is let go and left alone.
        on_message(
            &registry,
            &pending,
            &out,
            json!({"method": "Target.attachedToTarget", "params": {"sessionId": "U",
                "waitingForDebugger": true,
                "targetInfo": {"targetId": "V", "browserContextId": "other", "type": "page"}}}),
        );
        assert_eq!(
            methods(&mut sent),
            [
                "\"Runtime.runIfWaitingForDebugger\"@\"U\"",
                "\"Target.detachFromTarget\"@null"
            ]
        );
        // Interception refused: the popup is closed, never resumed.
        on_message(
            &registry,
            &pending,
            &out,
            json!({"method": "Target.attachedToTarget", "params": {"sessionId": "W",
                "waitingForDebugger": true,
                "targetInfo": {"targetId": "X", "browserContextId": "ctx", "type": "page"}}}),
        );
        let enable = sent.try_recv().unwrap();
        on_message(
            &registry,
            &pending,
            &out,
            json!({"id": enable["id"], "error": {"message": "no"}}),
        );
        tokio::task::yield_now().await;
        assert_eq!(methods(&mut sent), ["\"Target.closeTarget\"@null"]);
    }
}
