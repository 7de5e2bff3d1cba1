//! A plugin's sub-agents, `agents/*.md`: front matter `name`, `description`, `tools` (an
//! allow-list of tool names), `model`, `maxTurns`; the body is the sub-agent's role. The planner
//! may hand a task to one with its `delegate` tool (`agent: "PLUGIN:NAME"`).

use std::path::Path;

use serde_norway::Value;

use super::commands::MdFile;
use crate::skills::manifest::Problem;

/// One sub-agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDef {
    /// Its name inside the plugin.
    pub name: String,
    /// Its file, relative to the plugin.
    pub file: String,
    /// When to use it.
    pub description: String,
    /// The tools it may use, as written; `None`: the same as the job's.
    pub tools: Option<Vec<String>>,
    /// The model it asks for (shown; Deskhand uses the configured one).
    pub model: Option<String>,
    /// The most model turns it may take.
    pub max_turns: Option<u32>,
    /// Its role, added to its instructions.
    pub body: String,
}

const FIELDS: &[&str] = &["name", "description", "tools", "model", "maxTurns"];

/// Read one agent file; the agent and the warnings about ignored fields.
pub fn read(root: &Path, path: &Path, stem: String) -> Result<(AgentDef, Vec<String>), Problem> {
    let md = MdFile::read(root, path, FIELDS)?;
    let problem = |m: String| md.problem(m);
    let string = |k: &str| md.string(k);
    let name = string("name")?.unwrap_or(stem);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
    {
        return Err(problem(format!(
            "agent name {name:?} may only hold letters, digits, '-' and '_'"
        )));
    }
    let description = string("description")?
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| problem("\"description\" is required: say when to use the agent".into()))?;
    let tools = md.tools("tools")?;
    let max_turns = match md.front.get("maxTurns") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    problem("\"maxTurns\" must be a whole number from 1 to 1000".into())
                })? as u32,
        ),
    };
    Ok((
        AgentDef {
            name,
            file: md.file.clone(),
            description: description.trim().to_string(),
            tools,
            model: string("model")?,
            max_turns,
            body: md.body.trim().to_string(),
        },
        md.warnings.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_reads_its_fields_and_needs_a_description() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("reviewer.md");
        std::fs::write(
            &f,
            "---\nname: reviewer\ndescription: Reviews prices\ntools: file_read, mcp__shop__lookup_price\nmaxTurns: 3\ncolor: red\n---\nYou review.\n",
        )
        .unwrap();
        let (a, w) = read(dir.path(), &f, "reviewer".into()).unwrap();
        assert_eq!(
            a.tools.unwrap(),
            vec![
                "file_read".to_string(),
                "mcp__shop__lookup_price".to_string()
            ]
        );
        assert_eq!(a.max_turns, Some(3));
        assert_eq!(a.body, "You review.");
        assert_eq!(w.len(), 1);
        std::fs::write(&f, "---\nname: x\n---\nbody").unwrap();
        assert!(read(dir.path(), &f, "x".into()).is_err());
        std::fs::write(&f, "---\ndescription: d\nmaxTurns: 0\n---\nbody").unwrap();
        assert!(read(dir.path(), &f, "x".into()).is_err());
    }
}
