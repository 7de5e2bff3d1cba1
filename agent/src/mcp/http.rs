//! The HTTP under rmcp's streamable HTTP client (issue 17): rmcp speaks the protocol (sessions,
//! event streams, reconnects), this module sends its requests with the workspace's reqwest
//! (0.12, rustls on ring with the web's roots, as the connectors and model clients are built).
//! rmcp's own reqwest client is 0.13, whose TLS needs aws-lc-rs (cmake) or a process-wide
//! provider that every other 0.13 client in the workspace would then also need.
//!
//! It also watches each answer's event stream, because rmcp drops one that breaks (the server
//! died mid-answer) with a log line and leaves the request waiting for an answer that cannot
//! come: [`Breaks`] lets the call end at once rather than at its timeout.
//!
//! What is sent follows the spec's transport section
//! (<https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http>):
//! `Accept: application/json, text/event-stream` on POST, `Mcp-Session-Id` once known,
//! `Last-Event-Id` when resuming, the configured headers on every request.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use futures::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::common::client_side_sse::{BoxedSseResponse, ExponentialBackoff};
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, InsufficientScopeError, StreamableHttpClient,
    StreamableHttpClientTransportConfig, StreamableHttpError, StreamableHttpPostResponse,
};
use rmcp::transport::StreamableHttpClientTransport;

/// rmcp's error for a failed exchange with an HTTP server.
pub(crate) type HttpError = StreamableHttpError<reqwest::Error>;

/// How often the server's own event stream is reconnected before it is given up: a few times,
/// never forever (rmcp's default retries without end).
const SSE_RETRIES: usize = 2;

const SESSION_ID: &str = "mcp-session-id";
const LAST_EVENT_ID: &str = "last-event-id";
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";

/// A streamable HTTP transport for `url` sending `headers` with every request; broken answers
/// are marked in `breaks`.
pub(crate) fn transport(
    url: &str,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
    breaks: &Breaks,
) -> Result<StreamableHttpClientTransport<Http>, String> {
    let mut custom = HashMap::new();
    for (k, v) in headers {
        // Checked when the config was read; marked sensitive so no Debug output shows it.
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| format!("header {k} has characters HTTP cannot carry"))?;
        value.set_sensitive(true);
        custom.insert(name, value);
    }
    let mut retry = ExponentialBackoff::default();
    retry.max_times = Some(SSE_RETRIES);
    retry.base_duration = Duration::from_millis(250);
    let mut config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(custom)
        // A new session would silently lose what the old one held: the server counts as gone.
        .reinit_on_expired_session(false);
    config.retry_config = Arc::new(retry);
    let client = Http {
        http: reqwest::Client::builder()
            // A redirect would carry the headers elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?,
        breaks: breaks.clone(),
    };
    Ok(StreamableHttpClientTransport::with_client(client, config))
}

/// Answers that broke off (see the module's documentation).
#[derive(Clone, Default)]
pub(crate) struct Breaks(Arc<tokio::sync::watch::Sender<Option<String>>>);

impl Breaks {
    /// Say that an answer broke off, and why.
    fn mark(&self, why: String) {
        self.0.send_replace(Some(why));
    }

    /// Why the next answer broke off, once one does (counting from this call).
    pub(crate) fn watch(&self) -> impl std::future::Future<Output = String> + 'static {
        let mut rx = self.0.subscribe();
        async move {
            match rx.changed().await {
                Ok(()) => rx.borrow().clone().unwrap_or_default(),
                // Never: the server holds the sender.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// rmcp's HTTP client: reqwest, and the [`Breaks`] of its server.
#[derive(Clone)]
pub(crate) struct Http {
    http: reqwest::Client,
    breaks: Breaks,
}

/// `builder` with the configured headers and, when rmcp has one, its bearer token.
fn with_headers(
    mut builder: reqwest::RequestBuilder,
    auth_header: Option<String>,
    custom: HashMap<HeaderName, HeaderValue>,
) -> reqwest::RequestBuilder {
    if let Some(token) = auth_header {
        builder = builder.bearer_auth(token);
    }
    for (name, value) in custom {
        builder = builder.header(name, value);
    }
    builder
}

/// Whether a response's content type is `mime`.
fn is(response: &reqwest::Response, mime: &str) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(mime.as_bytes()))
}

/// The `scope` a `WWW-Authenticate` challenge asks for, if any (RFC 6750 §3).
fn scope_of(challenge: &str) -> Option<String> {
    let at = challenge.find("scope=")? + "scope=".len();
    let rest = &challenge[at..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([',', ' ']).next()?,
    };
    Some(value.to_string()).filter(|v| !v.is_empty())
}

impl StreamableHttpClient for Http {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let mut request = self
            .http
            .post(uri.as_ref())
            .header(header::ACCEPT, format!("{JSON}, {EVENT_STREAM}"));
        request = with_headers(request, auth_header, custom_headers);
        let in_session = session_id.is_some();
        if let Some(id) = session_id {
            request = request.header(SESSION_ID, id.as_ref());
        }
        let response = request
            .json(&message)
            .send()
            .await
            .map_err(StreamableHttpError::Client)?;
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        match (status, challenge) {
            (StatusCode::UNAUTHORIZED, Some(c)) => {
                return Err(StreamableHttpError::AuthRequired(AuthRequiredError::new(c)))
            }
            (StatusCode::FORBIDDEN, Some(c)) => {
                let scope = scope_of(&c);
                return Err(StreamableHttpError::InsufficientScope(
                    InsufficientScopeError::new(c, scope),
                ));
            }
            _ => {}
        }
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && in_session {
            return Err(StreamableHttpError::SessionExpired);
        }
        let session = response
            .headers()
            .get(SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        if !status.is_success() {
            let json = is(&response, JSON);
            let body = response.text().await.unwrap_or_default();
            // A JSON-RPC error in a 4xx/5xx is the server's answer, not a transport failure.
            if json {
                if let Ok(m @ JsonRpcMessage::Error(_)) =
                    serde_json::from_str::<ServerJsonRpcMessage>(&body)
                {
                    return Ok(StreamableHttpPostResponse::Json(m, session));
                }
            }
            let body: String = body.chars().take(300).collect();
            return Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                format!("HTTP {status}: {body}"),
            )));
        }
        if is(&response, EVENT_STREAM) {
            let breaks = self.breaks.clone();
            // A break after a message is rmcp draining a finished answer, not the server's death.
            let mut carried = false;
            let events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream()).inspect(
                move |event| match event {
                    Ok(sse) => carried |= sse.data.as_deref().is_some_and(|d| !d.trim().is_empty()),
                    Err(e) if !carried => breaks.mark(e.to_string()),
                    Err(_) => {}
                },
            );
            return Ok(StreamableHttpPostResponse::Sse(events.boxed(), session));
        }
        if is(&response, JSON) {
            // A body that is no JSON-RPC message (e.g. `{}` for a notification) is an
            // acknowledgement.
            return Ok(match response.json::<ServerJsonRpcMessage>().await {
                Ok(m) => StreamableHttpPostResponse::Json(m, session),
                Err(_) => StreamableHttpPostResponse::Accepted,
            });
        }
        Err(StreamableHttpError::UnexpectedContentType(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        ))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        let request = with_headers(self.http.delete(uri.as_ref()), auth_header, custom_headers)
            .header(SESSION_ID, session_id.as_ref());
        let response = request.send().await.map_err(StreamableHttpError::Client)?;
        // A server that keeps no sessions to end says so with 405 (spec: "MAY respond 405").
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(());
        }
        response
            .error_for_status()
            .map(|_| ())
            .map_err(StreamableHttpError::Client)
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxedSseResponse, HttpError> {
        let mut request = self
            .http
            .get(uri.as_ref())
            .header(header::ACCEPT, format!("{EVENT_STREAM}, {JSON}"))
            .header(SESSION_ID, session_id.as_ref());
        if let Some(id) = last_event_id {
            request = request.header(LAST_EVENT_ID, id);
        }
        let response = with_headers(request, auth_header, custom_headers)
            .send()
            .await
            .map_err(StreamableHttpError::Client)?;
        // The server offers no stream of its own (spec: "MUST … or else return 405").
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        let response = response
            .error_for_status()
            .map_err(StreamableHttpError::Client)?;
        if !is(&response, EVENT_STREAM) && !is(&response, JSON) {
            return Err(StreamableHttpError::UnexpectedContentType(
                response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            ));
        }
        Ok(sse_stream::SseStream::from_bytes_stream(response.bytes_stream()).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_of_a_challenge_is_read_quoted_or_not() {
        assert_eq!(
            scope_of(r#"Bearer error="insufficient_scope", scope="files:read files:write""#)
                .as_deref(),
            Some("files:read files:write")
        );
        assert_eq!(
            scope_of("Bearer scope=read, error=x").as_deref(),
            Some("read")
        );
        assert_eq!(scope_of("Bearer realm=\"x\""), None);
    }
}
