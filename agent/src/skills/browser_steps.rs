//! The browser actions: fill a form, extract records. Both drive the agent's shared headless
//! Chromium; cancellation closes the page.

use std::path::{Path, PathBuf};

use deskhand_browser::extract::{self, Format, Schema};
use deskhand_browser::{FillRequest, Shot, Submit};
use serde_json::{json, Map, Value};

use super::{write_output, SkillEnv};
use crate::runner::{StepCtx, StepError};

/// `browser.fill`: fill, screenshot, and save the report beside the screenshot.
pub(super) async fn fill(
    env: &SkillEnv,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let report = run_fill(env, args, &ctx.job_id, ctx.cancel.clone()).await?;
    let mut out = write_output(
        env,
        &ctx.job_id,
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
        env.store.audit().record(
            "form.submitted",
            Some(&ctx.job_id),
            json!({"url": super::arg(args, "url"), "button": super::arg(args, "submit"), "landed_on": report["submit"]["url"]}),
        );
    }
    Ok(out)
}

/// `browser.extract`: extract and write the records in the asked format (csv, jsonl, json, xlsx).
pub(super) async fn extract(
    env: &SkillEnv,
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
        r = run_extract(env, args) => r?,
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
    let mut out = write_output(env, &ctx.job_id, "browser.extract", &fmt, bytes).await?;
    out["records"] = Value::from(recs.len());
    Ok(out)
}

fn browser_error(e: deskhand_browser::Error) -> StepError {
    match e {
        deskhand_browser::Error::BrowserGone(_) => {
            StepError::Fatal(format!("Chromium crashed during the step: {e}"))
        }
        deskhand_browser::Error::Navigation { .. } => StepError::Retryable(e.to_string()),
        other => StepError::Fatal(other.to_string()),
    }
}

async fn run_fill(
    env: &SkillEnv,
    params: &Map<String, Value>,
    job: &str,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Value, StepError> {
    let (browser, page) = env.browsers.page().await.map_err(browser_error)?;
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
    req.submit = params
        .get("submit")
        .and_then(|s| s.as_str())
        .map(|s| Submit::Button(s.to_string()));
    req.allow_partial = params
        .get("partial")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let work = async {
        page.goto(&url).await?;
        let report = page.fill(&req).await?;
        let png = page.screenshot(&Shot::Viewport).await?;
        Ok::<_, deskhand_browser::Error>((report, png))
    };
    // Cancellation stops the page: the future is dropped and the tab closed.
    let result = tokio::select! {
        _ = cancel.cancelled() => Err(StepError::Cancelled),
        r = work => r.map_err(browser_error),
    };
    let _ = page.close().await;
    if let Err(StepError::Fatal(m)) = &result {
        if m.contains("Chromium crashed") {
            env.browsers.forget(&browser).await;
        }
    }
    let (report, png) = result?;
    let shot = write_output(env, job, "browser.fill", "png", png).await?;
    let mut v = serde_json::to_value(&report).map_err(|e| StepError::Fatal(e.to_string()))?;
    v["screenshot"] = shot["path"].clone();
    Ok(v)
}

async fn run_extract(env: &SkillEnv, params: &Map<String, Value>) -> Result<Value, StepError> {
    let schema = match &super::arg(params, "schema") {
        Value::String(path) => {
            let p = resolve_in(&env.workspace, path).ok_or_else(|| {
                StepError::Fatal(format!(
                    "schema path {path:?} must stay inside the workspace"
                ))
            })?;
            Schema::from_file(&p).map_err(|e| StepError::Fatal(e.to_string()))?
        }
        v => Schema::parse(&serde_json::to_string(v).unwrap_or_default())
            .map_err(|e| StepError::Fatal(e.to_string()))?,
    };
    let max_pages = super::arg(params, "max_pages")
        .as_i64()
        .unwrap_or(10)
        .max(1) as usize;
    let (browser, page) = env.browsers.page().await.map_err(browser_error)?;
    let url = super::arg(params, "url")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let result = match page.goto(&url).await {
        Ok(()) => page
            .extract_pages(&schema, max_pages)
            .await
            .map(|(records, _)| records),
        Err(e) => Err(e),
    };
    let _ = page.close().await;
    let records = match result {
        Ok(r) => r,
        Err(e) => {
            let se = browser_error(e);
            if matches!(&se, StepError::Fatal(m) if m.contains("Chromium crashed")) {
                env.browsers.forget(&browser).await;
            }
            return Err(se);
        }
    };
    Ok(json!({"records": records, "columns": schema.field_names()}))
}

/// A workspace-relative path that cannot escape the workspace.
pub(super) fn resolve_in(workspace: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    Some(workspace.join(p))
}
