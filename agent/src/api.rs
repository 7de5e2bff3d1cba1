//! The local HTTP API (127.0.0.1 only) and the phone page. A caller is either this desktop (the
//! bearer token in `.deskhand/api-token`) or a paired device signing each request with its own
//! key ([`crate::guard::requests`]). One error type becomes the response: 4xx carry a safe
//! message, 5xx are logged here and answered generically.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::agent::{Agent, AgentError};
use crate::guard::devices::SignatureError;
use crate::guard::requests;
use crate::job::{Job, JobError, JobEvent, MAX_JOB_BYTES};
use crate::store::{JobRecord, StoreError};

const PHONE_PAGE: &str = include_str!("../assets/phone.html");
const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

/// Errors as the API answers them.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with a code and a message the sender can act on.
    BadRequest(&'static str, String),
    /// 401.
    Unauthorized,
    /// 401 for a device credential that did not pass: a code and why.
    Refused(&'static str, String),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 500: logged, answered generically.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::BadRequest(code, m) => (if code == "too_large" { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST }, code, m),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong credential: sign the request with a paired device's key (`deskhand pair`), or use the token printed by `deskhand serve` (also in .deskhand/api-token)".into()),
            ApiError::Refused(code, m) => (StatusCode::UNAUTHORIZED, code, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error in the API");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the agent's log".into())
            }
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Job(j) => ApiError::BadRequest(j.code(), j.to_string()),
            AgentError::Store(StoreError::NotFound(id)) => {
                ApiError::NotFound(format!("no job {id}"))
            }
            AgentError::AlreadyEnded(..) => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AgentError::Store(e).into()
    }
}

#[derive(Clone)]
struct AppState {
    agent: Agent,
    token: std::sync::Arc<String>,
    devices: crate::guard::devices::Devices,
    nonces: std::sync::Arc<requests::Nonces>,
}

/// Who is calling, as the auth layer established it.
#[derive(Debug, Clone, PartialEq)]
enum Caller {
    /// Holds this desktop's bearer token.
    Desktop,
    /// A paired device that signed the request.
    Device(String),
}

impl Caller {
    /// How decisions and audit entries name this caller.
    fn name(&self) -> String {
        match self {
            Caller::Desktop => "api".into(),
            Caller::Device(id) => format!("api:{id}"),
        }
    }
}

/// Read the API token from the workspace, creating it (mode 0600) on first run.
pub fn load_or_create_token(workspace: &Path) -> std::io::Result<String> {
    let path = workspace.join(".deskhand").join("api-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    let token = crate::job::random_hex(24);
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(&path)?, token.as_bytes())?;
    Ok(token)
}

/// The router: `/` phone page, `/openapi.yaml`, and `/api/*` behind a desktop token or a device
/// signature.
pub fn router(agent: Agent, token: String) -> Router {
    let devices = crate::guard::devices::Devices::in_dir(agent.store().private_dir());
    let state = AppState {
        agent,
        token: std::sync::Arc::new(token),
        devices,
        nonces: Default::default(),
    };
    let api = Router::new()
        .route("/skills", get(list_skills))
        .route("/jobs", get(list_jobs).post(create_job))
        .route("/connections", get(list_connections))
        .route("/schedules", get(list_schedules))
        .route("/approvals", get(list_approvals))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/refuse", post(refuse))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/events", get(job_events))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_caller,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JOB_BYTES));
    Router::new()
        .route("/", get(|| async { Html(PHONE_PAGE) }))
        .route(
            "/openapi.yaml",
            get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }),
        )
        .nest("/api", api)
        .with_state(state)
}

/// Let a request through as [`Caller::Desktop`] (bearer token) or [`Caller::Device`] (signed by a
/// paired device); anything else is refused, and a device credential that fails is audited.
async fn require_caller(
    State(s): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // EventSource cannot send headers, so the events stream also takes ?token= or ?auth=.
    let device = auth
        .and_then(|a| a.strip_prefix(requests::SCHEME))
        .map(|c| c.trim().to_string())
        .or_else(|| query_param(&req, "auth"));
    let given = auth
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from)
        .or_else(|| query_param(&req, "token"));
    if let Some(credential) = device {
        return device_request(&s, &credential, req, next).await;
    }
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), s.token.as_bytes()) => {
            let mut req = req;
            req.extensions_mut().insert(Caller::Desktop);
            Ok(next.run(req).await)
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// One query parameter, decoded.
fn query_param(req: &Request, name: &str) -> Option<String> {
    req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// Verify a device-signed request (its body is read to check its hash, then handed on).
async fn device_request(
    s: &AppState,
    credential: &str,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_JOB_BYTES)
        .await
        .map_err(|e| ApiError::BadRequest("too_large", format!("request body: {e}")))?;
    // As the device sent it: `nest` strips the `/api` prefix from `parts.uri`.
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| parts.uri.clone());
    let target = requests::signed_target(uri.path(), uri.query());
    let (devices, nonces) = (s.devices.clone(), std::sync::Arc::clone(&s.nonces));
    let (method, cred, bytes) = (
        parts.method.to_string(),
        credential.to_string(),
        body.clone(),
    );
    let target2 = target.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let cred = requests::Credential::parse(&cred)?;
        requests::verify(
            &devices,
            &nonces,
            &cred,
            &method,
            &target2,
            &bytes,
            chrono::Utc::now(),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match checked {
        Ok(device) => {
            parts.extensions.insert(Caller::Device(device));
            Ok(next
                .run(Request::from_parts(parts, axum::body::Body::from(body)))
                .await)
        }
        // The agent cannot read its own device list: its fault, not the caller's.
        Err(why @ requests::RequestError::Device(SignatureError::File { .. })) => {
            Err(ApiError::Internal(why.to_string()))
        }
        Err(why) => {
            let device: String = credential
                .split('.')
                .next()
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect();
            // The path only: a query could carry anything, a token included.
            let path: String = uri.path().chars().take(200).collect();
            if why.about_a_paired_device() {
                let store = s.agent.store().clone();
                let data = json!({"device": device, "method": parts.method.as_str(),
                                  "path": path, "why": why.to_string()});
                let _ = tokio::task::spawn_blocking(move || {
                    store.audit().record("api.refused", None, data)
                })
                .await;
            }
            tracing::warn!(%device, %path, %why, "API request refused");
            Err(ApiError::Refused(why.code(), why.to_string()))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn list_skills(State(s): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(s.agent.skills().list()).unwrap_or_default())
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

/// A job as lists show it.
pub(crate) fn summary(r: &JobRecord) -> Value {
    json!({"id": r.id, "skill": r.skill, "state": r.state, "step": r.step, "steps": r.steps,
           "created_at": r.created_at, "updated_at": r.updated_at, "error": r.error})
}

/// Connections with their health, so the phone can say "reconnect Google".
async fn list_schedules(State(s): State<AppState>) -> Json<Value> {
    let ledger = std::sync::Arc::clone(s.agent.ledger());
    let list = tokio::task::spawn_blocking(move || {
        ledger
            .list()
            .unwrap_or_default()
            .into_iter()
            .map(|sch| {
                let mut v = serde_json::to_value(&sch).unwrap_or_default();
                v["last_run"] = serde_json::to_value(ledger.last_run(&sch.id).ok().flatten())
                    .unwrap_or_default();
                v
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(Value::Array(list))
}

async fn list_connections(State(s): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(s.agent.connections().await).unwrap_or_default())
}

async fn list_jobs(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let jobs = s
        .agent
        .store()
        .list(q.limit.unwrap_or(20).clamp(1, 100))
        .await?;
    Ok(Json(Value::Array(jobs.iter().map(summary).collect())))
}

/// `{skill, params}` or `{text}` from a client; the agent fills in id, origin, nonce, time.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRequest {
    skill: Option<String>,
    text: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
}

async fn create_job(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // A whole envelope signed by a paired device (the phone page with its device key) is taken
    // as it is, and its signature must verify.
    if let Ok(job) = Job::from_bytes(&body) {
        if let Caller::Device(id) = &caller {
            if crate::guard::devices::signer_of(&job.origin) != id {
                return Err(ApiError::BadRequest(
                    "invalid_job",
                    format!(
                        "device {id} may send only jobs it signed itself, not jobs from {:?}",
                        job.origin
                    ),
                ));
            }
        }
        if job.signature.is_some() {
            let id = s.agent.submit(job).await?;
            return Ok((
                StatusCode::CREATED,
                Json(json!({"id": id, "state": "queued"})),
            ));
        }
    }
    if let Caller::Device(id) = &caller {
        // Only this desktop vouches for unsigned requests; a device signs its jobs, whose nonce
        // the agent keeps, so a replayed request cannot start a second job.
        return Err(ApiError::BadRequest(
            "invalid_job",
            format!("device {id}: send the whole job envelope signed with your device key, not a bare {{skill, params}} request"),
        ));
    }
    let req: JobRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest("invalid_job", format!("malformed job: {e}")))?;
    let mut job = Job::new(
        req.skill.clone().unwrap_or_default(),
        req.params,
        "http-api",
    );
    job.skill = req.skill;
    job.text = req.text;
    let id = s.agent.submit(job).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "state": "queued"})),
    ))
}

async fn get_job(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    // Events first: the record read after them is at least as new, so the state never lags the
    // events listed with it (a job that ended in between showed "queued" beside its "succeeded").
    let events = s.agent.store().events(&id, 0).await?;
    let r = s.agent.store().get(&id).await?;
    let params = Job::from_bytes(&r.envelope)
        .map(|j| Value::Object(j.resolved().1))
        .unwrap_or(Value::Null);
    let mut v = summary(&r);
    v["params"] = params;
    v["outputs"] = json!(r.outputs);
    v["events"] = serde_json::to_value(events).unwrap_or_default();
    Ok(Json(v))
}

async fn list_approvals(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = crate::guard::approvals::list(s.agent.store(), false).await?;
    Ok(Json(serde_json::to_value(list).unwrap_or_default()))
}

async fn decide(
    s: &AppState,
    caller: &Caller,
    id: &str,
    approve: bool,
) -> Result<Json<Value>, ApiError> {
    use crate::guard::approvals::{decide, ApprovalError};
    match decide(s.agent.store(), id, approve, &caller.name()).await {
        Ok(a) => Ok(Json(serde_json::to_value(a).unwrap_or_default())),
        Err(ApprovalError::NotFound(m)) => Err(ApiError::NotFound(format!("no approval {m}"))),
        Err(e @ ApprovalError::Decided { .. }) => Err(ApiError::Conflict(e.to_string())),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

async fn approve(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    decide(&s, &caller, &id, true).await
}

async fn refuse(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    decide(&s, &caller, &id, false).await
}

async fn cancel_job(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = s.agent.cancel(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "state": state})),
    ))
}

async fn job_events(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading history so nothing falls between the two; drop live duplicates by seq.
    let live = s.agent.subscribe();
    let history = s.agent.store().events(&id, 0).await?;
    if history.is_empty() {
        s.agent.store().get(&id).await?;
    }
    let last_seq = history.last().map(|e| e.seq).unwrap_or(0);
    let ended = history.iter().any(JobEvent::is_terminal);
    let job = id.clone();
    let live = futures::stream::unfold(live, move |mut rx| {
        let job = job.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.job_id == job && e.seq > last_seq => return Some((e, rx)),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
    .boxed();
    let live = if ended {
        futures::stream::empty().boxed()
    } else {
        live
    };
    let all = crate::job::until_terminal(futures::stream::iter(history).chain(live).boxed());
    let events = all.map(|e| {
        Ok(Event::default()
            .event("job")
            .json_data(&e)
            .unwrap_or_default())
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        ApiError::BadRequest(e.code(), e.to_string())
    }
}
