//! The browser actions: fill a form, extract records, scroll, click. They drive the agent's shared
//! headless Chromium, or with `target: tab:…` a tab of the person's own browser through the
//! extension, always through the guard: the start URL is checked, every document a headless page
//! then loads (redirects, script navigation, form posts) is checked in the browser before it is
//! requested (an extension tab is checked after each action), popups are blocked by the pool, and
//! a submit or click waits for the person unless the skill may do it without asking. Cancellation
//! closes a headless page; the person's tab is left open.

use std::sync::{Arc, Mutex};

use deskhand_browser::extract::{self, Format, Schema};
use deskhand_browser::{FillRequest, Locator, Page, ScrollUntil, Shot, Submit};
use serde_json::{json, Map, Value};

use crate::extension::tabs::{self, Target};
use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};

/// `browser.fill`: fill, screenshot, ask before submitting, and save the report.
pub(super) async fn fill(
    g: &Guard,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let report = run_fill(g, args, ctx.cancel.clone()).await?;
    let mut out = g
        .write_output(
            "browser.fill",
            "json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    out["screenshot"] = report["screenshot"].clone();
    out["fields"] = report["fields"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0)
        .into();
    out["submitted"] = Value::Bool(report["submit"].is_object());
    if report["submit"].is_object() {
        g.env().store.audit().record(
            "form.submitted",
            Some(g.job()),
            json!({"url": super::arg(args, "url"), "button": super::arg(args, "submit"), "landed_on": report["submit"]["url"]}),
        );
    }
    Ok(out)
}

/// `browser.extract`: extract and write the records in the asked format (csv, jsonl, json, xlsx).
pub(super) async fn extract(
    g: &Guard,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let fmt = args
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("csv")
        .to_string();
    // Check the format before spending a browser on it.
    let format: Option<Format> = match fmt.as_str() {
        "xlsx" => None,
        other => Some(
            other
                .parse()
                .map_err(|e: deskhand_browser::Error| StepError::Fatal(format!("{e}; or xlsx")))?,
        ),
    };
    let got = tokio::select! {
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
        r = run_extract(g, args) => r?,
    };
    let recs: Vec<extract::Record> =
        serde_json::from_value(got["records"].clone()).unwrap_or_default();
    let cols: Vec<String> = serde_json::from_value(got["columns"].clone()).unwrap_or_default();
    let bytes = match format {
        Some(f) => {
            let mut buf = Vec::new();
            extract::write_records(&mut buf, &recs, f, Some(&cols))
                .map_err(|e| StepError::Fatal(e.to_string()))?;
            buf
        }
        None => super::reports::records_xlsx("records", &cols, &recs)?,
    };
    let mut out = g.write_output("browser.extract", &fmt, bytes).await?;
    out["records"] = Value::from(recs.len());
    Ok(out)
}

fn browser_error(e: deskhand_browser::Error) -> StepError {
    match e {
        deskhand_browser::Error::BrowserGone(_) => {
            StepError::Fatal(format!("Chromium crashed during the step: {e}"))
        }
        deskhand_browser::Error::Navigation { .. } => StepError::Retryable(e.to_string()),
        // Not retried: a command cut off halfway (a half-filled form) must not run twice, and
        // the hub already waited for the extension to connect.
        other => StepError::Fatal(other.to_string()),
    }
}

/// A page from the pool whose navigation the guard checks. What the guard blocked is collected,
/// so an action whose page was stopped fails with the refusal, not with a load error.
struct GuardedPage<'g> {
    guard: &'g Guard,
    /// The pool's browser (none for a tab of the person's own browser).
    browser: Option<Arc<deskhand_browser::Browser>>,
    page: Page,
    blocked: Arc<Mutex<Vec<String>>>,
    /// WebDriver cannot intercept: check the URL after each action instead.
    post_check: bool,
    /// The person's tab whose navigation filters are lifted when the step ends.
    filter: Option<TabFilter>,
}

/// A tab of the person's browser under a job's navigation filters. Lifted by [`TabFilter::lift`]
/// when the step ends; a step cut off (timeout, cancel) drops it, and the drop lifts them too.
struct TabFilter {
    hub: Arc<crate::extension::ExtensionHub>,
    tab: i64,
    lifted: bool,
}

impl TabFilter {
    async fn lift(mut self) {
        self.lifted = true;
        if let Err(e) = tabs::unguard(&self.hub, self.tab).await {
            tracing::warn!(tab = self.tab, error = %e, "could not lift the tab's navigation filters");
        }
    }
}

impl Drop for TabFilter {
    fn drop(&mut self) {
        if self.lifted {
            return;
        }
        let (hub, tab) = (Arc::clone(&self.hub), self.tab);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tabs::unguard(&hub, tab).await;
            });
        }
    }
}

impl<'g> GuardedPage<'g> {
    /// The page a step's `url` and `target` arguments name; an extension tab is already at
    /// `url` afterwards, a headless page is still blank.
    async fn open(
        guard: &'g Guard,
        args: &Map<String, Value>,
    ) -> Result<GuardedPage<'g>, StepError> {
        let url = super::arg(args, "url").as_str().unwrap_or_default();
        guard.check_url(url)?;
        let target = Target::parse(super::arg(args, "target").as_str().unwrap_or_default())
            .map_err(StepError::Fatal)?;
        if target.is_tab() {
            let hub = &guard.env().extension;
            let filters = guard.navigation_filters();
            match tabs::resolve(hub, &target, url, &filters).await {
                Ok(tab) => {
                    // A tab the job opened was filtered from its first request; one of the
                    // person's is filtered from now on.
                    if target != Target::New {
                        tabs::guard(hub, tab, &filters)
                            .await
                            .map_err(browser_error)?;
                    }
                    let (action, nav) = guard.env().browsers.timeouts();
                    let link: Arc<dyn deskhand_browser::TabLink> = Arc::clone(hub) as _;
                    let page = GuardedPage {
                        guard,
                        browser: None,
                        page: Page::in_extension_tab(link, tab, action, nav),
                        blocked: Arc::new(Mutex::new(Vec::new())),
                        post_check: true,
                        filter: Some(TabFilter {
                            hub: Arc::clone(hub),
                            tab,
                            lifted: false,
                        }),
                    };
                    let ready = async {
                        let now = page.page.url().await.map_err(browser_error)?;
                        if target == Target::New && !same_page(&now, url) {
                            // Its first page led it away and the filters stopped it: a refusal.
                            guard.check_url(&now)?;
                        }
                        if !same_page(&now, url) {
                            let r = page.page.goto(url).await;
                            page.checked(r).await
                        } else {
                            guard.check_url(&now)
                        }
                    };
                    return match ready.await {
                        Ok(()) => Ok(page),
                        Err(e) => {
                            // Not started after all: the tab gets its freedom back now.
                            page.close(&Err::<(), _>(e.clone())).await;
                            Err(e)
                        }
                    };
                }
                Err(deskhand_browser::Error::Extension { code, message })
                    if code == "not_connected"
                        && super::arg(args, "fallback").as_str() == Some("headless") =>
                {
                    tracing::info!(%message, "the extension is not connected: running headless instead");
                }
                Err(e) => return Err(browser_error(e)),
            }
        }
        let (browser, page) = guard.env().browsers.page().await.map_err(browser_error)?;
        let blocked = Arc::new(Mutex::new(Vec::new()));
        let post_check = match page
            .intercept_navigation(guard.navigation_hook(Arc::clone(&blocked)))
            .await
        {
            Ok(()) => false,
            Err(deskhand_browser::Error::Unsupported(_)) => true,
            Err(e) => {
                let _ = page.close().await;
                return Err(browser_error(e));
            }
        };
        Ok(GuardedPage {
            guard,
            browser: Some(browser),
            page,
            blocked,
            post_check,
            filter: None,
        })
    }

    /// Load the start page (an extension tab is there already).
    async fn start(&self, url: &str) -> Result<(), StepError> {
        if self.page.is_extension_tab() {
            return Ok(());
        }
        let r = self.page.goto(url).await;
        self.checked(r).await
    }

    /// After an action: a refusal wins over whatever error the blocked load caused.
    async fn checked<T>(&self, r: Result<T, deskhand_browser::Error>) -> Result<T, StepError> {
        if let Some(why) = self
            .blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
        {
            return Err(StepError::Fatal(format!(
                "refused: the page tried to leave its allowed origins: {why}"
            )));
        }
        if !self.page.popups_guarded() {
            return Err(StepError::Fatal(
                "refused: the guard lost its hold on windows this page opens (its connection to \
                 Chromium dropped); the step stops"
                    .into(),
            ));
        }
        if self.post_check {
            // Where the tab is now, even when the action failed: a load the filters blocked
            // fails too, and its refusal is the better answer.
            match self.page.url().await {
                Ok(now) => self.guard.check_url(&now)?,
                Err(e) if r.is_ok() => return Err(browser_error(e)),
                Err(_) => {}
            }
        }
        r.map_err(browser_error)
    }

    async fn close(self, result: &Result<impl Sized, StepError>) {
        if let Some(f) = self.filter {
            f.lift().await;
        }
        let _ = self.page.close().await;
        if let (Err(StepError::Fatal(m)), Some(browser)) = (result, &self.browser) {
            if m.contains("Chromium crashed") {
                self.guard.env().browsers.forget(browser).await;
            }
        }
    }
}

async fn run_fill(
    g: &Guard,
    params: &Map<String, Value>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Value, StepError> {
    let url = super::arg(params, "url")
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Either {"Email": "a@b.c", ...} or the list form [{"label": "Email", "value": "a@b.c"}, ...].
    let fields = match super::arg(params, "fields") {
        Value::Object(m) => m.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match (i["label"].as_str(), i.get("value")) {
                (Some(l), Some(v)) => Ok((l.to_string(), v.clone())),
                _ => Err(StepError::Fatal(format!(
                    "`fields` item {i} needs a \"label\" and a \"value\""
                ))),
            })
            .collect::<Result<Map<String, Value>, _>>()?,
        _ => {
            return Err(StepError::Fatal(
                "`fields` must be an object of label → value, or a list of {label, value}".into(),
            ))
        }
    };
    let mut req = FillRequest::from_map(&fields);
    let submit = params
        .get("submit")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| Submit::Button(s.to_string()));
    req.allow_partial = params
        .get("partial")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let page = GuardedPage::open(g, params).await?;
    let work = async {
        page.start(&url).await?;
        let r = page.page.fill(&req).await;
        let report = page.checked(r).await?;
        let shot = match page.page.screenshot(&Shot::Viewport).await {
            // Chrome lets an extension capture a tab only after the person clicked its icon
            // there (activeTab), or with access to every site; the preview then goes without.
            Err(deskhand_browser::Error::Extension { message, .. })
                if page.page.is_extension_tab() =>
            {
                tracing::info!(%message, "no screenshot of the tab");
                json!({"path": null, "note": message})
            }
            r => {
                let png = page.checked(r).await?;
                g.write_output("browser.fill", "png", png).await?
            }
        };
        let Some(submit) = submit else {
            return Ok((report, shot));
        };
        // The filled form is the preview; nothing is sent until the person (or the skill's
        // permissions) says so.
        g.approve(
            "submit",
            &url,
            json!({"screenshot": shot["path"], "button": submit,
                   "fields": report.fields.iter().map(|f| json!({"label": f.key, "value": f.value})).collect::<Vec<_>>()}),
        )
        .await?;
        req.submit = Some(submit);
        let r = page.page.fill(&req).await;
        let report = page.checked(r).await?;
        Ok((report, shot))
    };
    // Cancellation stops the page: the future is dropped and the tab closed.
    let result = tokio::select! {
        _ = cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r,
    };
    page.close(&result).await;
    let (report, shot) = result?;
    let mut v = serde_json::to_value(&report).map_err(|e| StepError::Fatal(e.to_string()))?;
    v["screenshot"] = shot["path"].clone();
    Ok(v)
}

async fn run_extract(g: &Guard, params: &Map<String, Value>) -> Result<Value, StepError> {
    let schema = match &super::arg(params, "schema") {
        // A path: read through the guard like any file a job names.
        Value::String(path) => {
            let bytes = g.read_file(path)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                StepError::Fatal(format!(
                    "schema file {path}: not UTF-8 text; save it as UTF-8 YAML or JSON"
                ))
            })?;
            Schema::parse(&text)
                .map_err(|e| StepError::Fatal(format!("schema file {path}: {e}")))?
        }
        v => Schema::parse(&serde_json::to_string(v).unwrap_or_default())
            .map_err(|e| StepError::Fatal(e.to_string()))?,
    };
    let max_pages = super::arg(params, "max_pages")
        .as_i64()
        .unwrap_or(10)
        .max(1) as usize;
    let url = super::arg(params, "url")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let page = GuardedPage::open(g, params).await?;
    let result = async {
        page.start(&url).await?;
        let r = page.page.extract_pages(&schema, max_pages).await;
        page.checked(r).await.map(|(records, _)| records)
    }
    .await;
    page.close(&result).await;
    let records = result?;
    Ok(json!({"records": records, "columns": schema.field_names()}))
}

/// `browser.scroll`: scroll until enough items match (or the feed ends) and save what happened.
pub(super) async fn scroll(
    g: &Guard,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let url = super::arg(args, "url")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let selector = super::arg(args, "selector").as_str().unwrap_or_default();
    let mut until = ScrollUntil::new(
        selector,
        super::arg(args, "count").as_u64().map(|c| c as usize),
    );
    if let Some(ms) = super::arg(args, "idle_ms").as_u64() {
        until.idle = std::time::Duration::from_millis(ms);
    }
    let page = GuardedPage::open(g, args).await?;
    let work = async {
        page.start(&url).await?;
        let r = page.page.scroll_until(&until).await;
        page.checked(r).await
    };
    let result = tokio::select! {
        _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r,
    };
    page.close(&result).await;
    let report = result?;
    let mut out = g
        .write_output(
            "browser.scroll",
            "json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    out["items"] = report.items.into();
    out["stopped"] = serde_json::to_value(report.stopped).unwrap_or_default();
    Ok(out)
}

/// `browser.click`: click a button or link by what it says, once the person agrees (a click can
/// send, delete or buy as much as a submit can).
pub(super) async fn click(
    g: &Guard,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let url = super::arg(args, "url")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let text = super::arg(args, "text")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let locator = Locator::clickable(&text).map_err(|e| StepError::Fatal(e.to_string()))?;
    let page = GuardedPage::open(g, args).await?;
    let work = async {
        page.start(&url).await?;
        // Wait until it is there before asking, so the person approves something real.
        let r = page.page.locate(&locator).await;
        let found = page.checked(r).await?;
        g.approve(
            "click",
            &url,
            json!({"button": text, "element": found.element}),
        )
        .await?;
        let r = page.page.click(&locator).await;
        page.checked(r).await
    };
    let result = tokio::select! {
        _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r,
    };
    page.close(&result).await;
    let report = result?;
    g.env().store.audit().record(
        "page.clicked",
        Some(g.job()),
        json!({"url": url, "button": text, "landed_on": report.url}),
    );
    let mut out = g
        .write_output(
            "browser.click",
            "json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    out["navigated"] = report.navigated.into();
    out["url"] = report.url.into();
    Ok(out)
}

/// Is the tab already showing this page (fragments aside)?
fn same_page(now: &str, want: &str) -> bool {
    let strip = |u: &str| {
        u.split('#')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    };
    !want.is_empty() && strip(now) == strip(want)
}
