//! Continuing a planned job: its conversation, rebuilt from the transcript the job kept, so a
//! follow-up ("now mail that to Grace") goes on with the same context, as a new job of its own
//! (its own approvals, audit entries and undo).

use deskhand_model::{Block, Message, Role};
use serde_json::Value;

/// What a tool call the earlier job never answered is told (it stopped first).
const NOT_RUN: &str = "not run: the job stopped before this call (cancelled, failed, or waiting)";

/// The messages of a transcript, ready to continue: the person's words, the model's turns and the
/// tool results, with every tool call answered (a call the earlier job never ran gets an error
/// result saying so, as both APIs require), results cut to `max_result` characters.
pub(super) fn messages(entries: &[Value], max_result: usize) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    // A sub-agent's own turns (marked `agent`) stay out: the job's conversation has its answer.
    for e in entries.iter().filter(|e| e.get("agent").is_none()) {
        match e["role"].as_str() {
            Some("user") => {
                let text = e["text"].as_str().unwrap_or_default().to_string();
                answer_open_calls(&mut out);
                match out.last_mut() {
                    // After tool results: one user turn (the APIs want turns to alternate).
                    Some(m) if m.role == Role::User => m.content.push(Block::Text { text }),
                    _ => out.push(Message::user(&text)),
                }
            }
            Some("assistant") => {
                let Ok(content) = serde_json::from_value::<Vec<Block>>(e["content"].clone()) else {
                    continue;
                };
                answer_open_calls(&mut out);
                out.push(Message {
                    role: Role::Assistant,
                    content,
                });
            }
            Some("tool") => {
                let result = Block::ToolResult {
                    tool_use_id: e["id"].as_str().unwrap_or_default().to_string(),
                    content: super::truncate(
                        e["content"].as_str().unwrap_or_default().to_string(),
                        max_result,
                    ),
                    is_error: e["is_error"].as_bool().unwrap_or(false),
                };
                match out.last_mut() {
                    Some(m) if m.role == Role::User => m.content.push(result),
                    _ => out.push(Message {
                        role: Role::User,
                        content: vec![result],
                    }),
                }
            }
            _ => {}
        }
    }
    answer_open_calls(&mut out);
    out
}

/// Give every tool call of the last assistant turn a result, if the turn after it lacks one.
fn answer_open_calls(out: &mut Vec<Message>) {
    let Some(turn) = out.iter().rposition(|m| m.role == Role::Assistant) else {
        return;
    };
    let asked: Vec<String> = out[turn]
        .content
        .iter()
        .filter_map(|b| match b {
            Block::ToolUse { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    if asked.is_empty() {
        return;
    }
    if turn + 1 == out.len() {
        out.push(Message {
            role: Role::User,
            content: Vec::new(),
        });
    }
    let answers = &mut out[turn + 1].content;
    for id in asked {
        let answered = answers
            .iter()
            .any(|b| matches!(b, Block::ToolResult { tool_use_id, .. } if *tool_use_id == id));
        if !answered {
            // Results come first in a user turn (before any text).
            let at = answers
                .iter()
                .position(|b| !matches!(b, Block::ToolResult { .. }))
                .unwrap_or(answers.len());
            answers.insert(
                at,
                Block::ToolResult {
                    tool_use_id: id,
                    content: NOT_RUN.into(),
                    is_error: true,
                },
            );
        }
    }
}

/// What the person asked for in a conversation, in order (their own words only: the origins
/// of the URLs in them may be opened again by a follow-up).
pub fn requests(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["role"] == "user" && e.get("agent").is_none())
        .filter_map(|e| e["text"].as_str().map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transcript() -> Vec<Value> {
        vec![
            json!({"role": "user", "text": "extract https://shop.example/a"}),
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "c1", "name": "browser_extract", "input": {}},
                {"type": "tool_use", "id": "c2", "name": "file_read", "input": {}},
            ]}),
            json!({"role": "tool", "tool": "browser_extract", "id": "c1", "is_error": false,
                "content": "0123456789"}),
            json!({"stopped": "cancelled"}),
        ]
    }

    #[test]
    fn a_stopped_conversation_continues_with_every_call_answered() {
        let mut entries = transcript();
        entries.push(json!({"role": "user", "text": "now the second page"}));
        let m = messages(&entries, 4);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[1].role, Role::Assistant);
        assert_eq!(m[2].role, Role::User);
        match &m[2].content[..] {
            [Block::ToolResult {
                tool_use_id: a,
                content: ca,
                is_error: false,
            }, Block::ToolResult {
                tool_use_id: b,
                content: cb,
                is_error: true,
            }, Block::Text { text }] => {
                assert_eq!((a.as_str(), b.as_str()), ("c1", "c2"));
                assert!(ca.starts_with("0123") && !ca.contains("4567"), "{ca}");
                assert_eq!(cb, NOT_RUN);
                assert_eq!(text, "now the second page");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_persons_words_are_requests() {
        assert_eq!(requests(&transcript()), ["extract https://shop.example/a"]);
    }
}
