//! Sub-agents: the `delegate` tool. The model hands a task, complete in itself, to a fresh
//! conversation with a subset of the tools and a budget of its own; several `delegate` calls in
//! one turn run side by side (the parallel workstreams), each through the same guard as the job,
//! and each one's answer comes back as a tool result. A sub-agent cannot delegate in turn.
//!
//! A task may go to one of the plugins' agents (`agent: "PLUGIN:NAME"`): its role is added to
//! the sub-agent's instructions, its `tools` narrow the tools it gets, its `maxTurns` its
//! budget.

use deskhand_model::Tool;

use crate::plugins::agents::AgentDef;
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
    /// One of the sub-agents listed in the instructions, by name, to do the task in its role.
    #[serde(default)]
    agent: Option<String>,
}

/// The tool as the model is offered it (`agent` only when there are plugin agents).
pub(super) fn tool(agents: &[(String, AgentDef)]) -> Tool {
    let mut schema = serde_json::to_value(schemars::schema_for!(Args)).unwrap_or_default();
    if agents.is_empty() {
        if let Some(p) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            p.remove("agent");
        }
    } else if let Some(a) = schema.pointer_mut("/properties/agent") {
        a["enum"] = agents
            .iter()
            .map(|(n, _)| Value::String(n.clone()))
            .collect();
    }
    Tool {
        name: TOOL.into(),
        description: "Hand a self-contained task to a sub-agent: a fresh conversation with the \
                      tools you name and its own budget, which answers with its result. Call it \
                      several times in one turn to work on independent parts side by side \
                      (e.g. one page each)."
            .into(),
        input_schema: schema,
    }
}

/// For the system prompt: the plugins' agents a task may be handed to (empty when none).
pub(super) fn agents_note(agents: &[(String, AgentDef)]) -> String {
    if agents.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\nSub-agents from the person's plugins (name: when to use it); hand one a task with \
         the delegate tool and its name as `agent`:\n",
    );
    for (name, a) in agents {
        s.push_str(&format!("- {name}: {}\n", a.description));
    }
    s
}

/// A checked `delegate` call.
pub(super) struct Task {
    /// What the sub-agent is to do.
    pub task: String,
    /// The tools it gets.
    pub tools: Vec<Tool>,
    /// The plugin agent it works as, with its full name.
    pub agent: Option<(String, AgentDef)>,
}

impl Task {
    /// Check a call against the tools on `offer`; a mistake is said back to the model.
    pub fn parse(
        input: &Value,
        offer: &[Tool],
        agents: &[(String, AgentDef)],
    ) -> Result<Task, String> {
        let a: Args = serde_json::from_value(input.clone())
            .map_err(|e| format!("invalid arguments for {TOOL}: {e}"))?;
        if a.task.trim().is_empty() {
            return Err(format!("invalid arguments for {TOOL}: the task is empty"));
        }
        let agent = match &a.agent {
            None => None,
            Some(name) => Some(agents.iter().find(|(n, _)| n == name).cloned().ok_or_else(
                || format!("invalid arguments for {TOOL}: there is no agent {name:?}"),
            )?),
        };
        // An agent's own `tools` narrow what it may be given.
        let offer: Vec<Tool> = match &agent {
            Some((full, AgentDef { tools: Some(t), .. })) => {
                let plugin = full.split(':').next().unwrap_or_default();
                let names: Vec<String> = offer.iter().map(|t| t.name.clone()).collect();
                let keep = crate::plugins::allowed_tools(plugin, t, &names);
                offer
                    .iter()
                    .filter(|t| keep.contains(&t.name))
                    .cloned()
                    .collect()
            }
            _ => offer.to_vec(),
        };
        let offer = offer.as_slice();
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
            agent,
        })
    }
}

/// A sub-agent's instructions: the job's, its place, and a plugin agent's role (the plugin's
/// own text, which the person accepted with it).
pub(super) fn system(job: &str, agent: Option<&(String, AgentDef)>) -> String {
    let mut s = format!(
        "{job}\nYou are a sub-agent: the main agent gave you the one task in the first message. \
         Do it with your tools, then answer with the result itself (the data, the file written), \
         briefly; the main agent reads your answer, the person does not.\n"
    );
    if let Some((name, a)) = agent {
        s.push_str(&format!(
            "\nYour role, from the person's plugin (within the rules above):\n<agent-instructions agent=\"{name}\">\n{}\n</agent-instructions>\n",
            a.body.trim()
        ));
    }
    s
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
        let t = Task::parse(
            &json!({"task": "read", "tools": ["file_read"]}),
            &offer(),
            &[],
        )
        .unwrap();
        assert_eq!(t.tools.len(), 1);
        assert_eq!(
            Task::parse(&json!({"task": "x"}), &offer(), &[])
                .unwrap()
                .tools
                .len(),
            2
        );
    }

    #[test]
    fn a_bad_call_is_said_back() {
        let e = Task::parse(&json!({"task": "x", "tools": ["delegate"]}), &offer(), &[])
            .err()
            .unwrap();
        assert!(e.contains("no tool delegate"), "{e}");
        assert!(Task::parse(&json!({"tasks": "x"}), &offer(), &[]).is_err());
        assert!(Task::parse(&json!({"task": " "}), &offer(), &[]).is_err());
    }

    #[test]
    fn the_schema_is_an_object_with_a_required_task() {
        let s = tool(&[]).input_schema;
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["task"]));
        assert!(s["properties"].get("agent").is_none());
    }

    #[test]
    fn a_plugin_agent_narrows_the_tools_and_must_exist() {
        let agent = AgentDef {
            name: "reader".into(),
            file: "agents/reader.md".into(),
            description: "Reads".into(),
            tools: Some(vec!["Read".into()]),
            model: None,
            max_turns: Some(2),
            body: "You read.".into(),
        };
        let agents = vec![("p:reader".to_string(), agent)];
        let s = tool(&agents).input_schema;
        assert_eq!(s["properties"]["agent"]["enum"], json!(["p:reader"]));
        let t = Task::parse(
            &json!({"task": "x", "agent": "p:reader"}),
            &offer(),
            &agents,
        )
        .unwrap();
        assert_eq!(
            t.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["file_read"]
        );
        assert!(system("job", t.agent.as_ref())
            .contains("<agent-instructions agent=\"p:reader\">\nYou read."));
        let e = Task::parse(&json!({"task": "x", "agent": "p:nope"}), &offer(), &agents)
            .err()
            .unwrap();
        assert!(e.contains("no agent"), "{e}");
    }
}
