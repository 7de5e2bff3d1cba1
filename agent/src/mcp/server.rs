//! The MCP server: the action registry as tools, each call a job (see the module above).
//!
//! Tool names are the action names with `.` written `_` (`file.read` → `file_read`), as the
//! planner offers them: MCP allows dots, but many clients pass tool names on to model APIs that
//! accept only letters, digits, `_` and `-`.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::AnnotateAble;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, Content, ErrorData, GetPromptRequestParams,
    GetPromptResult, Implementation, JsonObject, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage,
    PromptMessageRole, RawResource, ReadResourceRequestParams, ReadResourceResult,
    ResourceContents, ServerCapabilities, ServerInfo, Tool, ToolAnnotations,
};
use rmcp::model::{CreateElicitationRequestParams, ElicitationAction, ElicitationSchema};
use rmcp::service::{ElicitationMode, Peer, RequestContext};
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Map, Value};

use super::{tool_action, ORIGIN};
use crate::agent::Agent;
use crate::guard::approvals;
use crate::job::{Job, JobState};
use crate::skills::actions::Action;
use crate::skills::{SkillDef, SkillKind, Skills};

/// What clients are told about this server when they connect.
const INSTRUCTIONS: &str = "Deskhand, a desktop agent: each tool is one of its guarded actions \
on the person's workspace, browser and connections. Every call runs as a Deskhand job (listed in \
`deskhand jobs list` and the audit log). Consequential calls (destructiveHint) wait for the person \
to approve them in Deskhand; a refusal or no answer in time comes back as an error result.";

/// Deskhand as an MCP server: a handle on a running agent.
#[derive(Clone)]
pub struct DeskhandMcp {
    agent: Agent,
    workspace: PathBuf,
}

impl DeskhandMcp {
    /// A server whose tool calls run as jobs on `agent`, and whose prompts are the skills of
    /// `workspace`.
    pub fn new(agent: Agent, workspace: PathBuf) -> DeskhandMcp {
        DeskhandMcp { agent, workspace }
    }

    /// The skills offered as prompts: trusted ones with instructions (actions are tools), loaded
    /// at each request so an edit (which revokes trust) is seen at once.
    fn prompt_skills(&self) -> Vec<SkillDef> {
        Skills::load(&self.workspace)
            .list()
            .iter()
            .filter(|s| s.trusted && s.kind != SkillKind::Action)
            .cloned()
            .collect()
    }

    /// Run a checked tool call as a job and say how it ended. With `asker` (a client that
    /// takes elicitations), what the job waits for is also asked of the client's user.
    async fn run(
        &self,
        tool: &str,
        arguments: JsonObject,
        asker: Option<Peer<RoleServer>>,
    ) -> CallToolResult {
        let mut params = Map::new();
        params.insert("tool".into(), Value::String(tool.to_string()));
        params.insert("arguments".into(), Value::Object(arguments));
        let job = Job::new(super::ACTION, params, ORIGIN);
        let id = job.id.to_string();
        tracing::info!(job = %id, tool, "MCP tool call");
        let running = self.agent.run_now_with_results(job);
        let ran = match asker {
            None => running.await,
            Some(peer) => {
                tokio::pin!(running);
                tokio::select! {
                    r = &mut running => r,
                    // Never ends by itself: the job's end ends it.
                    _ = elicit_waits(self.agent.store(), &id, &peer) => running.await,
                }
            }
        };
        let (rec, results) = match ran {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(job = %id, tool, error = %e, "MCP tool call refused");
                return error_result(format!("{tool} was not run: {e}"));
            }
        };
        match rec.state {
            JobState::Succeeded => {
                // One step: the called action's result.
                let out = results.into_values().next().unwrap_or(Value::Null);
                CallToolResult::success(vec![Content::text(out.to_string())])
            }
            JobState::Held => error_result(format!(
                "{tool} (job {id}) is held: {} — the person must fix that in Deskhand, then call again",
                rec.error.unwrap_or_default()
            )),
            other => error_result(format!(
                "{tool} (job {id}) {}: {}",
                other.as_str(),
                rec.error.unwrap_or_default()
            )),
        }
    }
}

/// How often a running call's job is checked for something waiting for the person.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(150);

/// Who the approvals log names when a client's user answers through elicitation.
const ELICITED_BY: &str = "MCP client (elicitation)";

/// Ask the client's user, by elicitation, about each approval or question job `job` waits for,
/// and record the answer as the phone's or the CLI's would be (whichever comes first wins; the
/// others find it decided). Runs until the caller drops it.
async fn elicit_waits(store: &crate::store::Store, job: &str, peer: &Peer<RoleServer>) {
    let mut asked = std::collections::HashSet::new();
    loop {
        let pending = approvals::list(store, false).await.unwrap_or_default();
        for a in pending.into_iter().filter(|a| a.job == job) {
            if !asked.insert(a.id.clone()) {
                continue;
            }
            let question = a.action == approvals::QUESTION;
            let schema = if question {
                ElicitationSchema::builder()
                    .required_string_with("answer", |s| s.description("Your answer"))
            } else {
                ElicitationSchema::builder()
                    .required_bool_property("approve", |b| b.description("Let Deskhand do this"))
            }
            .build();
            let Ok(schema) = schema else { continue };
            let message = if question {
                format!(
                    "Deskhand asks (job {job}): {}",
                    a.preview["question"].as_str().unwrap_or(&a.target)
                )
            } else {
                format!(
                    "Deskhand wants to {} {} (job {job}). Details: {}",
                    a.action, a.target, a.preview
                )
            };
            let params = CreateElicitationRequestParams::FormElicitationParams {
                meta: None,
                message,
                requested_schema: schema,
            };
            let reply = match peer.create_elicitation(params).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(job, error = %e, "the MCP client did not answer an elicitation");
                    continue;
                }
            };
            let content = reply.content.unwrap_or(Value::Null);
            let done = match (reply.action, question) {
                (ElicitationAction::Accept, true) => match content["answer"].as_str() {
                    Some(text) => approvals::answer(store, &a.id, text, ELICITED_BY)
                        .await
                        .map(|_| ()),
                    None => continue,
                },
                (ElicitationAction::Accept, false) => {
                    let yes = content["approve"].as_bool() == Some(true);
                    approvals::decide(store, &a.id, yes, ELICITED_BY)
                        .await
                        .map(|_| ())
                }
                // Declined or cancelled: a refusal of the action; a question stays for others.
                (_, false) => approvals::decide(store, &a.id, false, ELICITED_BY)
                    .await
                    .map(|_| ()),
                (_, true) => continue,
            };
            if let Err(e) = done {
                tracing::info!(job, error = %e, "an elicited answer came too late");
            }
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

fn error_result(message: String) -> CallToolResult {
    CallToolResult::error(vec![Content::text(message)])
}

/// The MCP tool for an action: its schema, and hints from its declared effects.
pub fn tool_of(a: &Action) -> Tool {
    let schema = match a.args_schema() {
        Value::Object(o) => o.clone(),
        _ => JsonObject::new(),
    };
    let annotations = ToolAnnotations::new()
        .read_only(a.consequential.is_empty())
        .destructive(!a.consequential.is_empty());
    Tool::new(
        crate::planner::tools::tool_name(a.name),
        a.description,
        Arc::new(schema),
    )
    .annotate(annotations)
}

/// The one prompt argument of a plugin's command.
const COMMAND_ARGUMENTS: &str = "arguments";

/// A skill as an MCP prompt: its name, description and parameters.
pub fn prompt_of(s: &SkillDef) -> Prompt {
    // A plugin's command takes its words as one argument, as `/PLUGIN:COMMAND words` does.
    if s.kind == SkillKind::Command {
        let words = PromptArgument::new(COMMAND_ARGUMENTS)
            .with_description("the command's arguments, separated by spaces")
            .with_required(false);
        return Prompt::new(&s.name, Some(&s.description), Some(vec![words]));
    }
    let args = s
        .params
        .iter()
        .map(|p| {
            PromptArgument::new(&p.name)
                .with_description(&p.description)
                .with_required(p.required)
        })
        .collect::<Vec<_>>();
    Prompt::new(&s.name, Some(&s.description), Some(args))
}

/// The text of a skill's prompt: its instructions (SKILL.md), then the arguments given, as a
/// Claude Code command appends them.
pub fn prompt_text(s: &SkillDef, arguments: &JsonObject) -> String {
    if s.kind == SkillKind::Command {
        let words = arguments
            .get(COMMAND_ARGUMENTS)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let words = shlex::split(words)
            .unwrap_or_else(|| words.split_whitespace().map(String::from).collect());
        return format!(
            "Deskhand command /{}: {}\n\n{}",
            s.name,
            s.description,
            crate::plugins::commands::substitute(&s.body, &words)
        );
    }
    let mut text = format!(
        "Deskhand skill {}: {}\n\n{}",
        s.name,
        s.description,
        s.body.trim()
    );
    if !arguments.is_empty() {
        let args: Vec<String> = arguments
            .iter()
            .map(|(k, v)| match v {
                // A string as written, not JSON-quoted.
                Value::String(v) => format!("{k}={v}"),
                v => format!("{k}={v}"),
            })
            .collect();
        text.push_str(&format!("\n\nARGUMENTS: {}", args.join(" ")));
    }
    text
}

/// The URI of a workspace file offered as a resource.
const RESOURCE_PREFIX: &str = "deskhand:///";

/// The folder offered as resources: the results jobs write, never the agent's state.
const REPORTS: &str = "reports";

/// Most files walked when listing `reports/`.
const MAX_LISTED: usize = 10_000;

/// The workspace path a resource URI names, if it is under `reports/`.
fn resource_path(uri: &str) -> Option<&str> {
    uri.strip_prefix(RESOURCE_PREFIX)
        .filter(|rel| rel.starts_with("reports/"))
}

/// Every tool offered.
pub fn tools() -> Vec<Tool> {
    super::offered().map(tool_of).collect()
}

impl ServerHandler for DeskhandMcp {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("deskhand", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = self.prompt_skills().iter().map(prompt_of).collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        let skills = self.prompt_skills();
        let Some(skill) = skills.iter().find(|s| s.name == request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "there is no trusted skill {:?}; prompts/list shows them, `deskhand skills trust NAME` trusts one",
                    request.name
                ),
                None,
            ));
        };
        let text = prompt_text(skill, &request.arguments.unwrap_or_default());
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(PromptMessageRole::User, text)])
                .with_description(&skill.description),
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let listing = match self.agent.reader().files(REPORTS, MAX_LISTED) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list reports/ for MCP resources");
                return Ok(ListResourcesResult::with_all_items(vec![]));
            }
        };
        let resources = listing
            .files
            .into_iter()
            .map(|f| {
                let mut r = RawResource::new(format!("{RESOURCE_PREFIX}{}", f.rel), f.rel.clone());
                r.mime_type = mime_guess::from_path(&f.rel).first().map(|m| m.to_string());
                r.size = u32::try_from(f.bytes).ok();
                r.no_annotation()
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let uri = request.uri;
        let Some(rel) = resource_path(&uri) else {
            return Err(ErrorData::invalid_params(
                format!("{uri:?} is not a resource here: only {RESOURCE_PREFIX}reports/… files are offered"),
                None,
            ));
        };
        let bytes = match self.agent.reader().read(rel) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(ErrorData::resource_not_found(
                    format!("no file {rel}; resources/list shows them"),
                    None,
                ))
            }
            Err(e) => return Err(ErrorData::invalid_params(format!("{rel}: {e}"), None)),
        };
        let mime = mime_guess::from_path(rel).first().map(|m| m.to_string());
        let contents = match String::from_utf8(bytes) {
            Ok(text) => ResourceContents::TextResourceContents {
                uri,
                mime_type: mime.or(Some("text/plain".into())),
                text,
                meta: None,
            },
            Err(e) => {
                use base64::Engine;
                ResourceContents::BlobResourceContents {
                    uri,
                    mime_type: mime,
                    blob: base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                    meta: None,
                }
            }
        };
        Ok(ReadResourceResult::new(vec![contents]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let tool = request.name.as_ref();
        let Some(action) = tool_action(tool) else {
            return Err(ErrorData::invalid_params(
                format!("there is no tool {tool:?}; tools/list shows the tools"),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        // A mistake in the arguments is the client's to fix: said before any job is made.
        if let Err(e) = action.check_args(arguments.clone()) {
            return Ok(error_result(format!("invalid arguments for {tool}: {e}")));
        }
        let asker = context
            .peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
            .then(|| context.peer.clone());
        Ok(self.run(tool, arguments, asker).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_carry_the_schema_and_hints_of_their_action() {
        let tools = tools();
        let find = |n: &str| {
            tools
                .iter()
                .find(|t| t.name == n)
                .unwrap_or_else(|| panic!("no tool {n}"))
        };
        let read = find("file_read");
        assert_eq!(read.input_schema["type"], "object");
        let hints = read.annotations.as_ref().unwrap();
        assert_eq!(
            (hints.read_only_hint, hints.destructive_hint),
            (Some(true), Some(false))
        );
        let send = find("gmail_send").annotations.as_ref().unwrap();
        assert_eq!(
            (send.read_only_hint, send.destructive_hint),
            (Some(false), Some(true))
        );
        // The planner's entry is offered; the schedule, the no-op and this entry are not.
        find("agent_ask");
        for hidden in ["schedule", "noop", "mcp_call"] {
            assert!(tools.iter().all(|t| t.name != hidden), "{hidden}");
        }
        assert!(tools.iter().all(|t| tool_action(&t.name).is_some()));
    }

    #[test]
    fn a_command_prompt_takes_its_words_and_puts_them_in_place() {
        let mut s = Skills::builtin().find("status-report").unwrap().clone();
        s.name = "shop:price".into();
        s.kind = SkillKind::Command;
        s.body = "Price of $0 in $1.".into();
        let p = prompt_of(&s);
        let args = p.arguments.unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].name, COMMAND_ARGUMENTS);
        let given: JsonObject =
            serde_json::from_value(serde_json::json!({"arguments": "\"green tea\" EUR"})).unwrap();
        assert!(prompt_text(&s, &given).ends_with("Price of green tea in EUR."));
    }
}
