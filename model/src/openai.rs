//! OpenAI-compatible Chat Completions: `POST …/chat/completions` with `stream: true`; the reply
//! arrives as `data:` chunks whose `choices[0].delta` carries text pieces and tool-call pieces
//! (by `index`: the first with id and name, the arguments split over several), a chunk with a
//! `finish_reason`, a usage chunk (`stream_options.include_usage`), then `data: [DONE]`.

use std::collections::BTreeMap;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::{
    error_of, Block, Delta, Message, ModelConfig, ModelError, Reply, Request, Role, StopReason,
    Usage,
};

/// One conversation message in Chat Completions' shape (tool results become `tool` messages
/// placed right after the assistant message that called them).
fn messages(system: &str, msgs: &[Message]) -> Vec<Value> {
    let mut out = Vec::new();
    if !system.is_empty() {
        out.push(json!({"role": "system", "content": system}));
    }
    for m in msgs {
        let text: String = m
            .content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        match m.role {
            Role::User => {
                for b in &m.content {
                    if let Block::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } = b
                    {
                        let content = if *is_error {
                            format!("error: {content}")
                        } else {
                            content.clone()
                        };
                        out.push(
                            json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}),
                        );
                    }
                }
                if !text.is_empty() {
                    out.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolUse { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": input.to_string()},
                        })),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({"role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::from(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                out.push(msg);
            }
        }
    }
    out
}

/// The request body.
pub(crate) fn body(cfg: &ModelConfig, req: &Request) -> Value {
    let mut b = json!({
        "model": cfg.model,
        "max_tokens": req.max_tokens.unwrap_or(cfg.max_tokens),
        "messages": messages(&req.system, &req.messages),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !req.tools.is_empty() {
        b["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
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
        .post(cfg.endpoint("chat/completions")?)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body(cfg, req));
    if let Some(k) = &cfg.api_key {
        r = r.bearer_auth(k.expose());
    }
    let response = r.send().await.map_err(|e| ModelError::network(&e, cfg))?;
    if !response.status().is_success() {
        return Err(error_of(response, cfg).await);
    }
    Ok(response)
}

#[derive(Default)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// Read the chunk stream into a reply.
pub(crate) async fn read_stream(
    response: reqwest::Response,
    on: &mut (dyn FnMut(Delta<'_>) + Send),
) -> Result<Reply, ModelError> {
    let mut events = response.bytes_stream().eventsource();
    let mut text = String::new();
    let mut calls: BTreeMap<u64, Call> = BTreeMap::new();
    let mut usage = Usage::default();
    let mut stop = None;
    let mut finished = false;
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|e| ModelError::Protocol(format!("the event stream broke: {e}")))?;
        let data = ev.data.trim();
        if data == "[DONE]" {
            finished = true;
            break;
        }
        if data.is_empty() {
            continue;
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| ModelError::Protocol(format!("a chunk is not JSON: {e}")))?;
        if let Some(m) = chunk["error"]["message"].as_str() {
            return Err(ModelError::Unavailable {
                status: 500,
                message: m.to_string(),
                retry_after: None,
            });
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            usage.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(usage.input_tokens);
            usage.output_tokens = u["completion_tokens"]
                .as_u64()
                .unwrap_or(usage.output_tokens);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        if let Some(piece) = delta["content"].as_str().filter(|p| !p.is_empty()) {
            on(Delta::Text(piece));
            text.push_str(piece);
        }
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            let call = calls.entry(c["index"].as_u64().unwrap_or(0)).or_default();
            if let Some(id) = c["id"].as_str() {
                call.id = id.to_string();
            }
            if let Some(name) = c["function"]["name"].as_str().filter(|n| !n.is_empty()) {
                call.name.push_str(name);
                on(Delta::ToolCall { name });
            }
            if let Some(a) = c["function"]["arguments"].as_str() {
                call.arguments.push_str(a);
            }
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            stop = Some(match r {
                "stop" => StopReason::EndTurn,
                "tool_calls" | "function_call" => StopReason::ToolUse,
                "length" => StopReason::MaxTokens,
                other => StopReason::Other(other.to_string()),
            });
        }
    }
    let stop = match (stop, finished) {
        (Some(s), _) => s,
        (None, _) => {
            return Err(ModelError::Protocol(
                "the stream ended before the reply did".into(),
            ))
        }
    };
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(Block::Text { text });
    }
    for (i, c) in calls {
        content.push(Block::ToolUse {
            id: if c.id.is_empty() {
                format!("call_{i}")
            } else {
                c.id
            },
            name: c.name,
            input: if c.arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&c.arguments).unwrap_or(Value::String(c.arguments))
            },
        });
    }
    // Some servers say "stop" although they called tools.
    let stop = if stop == StopReason::EndTurn
        && content.iter().any(|b| matches!(b, Block::ToolUse { .. }))
    {
        StopReason::ToolUse
    } else {
        stop
    };
    Ok(Reply {
        content,
        stop,
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_follow_the_call_as_tool_messages() {
        let msgs = vec![
            Message::user("extract"),
            Message {
                role: Role::Assistant,
                content: vec![
                    Block::Text {
                        text: "On it.".into(),
                    },
                    Block::ToolUse {
                        id: "c1".into(),
                        name: "browser_extract".into(),
                        input: json!({"url": "https://example.com"}),
                    },
                ],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: "c1".into(),
                    content: "3 records".into(),
                    is_error: true,
                }],
            },
        ];
        let v = messages("Rules.", &msgs);
        assert_eq!(v[0]["role"], "system");
        assert_eq!(v[1]["content"], "extract");
        assert_eq!(v[2]["tool_calls"][0]["function"]["name"], "browser_extract");
        assert_eq!(
            v[2]["tool_calls"][0]["function"]["arguments"],
            "{\"url\":\"https://example.com\"}"
        );
        assert_eq!(v[3]["role"], "tool");
        assert_eq!(v[3]["tool_call_id"], "c1");
        assert_eq!(v[3]["content"], "error: 3 records");
    }
}
