//! `Page`: one tab. Every action here is written once, on top of the in-page script, and runs the
//! same on both backends; the backends only move bytes (evaluate, click at a point, screenshot).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cdp::CdpPage;
use crate::extension::{ExtPage, Probe, TabLink};
use crate::fill::{FieldReport, FieldStatus, FillReport, FillRequest, Submit, SubmitReport};
use crate::launch::ChromiumProcess;
use crate::retry::next_delay;
use crate::webdriver::WdPage;
use crate::{Error, Locator, Result};

/// The backend half of a page.
#[allow(clippy::enum_variant_names)] // `WebDriver` is the protocol's name.
pub(crate) enum Driver {
    Cdp(CdpPage),
    WebDriver(WdPage),
    Extension(ExtPage),
}

impl Driver {
    async fn goto(&self, url: &str, timeout: Duration) -> Result<()> {
        match self {
            Driver::Cdp(p) => p.goto(url, timeout).await,
            Driver::WebDriver(p) => p.goto(url, timeout).await,
            Driver::Extension(p) => p.goto(url, timeout).await,
        }
    }
    async fn eval(&self, expr: String) -> Result<Value> {
        match self {
            Driver::Cdp(p) => p.eval(expr).await,
            Driver::WebDriver(p) => p.eval(expr).await,
            Driver::Extension(_) => Err(Error::Unsupported(
                "a tab reached through the extension cannot evaluate arbitrary JavaScript (Manifest V3 forbids it); use the page actions".into(),
            )),
        }
    }
    /// Before an action that may navigate: CDP forgets the documents seen so far, so that
    /// between probes it sleeps until the document this action starts is parsed. (A stale
    /// event would send a probe mid-navigation, which Chromium answers only once the new
    /// document has loaded: ~20 ms after DOMContentLoaded on the fill benchmark.)
    async fn before_action(&self) {
        if let Driver::Cdp(p) = self {
            p.forget_documents().await;
        }
    }
    /// Between navigation probes: CDP sleeps on the next document event, the others poll.
    async fn between_probes(&self) {
        match self {
            Driver::Cdp(p) => p.next_document(Duration::from_millis(100)).await,
            _ => tokio::time::sleep(Duration::from_millis(3)).await,
        }
    }
    async fn probe(&self, probe: Probe<'_>) -> Result<Value> {
        match self {
            Driver::Extension(p) => p.probe(&probe).await,
            other => other.eval(probe.expression()).await,
        }
    }
    async fn call(&self, method: &str, args: &str) -> Result<Value> {
        match self {
            Driver::Cdp(p) => p.call(method, args).await,
            Driver::WebDriver(p) => p.call(method, args).await,
            Driver::Extension(p) => p.call(method, args).await,
        }
    }
    async fn click_at(&self, x: f64, y: f64) -> Result<()> {
        match self {
            Driver::Cdp(p) => p.click_at(x, y).await,
            Driver::WebDriver(p) => p.click_at(x, y).await,
            Driver::Extension(p) => p.click_at(x, y).await,
        }
    }
    async fn drag(&self, from: (f64, f64), to: (f64, f64)) -> Result<()> {
        match self {
            Driver::Cdp(p) => p.drag(from, to).await,
            Driver::WebDriver(p) => p.drag(from, to).await,
            Driver::Extension(_) => Err(Error::Unsupported(
                "dragging needs trusted pointer input, which a tab reached through the extension does not have; use the headless browser".into(),
            )),
        }
    }
    async fn html(&self) -> Result<String> {
        match self {
            Driver::Cdp(p) => p.html().await,
            Driver::WebDriver(p) => p.html().await,
            Driver::Extension(p) => p.html().await,
        }
    }
    async fn url(&self) -> Result<String> {
        match self {
            Driver::Cdp(p) => p.url().await,
            Driver::WebDriver(p) => p.url().await,
            Driver::Extension(p) => p.url().await,
        }
    }
}

/// What a screenshot shows.
#[derive(Debug, Clone, Default)]
pub enum Shot {
    /// The visible viewport.
    #[default]
    Viewport,
    /// The whole scrollable page (CDP only; WebDriver falls back to the viewport).
    FullPage,
    /// One element.
    Element(Locator),
}

/// Result of a click.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClickReport {
    /// The element clicked.
    pub element: String,
    /// How it was matched.
    pub how: Option<String>,
    /// Did a new document load as a result?
    pub navigated: bool,
    /// URL afterwards.
    pub url: String,
}

/// A resolved locator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Located {
    /// The element.
    pub element: String,
    /// How it matched (label[for], text, css…).
    pub how: Option<String>,
    /// exact / prefix / contains.
    pub score: Option<String>,
    /// Is it visible now?
    pub visible: bool,
}

/// "Scroll until" settings.
#[derive(Debug, Clone)]
pub struct ScrollUntil {
    /// CSS selector of the items to count.
    pub selector: String,
    /// Stop once this many match (None: until nothing new appears).
    pub count: Option<usize>,
    /// Stop when nothing new has appeared for this long.
    pub idle: Duration,
    /// Cap on scroll steps.
    pub max_steps: usize,
    /// Cap on total time.
    pub max_time: Duration,
}

impl ScrollUntil {
    /// Scroll until `count` items match `selector` (or the feed ends).
    pub fn new(selector: impl Into<String>, count: Option<usize>) -> Self {
        ScrollUntil {
            selector: selector.into(),
            count,
            idle: Duration::from_millis(1500),
            max_steps: 500,
            max_time: Duration::from_secs(120),
        }
    }
}

/// Why scrolling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrollStop {
    /// The wanted number of items is there.
    CountReached,
    /// Nothing new appeared for the idle time: the feed has ended (or stalled).
    NoNewItems,
    /// The step cap was hit.
    MaxSteps,
    /// The time cap was hit.
    MaxTime,
}

/// What scrolling achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrollReport {
    /// Items matching the selector at the end.
    pub items: usize,
    /// Scroll steps taken.
    pub steps: usize,
    /// Why it stopped.
    pub stopped: ScrollStop,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// One browser tab. Cheap to keep; all element access is lazy (locators resolve at each action).
pub struct Page {
    driver: Driver,
    action_timeout: Duration,
    nav_timeout: Duration,
    /// The Chromium this page lives in, when we started it (not for the person's own browser).
    process: Option<Arc<std::sync::Mutex<ChromiumProcess>>>,
}

/// What one in-page attempt said.
enum Step<T> {
    Done(T),
    Retry {
        reason: String,
        candidates: Vec<String>,
    },
}

impl Page {
    pub(crate) fn new(
        driver: Driver,
        action_timeout: Duration,
        nav_timeout: Duration,
        process: Arc<std::sync::Mutex<ChromiumProcess>>,
    ) -> Self {
        Page {
            driver,
            action_timeout,
            nav_timeout,
            process: Some(process),
        }
    }

    /// A tab of the person's own browser, driven through the Deskhand extension over `link`.
    pub fn in_extension_tab(
        link: Arc<dyn TabLink>,
        tab: i64,
        action_timeout: Duration,
        nav_timeout: Duration,
    ) -> Self {
        Page {
            driver: Driver::Extension(ExtPage::new(link, tab)),
            action_timeout,
            nav_timeout,
            process: None,
        }
    }

    /// Is this a tab of the person's own browser (reached through the extension)?
    pub fn is_extension_tab(&self) -> bool {
        matches!(self.driver, Driver::Extension(_))
    }

    /// Change how long actions wait for their element.
    pub fn set_action_timeout(&mut self, t: Duration) {
        self.action_timeout = t;
    }

    /// Turn a transport error into "the browser crashed" when Chromium is in fact gone.
    fn crashed(&self, e: Error) -> Error {
        let exited = self
            .process
            .as_ref()
            .and_then(|p| p.lock().ok().and_then(|mut p| p.child.exited()));
        match exited {
            Some(status) => Error::BrowserGone(format!("chromium exited ({status})")),
            None => e,
        }
    }

    async fn call(&self, method: &str, args: Value) -> Result<Value> {
        self.driver
            .call(method, &args.to_string())
            .await
            .map_err(|e| self.crashed(e))
    }

    /// Navigate and wait for the load event.
    pub async fn goto(&self, url: &str) -> Result<()> {
        match url::Url::parse(url) {
            // chrome-extension: an extension's own pages (its popup, say).
            Ok(u)
                if matches!(
                    u.scheme(),
                    "http" | "https" | "file" | "about" | "data" | "chrome-extension"
                ) => {}
            Ok(u) => {
                return Err(Error::Invalid(format!(
                    "cannot open {url:?}: scheme {:?} is not http, https, file, about or data",
                    u.scheme()
                )))
            }
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "cannot open {url:?}: {e}; give a full URL such as https://example.com/form"
                )))
            }
        }
        tracing::debug!(%url, "goto");
        self.driver
            .goto(url, self.nav_timeout)
            .await
            .map_err(|e| self.crashed(e))
    }

    /// From now on, every document this page would load (navigations, redirects, script
    /// `location` changes, form posts, frames) is first shown to `check`; a `false` blocks it
    /// before any request leaves. CDP only: WebDriver has no request interception, so there this
    /// returns [`Error::Unsupported`] and callers must check [`Page::url`] after each action.
    pub async fn intercept_navigation(&self, check: crate::NavigationCheck) -> Result<()> {
        match &self.driver {
            Driver::Cdp(p) => p
                .intercept_navigation(check)
                .await
                .map_err(|e| self.crashed(e)),
            Driver::WebDriver(_) | Driver::Extension(_) => Err(Error::Unsupported(
                "navigation interception needs the CDP backend".into(),
            )),
        }
    }

    /// False once a page under [`Page::intercept_navigation`] can open windows its check does
    /// not hold (the popup guard lost its connection to Chromium); callers should stop.
    pub fn popups_guarded(&self) -> bool {
        match &self.driver {
            Driver::Cdp(p) => p.popups_guarded(),
            Driver::WebDriver(_) | Driver::Extension(_) => true,
        }
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String> {
        self.driver.url().await.map_err(|e| self.crashed(e))
    }

    /// The current document's HTML.
    pub async fn html(&self) -> Result<String> {
        self.driver.html().await.map_err(|e| self.crashed(e))
    }

    /// Evaluate a JavaScript expression and return its JSON value (promises are awaited).
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        self.driver
            .eval(expression.to_string())
            .await
            .map_err(|e| self.crashed(e))
    }

    /// Run the retry ladder around one in-page attempt until it says done, fails, or time runs out.
    async fn retry<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Step<T>>>,
    {
        let started = Instant::now();
        let mut log = Vec::new();
        let mut last = (String::from("not tried"), Vec::new());
        for n in 0.. {
            let Some(delay) = next_delay(n, started.elapsed(), self.action_timeout) else {
                break;
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match attempt().await? {
                Step::Done(v) => return Ok(v),
                Step::Retry { reason, candidates } => {
                    log.push(format!(
                        "#{} at {} ms: {reason}",
                        n + 1,
                        started.elapsed().as_millis()
                    ));
                    last = (reason, candidates);
                }
            }
        }
        // Keep the log readable: first three and last two attempts.
        if log.len() > 6 {
            let tail = log.split_off(log.len() - 2);
            log.truncate(3);
            log.push("…".into());
            log.extend(tail);
        }
        Err(Error::Element {
            what: what.to_string(),
            reason: last.0,
            waited_ms: started.elapsed().as_millis() as u64,
            candidates: last.1,
            attempts: log,
        })
    }

    /// Find an element (waiting for it to appear) without acting on it.
    pub async fn locate(&self, loc: &Locator) -> Result<Located> {
        let what = loc.to_string();
        let w: &str = &what;
        self.retry(&what, move || async move {
            let v = self.call("locate", json!(loc)).await?;
            Ok(match outcome(&v, w)? {
                None => Step::Done(Located {
                    element: str_of(&v, "element"),
                    how: v["how"].as_str().map(String::from),
                    score: v["score"].as_str().map(String::from),
                    visible: v["visible"].as_bool().unwrap_or(false),
                }),
                Some((reason, candidates)) => Step::Retry { reason, candidates },
            })
        })
        .await
    }

    /// Fill a form from human labels in one round trip per attempt; optionally submit.
    pub async fn fill(&self, req: &FillRequest) -> Result<FillReport> {
        let started = Instant::now();
        let mut pending: Vec<usize> = (0..req.fields.len()).collect();
        let mut reports: Vec<Option<FieldReport>> = vec![None; req.fields.len()];
        let mut submit_pending = req.submit.clone();
        let mut submit_report = None;
        let mut dismissed: Vec<String> = Vec::new();
        let mut attempts = 0usize;
        let mut marker = String::new();
        for n in 0.. {
            let Some(delay) = next_delay(n, started.elapsed(), self.action_timeout) else {
                break;
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            attempts += 1;
            let fields: Vec<Value> = pending
                .iter()
                .map(|&i| json!({"key": req.fields[i].0, "value": req.fields[i].1}))
                .collect();
            // Submit in the same round trip only when every remaining field can be filled in it.
            let submit = submit_pending.as_ref().map(|s| match s {
                Submit::Button(b) => json!({"button": b}),
                Submit::Form => json!({"form": true}),
            });
            let t = Instant::now();
            if submit.is_some() {
                self.driver.before_action().await;
            }
            let v = self
                .call("fillForm", json!({"fields": fields, "submit": submit}))
                .await?;
            tracing::debug!(
                ms = t.elapsed().as_secs_f64() * 1000.0,
                "fillForm round trip"
            );
            marker = str_of(&v, "nav_marker");
            dismissed.extend(strings(&v["dismissed"]));
            let outcomes: Vec<FieldReport> = serde_json::from_value(v["fields"].clone())
                .map_err(|e| Error::Script(format!("unexpected fill result: {e}")))?;
            let mut still = Vec::new();
            for (slot, out) in pending.iter().zip(outcomes) {
                let transient = out.status.is_transient();
                reports[*slot] = Some(out);
                if transient {
                    still.push(*slot);
                }
            }
            pending = still;
            let final_failure = reports
                .iter()
                .flatten()
                .any(|r| r.status != FieldStatus::Ok && !r.status.is_transient());
            if let Some(s) = v.get("submit").filter(|s| !s.is_null()) {
                match s["status"].as_str() {
                    Some("ok") => {
                        submit_pending = None;
                        submit_report = Some(SubmitReport {
                            element: str_of(s, "element"),
                            how: str_of(s, "how"),
                            navigated: false,
                        });
                    }
                    Some("invalid") | Some("ambiguous") => {
                        return Err(match s["status"].as_str() {
                            Some("ambiguous") => Error::Ambiguous {
                                what: str_of(s, "what"),
                                candidates: strings(&s["candidates"]),
                            },
                            _ => Error::Invalid(str_of(s, "message")),
                        });
                    }
                    _ => {}
                }
            }
            if pending.is_empty() && (final_failure || submit_pending.is_none()) {
                break;
            }
        }
        let fields: Vec<FieldReport> = reports.into_iter().flatten().collect();
        let mut report = FillReport {
            fields,
            dismissed,
            submit: None,
            url: String::new(),
            attempts,
            elapsed_ms: 0,
        };
        let failed: Vec<String> = report
            .fields
            .iter()
            .filter(|f| f.status != FieldStatus::Ok)
            .map(FieldReport::describe)
            .collect();
        if !failed.is_empty() && req.allow_partial && submit_pending.is_some() {
            // Partial fills were allowed: submit what we have.
            let s = submit_pending.take().map(|s| match s {
                Submit::Button(b) => json!({"button": b}),
                Submit::Form => json!({"form": true}),
            });
            self.driver.before_action().await;
            let v = self
                .call("fillForm", json!({"fields": [], "submit": s}))
                .await?;
            marker = str_of(&v, "nav_marker");
            if v["submit"]["status"] == "ok" {
                submit_report = Some(SubmitReport {
                    element: str_of(&v["submit"], "element"),
                    how: str_of(&v["submit"], "how"),
                    navigated: false,
                });
            }
        }
        if let Some(mut s) = submit_report {
            let t = Instant::now();
            s.navigated = self.settle(&marker).await?;
            tracing::debug!(
                ms = t.elapsed().as_secs_f64() * 1000.0,
                navigated = s.navigated,
                "settled after submit"
            );
            report.submit = Some(s);
        } else if let Some(s) = &submit_pending {
            if failed.is_empty() {
                let what = match s {
                    Submit::Button(b) => format!("submit button {b:?}"),
                    Submit::Form => "the form".into(),
                };
                return Err(Error::Element {
                    what,
                    reason: "could not submit".into(),
                    waited_ms: started.elapsed().as_millis() as u64,
                    candidates: vec![],
                    attempts: vec![],
                });
            }
        }
        report.url = self.url().await.unwrap_or_default();
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        if !failed.is_empty() && !req.allow_partial {
            return Err(Error::Fill {
                total: req.fields.len(),
                failed,
                report: Box::new(report),
            });
        }
        Ok(report)
    }

    /// After an action: if it started a navigation, wait for the new document to be interactive.
    async fn settle(&self, marker: &str) -> Result<bool> {
        let started = Instant::now();
        let mut seen_started = false;
        let mut first = true;
        while started.elapsed() < self.nav_timeout {
            // A probe is one evaluate; between probes CDP sleeps until the next document's
            // DOMContentLoaded (probing during a navigation slows it down), the others poll
            // every 3 ms.
            if !first {
                self.driver.between_probes().await;
            }
            first = false;
            let state = tokio::time::timeout(
                Duration::from_secs(2),
                self.driver.probe(Probe::Nav(marker)),
            )
            .await;
            let state = match state {
                Ok(Ok(v)) => v,
                // Mid-navigation the old context may vanish under us: that is progress, not failure.
                Ok(Err(Error::BrowserGone(e))) => return Err(self.crashed(Error::BrowserGone(e))),
                _ => continue,
            };
            let same = state["same"].as_bool().unwrap_or(false);
            if !same {
                // The new document is parsed and its deferred scripts have run (DOMContentLoaded):
                // what a person can act on. Later actions auto-wait for their own elements, so
                // there is no need to hold on for every image (the load event), as goto does.
                if state["ready"] != "loading" {
                    return Ok(true);
                }
                continue;
            }
            seen_started |= state["started"].as_bool().unwrap_or(false);
            if !seen_started {
                return Ok(false);
            }
        }
        tracing::warn!(
            "a navigation started but no new page loaded within {:?}",
            self.nav_timeout
        );
        Ok(false)
    }

    /// Click an element as a person would: wait until it is visible, enabled, stable and not
    /// covered, then press the mouse at its centre; wait for a navigation it starts.
    pub async fn click(&self, loc: &Locator) -> Result<ClickReport> {
        let what = loc.to_string();
        let w: &str = &what;
        let (element, how, marker) = self
            .retry(&what, move || async move {
                let v = self.call("prepareClick", json!(loc)).await?;
                if let Some((reason, candidates)) = outcome(&v, w)? {
                    return Ok(Step::Retry { reason, candidates });
                }
                let marker = str_of(&v, "nav_marker");
                self.driver.before_action().await;
                self.driver
                    .click_at(f(&v, "x"), f(&v, "y"))
                    .await
                    .map_err(|e| self.crashed(e))?;
                // Did the press reach the element? (Only checkable while the document is the same.)
                let check = self
                    .driver
                    .probe(Probe::Click(&marker))
                    .await
                    .unwrap_or(Value::Null);
                if check["same"] == true {
                    if let Some(other) = check["miss"].as_str() {
                        return Ok(Step::Retry {
                            reason: format!("the click landed on {other} instead (the page moved)"),
                            candidates: vec![],
                        });
                    }
                }
                Ok(Step::Done((
                    str_of(&v, "element"),
                    v["how"].as_str().map(String::from),
                    marker,
                )))
            })
            .await?;
        let navigated = self.settle(&marker).await?;
        Ok(ClickReport {
            element,
            how,
            navigated,
            url: self.url().await.unwrap_or_default(),
        })
    }

    /// Drag one element onto another as a person does with a mouse: press at the first one's
    /// centre, move in small steps, release over the second one's (pointer and mouse events, as
    /// a board or a slider listens for). The first is waited for as a click waits for its
    /// element; the second must then be on screen too.
    pub async fn drag(&self, from: &Locator, to: &Locator) -> Result<()> {
        let what = format!("{from} onto {to}");
        let w: &str = &what;
        let (a, b) = self
            .retry(w, move || async move {
                let args = format!("{}, {}", json!(from), json!(to));
                let v = self
                    .driver
                    .call("prepareDrag", &args)
                    .await
                    .map_err(|e| self.crashed(e))?;
                Ok(match outcome(&v, w)? {
                    None => Step::Done(((f(&v, "x"), f(&v, "y")), (f(&v, "tx"), f(&v, "ty")))),
                    Some((reason, candidates)) => Step::Retry { reason, candidates },
                })
            })
            .await?;
        self.driver.drag(a, b).await.map_err(|e| self.crashed(e))
    }

    /// Scroll an element into the middle of the viewport.
    pub async fn scroll_to(&self, loc: &Locator) -> Result<Located> {
        let what = loc.to_string();
        let w: &str = &what;
        self.retry(&what, move || async move {
            let v = self.call("scrollToElement", json!(loc)).await?;
            Ok(match outcome(&v, w)? {
                None => Step::Done(Located {
                    element: str_of(&v, "element"),
                    how: None,
                    score: None,
                    visible: true,
                }),
                Some((reason, candidates)) => Step::Retry { reason, candidates },
            })
        })
        .await
    }

    /// Scroll the window by a number of CSS pixels.
    pub async fn scroll_by(&self, dx: f64, dy: f64) -> Result<(f64, f64)> {
        let v = self
            .driver
            .call("scrollBy", &format!("{dx}, {dy}"))
            .await
            .map_err(|e| self.crashed(e))?;
        Ok((
            v["x"].as_f64().unwrap_or(0.0),
            v["y"].as_f64().unwrap_or(0.0),
        ))
    }

    /// Scroll until enough items match, or nothing new appears for a while (infinite scroll).
    pub async fn scroll_until(&self, until: &ScrollUntil) -> Result<ScrollReport> {
        let started = Instant::now();
        let mut last_change = Instant::now();
        let (mut last_count, mut last_height) = (0usize, 0f64);
        let mut steps = 0;
        let stopped = loop {
            let v = self.call("scrollStep", json!(until.selector)).await?;
            if v["status"] == "invalid" {
                return Err(Error::Invalid(str_of(&v, "message")));
            }
            steps += 1;
            let count = v["count"].as_u64().unwrap_or(0) as usize;
            let height = v["height"].as_f64().unwrap_or(0.0);
            if count != last_count || height != last_height {
                last_change = Instant::now();
                (last_count, last_height) = (count, height);
            }
            if until.count.is_some_and(|c| count >= c) {
                break ScrollStop::CountReached;
            }
            if last_change.elapsed() >= until.idle {
                break ScrollStop::NoNewItems;
            }
            if steps >= until.max_steps {
                break ScrollStop::MaxSteps;
            }
            if started.elapsed() >= until.max_time {
                break ScrollStop::MaxTime;
            }
            // Give the page a moment to fetch and render the next batch.
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(ScrollReport {
            items: last_count,
            steps,
            stopped,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// How many elements match a CSS selector right now (frames and shadow roots included).
    pub async fn count(&self, css: &str) -> Result<usize> {
        let v = self.call("count", json!(css)).await?;
        if v["status"] == "invalid" {
            return Err(Error::Invalid(str_of(&v, "message")));
        }
        Ok(v["count"].as_u64().unwrap_or(0) as usize)
    }

    /// The page printed to PDF on paper `width_in` × `height_in` inches, without margins (a
    /// page's own `@page` rules and page breaks decide what goes on each sheet).
    pub async fn pdf(&self, width_in: f64, height_in: f64) -> Result<Vec<u8>> {
        match &self.driver {
            Driver::Cdp(p) => p.pdf(width_in, height_in).await,
            Driver::WebDriver(p) => p.pdf(width_in, height_in).await,
            Driver::Extension(_) => Err(Error::Unsupported(
                "a tab reached through the extension cannot be printed to PDF; use the headless browser".into(),
            )),
        }
    }

    /// A PNG of the viewport, the full page, or one element.
    pub async fn screenshot(&self, shot: &Shot) -> Result<Vec<u8>> {
        let png = match (&self.driver, shot) {
            (Driver::Cdp(p), Shot::Viewport) => p.screenshot(None, false).await,
            (Driver::Cdp(p), Shot::FullPage) => p.screenshot(None, true).await,
            (Driver::WebDriver(p), Shot::Viewport | Shot::FullPage) => p.screenshot(None).await,
            (Driver::Extension(p), Shot::Viewport | Shot::FullPage) => p.screenshot().await,
            (Driver::Extension(_), Shot::Element(_)) => Err(Error::Unsupported(
                "a tab reached through the extension can only be captured whole (the visible part)"
                    .into(),
            )),
            (driver, Shot::Element(loc)) => {
                let what = loc.to_string();
                let w: &str = &what;
                let v = self
                    .retry(&what, move || async move {
                        let v = self.call("rectOf", json!(loc)).await?;
                        Ok(match outcome(&v, w)? {
                            None => Step::Done(v),
                            Some((reason, candidates)) => Step::Retry { reason, candidates },
                        })
                    })
                    .await?;
                match driver {
                    Driver::Cdp(p) => {
                        let clip = (
                            f(&v, "x"),
                            f(&v, "y"),
                            f(&v, "width").max(1.0),
                            f(&v, "height").max(1.0),
                        );
                        p.screenshot(Some(clip), false).await
                    }
                    Driver::WebDriver(p) => p.screenshot(Some(&str_of(&v, "pick"))).await,
                    Driver::Extension(_) => {
                        unreachable!("element shots of extension tabs are refused above")
                    }
                }
            }
        };
        png.map_err(|e| self.crashed(e))
    }

    /// Extract records with `schema` from the current page, following its `next` link for at most
    /// `max_pages` pages in all. Relative `href`/`src` values are resolved against each page's URL.
    /// Returns the records and the number of pages read.
    pub async fn extract_pages(
        &self,
        schema: &crate::extract::Schema,
        max_pages: usize,
    ) -> Result<(Vec<crate::extract::Record>, usize)> {
        let mut records = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let base = url::Url::parse(&self.url().await?).ok();
            let page = schema.extract(&self.html().await?, base.as_ref())?;
            records.extend(page.records);
            match page.next {
                Some(next) if pages < max_pages.max(1) => self.goto(&next).await?,
                _ => return Ok((records, pages)),
            }
        }
    }

    /// Emulate a device viewport (e.g. 390×844 at 3× for a phone). Chrome windows cannot be narrower
    /// than ~500 px, so a phone layout needs this rather than `--window-size`. CDP only.
    pub async fn set_viewport(
        &self,
        width: u32,
        height: u32,
        scale: f64,
        mobile: bool,
    ) -> Result<()> {
        match &self.driver {
            Driver::Cdp(p) => p.set_viewport(width, height, scale, mobile).await,
            Driver::WebDriver(_) | Driver::Extension(_) => Err(Error::Unsupported(
                "device emulation needs the CDP backend".into(),
            )),
        }
    }

    /// Close the tab.
    pub async fn close(self) -> Result<()> {
        match self.driver {
            Driver::Cdp(p) => p.close().await,
            // The person's own tab stays open: it was theirs before the job.
            Driver::WebDriver(_) | Driver::Extension(_) => Ok(()),
        }
    }
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Sort an in-page outcome: `None` = ok; `Some((reason, candidates))` = worth retrying; `Err` = final.
fn outcome(v: &Value, what: &str) -> Result<Option<(String, Vec<String>)>> {
    let status = v["status"].as_str().unwrap_or("missing status");
    let candidates = strings(&v["candidates"]);
    match status {
        "ok" => Ok(None),
        "ambiguous" => Err(Error::Ambiguous {
            what: what.to_string(),
            candidates,
        }),
        "invalid" => Err(Error::Invalid(str_of(v, "message"))),
        "not_found" => Ok(Some(("not found".into(), candidates))),
        "covered" => Ok(Some((
            format!("{} is covered by {}", str_of(v, "element"), str_of(v, "by")),
            candidates,
        ))),
        "hidden" | "disabled" | "readonly" | "detached" | "unstable" => Ok(Some((
            format!("{} is {status}", str_of(v, "element")),
            candidates,
        ))),
        other => Err(Error::Script(format!(
            "unexpected in-page outcome {other:?} for {what}"
        ))),
    }
}
