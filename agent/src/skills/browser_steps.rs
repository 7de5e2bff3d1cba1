//! The browser actions: fill a form, extract records, scroll, click. They drive the agent's shared
//! headless Chromium, or with `target: tab:…` a tab of the person's own browser through the
//! extension, always through the guard: the start URL is checked, every document a headless page
//! then loads (redirects, script navigation, form posts) is checked in the browser before it is
//! requested (an extension tab is checked after each action), popups are blocked by the pool, and
//! a submit or click waits for the person unless the skill may do it without asking. Cancellation
//! closes a headless page; the person's tab is left open.

use deskhand_browser::extract::{self, Format, Schema};
use deskhand_browser::{FillRequest, Locator, ScrollUntil, Shot, Submit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::args::{Line, WebUrl};
use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};

/// Where a browser action runs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Place {
    /// Where: headless (the agent's own Chromium), or a tab of your browser through the extension: tab:active, tab:new, tab:<id>, tab:<URL pattern>.
    #[serde(default = "headless")]
    target: Line,
    /// With a tab target: headless runs it in the agent's own Chromium when the extension is not connected; none fails.
    #[serde(default)]
    fallback: Fallback,
}

impl Place {
    /// The page this place names, through the guard.
    async fn open<'g>(
        &self,
        g: &'g Guard,
        url: &str,
    ) -> Result<crate::guard::GuardedPage<'g>, StepError> {
        g.page(
            url,
            self.target.as_str(),
            self.fallback == Fallback::Headless,
        )
        .await
    }
}

fn headless() -> Line {
    Line::from("headless")
}

/// What to do when the person's browser is not connected.
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Fail the step.
    #[default]
    None,
    /// Run it in the agent's own headless Chromium.
    Headless,
}

/// `browser.fill`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FillArgs {
    /// The page with the form.
    url: WebUrl,
    /// Field labels to values, e.g. {"Email": "a@b.c", "Subscribe": true}, or a list of {label, value}.
    fields: Value,
    /// Text of the button to click afterwards.
    submit: Option<Line>,
    /// Fill what matches and report the rest.
    #[serde(default)]
    partial: bool,
    #[serde(flatten)]
    place: Place,
}

/// What `browser.fill` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FillOut {
    /// The report written (JSON).
    path: String,
    /// The screenshot of the filled form, when one could be taken.
    screenshot: Option<String>,
    /// How many fields were filled.
    fields: usize,
    /// Whether the form was submitted.
    submitted: bool,
}

/// `browser.fill`: fill, screenshot, ask before submitting, and save the report.
pub(super) async fn fill(g: Guard, a: FillArgs, ctx: StepCtx) -> Result<FillOut, StepError> {
    let report = run_fill(&g, &a, ctx.cancel.clone()).await?;
    let path = g
        .write_output(
            "json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    let submitted = report["submit"].is_object();
    Ok(FillOut {
        path,
        screenshot: report["screenshot"].as_str().map(String::from),
        fields: report["fields"].as_array().map(|a| a.len()).unwrap_or(0),
        submitted,
    })
}

/// `browser.extract`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExtractArgs {
    /// The first page.
    url: WebUrl,
    /// Extraction schema {items, fields, next}, or a path to a schema file in the workspace.
    schema: Value,
    /// csv, jsonl, json or xlsx.
    #[serde(default = "csv")]
    format: Line,
    /// Follow next links at most this many pages.
    #[serde(default = "ten")]
    max_pages: u32,
    #[serde(flatten)]
    place: Place,
}

fn csv() -> Line {
    Line::from("csv")
}

fn ten() -> u32 {
    10
}

/// What `browser.extract` found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExtractOut {
    /// The file the records were written to.
    path: String,
    /// How many records.
    count: usize,
    /// The columns, in the schema's order.
    columns: Vec<String>,
    /// The records themselves (column → value).
    records: Vec<Map<String, Value>>,
}

/// `browser.extract`: extract and write the records in the asked format (csv, jsonl, json, xlsx).
pub(super) async fn extract(
    g: Guard,
    a: ExtractArgs,
    ctx: StepCtx,
) -> Result<ExtractOut, StepError> {
    let fmt = a.format.0.clone();
    // Check the format before spending a browser on it.
    let format: Option<Format> =
        match fmt.as_str() {
            "xlsx" => None,
            other => Some(other.parse().map_err(|e: deskhand_browser::Error| {
                StepError::Invalid(format!("{e}; or xlsx"))
            })?),
        };
    let (recs, cols) = tokio::select! {
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
        r = run_extract(&g, &a) => r?,
    };
    let bytes = match format {
        Some(f) => {
            let mut buf = Vec::new();
            extract::write_records(&mut buf, &recs, f, Some(&cols))?;
            buf
        }
        None => super::reports::records_xlsx("records", &cols, &recs)?,
    };
    let path = g.write_output(&fmt, bytes).await?;
    Ok(ExtractOut {
        path,
        count: recs.len(),
        columns: cols,
        records: recs.into_iter().map(|r| r.into_iter().collect()).collect(),
    })
}

async fn run_fill(
    g: &Guard,
    a: &FillArgs,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Value, StepError> {
    let url = a.url.0.clone();
    // Either {"Email": "a@b.c", ...} or the list form [{"label": "Email", "value": "a@b.c"}, ...].
    let fields = match &a.fields {
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
    let mut fields = fields;
    // Secret values go in here and nowhere else; `hide` takes them back out of what is reported.
    let secrets = g.reveal_secrets(&mut fields, &url).await?;
    let hide = |mut v: Value| {
        crate::guard::form_secrets::conceal(&mut v, &secrets);
        v
    };
    let mut req = FillRequest::from_map(&fields);
    let submit = a
        .submit
        .as_ref()
        .filter(|s| !s.0.is_empty())
        .map(|s| Submit::Button(s.0.clone()));
    req.allow_partial = a.partial;
    let page = a.place.open(g, &url).await?;
    let work = async {
        page.start(&url).await?;
        let r = page.page().fill(&req).await;
        let report = page.checked(r).await?;
        let shot = match page.page().screenshot(&Shot::Viewport).await {
            // Chrome lets an extension capture a tab only after the person clicked its icon
            // there (activeTab), or with access to every site; the preview then goes without.
            Err(deskhand_browser::Error::Extension { message, .. })
                if page.page().is_extension_tab() =>
            {
                tracing::info!(%message, "no screenshot of the tab");
                json!({"path": null, "note": message})
            }
            r => {
                let png = page.checked(r).await?;
                json!({"path": g.write_output("png", png).await?})
            }
        };
        let Some(submit) = submit else {
            return Ok((report, shot));
        };
        // The filled form is the preview; nothing is sent until the person (or the skill's
        // permissions) says so.
        let preview = hide(json!({"screenshot": shot["path"], "button": submit,
               "fields": report.fields.iter().map(|f| json!({"label": f.key, "value": f.value})).collect::<Vec<_>>()}));
        req.submit = Some(submit.clone());
        let button = a.submit.as_ref().map(Line::as_str);
        let (page, req, url) = (&page, &req, &url);
        let done = g
            .external("submit", url, preview, None, |fx| async move {
                let r = page.page().fill(req).await;
                let report = page.checked(r).await?;
                // Where it landed, without the query: a GET form puts its fields (a password)
                // there, and the audit log keeps no secrets.
                fx.done(
                    "form.submitted",
                    hide(json!({"url": url, "button": button, "landed_on": crate::guard::without_query(&report.url)})),
                );
                serde_json::to_value(&report).map_err(StepError::from)
            })
            .await?;
        let report = serde_json::from_value(done)?;
        Ok((report, shot))
    };
    // Cancellation stops the page: the future is dropped and the tab closed.
    let result = tokio::select! {
        _ = cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r,
    };
    page.close(&result).await;
    let (report, shot) = result.map_err(|e| {
        // An error that quotes a field's value must not carry a secret to the model.
        let text = hide(Value::String(e.to_string()));
        match text.as_str() {
            Some(t) if t != e.to_string() => StepError::Fatal(t.to_string()),
            _ => e,
        }
    })?;
    let mut v = hide(serde_json::to_value(&report)?);
    v["screenshot"] = shot["path"].clone();
    Ok(v)
}

async fn run_extract(
    g: &Guard,
    a: &ExtractArgs,
) -> Result<(Vec<extract::Record>, Vec<String>), StepError> {
    let schema = match &a.schema {
        // A path: read through the guard like any file a job names.
        Value::String(path) => {
            let bytes = g.read_file(path)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                StepError::Fatal(format!(
                    "schema file {path}: not UTF-8 text; save it as UTF-8 YAML or JSON"
                ))
            })?;
            Schema::parse(&text)
                .map_err(|e| StepError::Invalid(format!("schema file {path}: {e}")))?
        }
        v => Schema::parse(&serde_json::to_string(v).unwrap_or_default())
            .map_err(|e| StepError::Invalid(e.to_string()))?,
    };
    let max_pages = a.max_pages.max(1) as usize;
    let url = a.url.0.clone();
    let page = a.place.open(g, &url).await?;
    let result = async {
        page.start(&url).await?;
        let r = page.page().extract_pages(&schema, max_pages).await;
        page.checked(r).await.map(|(records, _)| records)
    }
    .await;
    page.close(&result).await;
    Ok((result?, schema.field_names()))
}

/// `browser.scroll`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScrollArgs {
    /// The page.
    url: WebUrl,
    /// CSS selector of the items to count.
    selector: Line,
    /// Stop once this many match (default: until the feed ends).
    count: Option<u64>,
    /// The feed has ended when nothing new appears for this long.
    #[serde(default = "idle_ms")]
    idle_ms: u64,
    #[serde(flatten)]
    place: Place,
}

fn idle_ms() -> u64 {
    1500
}

/// What `browser.scroll` saw.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScrollOut {
    /// The report written (JSON).
    path: String,
    /// Items matching the selector at the end.
    items: usize,
    /// Why it stopped.
    stopped: Value,
}

/// `browser.scroll`: scroll until enough items match (or the feed ends) and save what happened.
pub(super) async fn scroll(g: Guard, a: ScrollArgs, ctx: StepCtx) -> Result<ScrollOut, StepError> {
    let url = a.url.0.clone();
    let mut until = ScrollUntil::new(a.selector.as_str(), a.count.map(|c| c as usize));
    until.idle = std::time::Duration::from_millis(a.idle_ms);
    let page = a.place.open(&g, &url).await?;
    let work = async {
        page.start(&url).await?;
        let r = page.page().scroll_until(&until).await;
        page.checked(r).await
    };
    let result = tokio::select! {
        _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r,
    };
    page.close(&result).await;
    let report = result?;
    let path = g
        .write_output(
            "json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    Ok(ScrollOut {
        path,
        items: report.items,
        stopped: serde_json::to_value(report.stopped).unwrap_or_default(),
    })
}

/// `browser.click`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClickArgs {
    /// The page.
    url: WebUrl,
    /// What the button or link says, or role=button[name="…"], text=…, css=….
    text: Line,
    #[serde(flatten)]
    place: Place,
}

/// What `browser.click` did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClickOut {
    /// The report written (JSON).
    path: String,
    /// Whether the click led to another page.
    navigated: bool,
    /// The page's URL afterwards.
    url: String,
}

/// `browser.click`: click a button or link by what it says, once the person agrees (a click can
/// send, delete or buy as much as a submit can).
pub(super) async fn click(g: Guard, a: ClickArgs, ctx: StepCtx) -> Result<ClickOut, StepError> {
    let url = a.url.0.clone();
    let text = a.text.0.clone();
    let locator = Locator::clickable(&text)?;
    let page = a.place.open(&g, &url).await?;
    let work = async {
        page.start(&url).await?;
        // Wait until it is there before asking, so the person approves something real.
        let r = page.page().locate(&locator).await;
        let found = page.checked(r).await?;
        let preview = json!({"button": text, "element": found.element});
        let (page, locator, url, text) = (&page, &locator, &url, &text);
        let done = g
            .external("click", url, preview, None, |fx| async move {
                let r = page.page().click(locator).await;
                let report = page.checked(r).await?;
                fx.done(
                    "page.clicked",
                    json!({"url": url, "button": text,
                           "landed_on": crate::guard::without_query(&report.url)}),
                );
                serde_json::to_value(&report).map_err(StepError::from)
            })
            .await?;
        serde_json::from_value::<deskhand_browser::ClickReport>(done).map_err(StepError::from)
    };
    let result = tokio::select! {
        _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r,
    };
    page.close(&result).await;
    let report = result?;
    let path = g
        .write_output(
            "json",
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    Ok(ClickOut {
        path,
        navigated: report.navigated,
        url: report.url,
    })
}
