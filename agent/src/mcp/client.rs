//! MCP servers as planner tools (issue 17, the client part): stdio servers and streamable HTTP
//! servers. The protocol stays here, at the edge: the planner's loop sees plain tools, and every
//! call goes through [`Guard::mcp_call`](crate::guard::Guard::mcp_call), which decides whether
//! it runs.
//!
//! - [`McpSection`] is `[mcp.servers.NAME]` in config.toml; [`specs`] expands `${VAR}` and
//!   `${VAR:-default}` from Deskhand's environment into [`ServerSpec`]s, each with its
//!   [`Transport`]: a command, or a URL with headers.
//! - [`Session`] is one planned job's servers: started when the job starts (only those the job
//!   may read) — a child process with a clean environment (its `env` and PATH), or an HTTP
//!   session sending its headers with every request — its tools offered as
//!   `mcp_<server>_<tool>`, stopped when the job ends ([`Session::close`]; a process is also
//!   killed if the session is dropped).
//!
//! ```
//! use deskhand_agent::mcp::{specs, McpSection, Transport};
//! let section: McpSection = toml::from_str(
//!     "[servers.files]\ncommand = \"files-mcp\"\nenv = { ROOT = \"${HOME:-/tmp}\" }\n\
//!      [servers.shop]\nurl = \"https://shop.example/mcp\"\n\
//!      headers = { Authorization = \"Bearer ${SHOP_TOKEN:-none}\" }\n",
//! )
//! .unwrap();
//! let s = specs(&section, |_| None).unwrap();
//! assert_eq!(s[0].name, "files");
//! assert!(matches!(&s[0].transport, Transport::Stdio { env, .. } if env["ROOT"] == "/tmp"));
//! assert!(matches!(&s[1].transport,
//!     Transport::Http { headers, .. } if headers["Authorization"] == "Bearer none"));
//! ```

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use axum::http;
use rmcp::model::{CallToolRequestParams, CallToolResult, RawContent};
use rmcp::service::{ClientInitializeError, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpError;
use rmcp::transport::worker::WorkerQuitReason;
use rmcp::transport::TokioChildProcess;
use rmcp::{ServiceError, ServiceExt};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{transport as http_transport_client, Breaks, HttpError};
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

/// `[mcp.servers.NAME]`, as written: a program to start (`command`) or a streamable HTTP server
/// to reach (`url`), exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The program (found on PATH when it has no `/`); empty for an HTTP server.
    #[serde(default)]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The whole environment it gets (with PATH): nothing of Deskhand's is passed on unless
    /// named here, as `${VAR}` or `${VAR:-default}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The endpoint of a streamable HTTP server: `https://…`, or `http://` to this machine.
    #[serde(default)]
    pub url: Option<String>,
    /// Headers sent with every request to `url` (e.g. `Authorization = "Bearer ${TOKEN}"`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds to start, and for each call (default 30).
    pub timeout_secs: Option<u64>,
}

/// How Deskhand reaches a server.
#[derive(Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking on its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its environment (values may be secrets: never logged).
        env: BTreeMap<String, String>,
    },
    /// A streamable HTTP endpoint.
    Http {
        /// The endpoint.
        url: String,
        /// Headers sent with every request (values may be secrets: never logged).
        headers: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for Transport {
    // Environment and header values may be tokens: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Stdio { command, args, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .finish(),
            Transport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", &shown_url(url))
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl Transport {
    /// What was started, for messages: the command, or the URL without its query (which may
    /// hold a token).
    fn target(&self) -> String {
        match self {
            Transport::Stdio { command, .. } => format!("{command:?}"),
            Transport::Http { url, .. } => shown_url(url),
        }
    }

    /// The settings to check when it does not start.
    fn settings(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "its command",
            Transport::Http { .. } => "its url and headers",
        }
    }
}

/// `text` with `url` (as written, or as the URL library writes it) shown without its query: an
/// HTTP library's error names the whole URL, and a query may hold a token.
fn scrubbed(text: String, url: Option<&str>) -> String {
    let Some(url) = url else { return text };
    let shown = shown_url(url);
    let normal = url::Url::parse(url).map(String::from).unwrap_or_default();
    let mut text = text;
    for full in [url, normal.as_str()] {
        if !full.is_empty() && full != shown {
            text = text.replace(full, &shown);
        }
    }
    text
}

/// A URL as messages and logs show it: scheme, host, port and path; no query, fragment or
/// user information.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(a URL that does not parse)".into(),
    }
}

/// A server ready to start: names checked, variables expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// Its name (`files` → tools `mcp_files_…`, permission `mcp:files`).
    pub name: String,
    /// How it is reached.
    pub transport: Transport,
    /// Start and call timeout.
    pub timeout: Duration,
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
        "MCP server {server} did not start ({target}): {why}; check {settings} in \
         [mcp.servers.{server}] of .deskhand/config.toml"
    )]
    Start {
        /// The server's name.
        server: String,
        /// What was started: its command, or its URL without the query.
        target: String,
        /// The settings to look at.
        settings: &'static str,
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
    build(section, &get, true)
}

/// Check `[mcp]` when the config is loaded, before variables can be expanded: names, timeouts,
/// command or url, header names, and each url that names no variable.
pub fn check(section: &McpSection) -> Result<(), McpError> {
    build(section, &|_| Some("set".into()), false).map(|_| ())
}

/// Headers the streamable HTTP transport sets itself: a config may not override them.
const TRANSPORT_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// [`specs`]; `urls_expanded` says whether variables hold their real values (else a url that
/// names one is not checked).
fn build(
    section: &McpSection,
    get: &impl Fn(&str) -> Option<String>,
    urls_expanded: bool,
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
        let transport = match (&c.url, c.command.trim().is_empty()) {
            (Some(_), false) => {
                return Err(bad(
                    "both command and url are set: set command for a program Deskhand starts, \
                     or url for a streamable HTTP server, not both"
                        .into(),
                ))
            }
            (None, true) => {
                return Err(bad(
                    "set command (a program Deskhand starts) or url (a streamable HTTP server)"
                        .into(),
                ))
            }
            (Some(url), true) => http_transport(url, c, get, urls_expanded).map_err(bad)?,
            (None, false) => stdio_transport(c, get).map_err(bad)?,
        };
        out.push(ServerSpec {
            name: name.clone(),
            transport,
            timeout: c
                .timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_TIMEOUT),
        });
    }
    Ok(out)
}

/// A program's settings, expanded.
fn stdio_transport(
    c: &ServerConfig,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Transport, String> {
    if !c.headers.is_empty() {
        return Err("headers are for a url; a command gets its settings in args and env".into());
    }
    let command = expand(&c.command, get).map_err(|w| format!("command: {w}"))?;
    if command.trim().is_empty() {
        return Err("command is empty: name the server's program".into());
    }
    let args = c
        .args
        .iter()
        .map(|a| expand(a, get))
        .collect::<Result<_, _>>()
        .map_err(|w| format!("args: {w}"))?;
    let mut env = BTreeMap::new();
    for (k, v) in &c.env {
        env.insert(
            k.clone(),
            expand(v, get).map_err(|w| format!("env.{k}: {w}"))?,
        );
    }
    Ok(Transport::Stdio { command, args, env })
}

/// An HTTP server's settings, expanded and checked: https, or http to this machine only;
/// header names and values that HTTP accepts, none the transport sets itself.
fn http_transport(
    raw_url: &str,
    c: &ServerConfig,
    get: &impl Fn(&str) -> Option<String>,
    urls_expanded: bool,
) -> Result<Transport, String> {
    if !c.args.is_empty() || !c.env.is_empty() {
        return Err(
            "args and env are for a command; an HTTP server gets its settings in headers".into(),
        );
    }
    let url = expand(raw_url, get).map_err(|w| format!("url: {w}"))?;
    if urls_expanded || !raw_url.contains("${") {
        check_url(&url).map_err(|w| format!("url: {w}"))?;
    }
    let mut headers = BTreeMap::new();
    for (k, v) in &c.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("headers: {k:?} is not an HTTP header name"))?;
        if TRANSPORT_HEADERS.contains(&name.as_str()) {
            return Err(format!(
                "headers: {k} is set by the MCP transport itself; leave it out"
            ));
        }
        let value = expand(v, get).map_err(|w| format!("headers.{k}: {w}"))?;
        // The value is not shown: it may be a token.
        if http::HeaderValue::from_str(&value).is_err() {
            return Err(format!(
                "headers.{k}: the value has characters HTTP headers cannot carry (a line break?)"
            ));
        }
        headers.insert(k.clone(), value);
    }
    Ok(Transport::Http { url, headers })
}

/// An MCP endpoint Deskhand may reach: `https://`, or plain `http://` to this machine only (a
/// header such as a bearer token must not cross a network in clear).
fn check_url(url: &str) -> Result<(), String> {
    let u =
        url::Url::parse(url).map_err(|e| format!("not a URL ({e}); write https://HOST/PATH"))?;
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let local = match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if local {
                Ok(())
            } else {
                Err(format!(
                    "plain http is allowed only to this machine (localhost, 127.0.0.1, [::1]); \
                     use https://{}",
                    shown_url(url).trim_start_matches("http://")
                ))
            }
        }
        other => Err(format!(
            "{other}:// is not an MCP endpoint: use https:// (or http:// to localhost)"
        )),
    }
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
    /// Answers of an HTTP server that broke off (never marked for a stdio server).
    breaks: Breaks,
    /// An HTTP server's URL, to keep its query out of messages.
    url: Option<String>,
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
                Ok((service, tools, breaks)) => {
                    for t in tools {
                        session.add_tool(&spec.name, t);
                    }
                    session.servers.insert(
                        spec.name.clone(),
                        Server {
                            service,
                            timeout: spec.timeout,
                            gone: Mutex::new(None),
                            breaks,
                            url: match &spec.transport {
                                Transport::Http { url, .. } => Some(url.clone()),
                                Transport::Stdio { .. } => None,
                            },
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
        let broke = self.breaks.watch();
        let answered = tokio::time::timeout(self.timeout, self.service.peer().call_tool(params));
        let answer = tokio::select! {
            a = answered => a,
            why = broke => {
                let why = format!("its answer broke off: {why}");
                *self.gone.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
                return Err(McpError::Gone { server: server.into(), why });
            }
        };
        match answer {
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
                let why = scrubbed(http_failure(&e), self.url.as_deref());
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
) -> Result<
    (
        RunningService<RoleClient, ()>,
        Vec<rmcp::model::Tool>,
        Breaks,
    ),
    McpError,
> {
    let url = match &spec.transport {
        Transport::Http { url, .. } => Some(url.as_str()),
        Transport::Stdio { .. } => None,
    };
    let fail = |why: String| {
        // A server that wants OAuth: say how to sign in (issue 17's `connect mcp:NAME`).
        let why = if why.contains("refused the credentials") {
            format!(
                "{why}; if it asks you to sign in, run `deskhand connect mcp:{}` once",
                spec.name
            )
        } else {
            why
        };
        McpError::Start {
            server: spec.name.clone(),
            target: spec.transport.target(),
            settings: spec.transport.settings(),
            why: scrubbed(why, url),
        }
    };
    let breaks = Breaks::default();
    let started = async {
        let service = match &spec.transport {
            Transport::Stdio { command, args, env } => {
                let transport =
                    child_transport(command, args, env).map_err(|e| fail(e.to_string()))?;
                ().serve(transport).await.map_err(|e| fail(e.to_string()))?
            }
            Transport::Http { url, headers } => {
                let transport =
                    http_transport_client(url, headers, spec.timeout, &breaks).map_err(&fail)?;
                ().serve(transport)
                    .await
                    .map_err(|e| fail(http_failure(&e)))?
            }
        };
        let tools = service
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| fail(format!("listing its tools: {}", http_failure(&e))))?;
        Ok((service, tools, breaks.clone()))
    };
    tokio::time::timeout(spec.timeout, started)
        .await
        .map_err(|_| fail(format!("no answer within {} s", spec.timeout.as_secs())))?
}

/// A stdio server's process, with a clean environment: it gets what its config gives it, and
/// PATH to find its own programs; never Deskhand's keys.
fn child_transport(
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> std::io::Result<TokioChildProcess> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear().envs(env);
    if !env.contains_key("PATH") {
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
    }
    // Killed if the session is dropped without closing (a panic, a cancelled job).
    cmd.kill_on_drop(true);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()?;
    Ok(transport)
}

/// What a server's failure was, in words the person can act on: for an HTTP server a refused
/// credential or an unreachable address is said plainly; anything else with its error chain.
fn http_failure(e: &(dyn std::error::Error + 'static)) -> String {
    let mut said = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        // rmcp's wrappers do not name the transport's error as their source, and their own
        // message names the transport's Rust type: they are stepped over.
        let wrapped = match (
            c.downcast_ref::<ClientInitializeError>(),
            c.downcast_ref::<ServiceError>(),
        ) {
            (Some(ClientInitializeError::TransportError { error, context }), _) => {
                said.push_str(&format!("{context}: "));
                Some(error)
            }
            (_, Some(ServiceError::TransportSend(error))) => Some(error),
            _ => None,
        };
        if let Some(w) = wrapped {
            cause = Some(&*w.error);
            continue;
        }
        let found = c.downcast_ref::<HttpError>().or_else(|| {
            // The worker wraps the transport's error without naming it as its source either.
            match c.downcast_ref::<WorkerQuitReason<HttpError>>() {
                Some(WorkerQuitReason::Fatal { error, .. }) => Some(error),
                _ => None,
            }
        });
        if let Some(plain) = found.and_then(plainly) {
            return plain;
        }
        // Most errors repeat their cause in their own message: each part is said once.
        let part = c.to_string();
        if !said.contains(&part) {
            if !said.is_empty() && !said.ends_with(": ") {
                said.push_str(": ");
            }
            said.push_str(&part);
        }
        cause = c.source();
    }
    said
}

/// The HTTP failures worth saying in plain words.
fn plainly(e: &HttpError) -> Option<String> {
    let refused = "the server refused the credentials";
    match e {
        StreamableHttpError::AuthRequired(_) => Some(format!("{refused} (HTTP 401)")),
        StreamableHttpError::InsufficientScope(_) => {
            Some(format!("{refused} (HTTP 403: insufficient scope)"))
        }
        StreamableHttpError::UnexpectedServerResponse(r)
            if r.starts_with("HTTP 401") || r.starts_with("HTTP 403") =>
        {
            Some(format!("{refused} ({})", &r[..8]))
        }
        StreamableHttpError::Client(r) if r.is_connect() => {
            Some("cannot connect to it (is it running, at that address?)".into())
        }
        StreamableHttpError::SessionExpired => {
            Some("the server no longer knows this session (HTTP 404); it may have restarted".into())
        }
        _ => None,
    }
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

    fn one(name: &str, c: ServerConfig) -> McpSection {
        McpSection {
            servers: [(name.to_string(), c)].into(),
        }
    }

    fn http(url: &str) -> ServerConfig {
        ServerConfig {
            url: Some(url.into()),
            ..Default::default()
        }
    }

    /// The config error for `c`, as the person reads it.
    fn refused(c: ServerConfig) -> String {
        specs(&one("shop", c), |_| Some("x".into()))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn server_names_and_timeouts_are_checked_and_secrets_stay_out_of_debug() {
        let mut section = one(
            "files",
            ServerConfig {
                command: "files-mcp".into(),
                env: [("TOKEN".to_string(), "${TOKEN}".to_string())].into(),
                ..Default::default()
            },
        );
        let s = specs(&section, |_| Some("sekrit".into())).unwrap();
        assert_eq!(s[0].timeout, DEFAULT_TIMEOUT);
        let Transport::Stdio { env, .. } = &s[0].transport else {
            panic!("{s:?}")
        };
        assert_eq!(env["TOKEN"], "sekrit");
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
    fn an_http_server_expands_its_url_and_headers_and_keeps_them_out_of_debug() {
        let section: McpSection = toml::from_str(
            "[servers.shop]\nurl = \"https://${SHOP_HOST}/mcp?key=${KEY}\"\n\
             headers = { Authorization = \"Bearer ${TOKEN}\", X-Shop = \"${REGION:-eu}\" }\n\
             timeout_secs = 5\n",
        )
        .unwrap();
        let get = |k: &str| match k {
            "SHOP_HOST" => Some("shop.example".to_string()),
            "KEY" => Some("url-sekrit".to_string()),
            "TOKEN" => Some("header-sekrit".to_string()),
            _ => None,
        };
        let s = specs(&section, get).unwrap();
        assert_eq!(s[0].timeout, Duration::from_secs(5));
        let Transport::Http { url, headers } = &s[0].transport else {
            panic!("{s:?}")
        };
        assert_eq!(url, "https://shop.example/mcp?key=url-sekrit");
        assert_eq!(headers["Authorization"], "Bearer header-sekrit");
        assert_eq!(headers["X-Shop"], "eu");
        let shown = format!("{:?}", s[0]);
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(shown.contains("https://shop.example/mcp"), "{shown}");
        // An unset variable without a default names itself.
        let e = specs(&section, |_| None).unwrap_err().to_string();
        assert!(
            e.contains("[mcp.servers.shop]") && e.contains("${SHOP_HOST}"),
            "{e}"
        );
    }

    #[test]
    fn a_server_is_either_a_command_or_a_url() {
        let e = refused(ServerConfig::default());
        assert!(e.contains("set command") && e.contains("or url"), "{e}");
        let e = refused(ServerConfig {
            command: "files-mcp".into(),
            url: Some("https://shop.example/mcp".into()),
            ..Default::default()
        });
        assert!(e.contains("not both"), "{e}");
        let e = refused(ServerConfig {
            args: vec!["--x".into()],
            ..http("https://shop.example/mcp")
        });
        assert!(e.contains("args and env are for a command"), "{e}");
        let e = refused(ServerConfig {
            command: "files-mcp".into(),
            headers: [("Authorization".to_string(), "Bearer x".to_string())].into(),
            ..Default::default()
        });
        assert!(e.contains("headers are for a url"), "{e}");
    }

    #[test]
    fn urls_are_https_or_plain_http_to_this_machine_only() {
        for ok in [
            "https://shop.example/mcp",
            "https://10.0.0.5:8443/mcp",
            "http://localhost:3000/mcp",
            "http://127.0.0.1:3000/mcp",
            "http://127.8.0.1/mcp",
            "http://[::1]:3000/mcp",
        ] {
            assert!(specs(&one("shop", http(ok)), |_| None).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("http://shop.example/mcp", "allowed only to this machine"),
            (
                "http://192.168.1.4:3000/mcp",
                "allowed only to this machine",
            ),
            (
                "http://localhost.evil.example/mcp",
                "allowed only to this machine",
            ),
            ("ws://localhost/mcp", "use https://"),
            ("file:///etc/passwd", "use https://"),
            ("shop.example/mcp", "not a URL"),
            ("", "not a URL"),
        ] {
            let e = refused(http(bad));
            assert!(
                e.contains(says) && e.contains("[mcp.servers.shop]"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn headers_must_be_http_headers_the_transport_does_not_set() {
        let with = |k: &str, v: &str| ServerConfig {
            headers: [(k.to_string(), v.to_string())].into(),
            ..http("https://shop.example/mcp")
        };
        assert!(refused(with("Bad Name", "x")).contains("not an HTTP header name"));
        let e = refused(with("Mcp-Session-Id", "x"));
        assert!(e.contains("set by the MCP transport"), "{e}");
        let e = refused(with("Authorization", "Bearer a\nb"));
        assert!(e.contains("cannot carry") && !e.contains("Bearer"), "{e}");
    }

    #[test]
    fn the_load_time_check_leaves_urls_made_of_variables_for_later() {
        // `${MCP_URL}` cannot be checked before the agent starts; a written one can.
        assert!(check(&one("shop", http("${MCP_URL}"))).is_ok());
        assert!(check(&one("shop", http("http://shop.example/mcp"))).is_err());
        assert!(check(&one("shop", ServerConfig::default())).is_err());
    }

    #[test]
    fn a_url_query_stays_out_of_messages() {
        let url = "https://shop.example/mcp?key=sekrit";
        let said = scrubbed(
            format!("error sending request for url ({url}): refused"),
            Some(url),
        );
        assert_eq!(
            said,
            "error sending request for url (https://shop.example/mcp): refused"
        );
        assert_eq!(scrubbed("as is".into(), None), "as is");
    }

    #[test]
    fn tool_names_are_api_safe() {
        assert_eq!(api_name("shop", "lookup_price"), "mcp_shop_lookup_price");
        assert_eq!(api_name("files", "read.file v2"), "mcp_files_read_file_v2");
    }
}
