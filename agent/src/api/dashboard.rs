//! The live dashboard on the local API. `GET /dashboard` and its script are public and hold no
//! data; the script takes the desktop's token from the address's fragment (`deskhand dashboard`
//! prints it; a fragment never reaches a server or a log), keeps it for the tab's session, and
//! asks `GET /api/dashboard` for the content, waiting there until it changes (a long poll).
//! Ticking, dragging and adding a task are `POST /api/dashboard/tasks`, each run as a job of a
//! `tasks.*` action: through the guard, audited, journaled, undoable with `deskhand undo JOB`.

use std::time::Duration;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{declares_json, ApiError, AppState, Caller};
use crate::job::{Job, JobState};

/// The page's script.
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
/// How long `GET /api/dashboard?after=V` waits for a change before answering 204.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How often a waiting request looks again (files, store, ledger).
const TICK: Duration = Duration::from_millis(250);
/// How long an edit waits for its job.
const EDIT_WAIT: Duration = Duration::from_secs(30);
/// The origin jobs from the live page carry.
const ORIGIN: &str = "dashboard";

/// `GET /dashboard`: the page without data, under a policy that lets only its own script run
/// and talk only to this server.
pub(super) async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                deskhand_workspace::dashboard::LIVE_CSP,
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        deskhand_workspace::dashboard::live_shell(),
    )
        .into_response()
}

/// `GET /dashboard/app.js`.
pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        APP_JS,
    )
        .into_response()
}

/// `GET /api/dashboard`'s query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Wait {
    /// The version the page shows: answer when the content differs from it.
    after: Option<String>,
}

/// `GET /api/dashboard[?after=V]`: `{version, html}` now, or once it differs from `V`; 204
/// when nothing changed within [`LONG_POLL`].
pub(super) async fn content(
    State(s): State<AppState>,
    q: Result<Query<Wait>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let stopping = s.agent.stopping();
    let give_up = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let (html, version) = s.agent.live_dashboard().await.map_err(ApiError::Internal)?;
        if q.after.as_deref() != Some(version.as_str()) {
            let body = Json(json!({"version": version, "html": html}));
            return Ok(([(header::CACHE_CONTROL, "no-store")], body).into_response());
        }
        if tokio::time::Instant::now() >= give_up || stopping.is_cancelled() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stopping.cancelled() => {}
        }
    }
}

/// One edit from the live page.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Edit {
    /// Move a task to another section.
    Move {
        line: usize,
        text: String,
        section: String,
    },
    /// Tick or untick a task.
    Done {
        line: usize,
        text: String,
        done: bool,
    },
    /// Add a task.
    Add { text: String, section: String },
}

impl Edit {
    /// The action that makes it and its arguments.
    fn job(self) -> (&'static str, Map<String, Value>) {
        let (skill, args) = match self {
            Edit::Move {
                line,
                text,
                section,
            } => (
                "tasks.move",
                json!({"line": line, "text": text, "section": section}),
            ),
            Edit::Done { line, text, done } => (
                "tasks.done",
                json!({"line": line, "text": text, "done": done}),
            ),
            Edit::Add { text, section } => ("tasks.add", json!({"text": text, "section": section})),
        };
        (skill, args.as_object().cloned().unwrap_or_default())
    }
}

/// `POST /api/dashboard/tasks`: run the edit as a job and answer when it ended: 200 with the
/// job and its result, 409 with the job's error (the task changed on disk, say), 202 if it is
/// still running after [`EDIT_WAIT`].
pub(super) async fn edit(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if let Caller::Device(id) = &caller {
        // Jobs from a device are signed by it (see create_job); this endpoint makes unsigned ones.
        return Err(ApiError::BadRequest(
            "invalid_job",
            format!("device {id}: the dashboard's edits are this desktop's; send a signed job of tasks.move, tasks.done or tasks.add instead"),
        ));
    }
    if !declares_json(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "send the edit as JSON with `Content-Type: application/json`".into(),
        ));
    }
    let edit: Edit = serde_json::from_slice(&body?).map_err(|e| {
        ApiError::BadRequest(
            "bad_request",
            format!("malformed edit ({e}); send {{\"op\": \"move\"|\"done\"|\"add\", …}}"),
        )
    })?;
    let (skill, params) = edit.job();
    let mut events = s.agent.subscribe();
    let id = s.agent.submit(Job::new(skill, params, ORIGIN)).await?;
    let ended = tokio::time::timeout(EDIT_WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) if e.job_id == id && e.state.is_terminal() => return,
                Ok(_) => {}
                // Missed events: the store has the state.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if s.agent
                        .store()
                        .get(&id)
                        .await
                        .is_ok_and(|r| r.state.is_terminal())
                    {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    })
    .await
    .is_ok();
    let r = s.agent.store().get(&id).await?;
    match r.state {
        JobState::Succeeded => {
            Ok(Json(json!({"job": id, "state": r.state.as_str()})).into_response())
        }
        _ if !ended || !r.state.is_terminal() => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"job": id, "state": r.state.as_str()})),
        )
            .into_response()),
        _ => Err(ApiError::Conflict(format!(
            "{skill} (job {id}) {}: {}",
            r.state.as_str(),
            r.error.unwrap_or_default()
        ))),
    }
}
