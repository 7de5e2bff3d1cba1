//! Skills: what a job can ask for. A skill is a folder holding an Agent Skill `SKILL.md` and
//! Deskhand's `skill.yaml` (trigger, typed params, schedule, permissions, steps); built-in ones
//! ship in the repository's `skills/` (compiled into the binary), the person's own live in the
//! workspace's `skills/`. Steps `use` actions ([`actions`]); a few actions are also runnable
//! directly as one-step skills. A folder with only a SKILL.md loads as a prompt-only skill:
//! `/NAME` runs the planner with its instructions ([`prompt`]).

pub mod actions;
pub mod args;
mod browser_steps;
mod calendar_write;
mod files;
pub mod install;
mod mail;
pub mod manifest;
pub mod organize;
pub mod person;
pub mod prompt;
mod reports;
pub mod slides;
pub mod tasks_sync;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::guard::SkillEnv;
use crate::guard::{Guard, JobScope, OutputName, Permissions, Policy};
use crate::job::JobError;
use crate::runner::{Step, StepCtx, StepError};
use args::Line;
use manifest::{Manifest, Problem, StepSpec};
use template::Scope;

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// An http(s) URL.
    Url,
    /// One line of text: no control characters, not even tab or newline (a newline in a
    /// one-line value is how headers get injected), no bidi controls.
    String,
    /// Multi-line text (a mail's body): tab, newline and CR allowed, other controls refused.
    Text,
    /// Any JSON (object, array…); a string holding JSON is parsed.
    Json,
    /// true/false.
    Bool,
    /// Whole number.
    Int,
    /// A calendar day, `YYYY-MM-DD`.
    Date,
}

/// One parameter of a skill.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParamDef {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Must be given.
    pub required: bool,
    /// Used when not given.
    pub default: Option<Value>,
    /// For people.
    pub description: String,
}

/// What kind of skill it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkillKind {
    /// A built-in action run on its own.
    Action,
    /// SKILL.md + skill.yaml: runs its steps.
    Workflow,
    /// SKILL.md only: `/NAME` runs the planner (a language model) with its instructions.
    PromptOnly,
    /// A plugin's slash command: `/PLUGIN:NAME args` runs the planner with its prompt, the
    /// arguments put in place.
    Command,
}

impl SkillKind {
    /// Whether a job of it is run by the planner (a prompt-only skill or a command).
    pub fn planned(self) -> bool {
        matches!(self, SkillKind::PromptOnly | SkillKind::Command)
    }
}

/// A skill a job can name.
#[derive(Debug, Clone, Serialize)]
pub struct SkillDef {
    /// Name (`status-report`, or an action's `browser.fill`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// Kind.
    pub kind: SkillKind,
    /// `/status-report`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Its parameters.
    pub params: Vec<ParamDef>,
    /// `built-in` or the folder it was loaded from.
    pub source: String,
    /// What it may touch (workflows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// Suggested schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// SHA-256 of SKILL.md + skill.yaml (trust is bound to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Built in, or accepted by the person at this hash (`deskhand skills trust`).
    pub trusted: bool,
    /// The steps (workflows).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSpec>,
    /// SKILL.md's prose (a command's prompt).
    #[serde(skip)]
    pub body: String,
    /// Offered to the planner's model in its list of skills (false for a command with
    /// `disable-model-invocation`).
    #[serde(skip)]
    pub for_model: bool,
    /// Its folder in the workspace, when not `skills/NAME` (a plugin's skill).
    #[serde(skip)]
    pub folder: Option<String>,
}

/// The built-in skills, compiled in from the repository's `skills/`.
static BUILTIN: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/../skills");

/// Every skill an agent knows, and the problems of those that did not load.
#[derive(Debug, Clone, Default)]
pub struct Skills {
    list: Vec<SkillDef>,
    problems: Vec<Problem>,
}

impl Skills {
    /// Built-in actions and skills only.
    pub fn builtin() -> Skills {
        let mut s = Skills::default();
        for a in actions::ACTIONS.iter().filter(|a| a.direct) {
            s.list.push(SkillDef {
                name: a.name.into(),
                description: a.description.into(),
                kind: SkillKind::Action,
                trigger: Some(format!("/{}", a.name)),
                params: a.params(),
                source: "built-in".into(),
                // What it gets when a job runs it on its own (shown by `skills show`).
                permissions: Some(a.minimal_permissions()),
                schedule: None,
                hash: None,
                trusted: true,
                steps: vec![],
                body: String::new(),
                for_model: false,
                folder: None,
            });
        }
        for dir in BUILTIN.dirs() {
            let folder = dir.path().to_string_lossy().to_string();
            let text = |f: &str| {
                dir.get_file(dir.path().join(f))
                    .and_then(|f| f.contents_utf8())
            };
            let Some(md) = text("SKILL.md") else { continue };
            s.add(
                &folder,
                &format!("skills/{folder}"),
                "built-in",
                md,
                text("skill.yaml"),
            );
        }
        s
    }

    /// Built-ins plus the workspace's own `skills/` (a workspace skill of the same name wins).
    pub fn load(workspace: &Path) -> Skills {
        let mut s = Skills::builtin();
        s.add_workspace(workspace);
        s.add_plugins(&crate::plugins::active(workspace));
        s
    }

    /// The workspace's own `skills/` (trusted only at the hash the person accepted).
    fn add_workspace(&mut self, workspace: &Path) {
        let s = self;
        let dir = workspace.join("skills");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut folders: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("SKILL.md").is_file())
            .collect();
        folders.sort();
        for f in folders {
            let shown = f.display().to_string();
            match manifest::OnDisk::read(&f, &shown) {
                Ok(on) => s.add(
                    &on.folder,
                    &shown,
                    &shown,
                    &on.skill_md,
                    on.skill_yaml.as_deref(),
                ),
                Err(problem) => s.problems.push(problem),
            }
        }
        // Deny by default: a workspace skill runs only at the content hash the person accepted.
        for d in s.list.iter_mut().filter(|d| d.source != "built-in") {
            d.trusted = d
                .hash
                .as_deref()
                .is_some_and(|h| install::is_trusted(workspace, &d.name, h));
        }
    }

    /// The skills and commands of active plugins, named `PLUGIN:NAME` (trusted: the person
    /// accepted the plugin's whole tree, and it is unchanged).
    fn add_plugins(&mut self, plugins: &[crate::plugins::Active]) {
        for a in plugins {
            let p = &a.plugin;
            let source = format!("plugin {}", p.name);
            for sk in &p.skills {
                let mut def = from_manifest(sk.manifest.clone(), &source);
                def.name = format!("{}:{}", p.name, sk.manifest.front.name);
                let own = def
                    .trigger
                    .as_deref()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
                def.trigger = Some(format!("/{}:{own}", p.name));
                def.folder = Some(format!(
                    "plugins/{}/{}",
                    p.name,
                    crate::plugins::manifest::relative(&p.root, &sk.dir)
                ));
                self.list.retain(|d| d.name != def.name);
                self.list.push(def);
            }
            for c in &p.commands {
                let name = format!("{}:{}", p.name, c.name);
                self.list.retain(|d| d.name != name);
                self.list.push(SkillDef {
                    trigger: Some(format!("/{name}")),
                    name,
                    description: match &c.argument_hint {
                        Some(h) => format!("{} (arguments: {h})", c.description),
                        None => c.description.clone(),
                    },
                    kind: SkillKind::Command,
                    params: vec![],
                    source: source.clone(),
                    permissions: None,
                    schedule: None,
                    hash: None,
                    trusted: true,
                    steps: vec![],
                    body: c.body.clone(),
                    for_model: !c.disable_model_invocation,
                    folder: None,
                });
            }
        }
    }

    /// Check and add one folder's skill, or record its problems.
    fn add(&mut self, folder: &str, shown: &str, source: &str, md: &str, yaml: Option<&str>) {
        let files = manifest::Files {
            folder,
            shown,
            skill_md: md,
            skill_yaml: yaml,
            lenient: false,
        };
        match manifest::read(&files) {
            Ok(m) => {
                let def = from_manifest(m, source);
                self.list.retain(|d| d.name != def.name);
                self.list.push(def);
            }
            Err(p) => self.problems.extend(p),
        }
    }

    /// Every loaded skill.
    pub fn list(&self) -> &[SkillDef] {
        &self.list
    }

    /// What kept skills from loading (file:line: message).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// A skill by name or trigger (`status-report`, `/status-report`).
    pub fn find(&self, name: &str) -> Option<&SkillDef> {
        let slash = format!("/{}", name.trim_start_matches('/'));
        self.list
            .iter()
            .find(|s| s.name == name.trim_start_matches('/'))
            .or_else(|| {
                self.list
                    .iter()
                    .find(|s| s.trigger.as_deref() == Some(&slash))
            })
    }

    /// Find a skill and check `params` against it; returns the params with defaults filled in.
    pub fn check(
        &self,
        name: &str,
        params: &Map<String, Value>,
    ) -> Result<(SkillDef, Map<String, Value>), JobError> {
        let skill = self.find(name).cloned().ok_or_else(|| {
            let broken = self
                .problems
                .iter()
                .filter(|p| {
                    p.file
                        .contains(&format!("/{}/", name.trim_start_matches('/')))
                })
                .map(|p| p.to_string())
                .collect::<Vec<_>>();
            if broken.is_empty() {
                JobError::UnknownSkill {
                    name: name.to_string(),
                    available: self
                        .list
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            } else {
                JobError::Invalid(format!("skill {name} did not load: {}", broken.join("; ")))
            }
        })?;
        if !skill.trusted {
            return Err(JobError::Untrusted(skill.name.clone()));
        }
        if skill.kind.planned() {
            // `/NAME words… k=v`: the words are the request the planner gets with the skill's
            // instructions; text for the model, so held to the multi-line rule, never a step's
            // argument.
            for (k, v) in params {
                check_chars(
                    ParamType::Json,
                    v,
                    &format!("parameter {k:?} of {}", skill.name),
                )?;
            }
            return Ok((skill, params.clone()));
        }
        let out = check_params(&skill.name, &skill.params, params)?;
        // A `text` parameter may not reach a one-line argument of a step (a mail's subject).
        let scope = Scope::params(&skill.declared(&out));
        for s in &skill.steps {
            let Some(action) = actions::find(&s.uses) else {
                continue;
            };
            for p in action.params() {
                // A value built from earlier steps' results is checked by its type when it runs.
                let Some(Ok(v)) = s.args.get(&p.name).map(|t| template::render(t, &scope)) else {
                    continue;
                };
                let field = format!("argument {:?} of step {:?} of {}", p.name, s.id, skill.name);
                check_chars(p.kind, &v, &field)?;
            }
        }
        Ok((skill, out))
    }

    /// The plan (steps) for a checked invocation.
    pub fn plan(
        &self,
        skill: &SkillDef,
        params: Map<String, Value>,
        env: Arc<SkillEnv>,
    ) -> Vec<Step> {
        // A prompt-only skill runs the planner with its instructions and its words as the request.
        let params = if skill.kind.planned() {
            prompt::ask_params(&skill.name, &params)
        } else {
            params
        };
        let planned = skill.kind.planned()
            || (skill.kind == SkillKind::Action
                && (skill.name == crate::planner::ACTION || skill.name == crate::mcp::ACTION));
        // A planned job gets the planner's permissions, whatever the request said; so does a
        // tool call from an MCP client, which is another planner.
        let policy = if planned {
            let mut perms = env.planner_permissions();
            // The sites the person named in the request itself may be opened (and only their
            // origins: where a page then leads is checked like any navigation).
            let request = params
                .get("request")
                .and_then(Value::as_str)
                .unwrap_or_default();
            perms.browser.extend(crate::planner::origins_in(request));
            // The MCP servers of the plugins the person accepted may be called (each call not
            // marked read-only still waits for approval), unless the config says less.
            for r in crate::plugins::server_resources(&crate::plugins::active(env.workspace())) {
                perms
                    .connectors
                    .entry(r)
                    .or_insert(crate::guard::Access::Write);
            }
            // A follow-up may go on with the sites of the conversation it continues.
            let earlier = params
                .get("continues")
                .and_then(Value::as_str)
                .and_then(|prev| crate::guard::read_transcript(env.workspace(), prev).ok())
                .unwrap_or_default();
            for r in crate::planner::requests(&earlier) {
                perms.browser.extend(crate::planner::origins_in(&r));
            }
            Policy::new(&skill.name, &perms, &params)
        } else {
            skill.policy(&params)
        };
        let scope = JobScope::new(policy);
        let output = |step: &str, path: Option<String>| OutputName {
            skill: skill.name.clone(),
            step: step.to_string(),
            path,
        };
        match skill.kind {
            // One step: the action itself, or the planner running a prompt-only skill.
            SkillKind::Action | SkillKind::PromptOnly | SkillKind::Command => {
                let name = match skill.kind {
                    SkillKind::PromptOnly | SkillKind::Command => crate::planner::ACTION,
                    _ => skill.name.as_str(),
                };
                match actions::find(name) {
                    Some(a) => vec![action_step(
                        a,
                        StepArgs::Given(params),
                        output(&skill.name, None),
                        &env,
                        &scope,
                    )],
                    None => vec![],
                }
            }
            SkillKind::Workflow => {
                let params = Arc::new(skill.declared(&params));
                skill
                    .steps
                    .iter()
                    .filter_map(|s| {
                        let action = actions::find(&s.uses)?;
                        let with = StepArgs::Template {
                            with: s.args.clone(),
                            params: Arc::clone(&params),
                        };
                        let mut step =
                            action_step(action, with, output(&s.id, s.path.clone()), &env, &scope);
                        step.needs = s.needs.clone();
                        if let Some(t) = s.timeout {
                            step.timeout = std::time::Duration::from_secs(t);
                        }
                        Some(step)
                    })
                    .collect()
            }
        }
    }
}

/// A step's arguments: given as they are (a job's checked parameters for an action run on its
/// own: data, never rendered), or the skill's `with:` templates, rendered when the step starts
/// with the job's parameters and the results of the steps it needs.
enum StepArgs {
    Given(Map<String, Value>),
    Template {
        with: Map<String, Value>,
        params: Arc<Map<String, Value>>,
    },
}

impl StepArgs {
    fn resolve(&self, ctx: &StepCtx) -> Result<Map<String, Value>, StepError> {
        let (with, params) = match self {
            StepArgs::Given(m) => return Ok(m.clone()),
            StepArgs::Template { with, params } => (with, params),
        };
        let scope = Scope {
            params: (**params).clone(),
            steps: ctx
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            job: [("id".to_string(), Value::from(ctx.job_id.clone()))]
                .into_iter()
                .collect(),
        };
        let mut out = Map::new();
        for (k, t) in with {
            let v = template::render(t, &scope)
                .map_err(|e| StepError::Invalid(format!("argument {k:?}: {e}")))?;
            // Null means "not given": the action's default applies.
            if !v.is_null() {
                out.insert(k.clone(), v);
            }
        }
        Ok(out)
    }
}

/// A runnable step: each attempt resolves its arguments and runs the action through a guard
/// made for this step (the action's only way to act).
fn action_step(
    action: &'static actions::Action,
    args: StepArgs,
    output: OutputName,
    env: &Arc<SkillEnv>,
    scope: &Arc<JobScope>,
) -> Step {
    let (env, scope, args) = (Arc::clone(env), Arc::clone(scope), Arc::new(args));
    let id = output.step.clone();
    let mut step = Step::new(
        &id,
        &[],
        Arc::new(move |ctx| {
            let args = match args.resolve(&ctx) {
                Ok(a) => a,
                Err(e) => return Box::pin(futures::future::ready(Err(e))),
            };
            let guard = env.guard(
                Arc::clone(&scope),
                &ctx.job_id,
                output.clone(),
                ctx.cancel.clone(),
            );
            action.run(guard, args, ctx)
        }),
    );
    step.timeout = action.timeout;
    if !action.retry {
        step.retry = crate::runner::RetryPolicy::once();
    }
    step
}

impl SkillDef {
    /// Every declared parameter, those not given as null (templates may name any of them).
    pub fn declared(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let mut all = params.clone();
        for p in &self.params {
            all.entry(p.name.clone()).or_insert(Value::Null);
        }
        all
    }

    /// The policy of a checked invocation. A built-in action run on its own gets what it needs
    /// and no more: the origin of its `url` parameter, `reports/**`, its connectors, and every
    /// consequential action asks.
    pub fn policy(&self, params: &Map<String, Value>) -> Policy {
        let perms = match (&self.permissions, self.kind) {
            (Some(p), _) => p.clone(),
            (None, SkillKind::Action) => actions::find(&self.name)
                .map(|a| a.minimal_permissions())
                .unwrap_or_default(),
            (None, _) => Permissions::default(),
        };
        Policy::new(&self.name, &perms, params)
    }
}

impl Skills {
    /// The connections a checked invocation depends on (to resume it when they are fixed).
    pub fn connections_of(
        &self,
        skill: &SkillDef,
        params: &Map<String, Value>,
    ) -> Vec<deskhand_connectors::ConnectionId> {
        let mut out = Vec::new();
        let mut add = |action: &str, args: &Map<String, Value>| {
            if let Some(a) = actions::find(action) {
                for need in a.needs {
                    if let actions::Need::Connector(res, _) = need {
                        if let Some(c) = crate::connector_skills::connection_of(res, args) {
                            if !out.contains(&c) {
                                out.push(c);
                            }
                        }
                    }
                }
            }
        };
        match skill.kind {
            SkillKind::Action => add(&skill.name, params),
            _ => {
                let scope = Scope::params(&skill.declared(params));
                for s in &skill.steps {
                    // Only the account matters here; one built from a step's result is unknown.
                    let account = s.args.get("account").map(|t| template::render(t, &scope));
                    let mut args = Map::new();
                    if let Some(Ok(a)) = account {
                        args.insert("account".into(), a);
                    }
                    add(&s.uses, &args);
                }
            }
        }
        out
    }
}

fn from_manifest(m: Manifest, source: &str) -> SkillDef {
    SkillDef {
        name: m.front.name.clone(),
        description: m.front.description.clone(),
        kind: if m.executable {
            SkillKind::Workflow
        } else {
            SkillKind::PromptOnly
        },
        trigger: m.trigger,
        params: m.params,
        source: source.to_string(),
        permissions: m.executable.then_some(m.permissions),
        schedule: m.schedule,
        hash: Some(m.hash),
        trusted: true,
        steps: m.steps,
        body: m.body,
        for_model: true,
        folder: None,
    }
}

/// Check `params` against `defs`; fill defaults.
fn check_params(
    name: &str,
    defs: &[ParamDef],
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, JobError> {
    for k in params.keys() {
        if !defs.iter().any(|p| &p.name == k) {
            let known: Vec<_> = defs.iter().map(|p| p.name.as_str()).collect();
            return Err(JobError::Invalid(format!(
                "skill {name} has no parameter {k:?}; its parameters are: {}",
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let mut out = Map::new();
    for p in defs {
        if let Some(v) = params.get(&p.name) {
            check_chars(p.kind, v, &format!("parameter {:?} of {name}", p.name))?;
        }
        let v = match (params.get(&p.name), &p.default) {
            (Some(v), _) => coerce(p, v.clone())
                .map_err(|e| JobError::Invalid(format!("parameter {:?} of {name}: {e}", p.name)))?,
            (None, Some(d)) => d.clone(),
            (None, None) if p.required => {
                return Err(JobError::Invalid(format!(
                    "skill {name} needs parameter {:?} ({})",
                    p.name, p.description
                )))
            }
            (None, None) => continue,
        };
        out.insert(p.name.clone(), v);
    }
    Ok(out)
}

/// Refuse the control characters `kind` does not allow in `v` (issue 14): url and string take
/// none, text takes tab, newline and CR, JSON's strings and keys are held to the text rule;
/// bool, int and date are checked by their format.
pub(crate) fn check_chars(kind: ParamType, v: &Value, field: &str) -> Result<(), JobError> {
    match (kind, v) {
        (ParamType::Text, Value::String(s)) => crate::job::multi_line(field, s),
        (ParamType::Json, v) => json_chars(v, field),
        (_, Value::String(s)) => crate::job::single_line(field, s),
        _ => Ok(()),
    }
}

fn json_chars(v: &Value, field: &str) -> Result<(), JobError> {
    match v {
        Value::String(s) => crate::job::multi_line(field, s),
        Value::Array(a) => a.iter().try_for_each(|x| json_chars(x, field)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            crate::job::multi_line(field, k)?;
            json_chars(x, field)
        }),
        _ => Ok(()),
    }
}

/// Check one value against its parameter's type.
pub(crate) fn coerce(p: &ParamDef, v: Value) -> Result<Value, String> {
    check_chars(p.kind, &v, "the value").map_err(|e| e.to_string())?;
    match (p.kind, v) {
        (ParamType::Url, Value::String(s)) => match url::Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https" | "file") => Ok(Value::String(s)),
            _ => Err(format!("{s:?} is not an http(s) URL")),
        },
        (ParamType::String, Value::String(s)) => Ok(Value::String(s)),
        (ParamType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (ParamType::Text, Value::String(s)) => Ok(Value::String(s)),
        (ParamType::Text, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (ParamType::Json, Value::String(s)) => {
            Ok(serde_json::from_str(&s).unwrap_or(Value::String(s)))
        }
        (ParamType::Json, v) => Ok(v),
        (ParamType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (ParamType::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (ParamType::Int, Value::Number(n)) if n.is_i64() => Ok(Value::Number(n)),
        (ParamType::Int, Value::String(s)) => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{s:?} is not a whole number")),
        (ParamType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(|_| Value::String(s.clone()))
            .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)")),
        (kind, v) => Err(format!("expected {kind:?}, got {v}")),
    }
}

/// `schedule`'s arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct ScheduleArgs {
    /// Five-field cron or @daily-style name (or the first word after /schedule).
    cron: Option<Line>,
    /// The skill to run (or the second word).
    skill: Option<Line>,
    /// IANA time zone (default the machine's).
    tz: Option<Line>,
    /// The skill's parameters.
    #[serde(default)]
    params: Map<String, Value>,
    /// After sleep or downtime: run-once or skip.
    #[serde(default = "run_once")]
    missed: Line,
    /// Words after /schedule: CRON SKILL.
    #[serde(default)]
    args: Vec<Line>,
}

fn run_once() -> Line {
    Line::from("run-once")
}

/// `schedule`: add a schedule from a job (`/schedule CRON SKILL`).
async fn schedule(g: Guard, a: ScheduleArgs, _: StepCtx) -> Result<Value, StepError> {
    let words: Vec<String> = a.args.iter().map(|w| w.0.clone()).collect();
    let cron = a.cron.map(|c| c.0).or_else(|| words.first().cloned());
    let skill = a.skill.map(|c| c.0).or_else(|| words.get(1).cloned());
    let (Some(cron), Some(skill)) = (cron, skill) else {
        return Err(StepError::Fatal(
            "say when and what: /schedule \"0 8 * * 1-5\" status-report [tz=Europe/Berlin]".into(),
        ));
    };
    if words.len() > 2 {
        return Err(StepError::Fatal(format!(
            "unexpected words after the skill: {:?}; quote the cron expression",
            &words[2..]
        )));
    }
    let skills = Skills::load(g.workspace());
    let (def, params) = skills
        .check(&skill, &a.params)
        .map_err(|e| StepError::Invalid(e.to_string()))?;
    let tz = match a.tz {
        Some(t) => t.0,
        None => iana_time_zone::get_timezone().unwrap_or_else(|_| "UTC".into()),
    };
    let missed: deskhand_schedule::Missed = a
        .missed
        .as_str()
        .parse()
        .map_err(|e: deskhand_schedule::ScheduleError| StepError::Fatal(e.to_string()))?;
    let s = g
        .add_schedule(deskhand_schedule::NewSchedule {
            cron,
            tz,
            skill: def.name.clone(),
            params,
            missed,
        })
        .await?;
    Ok(serde_json::to_value(&s).unwrap_or_default())
}

/// The `account` argument of the connector actions.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Account {
    /// Which connection of the provider.
    #[serde(default = "default_account")]
    pub account: Line,
}

fn default_account() -> Line {
    Line::from("default")
}

impl Account {
    /// The connection id for a provider.
    pub fn of(&self, provider: deskhand_connectors::Provider) -> deskhand_connectors::ConnectionId {
        deskhand_connectors::ConnectionId::new(provider, Some(self.account.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_refused_by_parameter_type() {
        let skills = Skills::builtin();
        let check = |action: &str, p: Value| {
            skills
                .check(action, p.as_object().unwrap())
                .map(|_| ())
                .map_err(|e| (e.code(), e.to_string()))
        };
        let mail = |subject: &str, body: &str| json!({"to": "a@example.com", "subject": subject, "body": body});
        // text: newline and tab fine, escape sequences not.
        assert!(check("gmail.send", mail("Hi", "line 1\n\tline 2\r\n")).is_ok());
        let (code, msg) = check("gmail.send", mail("Hi", "x\u{1b}]0;owned\u{7}")).unwrap_err();
        assert_eq!(code, "invalid_job");
        assert!(
            msg.contains("parameter \"body\" of gmail.send") && msg.contains("U+001B"),
            "{msg}"
        );
        // string: no newline (a header), no C1, no bidi.
        for bad in ["Hi\nBcc: x@example.com", "Hi\u{9b}2J", "Hi\u{202e}", "Hi\t"] {
            let (code, msg) = check("gmail.send", mail(bad, "ok")).unwrap_err();
            assert_eq!(code, "invalid_job", "{bad:?}");
            assert!(msg.contains("control character"), "{msg}");
            assert!(msg.contains("\"subject\""), "{msg}");
            assert!(
                !msg.contains(bad),
                "the error does not quote the value: {msg}"
            );
        }
        // url and json (every string and key inside).
        let (code, _) = check(
            "browser.fill",
            json!({"url": "https://example.com/\u{1b}[2J", "fields": {}}),
        )
        .unwrap_err();
        assert_eq!(code, "invalid_job");
        let (code, msg) = check(
            "browser.fill",
            json!({"url": "https://example.com/", "fields": {"Name": ["ok", "\u{1b}[2J"]}}),
        )
        .unwrap_err();
        assert_eq!(code, "invalid_job");
        assert!(msg.contains("\"fields\""), "{msg}");
        assert!(check(
            "browser.fill",
            json!({"url": "https://example.com/", "fields": {"Notes": "two\nlines"}})
        )
        .is_ok());
        // A JSON value sent as a string is checked too.
        assert!(check(
            "browser.fill",
            json!({"url": "https://example.com/", "fields": "{\"N\u{1b}\": 1}"})
        )
        .is_err());
    }

    #[test]
    fn params_are_checked_and_defaulted() {
        let skills = Skills::builtin();
        let mut p = Map::new();
        p.insert("url".into(), json!("https://example.com"));
        p.insert(
            "schema".into(),
            json!("{\"items\": \"li\", \"fields\": {\"a\": \"b\"}}"),
        );
        let (_, out) = skills.check("browser.extract", &p).unwrap();
        assert_eq!(out["format"], "csv");
        assert!(out["schema"].is_object(), "JSON in a string is parsed");
        assert!(matches!(
            skills.check("nope", &p),
            Err(JobError::UnknownSkill { .. })
        ));
        p.insert("colour".into(), json!("red"));
        assert!(skills
            .check("browser.extract", &p)
            .unwrap_err()
            .to_string()
            .contains("colour"));
        let mut bad = Map::new();
        bad.insert("url".into(), json!("javascript:alert(1)"));
        bad.insert("fields".into(), json!({}));
        assert!(skills
            .check("browser.fill", &bad)
            .unwrap_err()
            .to_string()
            .contains("not an http"));
    }

    #[test]
    fn builtin_skills_all_load_and_resolve_by_trigger() {
        let s = Skills::builtin();
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        // A built-in action shows what it gets when run on its own, not "none (prompt-only)".
        let scroll = s
            .find("browser.scroll")
            .unwrap()
            .permissions
            .as_ref()
            .unwrap();
        assert_eq!(scroll.browser, ["param:url"]);
        let extract = s
            .find("browser.extract")
            .unwrap()
            .permissions
            .as_ref()
            .unwrap();
        assert!(
            extract.read.contains(&"**/*.yaml".to_string()),
            "{extract:?}"
        );
        for name in [
            "status-report",
            "inbox-digest",
            "fill-form",
            "extract",
            "notion-tasks",
        ] {
            let d = s.find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(d.kind, SkillKind::Workflow);
            assert_eq!(s.find(&format!("/{name}")).unwrap().name, name);
        }
    }

    #[test]
    fn an_unreadable_skill_yaml_is_an_error_not_a_prompt_only_skill() {
        let d = tempfile::tempdir().unwrap();
        let md = "---\nname: NAME\ndescription: Mine.\n---\n";
        let latin1 = d.path().join("skills/latin1");
        std::fs::create_dir_all(&latin1).unwrap();
        std::fs::write(latin1.join("SKILL.md"), md.replace("NAME", "latin1")).unwrap();
        std::fs::write(latin1.join("skill.yaml"), b"steps:\n  - id: caf\xe9\n").unwrap();
        let folder = d.path().join("skills/folder");
        std::fs::create_dir_all(folder.join("skill.yaml")).unwrap();
        std::fs::write(folder.join("SKILL.md"), md.replace("NAME", "folder")).unwrap();
        let s = Skills::load(d.path());
        assert!(s.find("latin1").is_none() && s.find("folder").is_none());
        let text: Vec<String> = s.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter().any(|p| p.contains("latin1/skill.yaml:2:")
                && p.contains("not valid UTF-8 text (column 12)")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.contains("folder/skill.yaml") && p.contains("not a regular file")),
            "{text:?}"
        );
        let e = install::scan(&latin1).unwrap_err().to_string();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn a_broken_workspace_skill_is_not_half_loaded() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("skills/mine");
        std::fs::create_dir_all(&f).unwrap();
        std::fs::write(
            f.join("SKILL.md"),
            "---\nname: mine\ndescription: Mine.\n---\n",
        )
        .unwrap();
        std::fs::write(
            f.join("skill.yaml"),
            "steps:\n  - id: a\n    uses: nope.nope\n",
        )
        .unwrap();
        let s = Skills::load(d.path());
        assert!(s.find("mine").is_none());
        let e = s.check("mine", &Map::new()).unwrap_err().to_string();
        assert!(e.contains("skill.yaml:3") && e.contains("nope.nope"), "{e}");
        let other = d.path().join("skills/prompt-only");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(
            other.join("SKILL.md"),
            "---\nname: prompt-only\ndescription: Talk.\n---\nDo things.",
        )
        .unwrap();
        let s = Skills::load(d.path());
        let def = s.find("prompt-only").unwrap();
        assert_eq!(def.kind, SkillKind::PromptOnly);
        assert_eq!(def.trigger.as_deref(), Some("/prompt-only"));
        // A workspace skill the person has not accepted stays refused, prompt-only or not.
        assert!(matches!(
            s.check("prompt-only", &Map::new()),
            Err(JobError::Untrusted(_))
        ));
        install::trust(d.path(), "prompt-only", def.hash.as_deref().unwrap()).unwrap();
        let s = Skills::load(d.path());
        let words = serde_json::json!({"args": ["the", "weekly", "notes"]});
        let (def, params) = s.check("/prompt-only", words.as_object().unwrap()).unwrap();
        assert_eq!(params["args"][1], "weekly");
        let bad = serde_json::json!({"args": ["x\u{1b}[2J"]});
        assert!(s.check("prompt-only", bad.as_object().unwrap()).is_err());
        // It runs as one planned step: agent.ask with the skill and the words as the request.
        assert!(def.permissions.is_none());
        let p = prompt::ask_params(&def.name, &params);
        assert_eq!(p["request"], "the weekly notes");
        assert!(actions::find(crate::planner::ACTION)
            .unwrap()
            .check_args(p)
            .is_ok());
    }
}
