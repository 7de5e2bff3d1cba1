//! The Anthropic Messages API: `POST /v1/messages` with `stream: true`; the reply arrives as
//! `message_start`, per content block `content_block_start` / `content_block_delta` (text, or the
//! tool input as partial JSON) / `content_block_stop`, then `message_delta` (stop reason, output
//! tokens) and `message_stop`; `ping` in between, `error` on failure.

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::{error_of, Block, Delta, ModelConfig, ModelError, Reply, Request, StopReason, Usage};

const VERSION: &str = "2023-06-01";

/// The request body.
pub(crate) fn body(cfg: &ModelConfig, req: &Request) -> Value {
    let mut b = json!({
        "model": cfg.model,
        "max_tokens": req.max_tokens.unwrap_or(cfg.max_tokens),
        "messages": req.messages,
        "stream": true,
    });
    if !req.system.is_empty() {
        b["system"] = Value::from(req.system.clone());
    }
    if !req.tools.is_empty() {
        b["tools"] = serde_json::to_value(&req.tools).unwrap_or_default();
    }
    b
}

/// Send the request; an error status becomes its [`ModelError`].
pub(crate) async fn send(
    http: &reqwest::Client,
    cfg: &ModelConfig,
    req: &Request,
) -> Result<reqwest::Response, ModelError> {
    let mut r = http
        .post(cfg.endpoint("v1/messages")?)
        .header("anthropic-version", VERSION)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body(cfg, req));
    if let Some(k) = &cfg.api_key {
        r = r.header("x-api-key", k.expose());
    }
    let response = r.send().await.map_err(|e| ModelError::network(&e, cfg))?;
    if !response.status().is_success() {
        return Err(error_of(response, cfg).await);
    }
    Ok(response)
}

/// A content block being streamed.
enum Open {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
}

/// Read the event stream into a reply.
pub(crate) async fn read_stream(
    response: reqwest::Response,
    on: &mut (dyn FnMut(Delta<'_>) + Send),
) -> Result<Reply, ModelError> {
    let mut events = response.bytes_stream().eventsource();
    let mut blocks: Vec<Option<Open>> = Vec::new();
    let mut done: Vec<(usize, Block)> = Vec::new();
    let mut usage = Usage::default();
    let mut stop = None;
    let protocol = |m: String| ModelError::Protocol(m);
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|e| protocol(format!("the event stream broke: {e}")))?;
        let data: Value = if ev.data.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&ev.data)
                .map_err(|e| protocol(format!("{} event is not JSON: {e}", ev.event)))?
        };
        let index = data["index"].as_u64().unwrap_or(0) as usize;
        match ev.event.as_str() {
            "message_start" => {
                usage.input_tokens = data["message"]["usage"]["input_tokens"]
                    .as_u64()
                    .unwrap_or(0);
            }
            "content_block_start" => {
                let b = &data["content_block"];
                let open = match b["type"].as_str() {
                    Some("tool_use") => {
                        let name = b["name"].as_str().unwrap_or_default().to_string();
                        on(Delta::ToolCall { name: &name });
                        Open::Tool {
                            id: b["id"].as_str().unwrap_or_default().to_string(),
                            name,
                            json: String::new(),
                        }
                    }
                    _ => Open::Text(b["text"].as_str().unwrap_or_default().to_string()),
                };
                if blocks.len() <= index {
                    blocks.resize_with(index + 1, || None);
                }
                blocks[index] = Some(open);
            }
            "content_block_delta" => {
                let d = &data["delta"];
                match (
                    blocks.get_mut(index).and_then(Option::as_mut),
                    d["type"].as_str(),
                ) {
                    (Some(Open::Text(t)), Some("text_delta")) => {
                        let piece = d["text"].as_str().unwrap_or_default();
                        on(Delta::Text(piece));
                        t.push_str(piece);
                    }
                    (Some(Open::Tool { json, .. }), Some("input_json_delta")) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or_default());
                    }
                    // Other deltas (thinking, citations) carry nothing the planner uses.
                    (Some(_), _) => {}
                    (None, _) => {
                        return Err(protocol(format!(
                            "a delta for block {index}, never started"
                        )))
                    }
                }
            }
            "content_block_stop" => {
                let block = match blocks.get_mut(index).and_then(Option::take) {
                    Some(Open::Text(text)) => Block::Text { text },
                    Some(Open::Tool { id, name, json }) => Block::ToolUse {
                        input: if json.trim().is_empty() {
                            json!({})
                        } else {
                            // Malformed input is the model's mistake: keep it as a string, so
                            // the planner can tell the model, instead of failing the job.
                            serde_json::from_str(&json).unwrap_or(Value::String(json))
                        },
                        id,
                        name,
                    },
                    None => return Err(protocol(format!("block {index} stopped, never started"))),
                };
                done.push((index, block));
            }
            "message_delta" => {
                if let Some(s) = data["delta"]["stop_reason"].as_str() {
                    stop = Some(match s {
                        "end_turn" | "stop_sequence" => StopReason::EndTurn,
                        "tool_use" => StopReason::ToolUse,
                        "max_tokens" => StopReason::MaxTokens,
                        other => StopReason::Other(other.to_string()),
                    });
                }
                if let Some(n) = data["usage"]["output_tokens"].as_u64() {
                    usage.output_tokens = n;
                }
            }
            "message_stop" => break,
            "error" => {
                let kind = data["error"]["type"].as_str().unwrap_or_default();
                let message = data["error"]["message"]
                    .as_str()
                    .unwrap_or("an error in the stream")
                    .to_string();
                return Err(match kind {
                    "overloaded_error" => ModelError::Unavailable {
                        status: 529,
                        message,
                        retry_after: None,
                    },
                    "rate_limit_error" => ModelError::RateLimited {
                        message,
                        retry_after: None,
                    },
                    _ => ModelError::Protocol(message),
                });
            }
            // `ping` and events added later.
            _ => {}
        }
    }
    let stop = stop.ok_or_else(|| protocol("the stream ended before the reply did".into()))?;
    done.sort_by_key(|(i, _)| *i);
    Ok(Reply {
        content: done.into_iter().map(|(_, b)| b).collect(),
        stop,
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Provider, Tool};

    #[test]
    fn the_body_has_the_documented_fields() {
        let cfg = ModelConfig::new(Provider::Anthropic, "claude-x");
        let req = Request {
            system: "Be brief.".into(),
            messages: vec![
                Message::user("hi"),
                Message {
                    role: crate::Role::Assistant,
                    content: vec![Block::ToolUse {
                        id: "t1".into(),
                        name: "noop".into(),
                        input: json!({}),
                    }],
                },
                Message {
                    role: crate::Role::User,
                    content: vec![Block::ToolResult {
                        tool_use_id: "t1".into(),
                        content: "ok".into(),
                        is_error: false,
                    }],
                },
            ],
            tools: vec![Tool {
                name: "noop".into(),
                description: "Nothing.".into(),
                input_schema: json!({"type": "object"}),
            }],
            max_tokens: None,
        };
        let b = body(&cfg, &req);
        assert_eq!(b["model"], "claude-x");
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["system"], "Be brief.");
        assert_eq!(b["stream"], true);
        assert_eq!(b["messages"][0]["content"][0]["type"], "text");
        assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "t1");
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
    }
}
