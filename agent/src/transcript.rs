//! Reading a planned job's transcript (`.deskhand/jobs/<id>/transcript.jsonl`, written by the
//! planner): what the job spent and said, for `deskhand jobs show` and `deskhand eval`. A job
//! that got to its end wrote its totals (`{"total": …}`, with the cost when `[model]` has
//! prices); for one that stopped early (budget, failure, cancel) they are summed from its
//! assistant turns. A continued job's copy of the earlier conversation is not counted: that
//! spending was the earlier job's.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

/// What a planned job spent, and its last answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spent {
    /// Model turns (sub-agents' included).
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
    /// The model's last text in the job's own conversation.
    #[serde(skip)]
    pub answer: Option<String>,
}

impl Spent {
    /// "2 model turns, 1200 input and 80 output tokens ($0.0048)".
    pub fn summary(&self) -> String {
        let cost = self
            .cost_usd
            .map(|c| format!(" (${c:.4})"))
            .unwrap_or_default();
        format!(
            "{} model turns, {} input and {} output tokens{cost}",
            self.turns, self.input_tokens, self.output_tokens
        )
    }
}

/// The job's spending, or `None` when it has no transcript (not a planned job).
pub fn spent(workspace: &Path, job: &str) -> Option<Spent> {
    let entries = crate::guard::read_transcript(workspace, job).ok()?;
    // A continuation copies every conversation line of the earlier job after its
    // `{"continues": ID}` line.
    let copied = entries
        .iter()
        .find_map(|e| e["continues"].as_str())
        .and_then(|prev| crate::guard::read_transcript(workspace, prev).ok())
        .map_or(0, |prev| {
            prev.iter().filter(|e| e.get("role").is_some()).count()
        });
    Some(sum(&entries, copied))
}

/// Sum transcript entries, leaving out the `copied` conversation lines after a `continues` line.
pub fn sum(entries: &[Value], copied: usize) -> Spent {
    let mut s = Spent::default();
    let mut skip = 0;
    let mut total = None;
    for e in entries {
        if e.get("continues").is_some() {
            skip = copied;
            continue;
        }
        if e.get("role").is_some() && skip > 0 {
            skip -= 1;
            continue;
        }
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
                // A sub-agent's turns (marked `agent`) count, but its text is not the answer.
                if !said.trim().is_empty() && e.get("agent").is_none() {
                    s.answer = Some(said.trim().to_string());
                }
            }
            Some("tool") => s.tool_calls += 1,
            _ => {
                if e.get("total").is_some() {
                    total = Some(&e["total"]);
                }
            }
        }
    }
    // The planner's own count, where it got to write one.
    if let Some(t) = total {
        let n = |k: &str| t[k].as_u64();
        s.turns = n("turns").map_or(s.turns, |v| v as u32);
        s.tool_calls = n("tool_calls").map_or(s.tool_calls, |v| v as u32);
        s.input_tokens = n("input_tokens").unwrap_or(s.input_tokens);
        s.output_tokens = n("output_tokens").unwrap_or(s.output_tokens);
        s.cost_usd = t["cost_usd"].as_f64();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(t: &str) -> Vec<Value> {
        t.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    #[test]
    fn turns_tokens_calls_answer_and_cost_are_read_back() {
        let t = r#"{"role":"user","text":"hi"}
{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"a","name":"file_read","input":{}}],"usage":{"input_tokens":100,"output_tokens":20}}
{"role":"tool","tool":"file_read","id":"a","is_error":false,"content":"x"}
{"role":"assistant","agent":1,"content":[{"type":"text","text":"Sub-agent says."}],"usage":{"input_tokens":7,"output_tokens":3}}
not json
{"role":"assistant","content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":150,"output_tokens":5}}
"#;
        // Stopped early: summed from the turns.
        let s = sum(&lines(t), 0);
        assert_eq!((s.turns, s.tool_calls), (3, 1));
        assert_eq!((s.input_tokens, s.output_tokens), (257, 28));
        assert_eq!(s.answer.as_deref(), Some("Done."));
        assert_eq!(s.cost_usd, None);
        // Finished: the planner's totals, with the cost.
        let done = format!(
            "{t}{}\n",
            r#"{"total":{"turns":3,"tool_calls":1,"input_tokens":257,"output_tokens":28,"cost_usd":0.0012}}"#
        );
        let s = sum(&lines(&done), 0);
        assert_eq!(
            (s.turns, s.input_tokens, s.cost_usd),
            (3, 257, Some(0.0012))
        );
        assert_eq!(sum(&[], 0).turns, 0);
    }

    #[test]
    fn a_continued_jobs_copy_of_the_earlier_conversation_is_not_counted() {
        let t = r#"{"continues":"01EARLIER"}
{"role":"user","text":"first"}
{"role":"assistant","content":[{"type":"text","text":"Earlier answer."}],"usage":{"input_tokens":1000,"output_tokens":100}}
{"role":"user","text":"and now?"}
{"role":"assistant","content":[{"type":"text","text":"Now this."}],"usage":{"input_tokens":40,"output_tokens":4}}
"#;
        let s = sum(&lines(t), 2);
        assert_eq!((s.turns, s.input_tokens, s.output_tokens), (1, 40, 4));
        assert_eq!(s.answer.as_deref(), Some("Now this."));
    }
}
