//! Sub-agents: the `delegate` tool. The model hands a task, complete in itself, to a fresh
//! conversation with a subset of the tools and a budget of its own; several `delegate` calls in
//! one turn run side by side (the parallel workstreams), each through the same guard as the job,
//! and each one's answer comes back as a tool result. A sub-agent cannot delegate in turn.

use deskhand_model::Tool;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The tool's name.
pub(super) const TOOL: &str = "delegate";

/// `delegate`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The task, complete in itself: the sub-agent sees nothing of this conversation, only this
    /// text and the tools named below.
    task: String,
    /// The tools it may use, by name (from your own tool list, not `delegate`); empty or left
    /// out: all of them.
    #[serde(default)]
    tools: Vec<String>,
}

/// The tool as the model is offered it.
pub(super) fn tool() -> Tool {
    Tool {
        name: TOOL.into(),
        description: "Hand a self-contained task to a sub-agent: a fresh conversation with the \
                      tools you name and its own budget, which answers with its result. Call it \
                      several times in one turn to work on independent parts side by side \
                      (e.g. one page each)."
            .into(),
        input_schema: serde_json::to_value(schemars::schema_for!(Args)).unwrap_or_default(),
    }
}

/// A checked `delegate` call.
pub(super) struct Task {
    /// What the sub-agent is to do.
    pub task: String,
    /// The tools it gets.
    pub tools: Vec<Tool>,
}

impl Task {
    /// Check a call against the tools on `offer`; a mistake is said back to the model.
    pub fn parse(input: &Value, offer: &[Tool]) -> Result<Task, String> {
        let a: Args = serde_json::from_value(input.clone())
            .map_err(|e| format!("invalid arguments for {TOOL}: {e}"))?;
        if a.task.trim().is_empty() {
            return Err(format!("invalid arguments for {TOOL}: the task is empty"));
        }
        let tools = if a.tools.is_empty() {
            offer.to_vec()
        } else {
            let unknown: Vec<&str> = a
                .tools
                .iter()
                .filter(|n| !offer.iter().any(|t| &t.name == *n))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "invalid arguments for {TOOL}: no tool {} to give a sub-agent",
                    unknown.join(", ")
                ));
            }
            offer
                .iter()
                .filter(|t| a.tools.contains(&t.name))
                .cloned()
                .collect()
        };
        Ok(Task {
            task: a.task,
            tools,
        })
    }
}

/// A sub-agent's instructions: the job's, and its place.
pub(super) fn system(job: &str) -> String {
    format!(
        "{job}\nYou are a sub-agent: the main agent gave you the one task in the first message. \
         Do it with your tools, then answer with the result itself (the data, the file written), \
         briefly; the main agent reads your answer, the person does not.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offer() -> Vec<Tool> {
        ["file_read", "browser_extract"]
            .iter()
            .map(|n| Tool {
                name: n.to_string(),
                description: String::new(),
                input_schema: json!({"type": "object"}),
            })
            .collect()
    }

    #[test]
    fn a_sub_agent_gets_the_tools_named_or_all() {
        let t = Task::parse(&json!({"task": "read", "tools": ["file_read"]}), &offer()).unwrap();
        assert_eq!(t.tools.len(), 1);
        assert_eq!(
            Task::parse(&json!({"task": "x"}), &offer())
                .unwrap()
                .tools
                .len(),
            2
        );
    }

    #[test]
    fn a_bad_call_is_said_back() {
        let e = Task::parse(&json!({"task": "x", "tools": ["delegate"]}), &offer())
            .err()
            .unwrap();
        assert!(e.contains("no tool delegate"), "{e}");
        assert!(Task::parse(&json!({"tasks": "x"}), &offer()).is_err());
        assert!(Task::parse(&json!({"task": " "}), &offer()).is_err());
    }

    #[test]
    fn the_schema_is_an_object_with_a_required_task() {
        let s = tool().input_schema;
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["task"]));
    }
}
