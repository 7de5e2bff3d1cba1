//! The CDP backend: chromiumoxide over the DevTools WebSocket of a Chromium we started.

use std::time::Duration;

use base64::Engine;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchMouseEventParams, DispatchMouseEventType, MouseButton,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, CaptureScreenshotParams,
    Viewport,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use serde_json::Value;

use crate::script::{full_call, short_call, MISSING, SCRIPT};
use crate::{Error, Result};

fn cdp_err(e: CdpError) -> Error {
    match e {
        CdpError::ChannelSendError(_) | CdpError::NoResponse | CdpError::Ws(_) => {
            Error::BrowserGone(e.to_string())
        }
        CdpError::JavascriptException(d) => Error::Script(d.text.clone()),
        other => Error::Protocol {
            backend: "cdp",
            message: other.to_string(),
        },
    }
}

/// A CDP connection to one Chromium.
pub(crate) struct CdpBrowser {
    browser: chromiumoxide::Browser,
    handler: tokio::task::JoinHandle<()>,
    popups: PopupWatch,
}

/// The browser's popup guard, started by the first page that asks for navigation interception
/// (and again if its connection dropped).
#[derive(Clone)]
struct PopupWatch {
    ws_url: std::sync::Arc<str>,
    started: std::sync::Arc<tokio::sync::Mutex<Option<std::sync::Arc<crate::popups::Popups>>>>,
}

impl PopupWatch {
    async fn get(&self) -> Result<std::sync::Arc<crate::popups::Popups>> {
        let mut cur = self.started.lock().await;
        if let Some(p) = cur.as_ref().filter(|p| p.alive()) {
            return Ok(std::sync::Arc::clone(p));
        }
        let p = std::sync::Arc::new(crate::popups::Popups::start(&self.ws_url).await?);
        *cur = Some(std::sync::Arc::clone(&p));
        Ok(p)
    }
}

impl CdpBrowser {
    /// Stop every service worker whose script URL starts with `prefix`, as Chrome does to an idle
    /// extension worker. Returns how many were stopped.
    pub(crate) async fn stop_workers(&self, prefix: &str) -> Result<usize> {
        use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, GetTargetsParams};
        let targets = self
            .browser
            .execute(GetTargetsParams::default())
            .await
            .map_err(cdp_err)?;
        let mut stopped = 0;
        for t in &targets.result.target_infos {
            if t.r#type == "service_worker" && t.url.starts_with(prefix) {
                self.browser
                    .execute(CloseTargetParams::new(t.target_id.clone()))
                    .await
                    .map_err(cdp_err)?;
                stopped += 1;
            }
        }
        Ok(stopped)
    }

    pub(crate) async fn connect(ws_url: &str) -> Result<Self> {
        let config = HandlerConfig {
            request_timeout: Duration::from_secs(60),
            ..HandlerConfig::default()
        };
        let (browser, mut handler) = chromiumoxide::Browser::connect_with_config(ws_url, config)
            .await
            .map_err(cdp_err)?;
        // The handler drives the WebSocket; it ends when the connection closes.
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "cdp handler event error");
                }
            }
        });
        let popups = PopupWatch {
            ws_url: ws_url.into(),
            started: Default::default(),
        };
        Ok(CdpBrowser {
            browser,
            handler,
            popups,
        })
    }

    pub(crate) async fn new_page(&self, isolated: bool, url: &str) -> Result<CdpPage> {
        let mut params = CreateTargetParams::new(url);
        let mut context = None;
        if isolated {
            let id = self
                .browser
                .create_browser_context(CreateBrowserContextParams::default())
                .await
                .map_err(cdp_err)?;
            params.browser_context_id = Some(id.clone());
            context = Some(id);
        }
        let page = self.browser.new_page(params).await.map_err(cdp_err)?;
        // Install the script in every document this page loads, before the page's own scripts.
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(SCRIPT))
            .await
            .map_err(cdp_err)?;
        let mut loaded = page
            .event_listener::<chromiumoxide::cdp::browser_protocol::page::EventDomContentEventFired>()
            .await
            .map_err(cdp_err)?;
        let (tx, documents) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut n = 0;
            while loaded.next().await.is_some() {
                n += 1;
                if tx.send(n).is_err() {
                    break;
                }
            }
        });
        Ok(CdpPage {
            page,
            context,
            popups: self.popups.clone(),
            popup_guard: std::sync::Mutex::new(None),
            documents: tokio::sync::Mutex::new(documents),
            _documents_task: AbortOnDrop(task),
        })
    }

    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.browser.close()).await;
        self.handler.abort();
    }
}

impl Drop for CdpBrowser {
    fn drop(&mut self) {
        self.handler.abort();
    }
}

/// One tab over CDP.
pub(crate) struct CdpPage {
    page: chromiumoxide::Page,
    context: Option<chromiumoxide::cdp::browser_protocol::browser::BrowserContextId>,
    popups: PopupWatch,
    /// While set, windows this page opens are under its navigation check.
    popup_guard: std::sync::Mutex<Option<crate::popups::Registration>>,
    /// How many documents of this tab reached DOMContentLoaded, so a wait for the next one
    /// sleeps on the event instead of polling.
    documents: tokio::sync::Mutex<tokio::sync::watch::Receiver<u64>>,
    _documents_task: AbortOnDrop,
}

/// Ends a helper task with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl CdpPage {
    /// Pause every document request of this tab (top-level and frames: redirects, script
    /// navigation, form posts, meta refresh) and of every window it opens, and let through only
    /// those `check` accepts; the rest fail with `ERR_BLOCKED_BY_CLIENT` before anything leaves
    /// the machine.
    pub(crate) async fn intercept_navigation(&self, check: crate::NavigationCheck) -> Result<()> {
        use chromiumoxide::cdp::browser_protocol::fetch::{
            ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams,
            RequestPattern,
        };
        use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, ResourceType};
        let mut paused = self
            .page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(cdp_err)?;
        let pattern = RequestPattern {
            url_pattern: Some("*".into()),
            resource_type: Some(ResourceType::Document),
            request_stage: None,
        };
        self.page
            .execute(EnableParams {
                patterns: Some(vec![pattern]),
                handle_auth_requests: None,
            })
            .await
            .map_err(cdp_err)?;
        // A popup is a new target this interception does not see: the browser-wide watcher
        // holds each new window paused until it carries the same check.
        // A second call replaces the first registration (same page, same context).
        let old = self
            .popup_guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(old) = old {
            old.release();
        }
        let registration = self.popups.get().await?.register(
            self.context.as_ref().map(|c| c.inner().clone()),
            self.page.target_id().inner().clone(),
            std::sync::Arc::clone(&check),
        );
        *self.popup_guard.lock().unwrap_or_else(|p| p.into_inner()) = Some(registration);
        let page = self.page.clone();
        // Ends when the page closes (its event stream ends).
        tokio::spawn(async move {
            while let Some(ev) = paused.next().await {
                let id = ev.request_id.clone();
                let r = if check(&ev.request.url, crate::NavigationSource::Page) {
                    page.execute(ContinueRequestParams::new(id))
                        .await
                        .map(|_| ())
                } else {
                    page.execute(FailRequestParams::new(id, ErrorReason::BlockedByClient))
                        .await
                        .map(|_| ())
                };
                if let Err(e) = r {
                    tracing::debug!(error = %e, "navigation interception: page gone");
                }
            }
        });
        Ok(())
    }

    /// Navigate by script and wait for the new document's load, polling a marker on the old one.
    ///
    /// Not `Page.navigate`: chromiumoxide queues navigations per frame and holds each until its own
    /// deadline, so one page that never loads would block every later `goto` on that tab.
    pub(crate) async fn goto(&self, url: &str, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        let marker = crate::script::nonce();
        let start = format!(
            "(() => {{ Object.defineProperty(window, '__deskhandNav', {{ value: {marker:?}, configurable: true, writable: true }}); \
             const to = new URL({url:?}, location.href); \
             const hashOnly = to.hash !== '' && to.href.split('#')[0] === location.href.split('#')[0]; \
             location.href = to.href; return hashOnly; }})()"
        );
        // Listen before starting, so the new document's load cannot be missed. Waiting on the
        // event instead of polling saves ~20-30 ms a navigation here: probes during a navigation
        // compete with it for the renderer.
        let mut loads = self
            .page
            .event_listener::<chromiumoxide::cdp::browser_protocol::page::EventLoadEventFired>()
            .await
            .ok();
        if self.eval(start).await?.as_bool() == Some(true) {
            return Ok(());
        }
        let probe = format!("({{same: window.__deskhandNav === {marker:?}, ready: document.readyState, href: location.href}})");
        while started.elapsed() < timeout {
            match loads.as_mut() {
                Some(events) => {
                    // A load event (or, at most every 100 ms, a look anyway: a navigation that
                    // ends in a download or a 204 loads nothing).
                    let left = timeout.saturating_sub(started.elapsed());
                    if let Ok(None) =
                        tokio::time::timeout(left.min(Duration::from_millis(100)), events.next())
                            .await
                    {
                        loads = None;
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(3)).await,
            }
            let state = match tokio::time::timeout(Duration::from_secs(2), self.eval(probe.clone()))
                .await
            {
                Ok(Ok(v)) => v,
                Ok(Err(Error::BrowserGone(e))) => return Err(Error::BrowserGone(e)),
                // The old context is torn down mid-navigation: progress, keep polling.
                _ => continue,
            };
            if state["same"] == Value::Bool(true) || state["ready"] != "complete" {
                continue;
            }
            let href = state["href"].as_str().unwrap_or_default();
            if href.starts_with("chrome-error://") {
                let reason = self
                    .eval("(document.body && (document.body.innerText.match(/(net::)?ERR_[A-Z_]+/) || [document.body.innerText.slice(0, 200)])[0]) || 'error page'".into())
                    .await
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| "Chromium showed its error page".into());
                return Err(Error::Navigation {
                    url: url.into(),
                    reason,
                });
            }
            return Ok(());
        }
        let _ = self
            .page
            .execute(chromiumoxide::cdp::browser_protocol::page::StopLoadingParams::default())
            .await;
        Err(Error::Navigation {
            url: url.into(),
            reason: format!("the page did not load within {timeout:?}"),
        })
    }

    pub(crate) async fn eval(&self, expression: String) -> Result<Value> {
        let params = EvaluateParams {
            expression,
            return_by_value: Some(true),
            await_promise: Some(true),
            user_gesture: Some(true),
            ..EvaluateParams::new("")
        };
        let resp = self.page.execute(params).await.map_err(cdp_err)?;
        if let Some(ex) = resp.result.exception_details {
            let detail = ex
                .exception
                .as_ref()
                .and_then(|o| o.description.clone())
                .unwrap_or_else(|| ex.text.clone());
            return Err(Error::Script(detail));
        }
        Ok(resp.result.result.value.unwrap_or(Value::Null))
    }

    /// Forget the documents loaded so far, so the next wait is for one that an action about to
    /// happen starts (not the current document's own DOMContentLoaded, still unseen).
    pub(crate) async fn forget_documents(&self) {
        self.documents.lock().await.borrow_and_update();
    }

    /// Wait until a document of this tab reaches DOMContentLoaded (one may have already, since
    /// the last wait), or `at_most`.
    pub(crate) async fn next_document(&self, at_most: Duration) {
        let mut rx = self.documents.lock().await;
        let _ = tokio::time::timeout(at_most, rx.changed()).await;
    }

    /// Call the in-page API; installs the script first if this document lacks it (e.g. about:blank).
    pub(crate) async fn call(&self, method: &str, args: &str) -> Result<Value> {
        let v = self.eval(short_call(method, args)).await?;
        if v.as_str() == Some(MISSING) {
            return self.eval(full_call(method, args)).await;
        }
        Ok(v)
    }

    pub(crate) async fn click_at(&self, x: f64, y: f64) -> Result<()> {
        for kind in [
            DispatchMouseEventType::MouseMoved,
            DispatchMouseEventType::MousePressed,
            DispatchMouseEventType::MouseReleased,
        ] {
            let mut p = DispatchMouseEventParams::new(kind.clone(), x, y);
            if kind != DispatchMouseEventType::MouseMoved {
                p.button = Some(MouseButton::Left);
                p.click_count = Some(1);
                p.buttons = Some(1);
            }
            self.page.execute(p).await.map_err(cdp_err)?;
        }
        Ok(())
    }

    /// Press at `from`, move to `to` in steps (so the page sees a drag, not a jump), release.
    pub(crate) async fn drag(&self, from: (f64, f64), to: (f64, f64)) -> Result<()> {
        const STEPS: u32 = 12;
        let event = |kind: DispatchMouseEventType, (x, y): (f64, f64), held: bool| {
            let mut p = DispatchMouseEventParams::new(kind.clone(), x, y);
            p.button = Some(if held || kind == DispatchMouseEventType::MouseReleased {
                MouseButton::Left
            } else {
                MouseButton::None
            });
            p.buttons = Some(if held { 1 } else { 0 });
            if kind != DispatchMouseEventType::MouseMoved {
                p.click_count = Some(1);
            }
            p
        };
        self.page
            .execute(event(DispatchMouseEventType::MouseMoved, from, false))
            .await
            .map_err(cdp_err)?;
        self.page
            .execute(event(DispatchMouseEventType::MousePressed, from, true))
            .await
            .map_err(cdp_err)?;
        for i in 1..=STEPS {
            let t = f64::from(i) / f64::from(STEPS);
            let at = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t);
            self.page
                .execute(event(DispatchMouseEventType::MouseMoved, at, true))
                .await
                .map_err(cdp_err)?;
        }
        self.page
            .execute(event(DispatchMouseEventType::MouseReleased, to, false))
            .await
            .map_err(cdp_err)?;
        Ok(())
    }

    /// PNG of the viewport, the full page, or a clip in document CSS pixels.
    pub(crate) async fn screenshot(
        &self,
        clip: Option<(f64, f64, f64, f64)>,
        full_page: bool,
    ) -> Result<Vec<u8>> {
        let mut p = CaptureScreenshotParams {
            format: Some(CaptureScreenshotFormat::Png),
            ..Default::default()
        };
        if let Some((x, y, w, h)) = clip {
            p.clip = Some(Viewport {
                x,
                y,
                width: w,
                height: h,
                scale: 1.0,
            });
            p.capture_beyond_viewport = Some(true);
        } else if full_page {
            let size = self
                .eval("({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight})".into())
                .await?;
            let w = size["w"].as_f64().unwrap_or(1280.0);
            let h = size["h"].as_f64().unwrap_or(900.0);
            p.clip = Some(Viewport {
                x: 0.0,
                y: 0.0,
                width: w,
                height: h,
                scale: 1.0,
            });
            p.capture_beyond_viewport = Some(true);
        }
        let resp = self.page.execute(p).await.map_err(cdp_err)?;
        base64::engine::general_purpose::STANDARD
            .decode(AsRef::<str>::as_ref(&resp.result.data))
            .map_err(|e| Error::Output {
                format: "png",
                message: e.to_string(),
            })
    }

    /// The page printed to PDF on paper of this size (inches), without margins, with backgrounds.
    pub(crate) async fn pdf(&self, width_in: f64, height_in: f64) -> Result<Vec<u8>> {
        let p = chromiumoxide::cdp::browser_protocol::page::PrintToPdfParams {
            print_background: Some(true),
            paper_width: Some(width_in),
            paper_height: Some(height_in),
            margin_top: Some(0.0),
            margin_bottom: Some(0.0),
            margin_left: Some(0.0),
            margin_right: Some(0.0),
            ..Default::default()
        };
        let resp = self.page.execute(p).await.map_err(cdp_err)?;
        base64::engine::general_purpose::STANDARD
            .decode(AsRef::<str>::as_ref(&resp.result.data))
            .map_err(|e| Error::Output {
                format: "pdf",
                message: e.to_string(),
            })
    }

    /// Emulate a device viewport (a phone, say): CSS size, pixel ratio, mobile layout.
    pub(crate) async fn set_viewport(
        &self,
        width: u32,
        height: u32,
        scale: f64,
        mobile: bool,
    ) -> Result<()> {
        let p =
            chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams::new(
                width as i64,
                height as i64,
                scale,
                mobile,
            );
        self.page.execute(p).await.map_err(cdp_err)?;
        Ok(())
    }

    pub(crate) async fn html(&self) -> Result<String> {
        let v = self
            .eval("document.documentElement ? document.documentElement.outerHTML : ''".into())
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The main frame's URL as the browser last reported it (navigations and in-document
    /// changes alike). Asking the page instead waits behind whatever its renderer is busy with:
    /// right after a load that was up to 10 ms of style, layout and first paint.
    pub(crate) async fn url(&self) -> Result<String> {
        if let Some(url) = self
            .page
            .url()
            .await
            .ok()
            .flatten()
            .filter(|u| !u.is_empty())
        {
            return Ok(url);
        }
        let v = self.eval("location.href".into()).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Whether windows this page opens are still held for its check (false once the popup
    /// guard's connection to Chromium is gone); true for a page that was never guarded.
    pub(crate) fn popups_guarded(&self) -> bool {
        self.popup_guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|r| r.alive())
    }

    pub(crate) async fn close(self) -> Result<()> {
        let guard = self
            .popup_guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let context = self.context.clone();
        let target = self.page.target_id().clone();
        let page = self.page;
        let _ = page
            .execute(chromiumoxide::cdp::browser_protocol::target::CloseTargetParams::new(target))
            .await;
        if let Some(id) = context {
            // Best effort: the context also ends with the browser.
            let _ = page
                .execute(
                    chromiumoxide::cdp::browser_protocol::target::DisposeBrowserContextParams::new(
                        id,
                    ),
                )
                .await;
        }
        // Closed as it should be: its popups need no watching any more.
        if let Some(g) = guard {
            g.release();
        }
        Ok(())
    }
}
