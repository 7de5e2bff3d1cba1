//! The action registry: the building blocks a skill's steps `use`, and the tools a planner or an
//! MCP client will be offered. Each action is one value: its name and description, an argument
//! type whose JSON Schema is derived from the Rust type (so the schema a model sees is exactly
//! what the action accepts), the type of its result (which later steps read as
//! `{{ steps.ID.FIELD }}`), the permissions it needs, the consequential things it may do, its
//! timeout and retry policy, and its `run`, which receives the job's guard and nothing else.
//! Some actions are also runnable on their own as one-step skills (`deskhand dispatch
//! browser.fill ...`).

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::args::{fields_of, params_of, schema_of};
use super::{
    browser_steps, calendar_write, files, mail, organize, person, prompt, reports, slides,
    tasks_sync, ParamDef,
};
use crate::guard::{Access, Guard, Permissions};
use crate::runner::{StepCtx, StepError};

/// Consequential actions a skill may be allowed to run without asking.
pub const CONSEQUENTIAL: &[&str] = &[
    "submit",
    "click",
    "send",
    "overwrite",
    "delete",
    "external-write",
    "move",
];

/// A permission an action needs.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// A connector resource with at least this access.
    Connector(&'static str, Access),
    /// Some browser origin.
    Browser,
    /// Writing this workspace path (a sample path matched against the skill's globs).
    Workspace(&'static str),
    /// Reading workspace files a parameter names, matching these globs when the action runs on
    /// its own. Optional in a skill: without `permissions.read` it takes inline values only.
    Read(&'static [&'static str]),
}

/// Files an extraction schema may be read from when `browser.extract` runs on its own.
const SCHEMA_FILES: &[&str] = &["**/*.yaml", "**/*.yml", "**/*.json"];

/// The type-erased run of an action: parse the arguments into its type, then run it.
type Run = Arc<
    dyn Fn(Guard, Map<String, Value>, StepCtx) -> BoxFuture<'static, Result<Value, StepError>>
        + Send
        + Sync,
>;

/// What an action declares about itself besides its types.
pub struct Meta {
    /// `gmail.sync`.
    pub name: &'static str,
    /// What it does (shown to people and to a planner).
    pub description: &'static str,
    /// What it needs permission for.
    pub needs: &'static [Need],
    /// The consequential things it may do (each asks unless the skill allows it).
    pub consequential: &'static [&'static str],
    /// Runnable as a skill by itself.
    pub direct: bool,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retried on transient failure (false for steps with side effects a retry would repeat).
    pub retry: bool,
}

/// One action.
pub struct Action {
    meta: Meta,
    /// The JSON Schema of its arguments.
    args_schema: Value,
    /// The JSON Schema of its result.
    output_schema: Value,
    /// Its arguments as parameters (derived from the schema).
    params: Vec<ParamDef>,
    /// Does a value deserialize into its argument type?
    check: fn(Map<String, Value>) -> Result<(), String>,
    run: Run,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Action")
            .field("name", &self.meta.name)
            .finish()
    }
}

impl std::ops::Deref for Action {
    type Target = Meta;
    fn deref(&self) -> &Meta {
        &self.meta
    }
}

fn parse<A: DeserializeOwned>(args: Map<String, Value>) -> Result<A, String> {
    serde_json::from_value(Value::Object(args)).map_err(|e| e.to_string())
}

/// An action from its declaration and its typed `run`.
fn action<A, O, F, Fut>(meta: Meta, run: F) -> Action
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + JsonSchema + 'static,
    F: Fn(Guard, A, StepCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StepError>> + Send + 'static,
{
    let args_schema = schema_of::<A>();
    let name = meta.name;
    let run: Run = Arc::new(move |g, args, ctx| match parse::<A>(args) {
        Ok(a) => {
            let fut = run(g, a, ctx);
            Box::pin(async move {
                let out = fut.await?;
                serde_json::to_value(out)
                    .map_err(|e| StepError::Fatal(format!("{name}: result: {e}")))
            })
        }
        Err(e) => Box::pin(futures::future::ready(Err(StepError::Invalid(format!(
            "invalid arguments for {name}: {e}"
        ))))),
    });
    Action {
        params: params_of(&args_schema),
        args_schema,
        output_schema: schema_of::<O>(),
        check: |m| parse::<A>(m).map(|_| ()),
        meta,
        run,
    }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A cache sync: read access to one connector, used by skills' steps only, retried.
const fn sync_meta(name: &'static str, description: &'static str, needs: &'static [Need]) -> Meta {
    Meta {
        name,
        description,
        needs,
        consequential: &[],
        direct: false,
        timeout: secs(600),
        retry: true,
    }
}

/// Every action.
pub static ACTIONS: LazyLock<Vec<Action>> = LazyLock::new(|| {
    use Access::{Read, Write};
    vec![
        action(
            Meta {
                name: "browser.fill",
                description: "Open a page, fill its form by field labels, optionally submit, and save a report and a screenshot in reports/.",
                needs: &[Need::Browser, Need::Workspace("reports/x")],
                consequential: &["submit"],
                direct: true,
                timeout: secs(120),
                retry: false,
            },
            browser_steps::fill,
        ),
        action(
            Meta {
                name: "browser.extract",
                description: "Open a page and extract records with a schema (following next links) into reports/.",
                needs: &[Need::Browser, Need::Workspace("reports/x"), Need::Read(SCHEMA_FILES)],
                consequential: &[],
                direct: true,
                timeout: secs(300),
                retry: true,
            },
            browser_steps::extract,
        ),
        action(
            Meta {
                name: "browser.scroll",
                description: "Open a page and scroll until enough items match a selector (or nothing new appears); save a report in reports/.",
                needs: &[Need::Browser, Need::Workspace("reports/x")],
                consequential: &[],
                direct: true,
                timeout: secs(180),
                retry: true,
            },
            browser_steps::scroll,
        ),
        action(
            Meta {
                name: "browser.click",
                description: "Open a page and click a button or link by its text (after approval); save a report in reports/.",
                needs: &[Need::Browser, Need::Workspace("reports/x")],
                consequential: &["click"],
                direct: true,
                timeout: secs(120),
                retry: false,
            },
            browser_steps::click,
        ),
        action(
            Meta {
                name: "gmail.search",
                description: "Sync Gmail, then save the messages matching a Gmail-style query in reports/.",
                needs: &[Need::Connector("gmail", Read), Need::Workspace("reports/x")],
                consequential: &[],
                direct: true,
                timeout: secs(600),
                retry: true,
            },
            crate::connector_skills::gmail_search,
        ),
        action(
            Meta {
                name: "meetings.prep",
                description: "For tomorrow's meetings with guests, a short agenda mail to them saved as a Gmail draft (never sent): their recent mail, open tasks naming them, the invitation's text. A Markdown list in reports/. Undo deletes the drafts.",
                needs: &[
                    Need::Connector("calendar", Read),
                    Need::Connector("gmail", Write),
                    Need::Workspace("reports/x"),
                ],
                consequential: &[],
                direct: false,
                timeout: secs(600),
                retry: false,
            },
            reports::meeting_prep,
        ),
        action(
            Meta {
                name: "calendar.create",
                description: "Create a Google Calendar event (title, start and end with a time zone, description, place, guests); asks first showing the whole event unless allowed; guests are told; `deskhand undo` deletes it. Needs the calendar.events scope.",
                needs: &[Need::Connector("calendar", Write)],
                consequential: &["external-write"],
                direct: true,
                timeout: secs(60),
                retry: true,
            },
            calendar_write::create,
        ),
        action(
            Meta {
                name: "calendar.update",
                description: "Change fields of a Google Calendar event (by id from calendar.agenda); asks first showing it before and after unless allowed; guests are told; `deskhand undo` puts the old fields back. Needs the calendar.events scope.",
                needs: &[Need::Connector("calendar", Write)],
                consequential: &["external-write"],
                direct: true,
                timeout: secs(60),
                retry: false,
            },
            calendar_write::update,
        ),
        action(
            Meta {
                name: "gmail.draft",
                description: "Save a mail as a Gmail draft (nothing is sent), optionally a reply in a thread (reply_to: a message id from gmail.search) with In-Reply-To and References set; audited, and deleted by `deskhand undo`. Needs the gmail.compose scope.",
                needs: &[Need::Connector("gmail", Write)],
                consequential: &[],
                direct: true,
                timeout: secs(60),
                retry: false,
            },
            mail::draft,
        ),
        action(
            Meta {
                name: "gmail.send",
                description: "Send a plain-text mail from the Gmail account, after the person approves it (recipients, subject and text).",
                needs: &[Need::Connector("gmail", Write)],
                consequential: &["send"],
                direct: true,
                timeout: secs(120),
                // A retry could send twice; the job's own redelivery is covered by its send record.
                retry: false,
            },
            mail::send,
        ),
        action(
            Meta {
                name: "calendar.agenda",
                description: "Sync Google Calendar, then save the coming days' events in reports/.",
                needs: &[Need::Connector("calendar", Read), Need::Workspace("reports/x")],
                consequential: &[],
                direct: true,
                timeout: secs(600),
                retry: true,
            },
            crate::connector_skills::calendar_agenda,
        ),
        action(
            Meta {
                name: "notion.query",
                description: "Sync Notion, then save a data source's pages (optionally filtered) in reports/.",
                needs: &[Need::Connector("notion", Read), Need::Workspace("reports/x")],
                consequential: &[],
                direct: true,
                timeout: secs(600),
                retry: true,
            },
            crate::connector_skills::notion_query,
        ),
        action(
            sync_meta(
                "gmail.sync",
                "Bring the local Gmail cache up to date (held while the account needs reconnecting).",
                &[Need::Connector("gmail", Read)],
            ),
            crate::connector_skills::gmail_sync,
        ),
        action(
            sync_meta(
                "calendar.sync",
                "Bring the local Calendar cache up to date.",
                &[Need::Connector("calendar", Read)],
            ),
            crate::connector_skills::calendar_sync,
        ),
        action(
            sync_meta(
                "notion.sync",
                "Bring the local Notion cache up to date.",
                &[Need::Connector("notion", Read)],
            ),
            crate::connector_skills::notion_sync,
        ),
        action(
            Meta {
                name: "report.status",
                description: "Write the status report (calendar, mail since the last report, tasks, cross-referenced) as Markdown and XLSX.",
                needs: &[
                    Need::Connector("gmail", Read),
                    Need::Connector("calendar", Read),
                    Need::Workspace("reports/x"),
                ],
                consequential: &[],
                direct: false,
                timeout: secs(120),
                retry: true,
            },
            reports::status,
        ),
        action(
            Meta {
                name: "report.inbox-digest",
                description: "Write a digest of the last hours' mail grouped by sender and thread.",
                needs: &[Need::Connector("gmail", Read), Need::Workspace("reports/x")],
                consequential: &[],
                direct: false,
                timeout: secs(120),
                retry: true,
            },
            reports::inbox_digest,
        ),
        action(
            Meta {
                name: "tasks.notion-sync",
                description: "Two-way sync of TASKS.md with a Notion data source (title, status, due).",
                needs: &[Need::Connector("notion", Write), Need::Workspace("TASKS.md")],
                consequential: &["external-write"],
                direct: false,
                timeout: secs(300),
                retry: false,
            },
            tasks_sync::run,
        ),
        action(
            Meta {
                name: "schedule",
                description: "Add a schedule: run a skill on a cron (`/schedule \"0 8 * * 1-5\" status-report tz=Europe/Berlin`).",
                needs: &[],
                consequential: &[],
                direct: true,
                timeout: secs(30),
                retry: false,
            },
            super::schedule,
        ),
        action(
            Meta {
                name: "file.move",
                description: "Move or rename a workspace file (never over another file); asks first unless allowed; `deskhand undo` moves it back.",
                needs: &[],
                consequential: &["move"],
                direct: false,
                timeout: secs(30),
                retry: false,
            },
            files::move_file,
        ),
        action(
            Meta {
                name: "file.delete",
                description: "Delete a workspace file: it goes into the agent's trash, so `deskhand undo` brings it back; asks first unless allowed.",
                needs: &[],
                consequential: &["delete"],
                direct: false,
                timeout: secs(30),
                retry: false,
            },
            files::delete,
        ),
        action(
            Meta {
                name: "files.organize",
                description: "Sort a workspace folder's files into subfolders by type, by month, or by a name pattern. A dry run by default (the plan: every move and conflict); with dry_run false the plan is asked for once, then carried out. Never overwrites, never follows a symbolic link; `deskhand undo` puts every file back.",
                needs: &[Need::Workspace("inbox/Other/file")],
                consequential: &["move"],
                direct: false,
                timeout: secs(600),
                retry: false,
            },
            organize::organize,
        ),
        action(
            Meta {
                name: "slides.write",
                description: "Write a slide deck: a self-contained HTML file (arrow keys, print stylesheet) and its PDF, one 16:9 slide per page, from Markdown (slides split by --- lines, notes after Note:) or an outline (title, bullets, table, workspace image, bar chart).",
                needs: &[Need::Workspace("reports/deck.html")],
                consequential: &["overwrite"],
                direct: false,
                timeout: secs(120),
                retry: true,
            },
            slides::write,
        ),
        action(
            Meta {
                name: "file.read",
                description: "Read a workspace file the skill may read (its read or workspace globs); never .deskhand/.",
                needs: &[],
                consequential: &[],
                direct: false,
                timeout: secs(30),
                retry: true,
            },
            files::read,
        ),
        action(
            Meta {
                name: "file.write",
                description: "Write a workspace file (in the skill's workspace globs); replacing a file this job did not write asks first.",
                needs: &[],
                consequential: &["overwrite"],
                direct: false,
                timeout: secs(30),
                retry: true,
            },
            files::write,
        ),
        action(
            Meta {
                name: "file.list",
                description: "List the workspace files in a folder or matching a glob that the job may read (never .deskhand/).",
                needs: &[],
                consequential: &[],
                direct: false,
                timeout: secs(30),
                retry: true,
            },
            files::list,
        ),
        action(
            Meta {
                name: "file.search",
                description: "Find the lines matching a regular expression (or plain text) in the workspace files the job may read; at most 100 lines.",
                needs: &[],
                consequential: &[],
                direct: false,
                timeout: secs(60),
                retry: true,
            },
            files::search,
        ),
        action(
            Meta {
                name: "file.edit",
                description: "Replace an exact piece of text that occurs once in a workspace file (in the skill's workspace globs); changing a file this job did not write asks first. Undoable.",
                needs: &[],
                consequential: &["overwrite"],
                direct: false,
                timeout: secs(30),
                retry: false,
            },
            files::edit,
        ),
        action(
            Meta {
                name: "skill",
                description: "Load the instructions (SKILL.md) of one of the person's prompt-only skills by its name, and the list of the other files in its folder.",
                needs: &[],
                consequential: &[],
                direct: false,
                timeout: secs(30),
                retry: true,
            },
            prompt::load,
        ),
        action(
            Meta {
                name: "skill.file",
                description: "Read another file of a prompt-only skill's folder (a path the skill's instructions name, relative to its folder).",
                needs: &[],
                consequential: &[],
                direct: false,
                timeout: secs(30),
                retry: true,
            },
            prompt::file,
        ),
        action(
            Meta {
                name: "tasks.add",
                description: "Add a task to TASKS.md under a section (due:YYYY-MM-DD, @owner and #tags in the text are understood); the person's other lines stay as they are.",
                needs: &[Need::Workspace("TASKS.md")],
                consequential: &[],
                direct: true,
                timeout: secs(30),
                retry: false,
            },
            files::add_task,
        ),
        action(
            Meta {
                name: "tasks.move",
                description: "Move one task of TASKS.md (named by its line and text as read) to another section, the line kept verbatim; every other line stays as it is. Undoable.",
                needs: &[Need::Workspace("TASKS.md")],
                consequential: &[],
                direct: true,
                timeout: secs(30),
                retry: false,
            },
            files::move_task,
        ),
        action(
            Meta {
                name: "tasks.done",
                description: "Tick (or untick) one task of TASKS.md, named by its line and text as read; in the productivity style it is struck through with today's date and moved under Done. Undoable.",
                needs: &[Need::Workspace("TASKS.md")],
                consequential: &[],
                direct: true,
                timeout: secs(30),
                retry: false,
            },
            files::done_task,
        ),
        action(
            Meta {
                name: "memory.add",
                description: "Remember one line in MEMORY.md under a section (People, Preferences, …); planned jobs read it.",
                needs: &[Need::Workspace("MEMORY.md")],
                consequential: &[],
                direct: false,
                timeout: secs(30),
                retry: false,
            },
            files::remember,
        ),
        action(
            Meta {
                name: person::ACTION,
                description: "Ask the person a question and wait for their answer (from the terminal, the API or their phone); use it when the request is ambiguous or a choice is theirs to make, not for approvals, which consequential actions ask by themselves.",
                needs: &[],
                consequential: &[],
                direct: false,
                // The approval timeout ends the wait; this only bounds a stuck one.
                timeout: secs(24 * 3600),
                retry: false,
            },
            person::ask,
        ),
        action(
            Meta {
                name: crate::planner::ACTION,
                description: "Do what a request in plain words asks, planned by the configured language model over these actions (each call guarded like a skill's step).",
                needs: &[],
                consequential: &[],
                direct: true,
                // The planner keeps its own budget (turns, tokens, wall time) inside this.
                timeout: secs(3600),
                retry: false,
            },
            crate::planner::ask,
        ),
        action(
            Meta {
                name: crate::mcp::ACTION,
                description: "Run one tool call from an MCP client (`deskhand mcp`): the named action with its arguments, with the planner's permissions.",
                needs: &[],
                consequential: &[],
                direct: true,
                // The called action keeps its own timeout inside this; an approval may wait.
                timeout: secs(24 * 3600),
                retry: false,
            },
            crate::mcp::call,
        ),
        action(
            Meta {
                name: "noop",
                description: "Does nothing (for checking the agent and measuring dispatch).",
                needs: &[],
                consequential: &[],
                direct: true,
                timeout: secs(60),
                retry: true,
            },
            noop,
        ),
    ]
});

/// `noop` takes no arguments.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

async fn noop(_: Guard, _: NoArgs, _: StepCtx) -> Result<(), StepError> {
    Ok(())
}

/// The action called `name`.
pub fn find(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// All action names.
pub fn names() -> Vec<&'static str> {
    ACTIONS.iter().map(|a| a.name).collect()
}

impl Action {
    /// The arguments as parameter definitions (for direct use and checks).
    pub fn params(&self) -> Vec<ParamDef> {
        self.params.clone()
    }

    /// The JSON Schema of the arguments (what a planner or an MCP client is offered).
    pub fn args_schema(&self) -> &Value {
        &self.args_schema
    }

    /// The JSON Schema of the result.
    pub fn output_schema(&self) -> &Value {
        &self.output_schema
    }

    /// The fields of the result later steps may read (empty: not described).
    pub fn output_fields(&self) -> Vec<String> {
        fields_of(&self.output_schema)
    }

    /// Do these (rendered) arguments fit the argument type?
    pub fn check_args(&self, args: Map<String, Value>) -> Result<(), String> {
        (self.check)(args)
    }

    /// Does this action write files of its own (reports/…)?
    pub fn writes_output(&self) -> bool {
        self.needs
            .iter()
            .any(|n| matches!(n, Need::Workspace(p) if p.starts_with("reports/")))
    }

    /// Ok when `perms` cover what this action needs; otherwise what is missing.
    pub fn permitted(&self, perms: &Permissions) -> Result<(), String> {
        let mut missing = Vec::new();
        for need in self.needs {
            match need {
                Need::Connector(res, access) => {
                    if perms.connectors.get(*res).is_none_or(|a| a < access) {
                        missing.push(format!(
                            "connectors: {{{res}: {}}}",
                            if *access == Access::Write {
                                "write"
                            } else {
                                "read"
                            }
                        ));
                    }
                }
                Need::Browser => {
                    if perms.browser.is_empty() {
                        missing.push("browser: [origins it may open]".into());
                    }
                }
                Need::Workspace(path) => {
                    // A `param:NAME` folder is known only when the job runs (the guard checks
                    // each path then).
                    let by_param = perms
                        .workspace
                        .iter()
                        .any(|g| g.trim().starts_with("param:"));
                    if !by_param && !path_allowed(&perms.workspace, path) {
                        missing.push(format!("workspace: [a glob matching {path:?}]"));
                    }
                }
                Need::Read(_) => {}
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }

    /// What this action gets when a job runs it on its own (no skill declaring more): its
    /// connectors, the origin of its `url` parameter, and the folder its sample path is in.
    pub fn minimal_permissions(&self) -> Permissions {
        let mut p = Permissions::default();
        for need in self.needs {
            match need {
                Need::Connector(res, access) => {
                    p.connectors.insert(res.to_string(), *access);
                }
                Need::Browser => p.browser.push("param:url".into()),
                Need::Workspace(path) => p.workspace.push(match path.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/**"),
                    None => path.to_string(),
                }),
                Need::Read(globs) => p.read.extend(globs.iter().map(|g| g.to_string())),
            }
        }
        p
    }

    /// Run with (rendered) arguments through `guard`, the only door the action has.
    pub(crate) fn run(
        &self,
        guard: Guard,
        args: Map<String, Value>,
        ctx: StepCtx,
    ) -> BoxFuture<'static, Result<Value, StepError>> {
        (self.run)(guard, args, ctx)
    }
}

/// Does any glob in `globs` match `path`?
pub fn path_allowed(globs: &[String], path: &str) -> bool {
    globs.iter().any(|g| {
        globset::Glob::new(g)
            .map(|g| g.compile_matcher().is_match(path))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_an_object_schema_with_described_arguments() {
        for a in ACTIONS.iter() {
            let s = a.args_schema();
            assert_eq!(s["type"], "object", "{}", a.name);
            for p in a.params() {
                assert!(
                    !p.description.is_empty(),
                    "{}: argument {} has no description",
                    a.name,
                    p.name
                );
            }
            for c in a.consequential {
                assert!(CONSEQUENTIAL.contains(c), "{}: {c}", a.name);
            }
        }
        let fill = find("browser.fill").unwrap();
        let url = &fill.args_schema()["properties"]["url"];
        assert_eq!(url["format"], "uri");
        assert!(fill.params().iter().any(|p| p.name == "target"));
        assert!(find("browser.extract")
            .unwrap()
            .output_fields()
            .contains(&"records".to_string()));
    }
}
