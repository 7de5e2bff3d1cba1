//! MCP both ways (issue 17). [`client`] (re-exported here): MCP servers as planner tools.
//! [`server`]: Deskhand for other agents, `deskhand mcp` serving the action registry to any MCP
//! client over stdio.
//!
//! Protocol types stay in [`server`]; what a tool call does is a job like any other. The server
//! turns `tools/call` into a job of the one action [`ACTION`] (`mcp.call`), whose arguments are
//! the tool's name and its arguments, and runs it through [`Agent::run_now`]
//! (crate::agent::Agent::run_now): the same admission, guard, approvals, audit and job ledger as
//! `deskhand /action`. The job runs with the planner's permissions (`[planner.permissions]`),
//! since an MCP client plans its calls as Deskhand's own planner does.

pub mod auth;
pub mod client;
mod http;
pub mod server;

pub use client::*;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::guard::Guard;
use crate::planner::tools::tool_name;
use crate::runner::{StepCtx, StepError};
use crate::skills::actions::{self, Action};
use crate::skills::args::Line;

/// The action a tool call from an MCP client runs as.
pub const ACTION: &str = "mcp.call";

/// The origin recorded on jobs from MCP clients.
pub const ORIGIN: &str = "mcp";

/// Who the guard names as the writer of what a call changes (shown in approvals and undo).
const WRITER: &str = "an MCP client";

/// Arguments of `mcp.call`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallArgs {
    /// The tool: an action's name with `.` written `_` (`file_read`), as `tools/list` shows it.
    pub tool: Line,
    /// The tool's arguments, as its input schema describes them.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// Actions not offered to MCP clients: schedule changes and the no-op, as for the planner, and
/// this entry itself. `agent.ask` is offered: a request in plain words to Deskhand's own planner.
const NOT_TOOLS: &[&str] = &["schedule", "noop", ACTION];

/// The actions offered as tools.
pub fn offered() -> impl Iterator<Item = &'static Action> {
    actions::ACTIONS
        .iter()
        .filter(|a| !NOT_TOOLS.contains(&a.name))
}

/// The action a tool name stands for, if it is offered to MCP clients.
pub fn tool_action(tool: &str) -> Option<&'static Action> {
    offered().find(|a| tool_name(a.name) == tool)
}

/// `mcp.call`: run one offered action through the job's guard and return its result.
pub(crate) async fn call(g: Guard, a: CallArgs, ctx: StepCtx) -> Result<Value, StepError> {
    let tool = a.tool.as_str();
    let action = tool_action(tool).ok_or_else(|| {
        StepError::Invalid(format!(
            "there is no tool {tool:?}; `tools/list` shows the tools"
        ))
    })?;
    action
        .check_args(a.arguments.clone())
        .map_err(|e| StepError::Invalid(format!("invalid arguments for {tool}: {e}")))?;
    let sub = StepCtx {
        job_id: ctx.job_id.clone(),
        inputs: Default::default(),
        cancel: ctx.cancel.clone(),
    };
    let run = action.run(g.for_call("call", WRITER), a.arguments, sub);
    match tokio::time::timeout(action.timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(StepError::Timeout(action.timeout)),
    }
}
