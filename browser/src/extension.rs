//! The third backend: a tab of the person's own browser, reached through the Deskhand extension.
//! The extension cannot evaluate arbitrary code (Manifest V3 forbids it), so this driver speaks a
//! small command set — call the in-page script, probe navigation state, click at a point, navigate,
//! read the URL, capture the visible tab — and the extension runs each in the tab's isolated world
//! with the very same in-page script the CDP backend evaluates.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::{Error, Result};

/// A boxed future, as returned by [`TabLink::send`].
pub type LinkFuture<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

/// How commands reach the extension (the agent's native-messaging hub implements this).
pub trait TabLink: Send + Sync + 'static {
    /// Send one command (`{"op": ..., "tab": ..., ...}`) and wait for its result.
    fn send(&self, command: Value) -> LinkFuture<'_>;
}

/// One tab of the person's browser.
pub(crate) struct ExtPage {
    link: Arc<dyn TabLink>,
    tab: i64,
}

/// What the in-page state probes ask about.
pub(crate) enum Probe<'a> {
    /// Did a navigation start or replace the document marked `marker`?
    Nav(&'a str),
    /// Did the click guarded by `marker` reach its element?
    Click(&'a str),
}

impl Probe<'_> {
    /// The same question as a JavaScript expression, for the backends that can evaluate one.
    pub(crate) fn expression(&self) -> String {
        match self {
            Probe::Nav(m) => format!(
                "({{same: window.__deskhandNav === {m:?}, started: !!window.__deskhandNavStarted, ready: document.readyState}})"
            ),
            Probe::Click(m) => format!(
                "({{same: window.__deskhandNav === {m:?}, miss: window.__deskhandHit === {m:?} ? null : (window.__deskhandMiss || null)}})"
            ),
        }
    }
}

impl ExtPage {
    pub(crate) fn new(link: Arc<dyn TabLink>, tab: i64) -> Self {
        ExtPage { link, tab }
    }

    async fn send(&self, op: &str, mut extra: Value) -> Result<Value> {
        extra["op"] = op.into();
        extra["tab"] = self.tab.into();
        self.link.send(extra).await
    }

    pub(crate) async fn goto(&self, url: &str, timeout: Duration) -> Result<()> {
        self.send(
            "navigate",
            json!({"url": url, "timeout_ms": timeout.as_millis() as u64}),
        )
        .await
        .map(|_| ())
    }

    pub(crate) async fn call(&self, method: &str, args: &str) -> Result<Value> {
        // The in-page call form's arguments are JSON values separated by commas.
        let args: Value = serde_json::from_str(&format!("[{args}]"))
            .map_err(|e| Error::Script(format!("arguments for {method} are not JSON: {e}")))?;
        self.send("call", json!({"method": method, "args": args}))
            .await
    }

    pub(crate) async fn probe(&self, probe: &Probe<'_>) -> Result<Value> {
        let (kind, marker) = match probe {
            Probe::Nav(m) => ("nav", m),
            Probe::Click(m) => ("click", m),
        };
        self.send("probe", json!({"kind": kind, "marker": marker}))
            .await
    }

    /// A synthetic click at a viewport point (the extension has no trusted input without the
    /// debugger permission, which would put a warning bar on every page).
    pub(crate) async fn click_at(&self, x: f64, y: f64) -> Result<()> {
        self.call("syntheticClick", &format!("{x}, {y}"))
            .await
            .map(|_| ())
    }

    pub(crate) async fn html(&self) -> Result<String> {
        let v = self.send("html", json!({})).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub(crate) async fn url(&self) -> Result<String> {
        let v = self.send("url", json!({})).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// PNG of the visible part of the tab (the extension brings the tab to the front first).
    pub(crate) async fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.send("screenshot", json!({})).await?;
        let data = v.as_str().unwrap_or_default();
        let b64 = data.split_once("base64,").map(|(_, b)| b).unwrap_or(data);
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Error::Output {
                format: "png",
                message: e.to_string(),
            })
    }
}
