//! MCP servers as planner tools (issue 17, the client part; stdio servers only). The protocol
//! stays here, at the edge: the planner's loop sees plain tools, and every call goes through
//! [`Guard::mcp_call`](crate::guard::Guard::mcp_call), which decides whether it runs.
//!
//! - [`McpSection`] is `[mcp.servers.NAME]` in config.toml; [`specs`] expands `${VAR}` and
//!   `${VAR:-default}` from Deskhand's environment into [`ServerSpec`]s.
//! - [`Session`] is one planned job's servers: started when the job starts (only those the job
//!   may read), each a child process with a clean environment (its `env` and PATH), its tools
//!   offered as `mcp_<server>_<tool>`, stopped when the job ends ([`Session::close`]; the
//!   process is also killed if the session is dropped).
//!
//! ```
//! use deskhand_agent::mcp::{specs, McpSection};
//! let section: McpSection = toml::from_str(
//!     "[servers.files]\ncommand = \"files-mcp\"\nenv = { ROOT = \"${HOME:-/tmp}\" }\n",
//! )
//! .unwrap();
//! let s = specs(&section, |_| None).unwrap();
//! assert_eq!(s[0].name, "files");
//! assert_eq!(s[0].env["ROOT"], "/tmp");
//! ```

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, RawContent};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ServiceError, ServiceExt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::guard::Guard;
use crate::runner::StepError;

/// How long a server may take to start, list its tools or answer a call, unless its
/// `timeout_secs` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest tool name the model APIs accept.
const MAX_TOOL_NAME: usize = 64;

/// `[mcp]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpSection {
    /// The stdio servers whose tools planned jobs get, by name.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerConfig>,
}

/// `[mcp.servers.NAME]`: a stdio server, as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The program (found on PATH when it has no `/`).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The whole environment it gets (with PATH): nothing of Deskhand's is passed on unless
    /// named here, as `${VAR}` or `${VAR:-default}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds to start, and for each call (default 30).
    pub timeout_secs: Option<u64>,
}

/// A server ready to start: names checked, variables expanded.
#[derive(Clone, PartialEq)]
pub struct ServerSpec {
    /// Its name (`files` → tools `mcp_files_…`, permission `mcp:files`).
    pub name: String,
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment (values may be secrets: never logged).
    pub env: BTreeMap<String, String>,
    /// Start and call timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for ServerSpec {
    // The environment's values may be tokens: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpec")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What went wrong with an MCP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// `[mcp.servers.NAME]` is not usable as written.
    #[error("[mcp.servers.{server}] in .deskhand/config.toml: {what}")]
    Config {
        /// The server's name.
        server: String,
        /// What is wrong and what to write instead.
        what: String,
    },
    /// The server did not start or did not list its tools.
    #[error(
        "MCP server {server} did not start ({command:?}): {why}; check its command in \
         [mcp.servers.{server}] of .deskhand/config.toml"
    )]
    Start {
        /// The server's name.
        server: String,
        /// Its command.
        command: String,
        /// What happened.
        why: String,
    },
    /// A call found no answer in time.
    #[error("MCP server {server} did not answer {tool} within {} s; raise [mcp.servers.{server}] timeout_secs if it is slow", .timeout.as_secs())]
    Timeout {
        /// The server's name.
        server: String,
        /// The tool called.
        tool: String,
        /// The limit.
        timeout: Duration,
    },
    /// The server stopped (crashed, or closed its output); it is not restarted in this job.
    #[error("MCP server {server} stopped ({why}); it is not restarted during this job")]
    Gone {
        /// The server's name.
        server: String,
        /// What the connection said.
        why: String,
    },
}

/// `${VAR}` and `${VAR:-default}` in `s`, from `get`; any other `$` stays as it is.
pub fn expand(s: &str, get: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("{s:?} opens ${{ without closing it"));
        };
        let inner = &rest[at + 2..at + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "${{{inner}}} is not a variable: write ${{NAME}} or ${{NAME:-default}}"
            ));
        }
        match (get(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "${{{name}}} is not set in Deskhand's environment; set it, or write \
                     ${{{name}:-default}}"
                ))
            }
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The configured servers, checked and expanded with `get` (Deskhand's environment).
pub fn specs(
    section: &McpSection,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ServerSpec>, McpError> {
    let mut out = Vec::new();
    for (name, c) in &section.servers {
        let bad = |what: String| McpError::Config {
            server: name.clone(),
            what,
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        {
            return Err(bad(
                "name the server with lowercase letters, digits and '-'".into(),
            ));
        }
        if c.timeout_secs == Some(0) {
            return Err(bad("timeout_secs must be at least 1".into()));
        }
        let command = expand(&c.command, &get).map_err(|w| bad(format!("command: {w}")))?;
        if command.trim().is_empty() {
            return Err(bad("command is empty: name the server's program".into()));
        }
        let args = c
            .args
            .iter()
            .map(|a| expand(a, &get))
            .collect::<Result<_, _>>()
            .map_err(|w| bad(format!("args: {w}")))?;
        let mut env = BTreeMap::new();
        for (k, v) in &c.env {
            env.insert(
                k.clone(),
                expand(v, &get).map_err(|w| bad(format!("env.{k}: {w}")))?,
            );
        }
        out.push(ServerSpec {
            name: name.clone(),
            command,
            args,
            env,
            timeout: c
                .timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_TIMEOUT),
        });
    }
    Ok(out)
}

/// A tool name the model APIs accept: `mcp_<server>_<tool>`, other characters as `_`.
fn api_name(server: &str, tool: &str) -> String {
    let tool: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("mcp_{server}_{tool}")
}

/// One server's tool, as offered to the model.
#[derive(Debug, Clone)]
struct McpTool {
    /// The name the model calls it by.
    api: String,
    server: String,
    /// Its name on the server.
    tool: String,
    /// `readOnlyHint: true`: runs without asking when the job may read the server.
    read_only: bool,
    description: String,
    schema: Value,
}

/// A started server.
struct Server {
    service: RunningService<RoleClient, ()>,
    timeout: Duration,
    /// Why it can no longer be called (it crashed): a later call says so at once.
    gone: Mutex<Option<String>>,
}

/// The MCP servers of one planned job.
#[derive(Default)]
pub struct Session {
    servers: BTreeMap<String, Server>,
    /// Servers that did not start, and why (a call to one of their tools says it).
    failed: BTreeMap<String, String>,
    tools: Vec<McpTool>,
}

impl Session {
    /// Start the servers `wanted` allows (by name), side by side; one that fails is reported
    /// and left out, the others go on.
    pub async fn start(specs: &[ServerSpec], wanted: impl Fn(&str) -> bool) -> Session {
        let started = futures::future::join_all(
            specs
                .iter()
                .filter(|s| wanted(&s.name))
                .map(|s| async move { (s, start_one(s).await) }),
        )
        .await;
        let mut session = Session::default();
        for (spec, r) in started {
            match r {
                Ok((service, tools)) => {
                    for t in tools {
                        session.add_tool(&spec.name, t);
                    }
                    session.servers.insert(
                        spec.name.clone(),
                        Server {
                            service,
                            timeout: spec.timeout,
                            gone: Mutex::new(None),
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(server = %spec.name, error = %e, "an MCP server did not start");
                    session.failed.insert(spec.name.clone(), e.to_string());
                }
            }
        }
        session
    }

    fn add_tool(&mut self, server: &str, t: rmcp::model::Tool) {
        let api = api_name(server, &t.name);
        if api.len() > MAX_TOOL_NAME || self.tools.iter().any(|o| o.api == api) {
            tracing::warn!(server, tool = %t.name, "an MCP tool is left out: its name is too long or taken");
            return;
        }
        self.tools.push(McpTool {
            api,
            server: server.to_string(),
            read_only: t
                .annotations
                .as_ref()
                .and_then(|a| a.read_only_hint)
                .unwrap_or(false),
            description: t
                .description
                .as_deref()
                .unwrap_or("(no description)")
                .to_string(),
            schema: Value::Object((*t.input_schema).clone()),
            tool: t.name.into_owned(),
        });
    }

    /// The servers that did not start, with why (to tell the person at the job's start).
    pub fn failures(&self) -> &BTreeMap<String, String> {
        &self.failed
    }

    /// The tools the model is offered.
    pub fn tools(&self) -> Vec<deskhand_model::Tool> {
        self.tools
            .iter()
            .map(|t| deskhand_model::Tool {
                name: t.api.clone(),
                description: format!("{} (MCP server {})", t.description, t.server),
                input_schema: t.schema.clone(),
            })
            .collect()
    }

    /// Whether the tool `api` is an MCP tool that asks the person before it runs.
    pub fn consequential(&self, api: &str) -> bool {
        self.tools.iter().any(|t| t.api == api && !t.read_only)
    }

    /// Whether this session answers the tool `api`: one of its tools, or a tool of a server
    /// that did not start (which then says why).
    pub fn answers(&self, api: &str) -> bool {
        self.tools.iter().any(|t| t.api == api)
            || self
                .failed
                .keys()
                .any(|s| api.starts_with(&format!("mcp_{s}_")))
    }

    /// Call the tool `api` through the guard: (what the model is told, whether it failed).
    /// The result is untrusted content; a refusal, a timeout or a crash is a tool error; a
    /// wait for the person or a cancel stops the job.
    pub async fn call(
        &self,
        g: &Guard,
        api: &str,
        input: &Value,
    ) -> Result<(String, bool), StepError> {
        let Some(t) = self.tools.iter().find(|t| t.api == api) else {
            let why = self
                .failed
                .iter()
                .find(|(s, _)| api.starts_with(&format!("mcp_{s}_")))
                .map(|(_, why)| why.clone())
                .unwrap_or_else(|| format!("there is no tool {api:?}"));
            return Ok((why, true));
        };
        let Value::Object(args) = input else {
            return Ok((
                format!("the arguments of {api} must be a JSON object, not {input}"),
                true,
            ));
        };
        let action = format!("mcp.{}.{}", t.server, t.tool);
        let run = async {
            let server = self.servers.get(&t.server).ok_or_else(|| {
                StepError::Fatal(format!("MCP server {} is not running", t.server))
            })?;
            let r = server.call(&t.server, &t.tool, args.clone()).await;
            r.map(|r| shown(&r))
                .map_err(|e| StepError::Fatal(e.to_string()))
        };
        match g
            .mcp_call(&t.server, &t.tool, t.read_only, input, run)
            .await
        {
            Ok(v) => {
                let text = v["text"].as_str().unwrap_or_default();
                let is_error = v["is_error"].as_bool().unwrap_or(false);
                Ok((
                    crate::planner::untrusted(&format!("mcp:{}.{}", t.server, t.tool), text),
                    is_error,
                ))
            }
            Err(e @ (StepError::Held { .. } | StepError::Cancelled)) => Err(e),
            Err(e) => Ok((format!("{action} failed: {e}"), true)),
        }
    }

    /// Stop every server (the job is over): each is told to close, and killed if it lingers.
    pub async fn close(self) {
        for (name, s) in self.servers {
            if let Err(e) = s.service.cancel().await {
                tracing::warn!(server = %name, error = %e, "an MCP server did not stop cleanly");
            }
        }
    }
}

impl Server {
    async fn call(
        &self,
        server: &str,
        tool: &str,
        args: serde_json::Map<String, Value>,
    ) -> Result<CallToolResult, McpError> {
        if let Some(why) = self.gone.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(McpError::Gone {
                server: server.into(),
                why,
            });
        }
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        match tokio::time::timeout(self.timeout, self.service.peer().call_tool(params)).await {
            Err(_) => Err(McpError::Timeout {
                server: server.into(),
                tool: tool.into(),
                timeout: self.timeout,
            }),
            // The server answered with an error: it is alive; the model is told.
            Ok(Err(ServiceError::McpError(e))) => {
                Ok(CallToolResult::error(vec![rmcp::model::Content::text(
                    format!("error {}: {}", e.code.0, e.message),
                )]))
            }
            Ok(Err(e)) => {
                let why = e.to_string();
                *self.gone.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
                Err(McpError::Gone {
                    server: server.into(),
                    why,
                })
            }
            Ok(Ok(r)) => Ok(r),
        }
    }
}

/// A call's result as `{text, is_error}`: its text parts, anything else as JSON.
fn shown(r: &CallToolResult) -> Value {
    let mut parts = Vec::new();
    for c in &r.content {
        match &c.raw {
            RawContent::Text(t) => parts.push(t.text.clone()),
            other => parts.push(serde_json::to_string(other).unwrap_or_default()),
        }
    }
    if parts.is_empty() {
        if let Some(s) = &r.structured_content {
            parts.push(s.to_string());
        }
    }
    json!({"text": parts.join("\n"), "is_error": r.is_error.unwrap_or(false)})
}

/// Start one server and list its tools, within its timeout.
async fn start_one(
    spec: &ServerSpec,
) -> Result<(RunningService<RoleClient, ()>, Vec<rmcp::model::Tool>), McpError> {
    let fail = |why: String| McpError::Start {
        server: spec.name.clone(),
        command: spec.command.clone(),
        why,
    };
    let mut cmd = tokio::process::Command::new(&spec.command);
    // A clean environment: the server gets what its config gives it, and PATH to find its own
    // programs; never Deskhand's keys.
    cmd.args(&spec.args).env_clear().envs(&spec.env);
    if !spec.env.contains_key("PATH") {
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
    }
    // Killed if the session is dropped without closing (a panic, a cancelled job).
    cmd.kill_on_drop(true);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let started = async {
        let service = ().serve(transport).await.map_err(|e| fail(e.to_string()))?;
        let tools = service
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| fail(format!("listing its tools: {e}")))?;
        Ok((service, tools))
    };
    tokio::time::timeout(spec.timeout, started)
        .await
        .map_err(|_| fail(format!("no answer within {} s", spec.timeout.as_secs())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_with_defaults_and_a_missing_one_says_what_to_set() {
        let get = |k: &str| (k == "TOKEN").then(|| "t0k".to_string());
        assert_eq!(
            expand("Bearer ${TOKEN}, ${ROOT:-/srv} $HOME", &get).unwrap(),
            "Bearer t0k, /srv $HOME"
        );
        let e = expand("${NOPE}", &get).unwrap_err();
        assert!(e.contains("NOPE") && e.contains("${NOPE:-default}"), "{e}");
        assert!(expand("${a b}", &get).is_err());
        assert!(expand("${OPEN", &get).is_err());
    }

    #[test]
    fn server_names_and_timeouts_are_checked_and_secrets_stay_out_of_debug() {
        let mut section = McpSection::default();
        section.servers.insert(
            "files".into(),
            ServerConfig {
                command: "files-mcp".into(),
                env: [("TOKEN".to_string(), "${TOKEN}".to_string())].into(),
                ..Default::default()
            },
        );
        let s = specs(&section, |_| Some("sekrit".into())).unwrap();
        assert_eq!(s[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(s[0].env["TOKEN"], "sekrit");
        assert!(!format!("{:?}", s[0]).contains("sekrit"));
        section.servers.insert(
            "Bad_Name".into(),
            ServerConfig {
                command: "x".into(),
                ..Default::default()
            },
        );
        assert!(specs(&section, |_| None).is_err());
        section.servers.remove("Bad_Name");
        section.servers.get_mut("files").unwrap().timeout_secs = Some(0);
        assert!(specs(&section, |_| Some("x".into())).is_err());
    }

    #[test]
    fn tool_names_are_api_safe() {
        assert_eq!(api_name("shop", "lookup_price"), "mcp_shop_lookup_price");
        assert_eq!(api_name("files", "read.file v2"), "mcp_files_read_file_v2");
    }
}
