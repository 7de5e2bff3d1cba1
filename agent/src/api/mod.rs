//! The local HTTP API (127.0.0.1 only) and the phone page. A caller is either this desktop (the
//! bearer token in `.deskhand/api-token`) or a paired device signing each request with its own
//! key ([`crate::guard::requests`]). One error type becomes the response: 4xx carry a safe
//! message, 5xx are logged here and answered generically.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::{Stream, StreamExt};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::{json, Map, Value};

mod dashboard;

use crate::agent::{Agent, AgentError};
use crate::guard::requests;
use crate::job::{Job, JobError, JobEvent, MAX_JOB_BYTES};
use crate::mcp::server::DeskhandMcp;
use crate::store::{JobRecord, StoreError};

const PHONE_PAGE: &str = include_str!("../../assets/phone/index.html");
/// The phone page's other files (docs/hub.md): path, content type, bytes.
const PHONE_FILES: [(&str, &str, &str); 4] = [
    (
        "/nats.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/phone/nats.js"),
    ),
    (
        "/sw.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/phone/sw.js"),
    ),
    (
        "/manifest.webmanifest",
        "application/manifest+json",
        include_str!("../../assets/phone/manifest.webmanifest"),
    ),
    (
        "/icon.svg",
        "image/svg+xml",
        include_str!("../../assets/phone/icon.svg"),
    ),
];
const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

/// What a 401 answers in `WWW-Authenticate` (RFC 9110 §11.6.1): the two ways to authenticate.
const CHALLENGE: &str = "Bearer realm=\"deskhand\", Deskhand-Device realm=\"deskhand\"";

/// What a 401 says when no credential, or a wrong token, was sent.
const NO_CREDENTIAL: &str = "missing or wrong credential: sign the request with a paired device's key (`deskhand pair`), or use the token printed by `deskhand serve` (also in .deskhand/api-token)";

/// Errors as the API answers them. Each variant has one status and one `code` documented in
/// `docs/openapi.yaml` (`Error`); every error response, axum's own rejections included, is built
/// from this type, so every error body has the documented shape.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with a code and a message the sender can act on.
    BadRequest(&'static str, String),
    /// 401 `unauthorized`: no credential, a wrong token, or a credential where it is not taken.
    Unauthorized(String),
    /// 401 for a device credential that did not pass: a code and why.
    Refused(&'static str, String),
    /// 404.
    NotFound(String),
    /// 405: the path exists but not with this method (the router adds `Allow`).
    MethodNotAllowed(String),
    /// 409.
    Conflict(String),
    /// 413: the body is over [`MAX_JOB_BYTES`].
    TooLarge(String),
    /// 415: a body that is not declared as JSON.
    UnsupportedMediaType(String),
    /// 500: logged, answered generically.
    Internal(String),
}

impl ApiError {
    /// A 401 for a missing or wrong credential.
    fn unauthorized() -> ApiError {
        ApiError::Unauthorized(NO_CREDENTIAL.into())
    }

    /// Status, code and message as the response carries them.
    fn parts(self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::BadRequest(code, m) => (StatusCode::BAD_REQUEST, code, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            ApiError::Refused(code, m) => (StatusCode::UNAUTHORIZED, code, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::MethodNotAllowed(m) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", m)
            }
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
            ),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error in the API");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the agent's log".into(),
                )
            }
        }
    }

    /// The error for a status some layer answered with a bare body (see [`json_errors`]).
    fn for_status(status: StatusCode, text: String) -> (StatusCode, &'static str, String) {
        match status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest("bad_request", text).parts(),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(text).parts(),
            StatusCode::NOT_FOUND => ApiError::NotFound(text).parts(),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(text).parts(),
            StatusCode::CONFLICT => ApiError::Conflict(text).parts(),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(text).parts(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text).parts(),
            s if s.is_server_error() => {
                let (_, code, m) = ApiError::Internal(text).parts();
                (s, code, m)
            }
            s => (s, "bad_request", text),
        }
    }
}

/// The documented error body, with `WWW-Authenticate` on a 401.
fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let mut r = (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
    }
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        error_response(status, code, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::BadRequest("bad_request", e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        if e.status().is_server_error() {
            ApiError::Internal(e.body_text())
        } else {
            ApiError::BadRequest("bad_request", e.body_text())
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::BadRequest("bad_request", e.body_text())
        }
    }
}

/// The 413 for a body over [`MAX_JOB_BYTES`].
fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "request body is over {} KiB; send large inputs as files or URLs",
        MAX_JOB_BYTES / 1024
    ))
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Job(j) => j.into(),
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

/// The router: `/` phone page, `/openapi.yaml`, `/api/*` behind a desktop token or a device
/// signature, and `/mcp` (MCP over streamable HTTP) behind the desktop token. Every error it
/// answers is the JSON body `docs/openapi.yaml` documents, except the MCP protocol's own.
pub fn router(agent: Agent, token: String) -> Router {
    let devices = crate::guard::devices::Devices::in_dir(agent.store().private_dir());
    let state = AppState {
        agent,
        token: std::sync::Arc::new(token),
        devices,
        nonces: Default::default(),
    };
    // Browsers' EventSource cannot set headers, so the event stream alone also takes its
    // credential from the URL; everywhere else a credential in the URL is refused (it would end up
    // in logs and history for nothing).
    let stream = Router::new()
        .route("/jobs/{id}/events", get(job_events))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_caller_or_query,
        ));
    let api = Router::new()
        .route("/skills", get(list_skills))
        .route("/jobs", get(list_jobs).post(create_job))
        .route("/connections", get(list_connections))
        .route("/schedules", get(list_schedules))
        .route("/approvals", get(list_approvals))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/refuse", post(refuse))
        .route("/approvals/{id}/answer", post(answer))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/dashboard", get(dashboard::content))
        .route("/dashboard/tasks", post(dashboard::edit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_caller,
        ))
        .merge(stream)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JOB_BYTES));
    let mcp = Router::new()
        .route_service("/mcp", mcp_service(&state.agent))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_desktop,
        ));
    let mut page = Router::new()
        .route("/", get(|| async { Html(PHONE_PAGE) }))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script));
    for (path, kind, body) in PHONE_FILES {
        page = page.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, kind)], body) }),
        );
    }
    page.route(
        "/openapi.yaml",
        get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }),
    )
    .method_not_allowed_fallback(method_not_allowed)
    .nest("/api", api)
    .merge(mcp)
    .fallback(not_found)
    .layer(middleware::from_fn(json_errors))
    .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::NotFound(format!(
        "no such path {path:?}; the API is described at /openapi.yaml"
    ))
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "this path does not take {method}; the Allow header lists what it takes"
    ))
}

/// The last line of defence for "every error is the documented JSON": an error response some
/// layer answered with another body (none is known; a new axum extractor or layer could) is
/// rewritten with the code for its status, keeping its headers (`Allow`, for one).
async fn json_errors(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let status = r.status();
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    tracing::warn!(%status, body = %text, "an error response bypassed ApiError; answered as JSON");
    let (status, code, message) = ApiError::for_status(status, text);
    let mut out = error_response(status, code, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Let a request through as [`Caller::Desktop`] (bearer token) or [`Caller::Device`] (signed by a
/// paired device), with the credential in the `Authorization` header only.
async fn require_caller(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authenticate(&s, req, next, false).await
}

/// As [`require_caller`], also taking `?token=` or `?auth=` (for the event stream).
async fn require_caller_or_query(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authenticate(&s, req, next, true).await
}

/// Anything but a good token or a good device signature is refused, and a device credential that
/// fails is audited.
async fn authenticate(
    s: &AppState,
    req: Request,
    next: Next,
    query_ok: bool,
) -> Result<Response, ApiError> {
    if !query_ok {
        if let Some(name) = ["token", "auth"]
            .into_iter()
            .find(|n| query_param(&req, n).is_some())
        {
            return Err(ApiError::Unauthorized(format!(
                "a credential in the URL (`{name}`) is taken only by the event stream \
                 (GET /api/jobs/{{id}}/events), because EventSource cannot set headers; \
                 send it in the Authorization header"
            )));
        }
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let device = auth
        .and_then(|a| a.strip_prefix(requests::SCHEME))
        .map(|c| c.trim().to_string())
        .or_else(|| query_ok.then(|| query_param(&req, "auth")).flatten());
    let given = auth
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from)
        .or_else(|| query_ok.then(|| query_param(&req, "token")).flatten());
    if let Some(credential) = device {
        return device_request(s, &credential, req, next).await;
    }
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), s.token.as_bytes()) => {
            let mut req = req;
            req.extensions_mut().insert(Caller::Desktop);
            Ok(next.run(req).await)
        }
        _ => Err(ApiError::unauthorized()),
    }
}

/// `/mcp`: Deskhand as an MCP server over streamable HTTP (docs/mcp.md), the handler
/// `deskhand mcp` serves on stdio. Sessions end when the daemon stops, so an open event stream
/// does not hold up its shutdown; only loopback `Host`s are taken (rmcp's default, against DNS
/// rebinding).
fn mcp_service(agent: &Agent) -> StreamableHttpService<DeskhandMcp, LocalSessionManager> {
    let handler = DeskhandMcp::new(agent.clone(), agent.workspace().to_path_buf());
    let config = StreamableHttpServerConfig::default().with_cancellation_token(agent.stopping());
    StreamableHttpService::new(move || Ok(handler.clone()), Default::default(), config)
}

/// The credential `/mcp` takes: this desktop's token, in the `Authorization` header. A tool
/// call there becomes a job this desktop vouches for, unsigned (as `deskhand mcp` on stdio
/// does); a paired device may start only jobs it signed itself (`POST /api/jobs`), so it would
/// get more here than there, and is refused. The body is bounded as a job's is.
async fn require_desktop(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let device = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with(requests::SCHEME));
    if device {
        return Err(ApiError::Unauthorized(
            "/mcp takes only this desktop's token (in .deskhand/api-token): a paired device \
             sends jobs it signed itself to /api/jobs"
                .into(),
        ));
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_JOB_BYTES)
        .await
        .map_err(|_| too_large())?;
    let req = Request::from_parts(parts, axum::body::Body::from(body));
    authenticate(&s, req, next, false).await
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
        .map_err(|_| too_large())?;
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
        Err(why) if why.code() == "devices_unreadable" => Err(ApiError::Internal(why.to_string())),
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

/// `GET /api/jobs` answers at most this many jobs (`limit`, documented as 1..=100).
const MAX_LIST: u32 = 100;

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
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::BadRequest(
            "bad_request",
            format!("`limit` must be 1 to {MAX_LIST}; got {limit}"),
        ));
    }
    let jobs = s.agent.store().list(limit).await?;
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

/// Is this body declared as JSON (`application/json` or `application/*+json`, any parameters)?
fn declares_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn create_job(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !declares_json(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "send the job as JSON with `Content-Type: application/json`".into(),
        ));
    }
    let body = body?;
    // Not JSON at all: say so, whoever sent it (a bad envelope from a device is explained below).
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Err(ApiError::BadRequest(
            "bad_request",
            format!("body is not valid JSON: {e}"),
        ));
    }
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
    // JSON, but not of the documented shape (a field unknown or of the wrong type): the body is
    // malformed, as the spec's `bad_request` says; `invalid_job` is for a well-formed request the
    // skill cannot take.
    let req: JobRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest("bad_request", format!("malformed job: {e}")))?;
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
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let UrlPath(id) = id?;
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
    let r = crate::guard::approvals::decide(s.agent.store(), id, approve, &caller.name()).await;
    decided(r)
}

/// An approval decided or answered, or why not.
fn decided(
    r: Result<crate::guard::approvals::Approval, crate::guard::approvals::ApprovalError>,
) -> Result<Json<Value>, ApiError> {
    use crate::guard::approvals::ApprovalError;
    match r {
        Ok(a) => Ok(Json(serde_json::to_value(a).unwrap_or_default())),
        Err(ApprovalError::NotFound(m)) => Err(ApiError::NotFound(format!("no approval {m}"))),
        Err(
            e @ (ApprovalError::Decided { .. }
            | ApprovalError::NeedsAnswer(_)
            | ApprovalError::NotAQuestion(_)),
        ) => Err(ApiError::Conflict(e.to_string())),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// The body of `POST /api/approvals/{id}/answer`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    text: String,
}

async fn answer(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<UrlPath<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let UrlPath(id) = id?;
    if !declares_json(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "send the answer as JSON with `Content-Type: application/json`".into(),
        ));
    }
    let a: AnswerBody = serde_json::from_slice(&body?).map_err(|e| {
        ApiError::BadRequest(
            "bad_request",
            format!("send {{\"text\": \"your answer\"}}: {e}"),
        )
    })?;
    if a.text.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "bad_request",
            "the answer is empty; to decline, refuse the question".into(),
        ));
    }
    let r = crate::guard::approvals::answer(s.agent.store(), &id, &a.text, &caller.name()).await;
    decided(r)
}

async fn approve(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let UrlPath(id) = id?;
    decide(&s, &caller, &id, true).await
}

async fn refuse(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let UrlPath(id) = id?;
    decide(&s, &caller, &id, false).await
}

async fn cancel_job(
    State(s): State<AppState>,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let UrlPath(id) = id?;
    let state = s.agent.cancel(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "state": state})),
    ))
}

async fn job_events(
    State(s): State<AppState>,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let UrlPath(id) = id?;
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
        match e {
            JobError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            e => ApiError::BadRequest(e.code(), e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The router in-process (`oneshot`), one test per promise the API document makes.
    use super::*;
    use crate::agent::AgentConfig;
    use axum::body::Body;
    use tower::ServiceExt;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

    struct App {
        router: Router,
        _ws: tempfile::TempDir,
    }

    async fn app() -> App {
        let ws = tempfile::tempdir().unwrap();
        let mut cfg = AgentConfig::new(ws.path().to_path_buf());
        cfg.keep_awake = false;
        let agent = Agent::start(cfg).await.unwrap();
        App {
            router: router(agent, TOKEN.into()),
            _ws: ws,
        }
    }

    /// A request with the desktop token (when `auth`), a content type and a body.
    fn request(method: &str, uri: &str, auth: bool, ct: Option<&str>, body: &str) -> Request {
        let mut b = Request::builder().method(method).uri(uri);
        if auth {
            b = b.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        }
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body.to_string())).unwrap()
    }

    /// Status, headers and the body as JSON (panics, showing the body, when it is not JSON).
    async fn call(app: &App, req: Request) -> (StatusCode, HeaderMap, Value) {
        let r = app.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{} answered {:?} with a body that is not JSON: {:?}",
                parts.status,
                parts.headers.get(header::CONTENT_TYPE),
                String::from_utf8_lossy(&bytes)
            )
        });
        (parts.status, parts.headers, v)
    }

    /// The documented error: JSON, the status, the code, a message, nothing else.
    #[track_caller]
    fn assert_error(got: &(StatusCode, HeaderMap, Value), status: u16, code: &str) {
        let (s, h, v) = got;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str()),
            (status, Some(code)),
            "{v}"
        );
        assert_eq!(
            h.get(header::CONTENT_TYPE).unwrap(),
            "application/json",
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert_eq!(v["error"].as_object().unwrap().len(), 2, "{v}");
    }

    #[tokio::test]
    async fn the_dashboard_page_holds_no_data_and_its_content_and_edits_need_the_token() {
        let app = app().await;
        let r = app
            .router
            .clone()
            .oneshot(request("GET", "/dashboard", false, None, ""))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
        assert_error(
            &call(&app, request("GET", "/api/dashboard", false, None, "")).await,
            401,
            "unauthorized",
        );
        let (status, _, v) = call(&app, request("GET", "/api/dashboard", true, None, "")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(v["html"].as_str().unwrap().contains("id=\"tasks\""));
        assert_eq!(v["version"].as_str().unwrap().len(), 24);
        assert_error(
            &call(
                &app,
                request("GET", "/api/dashboard?since=x", true, None, ""),
            )
            .await,
            400,
            "bad_request",
        );
        let edit = r#"{"op":"add","text":"x","section":"Inbox"}"#;
        assert_error(
            &call(
                &app,
                request(
                    "POST",
                    "/api/dashboard/tasks",
                    false,
                    Some("application/json"),
                    edit,
                ),
            )
            .await,
            401,
            "unauthorized",
        );
        assert_error(
            &call(
                &app,
                request(
                    "POST",
                    "/api/dashboard/tasks",
                    true,
                    Some("text/plain"),
                    edit,
                ),
            )
            .await,
            415,
            "unsupported_media_type",
        );
        assert_error(
            &call(
                &app,
                request(
                    "POST",
                    "/api/dashboard/tasks",
                    true,
                    Some("application/json"),
                    r#"{"op":"fly"}"#,
                ),
            )
            .await,
            400,
            "bad_request",
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_json_413() {
        let app = app().await;
        let big = format!(
            r#"{{"skill":"noop","params":{{"x":"{}"}}}}"#,
            "a".repeat(70_000)
        );
        let got = call(
            &app,
            request("POST", "/api/jobs", true, Some("application/json"), &big),
        )
        .await;
        assert_error(&got, 413, "too_large");
    }

    #[tokio::test]
    async fn a_query_that_does_not_parse_is_a_json_400() {
        let app = app().await;
        let got = call(&app, request("GET", "/api/jobs?limit=abc", true, None, "")).await;
        assert_error(&got, 400, "bad_request");
        assert!(got.2["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit"));
    }

    #[tokio::test]
    async fn limit_outside_1_to_100_is_refused() {
        let app = app().await;
        for bad in ["0", "101", "100000"] {
            let got = call(
                &app,
                request("GET", &format!("/api/jobs?limit={bad}"), true, None, ""),
            )
            .await;
            assert_error(&got, 400, "bad_request");
        }
        for good in ["1", "100"] {
            let (s, _, v) = call(
                &app,
                request("GET", &format!("/api/jobs?limit={good}"), true, None, ""),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert!(v.is_array(), "{v}");
        }
    }

    #[tokio::test]
    async fn a_malformed_body_is_bad_request_and_a_refused_job_invalid_job() {
        let app = app().await;
        let post =
            |body: &'static str| request("POST", "/api/jobs", true, Some("application/json"), body);
        for malformed in [
            r#"{"skill":"#,
            "not json",
            "[]",
            r#"{"skill":"noop","extra":1}"#,
            r#"{"skill":1}"#,
        ] {
            assert_error(&call(&app, post(malformed)).await, 400, "bad_request");
        }
        for refused in [
            "{}",
            r#"{"skill":""}"#,
            r#"{"skill":"noop","text":"/noop"}"#,
            r#"{"text":"  "}"#,
        ] {
            assert_error(&call(&app, post(refused)).await, 400, "invalid_job");
        }
        assert_error(
            &call(&app, post(r#"{"skill":"browser.fly"}"#)).await,
            400,
            "unknown_skill",
        );
        let (s, _, v) = call(&app, post(r#"{"text":"/noop"}"#)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "queued", "{v}");
    }

    #[tokio::test]
    async fn a_job_not_declared_as_json_is_a_json_415() {
        let app = app().await;
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let got = call(
                &app,
                request("POST", "/api/jobs", true, ct, r#"{"skill":"noop"}"#),
            )
            .await;
            assert_error(&got, 415, "unsupported_media_type");
        }
        for ct in [
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.deskhand+json",
        ] {
            let (s, _, v) = call(
                &app,
                request("POST", "/api/jobs", true, Some(ct), r#"{"skill":"noop"}"#),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{ct}: {v}");
        }
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_are_json() {
        let app = app().await;
        assert_error(
            &call(&app, request("GET", "/api/nope", true, None, "")).await,
            404,
            "not_found",
        );
        assert_error(
            &call(&app, request("GET", "/nope", false, None, "")).await,
            404,
            "not_found",
        );
        let got = call(&app, request("PUT", "/api/jobs", true, None, "")).await;
        assert_error(&got, 405, "method_not_allowed");
        let allow = got.1.get(header::ALLOW).expect("Allow on a 405");
        assert!(allow.to_str().unwrap().contains("POST"), "{allow:?}");
        let got = call(
            &app,
            request(
                "DELETE",
                "/api/jobs/01J9Z3K7Q4W8E2R5T6Y7V8M9N0/events",
                true,
                None,
                "",
            ),
        )
        .await;
        assert_error(&got, 405, "method_not_allowed");
        assert_error(
            &call(&app, request("POST", "/", false, None, "")).await,
            405,
            "method_not_allowed",
        );
        // A path that is not percent-encoded UTF-8.
        assert_error(
            &call(&app, request("GET", "/api/jobs/%FF", true, None, "")).await,
            400,
            "bad_request",
        );
        assert_error(
            &call(&app, request("GET", "/api/jobs/nope", true, None, "")).await,
            404,
            "not_found",
        );
    }

    #[tokio::test]
    async fn a_credential_in_the_url_is_taken_only_by_the_event_stream() {
        let app = app().await;
        for path in [
            "/api/jobs",
            "/api/skills",
            "/api/approvals",
            "/api/jobs/x/cancel",
        ] {
            let method = if path.ends_with("cancel") {
                "POST"
            } else {
                "GET"
            };
            for q in [format!("token={TOKEN}"), "auth=d.1.2.3".to_string()] {
                let sep = if path.contains('?') { '&' } else { '?' };
                let uri = format!("{path}{sep}{q}");
                // Refused without a header, and beside a good one (the URL leaked it either way).
                for header in [false, true] {
                    let got = call(&app, request(method, &uri, header, None, "")).await;
                    assert_error(&got, 401, "unauthorized");
                }
            }
        }
        // The stream takes it: an unknown job is a 404, not a 401.
        let got = call(
            &app,
            request(
                "GET",
                &format!("/api/jobs/nope/events?token={TOKEN}"),
                false,
                None,
                "",
            ),
        )
        .await;
        assert_error(&got, 404, "not_found");
        let got = call(
            &app,
            request("GET", "/api/jobs/nope/events?token=wrong", false, None, ""),
        )
        .await;
        assert_error(&got, 401, "unauthorized");
    }

    #[tokio::test]
    async fn every_401_says_how_to_authenticate() {
        let app = app().await;
        let cases = [
            request("GET", "/api/jobs", false, None, ""),
            request("GET", "/api/jobs?token=x", false, None, ""),
            Request::builder()
                .uri("/api/jobs")
                .header(header::AUTHORIZATION, "Bearer wrong")
                .body(Body::empty())
                .unwrap(),
            Request::builder()
                .uri("/api/jobs")
                .header(header::AUTHORIZATION, "Deskhand-Device not-a-credential")
                .body(Body::empty())
                .unwrap(),
        ];
        for req in cases {
            let got = call(&app, req).await;
            assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.2);
            assert_eq!(
                got.1
                    .get(header::WWW_AUTHENTICATE)
                    .map(|v| v.to_str().unwrap()),
                Some(CHALLENGE),
                "{}",
                got.2
            );
        }
    }

    #[tokio::test]
    async fn mcp_takes_the_desktop_token_only() {
        let app = app().await;
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let mcp = |auth: Option<&str>| {
            let mut b = Request::builder()
                .method("POST")
                .uri("/mcp")
                .header(header::HOST, "127.0.0.1:7878")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream");
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(Body::from(init)).unwrap()
        };
        assert_error(&call(&app, mcp(None)).await, 401, "unauthorized");
        assert_error(
            &call(&app, mcp(Some("Bearer wrong"))).await,
            401,
            "unauthorized",
        );
        let got = call(&app, mcp(Some("Deskhand-Device d.1.2.3"))).await;
        assert_error(&got, 401, "unauthorized");
        assert!(got.2["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/mcp takes only this desktop's token"));
        // The token in the URL is refused here too.
        let mut leaked = mcp(Some(&format!("Bearer {TOKEN}")));
        *leaked.uri_mut() = format!("/mcp?token={TOKEN}").parse().unwrap();
        assert_error(&call(&app, leaked).await, 401, "unauthorized");
        let r = app
            .router
            .clone()
            .oneshot(mcp(Some(&format!("Bearer {TOKEN}"))))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key("mcp-session-id"), "{r:?}");
    }

    /// Every code the API can answer is in the document's `Error.code` enum, and the other way
    /// round, so a new code cannot ship undocumented.
    #[test]
    fn the_error_codes_are_the_documented_ones() {
        use crate::guard::devices::SignatureError;
        use crate::guard::requests::RequestError;
        let spec: Value = serde_norway::from_str(OPENAPI).unwrap();
        let documented: std::collections::BTreeSet<String> = spec["components"]["schemas"]["Error"]
            ["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .expect("Error.code has an enum")
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let m = String::new;
        let mut answered: Vec<ApiError> = vec![
            ApiError::BadRequest("bad_request", m()),
            ApiError::unauthorized(),
            ApiError::NotFound(m()),
            ApiError::MethodNotAllowed(m()),
            ApiError::Conflict(m()),
            ApiError::TooLarge(m()),
            ApiError::UnsupportedMediaType(m()),
            ApiError::Internal(m()),
        ];
        answered.extend(
            [
                JobError::TooLarge(1),
                JobError::Malformed(m()),
                JobError::Invalid(m()),
                JobError::Signature(m()),
                JobError::Untrusted(m()),
                JobError::UnknownSkill {
                    name: m(),
                    available: m(),
                },
            ]
            .into_iter()
            .map(ApiError::from),
        );
        answered.extend(
            [
                RequestError::Malformed("x"),
                RequestError::Stale(chrono::Utc::now()),
                RequestError::Replayed(m()),
                RequestError::Forged,
                RequestError::Device(SignatureError::UnknownDevice(m())),
                RequestError::Device(SignatureError::Revoked(m())),
            ]
            .into_iter()
            .map(|e| ApiError::Refused(e.code(), e.to_string())),
        );
        let answered: std::collections::BTreeSet<String> = answered
            .into_iter()
            .map(|e| e.parts().1.to_string())
            .collect();
        assert_eq!(answered, documented);
    }
}
