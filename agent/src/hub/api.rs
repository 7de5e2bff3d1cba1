//! The local API over the hub: a phone that reaches this desktop only through a NATS hub sends
//! the same device-signed requests it would send to 127.0.0.1, as request messages on
//! `deskhand.<agent>.api`. Each is answered by running it through the API router in-process, so
//! every check (signature, time window, nonce, body limit, routes) is the API's own and there is
//! no inbound port. Jobs do not come this way: the phone publishes them into the jobs stream,
//! where they wait for a sleeping desktop; events come on the events subject.
//!
//! A request: headers [`METHOD`], [`PATH`] (path and query, as signed) and `Authorization`
//! (`Deskhand-Device …` only: the desktop's token never travels over the hub), the body as the
//! payload. The reply: header [`STATUS`] and the API's JSON body.

use async_nats::{Client, HeaderMap, Message};
use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The request's HTTP method.
pub const METHOD: &str = "Deskhand-Method";
/// The request's path and query (what the device signed).
pub const PATH: &str = "Deskhand-Path";
/// The reply's HTTP status.
pub const STATUS: &str = "Deskhand-Status";

/// Answer the phone's API requests on `subject` until `stop`.
pub async fn serve(
    client: Client,
    subject: String,
    router: Router,
    stop: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    // A queue group: a second copy of this agent (a restart overlapping the old one) answers
    // each request once between them.
    let mut requests = client
        .queue_subscribe(subject.clone(), "agent".into())
        .await?;
    tracing::info!(%subject, "answering the phone's API requests through the hub");
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = requests.next() => match m {
                Some(m) => m,
                None => return Ok(()),
            },
        };
        let (client, router) = (client.clone(), router.clone());
        tokio::spawn(async move {
            let Some(reply) = msg.reply.clone() else {
                return;
            };
            let limit = client.server_info().max_payload;
            let (status, body) = answer(router, msg, limit).await;
            let mut headers = HeaderMap::new();
            headers.insert(STATUS, status.to_string().as_str());
            if let Err(e) = client
                .publish_with_headers(reply, headers, body.into())
                .await
            {
                tracing::warn!(error = %e, "could not answer a phone's request through the hub");
            }
        });
    }
}

/// Run one request through the router: its status and body (an error body of the API's shape
/// when the request cannot go there).
async fn answer(router: Router, msg: Message, limit: usize) -> (u16, Vec<u8>) {
    let h = msg.headers.clone().unwrap_or_default();
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_string());
    let method = get(METHOD).unwrap_or_else(|| "GET".into());
    let Some(path) = get(PATH) else {
        return refuse(
            400,
            "bad_request",
            "no Deskhand-Path header: say which API path",
        );
    };
    // The event stream is the events subject on the hub; the MCP endpoint and the page stay
    // on the desktop.
    if !path.starts_with("/api/")
        || path
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/events"))
    {
        return refuse(
            404,
            "not_found",
            "only /api/ requests travel over the hub; follow a job's events on deskhand.<agent>.events.<job>",
        );
    }
    let auth = get("Authorization").unwrap_or_default();
    if !auth.starts_with(crate::guard::requests::SCHEME) {
        return refuse(
            401,
            "unauthorized",
            "requests over the hub must be signed with a paired device's key (`deskhand pair`); the desktop's token is not taken here",
        );
    }
    let mut req = Request::builder()
        .method(method.as_str())
        .uri(path.as_str());
    req = req.header(header::AUTHORIZATION, auth);
    if !msg.payload.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let Ok(req) = req.body(Body::from(msg.payload.clone())) else {
        return refuse(400, "bad_request", "the method or path is not valid HTTP");
    };
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    match axum::body::to_bytes(resp.into_body(), limit).await {
        Ok(b) => (status, b.to_vec()),
        Err(_) => refuse(
            502,
            "too_large",
            "the answer is larger than the hub's max_payload; ask for fewer items",
        ),
    }
}

/// An error body of the API's documented shape.
fn refuse(status: u16, code: &str, message: &str) -> (u16, Vec<u8>) {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, body.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(headers: &[(&str, &str)], body: &str) -> Message {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, *v);
        }
        Message {
            subject: "deskhand.t.api".into(),
            reply: Some("_INBOX.x".into()),
            payload: body.to_string().into(),
            headers: Some(h),
            status: None,
            description: None,
            length: 0,
        }
    }

    fn echo() -> Router {
        Router::new()
            .fallback(|req: Request<Body>| async move { format!("{} {}", req.method(), req.uri()) })
    }

    #[tokio::test]
    async fn only_signed_api_requests_reach_the_router() {
        let signed = ("Authorization", "Deskhand-Device dev-1.1.n.sig");
        let (s, b) = answer(
            echo(),
            msg(&[(PATH, "/api/jobs?limit=2"), signed], ""),
            1 << 20,
        )
        .await;
        assert_eq!(
            (s, String::from_utf8(b).unwrap().as_str()),
            (200, "GET /api/jobs?limit=2")
        );
        let (s, _) = answer(
            echo(),
            msg(
                &[(METHOD, "POST"), (PATH, "/api/jobs/x/cancel"), signed],
                "{}",
            ),
            1 << 20,
        )
        .await;
        assert_eq!(s, 200);
        // The desktop's token, no credential, another path, the event stream: refused here.
        let token = ("Authorization", "Bearer t");
        for (h, want) in [
            (vec![(PATH, "/api/jobs"), token], 401),
            (vec![(PATH, "/api/jobs")], 401),
            (vec![(PATH, "/mcp"), signed], 404),
            (vec![(PATH, "/api/jobs/x/events?auth=a"), signed], 404),
            (vec![signed], 400),
        ] {
            let (s, b) = answer(echo(), msg(&h, ""), 1 << 20).await;
            assert_eq!(s, want, "{h:?}");
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert!(v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
        // An answer larger than the hub carries is an error, not a truncated body.
        let (s, _) = answer(echo(), msg(&[(PATH, "/api/jobs"), signed], ""), 4).await;
        assert_eq!(s, 502);
    }
}
