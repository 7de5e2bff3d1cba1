//! Actions: the building blocks a skill's steps `use`. Each declares its arguments and the
//! permissions it needs, so a skill that uses one without declaring them is refused at load time.
//! Some actions are also runnable on their own as one-step skills (`deskhand dispatch
//! browser.fill ...`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::manifest::{Access, Permissions};
use super::{ParamDef, ParamType, SkillEnv};
use crate::runner::{RetryPolicy, Step};

/// Consequential actions a skill may be allowed to run without asking.
pub const CONSEQUENTIAL: &[&str] = &[
    "submit",
    "click",
    "send",
    "overwrite",
    "delete",
    "external-write",
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

/// An argument: name, type, required, default (JSON text), description.
pub type Arg = (
    &'static str,
    ParamType,
    bool,
    Option<&'static str>,
    &'static str,
);

/// One action.
#[derive(Debug)]
pub struct Action {
    /// `gmail.sync`.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its arguments.
    pub args: &'static [Arg],
    /// What it needs permission for.
    pub needs: &'static [Need],
    /// Runnable as a skill by itself.
    pub direct: bool,
    /// Per-attempt timeout.
    pub timeout_s: u64,
    /// Retried on transient failure (false for steps with side effects a retry would repeat).
    pub retry: bool,
}

use ParamType::{Bool, Date, Int, Json, Url};
const STRING: ParamType = ParamType::String;

const ACCOUNT: Arg = (
    "account",
    STRING,
    false,
    Some("\"default\""),
    "Which connection of the provider.",
);

const TARGET: Arg = (
    "target",
    STRING,
    false,
    Some("\"headless\""),
    "Where: headless (the agent's own Chromium), or a tab of your browser through the extension: tab:active, tab:new, tab:<id>, tab:<URL pattern>.",
);

const FALLBACK: Arg = (
    "fallback",
    STRING,
    false,
    Some("\"none\""),
    "With a tab target: headless runs it in the agent's own Chromium when the extension is not connected; none fails.",
);

/// Every action.
pub static ACTIONS: &[Action] = &[
    Action {
        name: "browser.fill",
        description: "Open a page, fill its form by field labels, optionally submit, and save a report and a screenshot in reports/.",
        args: &[
            ("url", Url, true, None, "The page with the form."),
            ("fields", Json, true, None, "Field labels to values, e.g. {\"Email\": \"a@b.c\", \"Subscribe\": true}."),
            ("submit", STRING, false, None, "Text of the button to click afterwards."),
            ("partial", Bool, false, Some("false"), "Fill what matches and report the rest."),
            TARGET,
            FALLBACK,
        ],
        needs: &[Need::Browser, Need::Workspace("reports/x")],
        direct: true,
        timeout_s: 120,
        retry: false,
    },
    Action {
        name: "browser.extract",
        description: "Open a page and extract records with a schema (following next links) into reports/.",
        args: &[
            ("url", Url, true, None, "The first page."),
            ("schema", Json, true, None, "Extraction schema {items, fields, next}, or a path to a schema file in the workspace."),
            ("format", STRING, false, Some("\"csv\""), "csv, jsonl, json or xlsx."),
            ("max_pages", Int, false, Some("10"), "Follow next links at most this many pages."),
            TARGET,
            FALLBACK,
        ],
        needs: &[Need::Browser, Need::Workspace("reports/x"), Need::Read(SCHEMA_FILES)],
        direct: true,
        timeout_s: 300,
        retry: true,
    },
    Action {
        name: "browser.scroll",
        description: "Open a page and scroll until enough items match a selector (or nothing new appears); save a report in reports/.",
        args: &[
            ("url", Url, true, None, "The page."),
            ("selector", STRING, true, None, "CSS selector of the items to count."),
            ("count", Int, false, None, "Stop once this many match (default: until the feed ends)."),
            ("idle_ms", Int, false, Some("1500"), "The feed has ended when nothing new appears for this long."),
            TARGET,
            FALLBACK,
        ],
        needs: &[Need::Browser, Need::Workspace("reports/x")],
        direct: true,
        timeout_s: 180,
        retry: true,
    },
    Action {
        name: "browser.click",
        description: "Open a page and click a button or link by its text (after approval); save a report in reports/.",
        args: &[
            ("url", Url, true, None, "The page."),
            ("text", STRING, true, None, "What the button or link says, or role=button[name=\"…\"], text=…, css=…."),
            TARGET,
            FALLBACK,
        ],
        needs: &[Need::Browser, Need::Workspace("reports/x")],
        direct: true,
        timeout_s: 120,
        retry: false,
    },
    Action {
        name: "gmail.search",
        description: "Sync Gmail, then save the messages matching a Gmail-style query in reports/.",
        args: &[
            ("query", STRING, true, None, "Gmail search syntax, e.g. \"from:grace is:unread newer_than:7d\"."),
            ("limit", Int, false, Some("50"), "At most this many messages, newest first."),
            ACCOUNT,
        ],
        needs: &[Need::Connector("gmail", Access::Read), Need::Workspace("reports/x")],
        direct: true,
        timeout_s: 600,
        retry: true,
    },
    Action {
        name: "gmail.send",
        description: "Send a plain-text mail from the Gmail account, after the person approves it (recipients, subject and text).",
        args: &[
            ("to", STRING, true, None, "Recipients, comma-separated: \"Grace Hopper <grace@example.com>, ada@example.com\"."),
            ("cc", STRING, false, None, "Copy recipients, comma-separated."),
            ("subject", STRING, true, None, "The subject."),
            ("body", ParamType::Text, true, None, "The text (several lines)."),
            ACCOUNT,
        ],
        needs: &[Need::Connector("gmail", Access::Write)],
        direct: true,
        timeout_s: 120,
        // A retry could send twice; the job's own redelivery is covered by its send record.
        retry: false,
    },
    Action {
        name: "calendar.agenda",
        description: "Sync Google Calendar, then save the coming days' events in reports/.",
        args: &[("days", Int, false, Some("7"), "Days from today."), ACCOUNT],
        needs: &[Need::Connector("calendar", Access::Read), Need::Workspace("reports/x")],
        direct: true,
        timeout_s: 600,
        retry: true,
    },
    Action {
        name: "notion.query",
        description: "Sync Notion, then save a data source's pages (optionally filtered) in reports/.",
        args: &[
            ("data_source", STRING, true, None, "Data source id or title."),
            ("where", Json, false, Some("{}"), "Property values to match, e.g. {\"Status\": \"Done\"}."),
            ACCOUNT,
        ],
        needs: &[Need::Connector("notion", Access::Read), Need::Workspace("reports/x")],
        direct: true,
        timeout_s: 600,
        retry: true,
    },
    Action {
        name: "gmail.sync",
        description: "Bring the local Gmail cache up to date (held while the account needs reconnecting).",
        args: &[ACCOUNT],
        needs: &[Need::Connector("gmail", Access::Read)],
        direct: false,
        timeout_s: 600,
        retry: true,
    },
    Action {
        name: "calendar.sync",
        description: "Bring the local Calendar cache up to date.",
        args: &[ACCOUNT],
        needs: &[Need::Connector("calendar", Access::Read)],
        direct: false,
        timeout_s: 600,
        retry: true,
    },
    Action {
        name: "notion.sync",
        description: "Bring the local Notion cache up to date.",
        args: &[ACCOUNT],
        needs: &[Need::Connector("notion", Access::Read)],
        direct: false,
        timeout_s: 600,
        retry: true,
    },
    Action {
        name: "report.status",
        description: "Write the status report (calendar, mail since the last report, tasks, cross-referenced) as Markdown and XLSX.",
        args: &[
            ("date", Date, false, None, "The report's day (default today)."),
            ("tz", STRING, false, None, "Time zone of the report's day (default the machine's)."),
            ACCOUNT,
        ],
        needs: &[
            Need::Connector("gmail", Access::Read),
            Need::Connector("calendar", Access::Read),
            Need::Workspace("reports/x"),
        ],
        direct: false,
        timeout_s: 120,
        retry: true,
    },
    Action {
        name: "report.inbox-digest",
        description: "Write a digest of the last hours' mail grouped by sender and thread.",
        args: &[
            ("hours", Int, false, Some("24"), "How far back."),
            ("until", STRING, false, None, "End of the window, RFC 3339 (default now)."),
            ("tz", STRING, false, None, "Time zone times are shown in (default the machine's)."),
            ACCOUNT,
        ],
        needs: &[Need::Connector("gmail", Access::Read), Need::Workspace("reports/x")],
        direct: false,
        timeout_s: 120,
        retry: true,
    },
    Action {
        name: "tasks.notion-sync",
        description: "Two-way sync of TASKS.md with a Notion data source (title, status, due).",
        args: &[
            ("data_source", STRING, true, None, "Data source id or title."),
            ("section", STRING, false, Some("\"Notion\""), "TASKS.md section for tasks new from Notion."),
            ACCOUNT,
        ],
        needs: &[Need::Connector("notion", Access::Write), Need::Workspace("TASKS.md")],
        direct: false,
        timeout_s: 300,
        retry: false,
    },
    Action {
        name: "schedule",
        description: "Add a schedule: run a skill on a cron (`/schedule \"0 8 * * 1-5\" status-report tz=Europe/Berlin`).",
        args: &[
            ("cron", STRING, false, None, "Five-field cron or @daily-style name (or the first word after /schedule)."),
            ("skill", STRING, false, None, "The skill to run (or the second word)."),
            ("tz", STRING, false, None, "IANA time zone (default the machine's)."),
            ("params", Json, false, Some("{}"), "The skill's parameters."),
            ("missed", STRING, false, Some("\"run-once\""), "After sleep or downtime: run-once or skip."),
            ("args", Json, false, None, "Words after /schedule: CRON SKILL."),
        ],
        needs: &[],
        direct: true,
        timeout_s: 30,
        retry: false,
    },
    Action {
        name: "noop",
        description: "Does nothing (for checking the agent and measuring dispatch).",
        args: &[],
        needs: &[],
        direct: true,
        timeout_s: 60,
        retry: true,
    },
];

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
        self.args
            .iter()
            .map(|(name, kind, required, default, description)| ParamDef {
                name: name.to_string(),
                kind: *kind,
                required: *required,
                default: default.and_then(|d| serde_json::from_str(d).ok()),
                description: description.to_string(),
            })
            .collect()
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
                    if !path_allowed(&perms.workspace, path) {
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

    /// A runnable step with the given (rendered) arguments.
    pub fn step(
        &'static self,
        id: &str,
        args: Map<String, Value>,
        env: Arc<SkillEnv>,
        policy: Arc<crate::guard::Policy>,
    ) -> Step {
        let args = Arc::new(args);
        let name = self.name;
        let mut step = Step::new(
            id,
            &[],
            Arc::new(move |ctx| {
                // The step's only way to act: its job's guard.
                let guard = env.guard(Arc::clone(&policy), &ctx.job_id, ctx.cancel.clone());
                let args = Arc::clone(&args);
                Box::pin(async move { super::run_action(name, &guard, &args, ctx).await })
            }),
        );
        step.timeout = Duration::from_secs(self.timeout_s);
        if !self.retry {
            step.retry = RetryPolicy::once();
        }
        step
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
