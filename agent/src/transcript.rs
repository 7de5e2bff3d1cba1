//! Reading a planned job's transcript (`.deskhand/jobs/<id>/transcript.jsonl`, written by the
//! planner): what the job spent and said, for `deskhand jobs show` and `deskhand eval`. The
//! totals are summed from the assistant turns themselves, so a job that stopped early (budget,
//! failure, cancel) is counted too; the cost is the one the planner recorded at the end, if any.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// A planned job's transcript file.
pub fn path(workspace: &Path, job: &str) -> PathBuf {
    workspace
        .join(".deskhand/jobs")
        .join(job)
        .join("transcript.jsonl")
}

/// What a planned job spent, and its last answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spent {
    /// Model turns.
    pub turns: u32,
    /// Tool calls.
    pub tool_calls: u32,
    /// Input tokens, all turns.
    pub input_tokens: u64,
    /// Output tokens, all turns.
    pub output_tokens: u64,
    /// US dollars, when `[model]` has prices and the job got to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The model's last text.
    #[serde(skip)]
    pub answer: Option<String>,
}

/// The job's spending, or `None` when it has no transcript (not a planned job).
pub fn spent(workspace: &Path, job: &str) -> Option<Spent> {
    let text = std::fs::read_to_string(path(workspace, job)).ok()?;
    Some(parse(&text))
}

/// Sum a transcript's lines (a damaged line is skipped).
pub fn parse(text: &str) -> Spent {
    let mut s = Spent::default();
    for e in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        match e["role"].as_str() {
            Some("assistant") => {
                s.turns += 1;
                s.input_tokens += e["usage"]["input_tokens"].as_u64().unwrap_or(0);
                s.output_tokens += e["usage"]["output_tokens"].as_u64().unwrap_or(0);
                let said: String = e["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b["text"].as_str())
                    .collect();
                if !said.trim().is_empty() {
                    s.answer = Some(said.trim().to_string());
                }
            }
            Some("tool") => s.tool_calls += 1,
            _ => {
                if let Some(c) = e["total"]["cost_usd"].as_f64() {
                    s.cost_usd = Some(c);
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_tokens_calls_answer_and_cost_are_read_back() {
        let t = r#"{"role":"user","text":"hi"}
{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"a","name":"file_read","input":{}}],"usage":{"input_tokens":100,"output_tokens":20}}
{"role":"tool","tool":"file_read","id":"a","is_error":false,"content":"x"}
not json
{"role":"assistant","content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":150,"output_tokens":5}}
{"total":{"turns":2,"cost_usd":0.0012}}
"#;
        let s = parse(t);
        assert_eq!((s.turns, s.tool_calls), (2, 1));
        assert_eq!((s.input_tokens, s.output_tokens), (250, 25));
        assert_eq!(s.answer.as_deref(), Some("Done."));
        assert_eq!(s.cost_usd, Some(0.0012));
        assert_eq!(parse("").turns, 0);
    }
}
