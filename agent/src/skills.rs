//! Built-in skills: what a job can ask for, the parameters each takes, and the plan (steps) each
//! runs. The skills issue replaces this table with skills loaded from SKILL.md + skill.yaml folders;
//! until then `browser.fill`, `browser.extract` and `noop` are built in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deskhand_browser::extract::{self, Format, Schema};
use deskhand_browser::{FillRequest, Shot, Submit};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::browsers::BrowserPool;
use crate::job::JobError;
use crate::output::atomic_write;
use crate::runner::{RetryPolicy, Step, StepError};
use crate::store::Store;

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// An http(s) URL.
    Url,
    /// Text.
    String,
    /// Any JSON (object, array…); a string holding JSON is parsed.
    Json,
    /// true/false.
    Bool,
    /// Whole number.
    Int,
}

/// One parameter of a skill.
#[derive(Debug, Clone, Serialize)]
pub struct ParamDef {
    /// Name.
    pub name: &'static str,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Must be given.
    pub required: bool,
    /// Used when not given.
    pub default: Option<Value>,
    /// For people.
    pub description: &'static str,
}

/// A skill a job can name.
#[derive(Debug, Clone, Serialize)]
pub struct SkillDef {
    /// Name (`browser.fill`).
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its parameters.
    pub params: Vec<ParamDef>,
}

/// What steps need from the agent.
pub struct SkillEnv {
    /// The workspace folder.
    pub workspace: PathBuf,
    /// The shared browser.
    pub browsers: BrowserPool,
    /// State (to record outputs).
    pub store: Store,
    /// Gmail, Calendar and Notion, opened on first use.
    pub connectors: crate::connector_skills::Connectors,
}

/// The built-in skills.
pub fn builtin() -> Vec<SkillDef> {
    let p = |name, kind, required, default: Option<Value>, description| ParamDef {
        name,
        kind,
        required,
        default,
        description,
    };
    vec![
        SkillDef {
            name: "browser.fill",
            description: "Open a page, fill its form by field labels, optionally submit, and save a report and a screenshot in reports/.",
            params: vec![
                p("url", ParamType::Url, true, None, "The page with the form."),
                p("fields", ParamType::Json, true, None, "Field labels to values, e.g. {\"Email\": \"a@b.c\", \"Subscribe\": true}."),
                p("submit", ParamType::String, false, None, "Text of the button to click afterwards."),
                p("partial", ParamType::Bool, false, Some(json!(false)), "Fill what matches and report the rest."),
            ],
        },
        SkillDef {
            name: "browser.extract",
            description: "Open a page and extract records with a schema (following next links) into reports/.",
            params: vec![
                p("url", ParamType::Url, true, None, "The first page."),
                p("schema", ParamType::Json, true, None, "Extraction schema {items, fields, next}, or a path to a schema file in the workspace."),
                p("format", ParamType::String, false, Some(json!("csv")), "csv, jsonl or json."),
                p("max_pages", ParamType::Int, false, Some(json!(10)), "Follow next links at most this many pages."),
            ],
        },
        SkillDef {
            name: "gmail.search",
            description: "Sync Gmail, then save the messages matching a Gmail-style query in reports/.",
            params: vec![
                p("query", ParamType::String, true, None, "Gmail search syntax, e.g. \"from:grace is:unread newer_than:7d\"."),
                p("limit", ParamType::Int, false, Some(json!(50)), "At most this many messages, newest first."),
                p("account", ParamType::String, false, Some(json!("default")), "Which Google connection."),
            ],
        },
        SkillDef {
            name: "calendar.agenda",
            description: "Sync Google Calendar, then save the coming days' events in reports/.",
            params: vec![
                p("days", ParamType::Int, false, Some(json!(7)), "Days from today."),
                p("account", ParamType::String, false, Some(json!("default")), "Which Google connection."),
            ],
        },
        SkillDef {
            name: "notion.query",
            description: "Sync Notion, then save a data source's pages (optionally filtered) in reports/.",
            params: vec![
                p("data_source", ParamType::String, true, None, "Data source id or title."),
                p("where", ParamType::Json, false, Some(json!({})), "Property values to match, e.g. {\"Status\": \"Done\"}."),
                p("account", ParamType::String, false, Some(json!("default")), "Which Notion connection."),
            ],
        },
        SkillDef {
            name: "noop",
            description: "Does nothing (for checking the agent and measuring dispatch).",
            params: vec![],
        },
    ]
}

/// Find a skill and check `params` against it; returns the params with defaults filled in.
pub fn check(
    skills: &[SkillDef],
    name: &str,
    params: &Map<String, Value>,
) -> Result<(SkillDef, Map<String, Value>), JobError> {
    let skill = skills
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(|| JobError::UnknownSkill {
            name: name.to_string(),
            available: skills.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        })?;
    let mut out = Map::new();
    for k in params.keys() {
        if !skill.params.iter().any(|p| p.name == k) {
            let known: Vec<_> = skill.params.iter().map(|p| p.name).collect();
            return Err(JobError::Invalid(format!(
                "skill {name} has no parameter {k:?}; its parameters are: {}",
                known.join(", ")
            )));
        }
    }
    for p in &skill.params {
        let v = match (params.get(p.name), &p.default) {
            (Some(v), _) => coerce(p, v.clone())
                .map_err(|e| JobError::Invalid(format!("parameter {:?} of {name}: {e}", p.name)))?,
            (None, Some(d)) => d.clone(),
            (None, None) if p.required => {
                return Err(JobError::Invalid(format!(
                    "skill {name} needs parameter {:?} ({})",
                    p.name, p.description
                )))
            }
            (None, None) => continue,
        };
        out.insert(p.name.to_string(), v);
    }
    Ok((skill, out))
}

fn coerce(p: &ParamDef, v: Value) -> Result<Value, String> {
    match (p.kind, v) {
        (ParamType::Url, Value::String(s)) => match url::Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https" | "file") => Ok(Value::String(s)),
            _ => Err(format!("{s:?} is not an http(s) URL")),
        },
        (ParamType::String, Value::String(s)) => Ok(Value::String(s)),
        (ParamType::Json, Value::String(s)) => {
            Ok(serde_json::from_str(&s).unwrap_or(Value::String(s)))
        }
        (ParamType::Json, v) => Ok(v),
        (ParamType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (ParamType::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (ParamType::Int, Value::Number(n)) if n.is_i64() => Ok(Value::Number(n)),
        (ParamType::Int, Value::String(s)) => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{s:?} is not a whole number")),
        (kind, v) => Err(format!("expected {kind:?}, got {v}")),
    }
}

/// The plan (steps) for a checked skill invocation.
pub fn plan(
    skill: &str,
    params: Map<String, Value>,
    env: Arc<SkillEnv>,
    job_id: &str,
) -> Vec<Step> {
    let job_id = job_id.to_string();
    match skill {
        "browser.fill" => {
            let (e1, e2, params2, id1, id2) = (
                env.clone(),
                env.clone(),
                params.clone(),
                job_id.clone(),
                job_id.clone(),
            );
            let mut fill = Step::new(
                "fill",
                &[],
                Arc::new(move |ctx| {
                    let (env, params, job) = (e1.clone(), params.clone(), id1.clone());
                    Box::pin(async move { browser_fill(&env, &params, &job, ctx.cancel).await })
                }),
            );
            // Submitting twice is a side effect a retry must not repeat.
            fill.retry = RetryPolicy::once();
            fill.timeout = Duration::from_secs(120);
            let report = Step::new(
                "report",
                &["fill"],
                Arc::new(move |ctx| {
                    let (env, job) = (e2.clone(), id2.clone());
                    let _ = &params2;
                    Box::pin(async move {
                        write_output(
                            &env,
                            &job,
                            "browser.fill",
                            "json",
                            serde_json::to_vec_pretty(&ctx.inputs["fill"]).unwrap_or_default(),
                        )
                        .await
                    })
                }),
            );
            vec![fill, report]
        }
        "browser.extract" => {
            let (e1, e2, p1, p2, id1, id2) = (
                env.clone(),
                env.clone(),
                params.clone(),
                params.clone(),
                job_id.clone(),
                job_id.clone(),
            );
            let mut ex = Step::new(
                "extract",
                &[],
                Arc::new(move |_ctx| {
                    let (env, params) = (e1.clone(), p1.clone());
                    let _ = &id1;
                    Box::pin(async move { browser_extract(&env, &params).await })
                }),
            );
            ex.timeout = Duration::from_secs(300);
            let write = Step::new(
                "write",
                &["extract"],
                Arc::new(move |ctx| {
                    let (env, job, params) = (e2.clone(), id2.clone(), p2.clone());
                    Box::pin(async move {
                        let format: Format =
                            params["format"].as_str().unwrap_or("csv").parse().map_err(
                                |e: deskhand_browser::Error| StepError::Fatal(e.to_string()),
                            )?;
                        let recs: Vec<extract::Record> =
                            serde_json::from_value(ctx.inputs["extract"]["records"].clone())
                                .unwrap_or_default();
                        let cols: Option<Vec<String>> =
                            serde_json::from_value(ctx.inputs["extract"]["columns"].clone()).ok();
                        let mut buf = Vec::new();
                        extract::write_records(&mut buf, &recs, format, cols.as_deref())
                            .map_err(|e| StepError::Fatal(e.to_string()))?;
                        let ext = params["format"].as_str().unwrap_or("csv").to_string();
                        let mut out =
                            write_output(&env, &job, "browser.extract", &ext, buf).await?;
                        out["records"] = Value::from(recs.len());
                        Ok(out)
                    })
                }),
            );
            vec![ex, write]
        }
        "gmail.search" | "calendar.agenda" | "notion.query" => {
            crate::connector_skills::plan(skill, params, env, &job_id)
        }
        _ => vec![Step::new(
            "noop",
            &[],
            Arc::new(|_| Box::pin(async { Ok(Value::Null) })),
        )],
    }
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

async fn browser_fill(
    env: &SkillEnv,
    params: &Map<String, Value>,
    job: &str,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Value, StepError> {
    let (browser, page) = env.browsers.page().await.map_err(browser_error)?;
    let url = params["url"].as_str().unwrap_or_default().to_string();
    let fields = params["fields"]
        .as_object()
        .cloned()
        .ok_or_else(|| StepError::Fatal("`fields` must be an object of label → value".into()))?;
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

async fn browser_extract(env: &SkillEnv, params: &Map<String, Value>) -> Result<Value, StepError> {
    let schema = match &params["schema"] {
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
    let max_pages = params["max_pages"].as_i64().unwrap_or(10).max(1) as usize;
    let (browser, page) = env.browsers.page().await.map_err(browser_error)?;
    let url = params["url"].as_str().unwrap_or_default().to_string();
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
fn resolve_in(workspace: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    Some(workspace.join(p))
}

/// Write `reports/<skill>-<job>.<ext>` atomically. The name depends only on the job, so a
/// redelivered job overwrites its own report instead of adding a second one.
pub(crate) async fn write_output(
    env: &SkillEnv,
    job: &str,
    skill: &str,
    ext: &str,
    bytes: Vec<u8>,
) -> Result<Value, StepError> {
    let rel = format!("reports/{skill}-{job}.{ext}");
    let path = env.workspace.join(&rel);
    tokio::task::spawn_blocking(move || atomic_write(&path, &bytes))
        .await
        .map_err(|e| StepError::Fatal(e.to_string()))?
        .map_err(|e| StepError::Retryable(format!("writing {rel}: {e}")))?;
    env.store
        .add_output(job, &rel)
        .await
        .map_err(|e| StepError::Retryable(e.to_string()))?;
    Ok(json!({"path": rel}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_and_defaulted() {
        let skills = builtin();
        let mut p = Map::new();
        p.insert("url".into(), json!("https://example.com"));
        p.insert(
            "schema".into(),
            json!("{\"items\": \"li\", \"fields\": {\"a\": \"b\"}}"),
        );
        let (_, out) = check(&skills, "browser.extract", &p).unwrap();
        assert_eq!(out["format"], "csv");
        assert!(out["schema"].is_object(), "JSON in a string is parsed");
        assert!(matches!(
            check(&skills, "nope", &p),
            Err(JobError::UnknownSkill { .. })
        ));
        p.insert("colour".into(), json!("red"));
        assert!(check(&skills, "browser.extract", &p)
            .unwrap_err()
            .to_string()
            .contains("colour"));
        let mut bad = Map::new();
        bad.insert("url".into(), json!("javascript:alert(1)"));
        bad.insert("fields".into(), json!({}));
        assert!(check(&skills, "browser.fill", &bad)
            .unwrap_err()
            .to_string()
            .contains("not an http"));
        assert!(resolve_in(Path::new("/w"), "../etc/passwd").is_none());
    }
}
