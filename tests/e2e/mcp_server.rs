//! Deskhand as an MCP server (issue 17): the real binary driven by an rmcp client, over the
//! stdio of `deskhand mcp` and over streamable HTTP at `deskhand serve`'s `/mcp`.

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, GetPromptRequestParams, ReadResourceRequestParams, Tool,
};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

use crate::util::{run_cli, temp};

/// A client connected to `deskhand mcp` on `ws`, and the server's process id.
async fn connect(ws: &std::path::Path) -> (RunningService<RoleClient, ()>, u32) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskhand"));
    cmd.arg("mcp")
        .env("DESKHAND_WORKSPACE", ws)
        .env("DESKHAND_APPROVAL_TIMEOUT", "1")
        .env_remove("DESKHAND_QUEUE")
        // Logging on, to show that none of it reaches stdout (the protocol would break).
        .env("RUST_LOG", "debug");
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn deskhand mcp");
    let pid = transport.id().expect("the server's pid");
    let client = ().serve(transport).await.expect("MCP handshake");
    (client, pid)
}

async fn call<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

/// MCP jobs in `deskhand jobs list --json`.
fn mcp_jobs(ws: &std::path::Path) -> Vec<Value> {
    let (ok, out, err) = run_cli(ws, &["jobs", "list", "--json"]);
    assert!(ok, "jobs list: {err}");
    let v: Value = serde_json::from_str(&out).expect("jobs list is JSON");
    let list = v
        .as_array()
        .or_else(|| v["jobs"].as_array())
        .cloned()
        .unwrap_or_default();
    list.into_iter()
        .filter(|j| j["skill"] == "mcp.call")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_lists_the_actions_and_every_call_is_a_guarded_job() {
    let ws = temp();
    let ws = ws.path();
    std::fs::write(
        ws.join("TASKS.md"),
        "# Tasks\n\n## Inbox\n- [ ] Water the plants\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.join("reports")).unwrap();
    std::fs::write(ws.join("reports/notes.md"), "keep me\n").unwrap();
    std::fs::create_dir_all(ws.join("skills/untrusted-notes")).unwrap();
    std::fs::write(
        ws.join("skills/untrusted-notes/SKILL.md"),
        "---\nname: untrusted-notes\ndescription: Never trusted.\n---\nDo things.\n",
    )
    .unwrap();
    let (client, pid) = connect(ws).await;

    // The registry as tools: API-safe names, object schemas, hints from the declared effects.
    let tools = client.list_all_tools().await.expect("tools/list");
    let read = tool(&tools, "file_read");
    assert_eq!(read.input_schema["type"], "object");
    assert!(read.input_schema["properties"]["path"].is_object());
    let hints = |t: &Tool| {
        let a = t.annotations.clone().expect("annotations");
        (a.read_only_hint, a.destructive_hint)
    };
    assert_eq!(hints(read), (Some(true), Some(false)));
    assert_eq!(hints(tool(&tools, "file_write")), (Some(false), Some(true)));
    assert_eq!(hints(tool(&tools, "gmail_send")), (Some(false), Some(true)));
    assert_eq!(tool(&tools, "tasks_add").input_schema["type"], "object");
    assert!(tools.iter().any(|t| t.name == "agent_ask"));
    for hidden in ["schedule", "noop", "mcp_call"] {
        assert!(!tools.iter().any(|t| t.name == hidden), "{hidden} offered");
    }

    // A call runs as a job and answers with the action's result.
    let added = call(&client, "tasks_add", json!({"text": "Buy milk"})).await;
    assert_eq!(added.is_error, Some(false), "{}", text(&added));
    let tasks = std::fs::read_to_string(ws.join("TASKS.md")).unwrap();
    assert!(
        tasks.contains("Buy milk") && tasks.contains("Water the plants"),
        "{tasks}"
    );
    let read = call(&client, "file_read", json!({"path": "TASKS.md"})).await;
    assert_eq!(read.is_error, Some(false), "{}", text(&read));
    let out: Value = serde_json::from_str(&text(&read)).expect("the result is JSON");
    assert!(out.to_string().contains("Buy milk"), "{out}");

    // Bad arguments: an error result saying what is wrong, and the server lives on.
    let bad = call(&client, "file_read", json!({"file": "TASKS.md"})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(
        text(&bad).contains("invalid arguments for file_read: missing field `path`"),
        "{}",
        text(&bad)
    );
    let unknown = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(unknown.is_err(), "an unknown tool is a protocol error");

    // Refused by the guard: an error result, and nothing of the key in it.
    let key = std::fs::read(ws.join(".deskhand/agent.key")).expect("the agent's key exists");
    let refused = call(&client, "file_read", json!({"path": ".deskhand/agent.key"})).await;
    assert_eq!(refused.is_error, Some(true));
    let said = text(&refused);
    assert!(said.contains("may not be read"), "{said}");
    let key_text = String::from_utf8_lossy(&key).trim().to_string();
    assert!(key_text.len() > 8 && !said.contains(&key_text), "{said}");

    // Consequential: overwriting a file the job did not write asks the person; nobody answers
    // within DESKHAND_APPROVAL_TIMEOUT, so it is not done.
    let write = call(
        &client,
        "file_write",
        json!({"path": "reports/notes.md", "text": "overwritten"}),
    )
    .await;
    assert_eq!(write.is_error, Some(true), "{}", text(&write));
    assert!(
        text(&write).contains("nobody approved overwrite"),
        "{}",
        text(&write)
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("reports/notes.md")).unwrap(),
        "keep me\n"
    );

    // Every call that passed its argument check is a job in the ledger and the audit log.
    let jobs = mcp_jobs(ws);
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    let states: Vec<&str> = jobs.iter().filter_map(|j| j["state"].as_str()).collect();
    assert_eq!(
        states.iter().filter(|s| **s == "succeeded").count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "failed").count(),
        2,
        "{states:?}"
    );
    let audit = std::fs::read_to_string(ws.join(".deskhand/audit.jsonl")).unwrap();
    let received = audit
        .lines()
        .filter(|l| l.contains("job.received") && l.contains("\"origin\":\"mcp\""))
        .count();
    assert_eq!(received, 4, "{audit}");
    assert!(!audit.contains(&key_text));

    // Trusted skills are prompts with their instructions; an untrusted one is not offered.
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let status = prompts
        .iter()
        .find(|p| p.name == "status-report")
        .expect("the built-in status report is a prompt");
    assert!(status
        .description
        .as_deref()
        .is_some_and(|d| d.starts_with("Morning status report")));
    assert!(!prompts.iter().any(|p| p.name == "untrusted-notes"));
    assert!(
        !prompts.iter().any(|p| p.name == "file.read"),
        "actions are tools"
    );
    let Value::Object(args) = json!({"day": "tomorrow"}) else {
        unreachable!()
    };
    let got = client
        .get_prompt(GetPromptRequestParams::new("status-report").with_arguments(args))
        .await
        .expect("prompts/get");
    let body = serde_json::to_string(&got.messages).unwrap();
    assert!(
        body.contains("# Status report") && body.contains("ARGUMENTS: day=tomorrow"),
        "{body}"
    );
    assert!(client
        .get_prompt(GetPromptRequestParams::new("untrusted-notes"))
        .await
        .is_err());

    // reports/ as read-only resources; nothing outside it, never the agent's folder.
    let resources = client.list_all_resources().await.expect("resources/list");
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(uris.contains(&"deskhand:///reports/notes.md"), "{uris:?}");
    assert!(
        uris.iter().all(|u| u.starts_with("deskhand:///reports/")),
        "{uris:?}"
    );
    let read = client
        .read_resource(ReadResourceRequestParams::new(
            "deskhand:///reports/notes.md",
        ))
        .await
        .expect("resources/read");
    assert!(serde_json::to_string(&read.contents)
        .unwrap()
        .contains("keep me"));
    for outside in [
        "deskhand:///.deskhand/agent.key",
        "deskhand:///reports/../.deskhand/agent.key",
        "deskhand:///TASKS.md",
    ] {
        let r = client
            .read_resource(ReadResourceRequestParams::new(outside))
            .await;
        let said = format!("{r:?}");
        assert!(r.is_err(), "{outside}: {said}");
        assert!(!said.contains(&key_text), "{outside}: {said}");
    }

    // The client going away ends the server.
    client.cancel().await.expect("close the client");
    let deadline = Instant::now() + Duration::from_secs(10);
    while deskhand_browser::process::pid_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !deskhand_browser::process::pid_alive(pid),
        "deskhand mcp still running after its client closed"
    );
}

#[test]
fn mcp_call_is_refused_outside_the_mcp_server() {
    let ws = temp();
    let (ok, out, err) = run_cli(ws.path(), &["/mcp.call", "tool=file_list", "arguments={}"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("runs only the tool calls of MCP clients"),
        "{err}"
    );
}

/// An MCP client whose user answers elicitations: approves when `approve` is set, and keeps the
/// messages it was shown.
#[derive(Clone, Default)]
struct Elicited {
    approve: std::sync::Arc<std::sync::atomic::AtomicBool>,
    shown: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for Elicited {
    fn get_info(&self) -> rmcp::model::ClientInfo {
        rmcp::model::ClientInfo::new(
            rmcp::model::ClientCapabilities::builder()
                .enable_elicitation()
                .build(),
            rmcp::model::Implementation::new("elicitation-test", "1.0"),
        )
    }

    async fn create_elicitation(
        &self,
        request: rmcp::model::CreateElicitationRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::CreateElicitationResult, rmcp::ErrorData> {
        if let rmcp::model::CreateElicitationRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        {
            assert!(requested_schema.properties.contains_key("approve"));
            self.shown.lock().unwrap().push(message);
        }
        let yes = self.approve.load(std::sync::atomic::Ordering::SeqCst);
        Ok(
            rmcp::model::CreateElicitationResult::new(rmcp::model::ElicitationAction::Accept)
                .with_content(json!({ "approve": yes })),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_elicitations_asks_its_user_and_the_answer_decides() {
    let ws = temp();
    let ws = ws.path();
    std::fs::create_dir_all(ws.join("reports")).unwrap();
    std::fs::write(ws.join("reports/notes.md"), "keep me\n").unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskhand"));
    cmd.arg("mcp")
        .env("DESKHAND_WORKSPACE", ws)
        .env("DESKHAND_APPROVAL_TIMEOUT", "20")
        .env_remove("DESKHAND_QUEUE");
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn deskhand mcp");
    let user = Elicited::default();
    let client = user.clone().serve(transport).await.expect("MCP handshake");

    // The user says no: the overwrite is refused at once (not after the 20 s timeout).
    let started = Instant::now();
    let no = call(
        &client,
        "file_write",
        json!({"path": "reports/notes.md", "text": "overwritten"}),
    )
    .await;
    assert_eq!(no.is_error, Some(true), "{}", text(&no));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it waited for the timeout"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("reports/notes.md")).unwrap(),
        "keep me\n"
    );
    let shown = user.shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].contains("overwrite") && shown[0].contains("reports/notes.md"),
        "{shown:?}"
    );

    // The user says yes: it is done, and the approvals log says who decided.
    user.approve
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let yes = call(
        &client,
        "file_write",
        json!({"path": "reports/notes.md", "text": "overwritten"}),
    )
    .await;
    assert_eq!(yes.is_error, Some(false), "{}", text(&yes));
    assert_eq!(
        std::fs::read_to_string(ws.join("reports/notes.md")).unwrap(),
        "overwritten"
    );
    let (ok, out, err) = run_cli(ws, &["approvals", "list", "--all", "--json"]);
    assert!(ok, "{err}");
    assert!(out.contains("MCP client (elicitation)"), "{out}");
    client.cancel().await.ok();
}

/// An rmcp streamable HTTP client on `url`, with `token` as its bearer when given.
async fn connect_http(
    url: &str,
    token: Option<&str>,
) -> Result<RunningService<RoleClient, ()>, rmcp::service::ClientInitializeError> {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::transport::StreamableHttpClientTransport;
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(t) = token {
        config = config.auth_header(t.to_string());
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_mcp_over_http_to_the_desktop_token_only() {
    let ws = temp();
    let ws = ws.path();
    std::fs::write(ws.join("TASKS.md"), "# Tasks\n\n## Inbox\n").unwrap();
    let daemon = crate::util::Daemon::start_with(
        ws,
        &[("DESKHAND_APPROVAL_TIMEOUT", std::ffi::OsStr::new("1"))],
    );
    let url = format!("{}/mcp", daemon.api);

    // No token, or a wrong one: 401 before any MCP is spoken, and no client gets in.
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"}}});
    let http = reqwest::Client::new();
    for bearer in [None, Some("wrong-token")] {
        let mut req = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.expect("POST /mcp");
        assert_eq!(r.status().as_u16(), 401, "{bearer:?}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
    assert!(connect_http(&url, None).await.is_err());
    assert!(connect_http(&url, Some("wrong-token")).await.is_err());

    // With the token: the same tools as on stdio, and a call is a job.
    let client = connect_http(&url, Some(&daemon.token))
        .await
        .expect("MCP handshake with the token");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "file_read"));
    assert!(!tools.iter().any(|t| t.name == "mcp_call"));
    let added = call(&client, "tasks_add", json!({"text": "Buy milk"})).await;
    assert_eq!(added.is_error, Some(false), "{}", text(&added));
    assert!(std::fs::read_to_string(ws.join("TASKS.md"))
        .unwrap()
        .contains("Buy milk"));

    // Refused by the guard: an error result, as on stdio; an unknown tool: a protocol error.
    let refused = call(&client, "file_read", json!({"path": ".deskhand/agent.key"})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("may not be read"),
        "{}",
        text(&refused)
    );
    let unknown = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(unknown.is_err(), "an unknown tool is a protocol error");

    // Both calls are jobs of origin mcp, in the ledger and the audit log.
    let jobs = mcp_jobs(ws);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let audit = std::fs::read_to_string(ws.join(".deskhand/audit.jsonl")).unwrap();
    let received = audit
        .lines()
        .filter(|l| l.contains("job.received") && l.contains("\"origin\":\"mcp\""))
        .count();
    assert_eq!(received, 2, "{audit}");
    assert!(!audit.contains(&daemon.token));
    client.cancel().await.expect("close the client");
}
