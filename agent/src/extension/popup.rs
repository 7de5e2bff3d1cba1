//! What the toolbar popup may ask the agent: pending approvals and their answers, recent jobs, the
//! skills that can run on a tab, and starting one. The popup is in the person's own browser on this
//! desktop (the host checked the extension's id), so it acts as the desktop does.

use serde_json::{json, Map, Value};

use crate::agent::Agent;
use crate::guard::approvals;
use crate::job::Job;

/// Answer one popup request, or say why not.
pub(crate) async fn answer(agent: &Agent, msg: &Value) -> Result<Value, String> {
    let args = &msg["args"];
    match msg["op"].as_str().unwrap_or_default() {
        "approvals" => approvals::list(agent.store(), false)
            .await
            .map(|l| serde_json::to_value(l).unwrap_or_default())
            .map_err(|e| e.to_string()),
        "decide" => {
            let id = args["id"].as_str().ok_or("which approval? (id missing)")?;
            let approve = args["approve"].as_bool().ok_or("approve: true or false")?;
            approvals::decide(agent.store(), id, approve, "extension popup")
                .await
                .map(|a| serde_json::to_value(a).unwrap_or_default())
                .map_err(|e| e.to_string())
        }
        "jobs" => agent
            .store()
            .list(10)
            .await
            .map(|l| Value::Array(l.iter().map(crate::api::summary).collect()))
            .map_err(|e| e.to_string()),
        "skills" => Ok(Value::Array(
            agent
                .skills()
                .list()
                .iter()
                .filter(|s| s.params.iter().any(|p| p.name == "target"))
                .map(|s| json!({"name": s.name, "description": s.description}))
                .collect(),
        )),
        "run" => {
            let skill = args["skill"]
                .as_str()
                .ok_or("which skill? (skill missing)")?;
            let mut params = args["params"].as_object().cloned().unwrap_or_else(Map::new);
            if let Some(t) = args["target"].as_str() {
                params.insert("target".into(), t.into());
            }
            let job = Job::new(skill, params, "extension-popup");
            agent
                .submit(job)
                .await
                .map(|id| json!({"id": id}))
                .map_err(|e| e.to_string())
        }
        // A request in plain words, or a trigger such as `/PLUGIN:COMMAND words`, as the phone
        // page sends it.
        "ask" => {
            let text = args["text"]
                .as_str()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or("what to do? (text missing)")?;
            let job = Job {
                text: Some(text.to_string()),
                skill: None,
                ..Job::new("x", Map::new(), "extension-popup")
            };
            job.validate().map_err(|e| e.to_string())?;
            agent
                .submit(job)
                .await
                .map(|id| json!({"id": id}))
                .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "unknown request {other:?}; the agent answers approvals, decide, jobs, skills, run, ask"
        )),
    }
}
