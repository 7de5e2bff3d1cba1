//! The guard: the one way a running skill takes a side effect. A step never holds a writable
//! workspace handle or an unchecked browser page; it holds a [`Guard`], which checks the job's
//! [`Policy`] (deny by default), asks the person for consequential actions the skill may not take
//! on its own ([`approvals`]), writes the audit log, and journals files for `deskhand undo`.
//! A refusal fails the step with a message that says what was refused and how to allow it.

pub mod approvals;
pub mod devices;
mod env;
pub mod form_secrets;
mod page;
mod permissions;
pub mod policy;
pub mod requests;

use std::sync::Arc;
use std::time::Duration;

use deskhand_browser::NavigationSource;
use deskhand_workspace::Workspace;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use env::{JobEvents, PlannerEnv, Reader, SkillEnv};
pub use page::GuardedPage;
pub use permissions::{Access, Permissions};
pub use policy::Policy;

use crate::runner::StepError;
use approvals::ApprovalState;

/// How long an approval waits for the person by default (`DESKHAND_APPROVAL_TIMEOUT` seconds
/// overrides it).
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The approval timeout in force.
pub fn approval_timeout() -> Duration {
    std::env::var("DESKHAND_APPROVAL_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(APPROVAL_TIMEOUT)
}

/// The largest file a job may read by naming it.
pub const MAX_NAMED_READ: u64 = 1024 * 1024;

/// Why the workspace refused a path, without the "use a relative path" advice meant for writes.
fn refusal_reason(e: &deskhand_workspace::WorkspaceError) -> String {
    match e {
        deskhand_workspace::WorkspaceError::Refused { rel, reason } => {
            format!("{rel:?} may not be read: {reason}; name a file inside the workspace")
        }
        other => other.to_string(),
    }
}

/// Audit a refusal (`guard.refused`) and log it.
fn record_refusal(
    store: &crate::store::Store,
    job: &str,
    skill: &str,
    what: &str,
    target: &str,
    why: &str,
) {
    store.audit().record(
        "guard.refused",
        Some(job),
        json!({"skill": skill, "what": what, "target": target, "why": why}),
    );
    tracing::warn!(job, what, target, why, "refused");
}

/// What every step of one job shares: the policy, and which step wrote which file (two steps
/// of a job never write the same path; the second fails loudly instead of replacing the first).
#[derive(Debug)]
pub struct JobScope {
    policy: Arc<Policy>,
    written: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl JobScope {
    /// The scope of one run of a job under `policy`.
    pub fn new(policy: Policy) -> Arc<JobScope> {
        Arc::new(JobScope {
            policy: Arc::new(policy),
            written: Default::default(),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Claim `rel` for `step`: a path another step of this job already wrote is refused, so one
    /// step's output never silently replaces another's (the same step may write it again: a
    /// retry, or a redelivered job).
    pub fn claim(&self, rel: &str, step: &str) -> Result<(), String> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(rel) {
            Some(other) if other != step => Err(format!(
                "step {other:?} already wrote {rel} in this job; two steps may not write the same \
                 file (give one of them its own `path:`)"
            )),
            _ => {
                written.insert(rel.to_string(), step.to_string());
                Ok(())
            }
        }
    }
}

/// Where one step's outputs are written: the `path:` its skill declares, or
/// `reports/<skill>-<step>-<job>.<ext>` (`reports/<skill>-<job>.<ext>` when the step is named
/// after the skill, as a built-in action run on its own is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputName {
    /// The skill.
    pub skill: String,
    /// The step's id.
    pub step: String,
    /// The path the skill declares for this step's output, if any.
    pub path: Option<String>,
}

impl OutputName {
    /// The path of this step's output with extension `ext` in `job`.
    pub fn path(&self, job: &str, ext: &str) -> String {
        // A plugin's skill is `PLUGIN:NAME`; `:` has no place in a file name on every system.
        let skill = self.skill.replace(':', "-");
        match &self.path {
            Some(p) => with_extension(p, ext),
            None if self.step == self.skill => format!("reports/{skill}-{job}.{ext}"),
            None => format!(
                "reports/{skill}-{}-{job}.{ext}",
                self.step.replace(':', "-")
            ),
        }
    }
}

/// A URL for the audit log: scheme, host and path only. A query or fragment may carry what a
/// form sent (a GET form's password) or a token.
pub fn without_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

/// `p` with its extension replaced by `ext` (a declared `reports/leads.csv` is the csv; the same
/// step's screenshot goes beside it as `reports/leads.png`).
pub fn with_extension(p: &str, ext: &str) -> String {
    let (dir, file) = p.rsplit_once('/').map_or(("", p), |(d, f)| (d, f));
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let file = format!("{stem}.{ext}");
    if dir.is_empty() {
        file
    } else {
        format!("{dir}/{file}")
    }
}

/// What an effect outside the workspace did, recorded as it happens (see [`Guard::external`]).
pub struct Effects {
    store: crate::store::Store,
    journal: crate::journal::Journal,
    job: String,
}

impl Effects {
    /// Audit one thing the effect did (`mail.sent`, `notion.updated`, `form.submitted`).
    pub fn done(&self, kind: &str, details: Value) {
        self.store.audit().record(kind, Some(&self.job), details);
    }

    /// Journal something outside the workspace this job changed, with what it was before (a
    /// calendar event updated), so undo can put it back.
    pub fn changed(
        &self,
        kind: &str,
        connection: &str,
        id: &str,
        before: Value,
    ) -> Result<(), StepError> {
        self.journal
            .changed_external(&self.job, kind, connection, id, before)
            .map_err(StepError::from)
    }

    /// Journal something created outside the workspace (a Notion page), so undo can remove it.
    pub fn created(&self, kind: &str, connection: &str, id: &str) -> Result<(), StepError> {
        self.journal
            .created_external(&self.job, kind, connection, id)
            .map_err(StepError::from)
    }
}

/// The files a job may read under a folder (see [`Guard::readable_files`]).
#[derive(Debug)]
pub struct Readable {
    /// The files, sorted by path.
    pub files: Vec<deskhand_workspace::FileInfo>,
    /// How many files there the job may not read.
    pub hidden: usize,
    /// False when the walk stopped at its limit.
    pub complete: bool,
}

/// A file changed in place (see [`Guard::change_file`]).
#[derive(Debug)]
pub struct Changed {
    /// The normalised path.
    pub path: String,
    /// Its size now.
    pub bytes: usize,
}

/// A unified diff of a change, at most 8 KiB of it, for the person approving it.
fn text_diff(path: &str, before: &str, after: &str) -> String {
    let diff = similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header(path, path)
        .to_string();
    let mut cut = diff.len().min(8 * 1024);
    while !diff.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut < diff.len() {
        format!("{}\n[… the diff is longer]", &diff[..cut])
    } else {
        diff
    }
}

/// One job's guard.
pub struct Guard {
    scope: Arc<JobScope>,
    policy: Arc<Policy>,
    env: Arc<SkillEnv>,
    files: Workspace,
    job: String,
    output: OutputName,
    /// Who claims the paths this guard writes ([`JobScope::claim`]): the step, or for a planned
    /// job's tool call the conversation making it, which may write its own file again.
    writer: String,
    cancel: CancellationToken,
}

impl Guard {
    /// A guard for one step of `job`. `files` is the only writable workspace handle a step
    /// reaches, and only through this guard.
    fn new(
        scope: Arc<JobScope>,
        env: Arc<SkillEnv>,
        files: Workspace,
        job: &str,
        output: OutputName,
        cancel: CancellationToken,
    ) -> Guard {
        Guard {
            policy: Arc::clone(&scope.policy),
            scope,
            env,
            files,
            job: job.to_string(),
            writer: output.step.clone(),
            output,
            cancel,
        }
    }

    /// The planner's model and limits.
    pub fn planner(&self) -> Arc<PlannerEnv> {
        Arc::clone(&self.env.planner.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A guard for a sub-step of this one (a planned job's tool call): the same job, policy and
    /// written-file record, its outputs named after `step`.
    pub fn for_step(&self, step: &str) -> Guard {
        self.for_call(step, step)
    }

    /// As [`Guard::for_step`], with paths claimed by `writer` (a planned job's conversation:
    /// one tool call may rewrite what an earlier call of the same conversation wrote; another
    /// conversation, a sub-agent working beside it, may not).
    pub fn for_call(&self, step: &str, writer: &str) -> Guard {
        let mut g = Guard::new(
            Arc::clone(&self.scope),
            Arc::clone(&self.env),
            self.files.clone(),
            &self.job,
            OutputName {
                skill: self.output.skill.clone(),
                step: step.to_string(),
                path: None,
            },
            self.cancel.clone(),
        );
        g.writer = writer.to_string();
        g
    }

    /// Append one entry to the job's conversation record (`.deskhand/jobs/<job>/transcript.jsonl`,
    /// the agent's own file, beside the journal).
    pub fn append_transcript(&self, entry: &Value) -> Result<(), StepError> {
        use std::io::Write as _;
        let file = transcript_path(&self.env.workspace, &self.job);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StepError::Retryable(e.to_string()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|e| StepError::Retryable(e.to_string()))?;
        writeln!(f, "{entry}").map_err(|e| StepError::Retryable(e.to_string()))
    }

    /// The conversation of an earlier planned job (to continue it), entry by entry.
    pub fn transcript(&self, job: &str) -> Result<Vec<Value>, StepError> {
        read_transcript(&self.env.workspace, job)
    }

    /// Show how this job is getting on (a planned job's text, its tool calls) to whoever
    /// watches it. Nothing is stored when no agent listens (a unit test's environment).
    pub async fn progress(&self, kind: crate::job::Progress, text: String) {
        if let Some(sink) = self.env.events.get() {
            sink.emit(&self.job, crate::job::Transition::Progress { kind, text })
                .await;
        }
    }

    /// Read-only access to the workspace's files (the same path checks as writes).
    pub fn reader(&self) -> Reader {
        self.env.reader()
    }

    /// The workspace folder (to load skills from; files are written through the guard).
    pub fn workspace(&self) -> &std::path::Path {
        &self.env.workspace
    }

    /// A skill's own remembered state (the last report's window, a sync's base).
    pub async fn state(&self, key: &str) -> Result<Option<Value>, StepError> {
        self.env
            .store
            .skill_state(key)
            .await
            .map_err(StepError::from)
    }

    /// Remember a skill's state for its next run.
    pub async fn set_state(&self, key: &str, value: &Value) -> Result<(), StepError> {
        self.env
            .store
            .set_skill_state(key, value)
            .await
            .map_err(StepError::from)
    }

    /// Add a schedule (audited).
    pub async fn add_schedule(
        &self,
        new: deskhand_schedule::NewSchedule,
    ) -> Result<deskhand_schedule::Schedule, StepError> {
        let ledger = Arc::clone(&self.env.schedules);
        let s = tokio::task::spawn_blocking(move || ledger.add(new, chrono::Utc::now()))
            .await?
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        self.env.store.audit().record(
            "schedule.added",
            Some(&self.job),
            json!({"id": s.id, "cron": s.cron, "tz": s.tz, "skill": s.skill}),
        );
        Ok(s)
    }

    /// The job.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Audit a refusal and turn it into the step's (non-retryable) error.
    pub fn refuse(&self, what: &str, target: &str, why: &str) -> StepError {
        record_refusal(
            &self.env.store,
            &self.job,
            &self.policy.skill,
            what,
            target,
            why,
        );
        StepError::Refused {
            what: what.into(),
            target: target.into(),
            why: why.into(),
        }
    }

    /// The job's origins as regexes for a browser that filters requests itself (the extension).
    pub fn navigation_filters(&self) -> Value {
        let (allow, deny) = self.policy.navigation_filters();
        json!({"allow": allow, "deny": deny})
    }

    /// May the browser open this URL?
    pub fn check_url(&self, url: &str) -> Result<(), StepError> {
        self.policy
            .url_allowed(url)
            .map_err(|why| self.refuse("navigation", url, &why))
    }

    /// The check the browser runs on every document request the page makes (redirects, script
    /// navigation, form posts) and the windows it opens: true to let it through; a refusal is
    /// audited. `blocked` collects what the page itself was refused, so the step can fail saying
    /// so; a refused popup is closed and the page goes on.
    pub fn navigation_hook(
        &self,
        blocked: Arc<std::sync::Mutex<Vec<String>>>,
    ) -> deskhand_browser::NavigationCheck {
        let (policy, store, job) = (
            Arc::clone(&self.policy),
            self.env.store.clone(),
            self.job.clone(),
        );
        Arc::new(move |url: &str, source| match policy.url_allowed(url) {
            Ok(()) => true,
            Err(why) => {
                let why = match source {
                    NavigationSource::Page => why,
                    NavigationSource::Popup => format!("a window the page opened: {why}"),
                };
                record_refusal(&store, &job, &policy.skill, "navigation", url, &why);
                if source == NavigationSource::Page {
                    blocked.lock().unwrap_or_else(|p| p.into_inner()).push(why);
                }
                false
            }
        })
    }

    /// The connectors, once the policy allows `resource` (`gmail`, `calendar`, `notion`) with
    /// `access`: the only way an action reaches a provider.
    pub async fn connector(
        &self,
        resource: &str,
        access: Access,
    ) -> Result<Arc<deskhand_connectors::Hub>, StepError> {
        self.policy
            .connector_allowed(resource, access)
            .map_err(|why| self.refuse("connector", resource, &why))?;
        self.env.connectors.hub().await.map_err(StepError::Fatal)
    }

    /// Take an effect outside the workspace (send a mail, write to Notion, submit a form): the
    /// person approves `action` on `target` with `preview` unless the skill may do it without
    /// asking, then `effect` runs with an [`Effects`] to audit what it did and to journal what it
    /// created for `deskhand undo`, as it goes. With `once`, a job takes the effect at most once:
    /// a redelivered job gets the first result back without asking or acting again.
    pub async fn external<F, Fut>(
        &self,
        action: &str,
        target: &str,
        preview: Value,
        once: Option<&str>,
        effect: F,
    ) -> Result<Value, StepError>
    where
        F: FnOnce(Effects) -> Fut,
        Fut: std::future::Future<Output = Result<Value, StepError>>,
    {
        let once = once.map(|k| format!("{action}.once:{}:{k}", self.job));
        if let Some(key) = &once {
            if let Some(done) = self.state(key).await? {
                tracing::info!(job = %self.job, action, "done by an earlier delivery of the job");
                return Ok(done);
            }
        }
        self.approve(action, target, preview).await?;
        let out = effect(self.effects()).await?;
        if let Some(key) = &once {
            self.set_state(key, &out).await?;
        }
        Ok(out)
    }

    /// Call a tool of the MCP server `server` (issue 17): a tool marked `readOnlyHint` runs when
    /// the policy lets the job read `mcp:<server>`; any other tool needs write access to it and
    /// is an external effect ([`Guard::external`] as `mcp-call` on `mcp.<server>.<tool>`, its
    /// arguments the preview), journalled so `deskhand undo` says it cannot be undone. Every
    /// call is audited as `mcp.called`.
    pub async fn mcp_call<Fut>(
        &self,
        server: &str,
        tool: &str,
        read_only: bool,
        arguments: &Value,
        call: Fut,
    ) -> Result<Value, StepError>
    where
        Fut: std::future::Future<Output = Result<Value, StepError>>,
    {
        let resource = format!("mcp:{server}");
        let target = format!("mcp.{server}.{tool}");
        let access = if read_only {
            Access::Read
        } else {
            Access::Write
        };
        // A tool's own entry (`"mcp:shop.delete_all" = "read"`) wins over its server's.
        let own = format!("mcp:{server}.{tool}");
        let decides = if self.policy.names_connector(&own) {
            &own
        } else {
            &resource
        };
        self.policy
            .connector_allowed(decides, access)
            .map_err(|why| self.refuse("mcp", &target, &why))?;
        let audit = |fx: &Effects, out: &Result<Value, StepError>| {
            fx.done(
                "mcp.called",
                json!({"server": server, "tool": tool, "read_only": read_only,
                    "ok": out.as_ref().is_ok_and(|v| v["is_error"] != true)}),
            )
        };
        if read_only {
            let fx = self.effects();
            let out = call.await;
            audit(&fx, &out);
            return out;
        }
        let preview = json!({"server": server, "tool": tool, "arguments": arguments});
        self.external("mcp-call", &target, preview, None, |fx| async move {
            // Journalled before it runs: a call that fails half-way may still have had effects.
            fx.created("mcp.call", &resource, tool)?;
            let out = call.await;
            audit(&fx, &out);
            out
        })
        .await
    }

    /// Audit something this job did that passes no other door: a plugin's hook, which the
    /// person allowed when they enabled the plugin.
    pub fn record(&self, kind: &str, details: Value) {
        self.effects().done(kind, details);
    }

    fn effects(&self) -> Effects {
        Effects {
            store: self.env.store.clone(),
            journal: crate::journal::Journal::new(&self.env.workspace),
            job: self.job.clone(),
        }
    }

    /// Run a consequential action only if the skill may take it without asking, or the person
    /// approves it now. `preview` is what the person sees (fields, a screenshot's path, text).
    pub async fn approve(
        &self,
        action: &str,
        target: &str,
        preview: Value,
    ) -> Result<(), StepError> {
        if self.policy.without_asking(action) {
            return Ok(());
        }
        let store = &self.env.store;
        let a = approvals::request(
            store,
            &self.job,
            &self.policy.skill,
            action,
            target,
            preview,
            approval_timeout(),
        )
        .await?;
        self.env.dashboard.notify_one();
        tracing::info!(job = %self.job, approval = %a.id, action, target,
            "waiting for approval: deskhand approvals approve {} (or refuse)", a.id);
        let state = approvals::wait(store, &a.id, &self.cancel)
            .await
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        match state {
            ApprovalState::Approved => Ok(()),
            ApprovalState::Expired => Err(StepError::NotApproved(format!(
                "nobody approved {action} on {target} within {} s (approval {})",
                approval_timeout().as_secs(),
                a.id
            ))),
            _ => Err(StepError::NotApproved(format!(
                "the person refused {action} on {target} (approval {})",
                a.id
            ))),
        }
    }

    /// The access token of the person's sign-in to the MCP server `server`
    /// (`deskhand connect mcp:NAME`), refreshed when about to expire; `None` when there is none.
    /// Only for a server the job may use; the token goes into the server's requests and nowhere
    /// else (never a log, the audit or the conversation).
    pub async fn mcp_bearer(&self, server: &str) -> Result<Option<String>, StepError> {
        let resource = format!("mcp:{server}");
        self.policy
            .connector_allowed(&resource, Access::Read)
            .map_err(|why| self.refuse("mcp", &resource, &why))?;
        let (ws, kind) = (
            self.env.workspace.clone(),
            self.env.connectors.secret_store(),
        );
        let store = tokio::task::spawn_blocking(move || form_secrets::open(&ws, kind))
            .await
            .map_err(|e| StepError::Fatal(e.to_string()))?
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        crate::mcp::auth::bearer(&store, server)
            .await
            .map_err(|e| StepError::Fatal(e.to_string()))
    }

    /// Put the values of the form secrets named by placeholders (`{{secret:NAME}}`) into
    /// `fields`, for a form on `page_url`: each only on one of its sites (else refused and
    /// audited). Returns what was revealed, for [`form_secrets::conceal`] to take back out of
    /// everything the fill reports. Audited as `secret.used` (the name and site, never the value).
    pub async fn reveal_secrets(
        &self,
        fields: &mut serde_json::Map<String, Value>,
        page_url: &str,
    ) -> Result<Vec<form_secrets::Revealed>, StepError> {
        let wanted: Vec<(String, String)> = fields
            .iter()
            .filter_map(|(k, v)| {
                let name = form_secrets::placeholder(v.as_str()?)?;
                Some((k.clone(), name.to_string()))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let (ws, kind) = (
            self.env.workspace.clone(),
            self.env.connectors.secret_store(),
        );
        let names: Vec<String> = wanted.iter().map(|(_, n)| n.clone()).collect();
        let url = page_url.to_string();
        let found = tokio::task::spawn_blocking(move || {
            let store = form_secrets::open(&ws, kind)?;
            names
                .iter()
                .map(|n| form_secrets::reveal(&ws, &store, n, &url))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| StepError::Fatal(e.to_string()))?
        .map_err(|e| match e {
            form_secrets::FormSecretError::Unknown(_)
            | form_secrets::FormSecretError::BadName(_) => StepError::Invalid(e.to_string()),
            other => StepError::Fatal(other.to_string()),
        })?;
        let mut out = Vec::new();
        for ((field, name), r) in wanted.into_iter().zip(found) {
            let r = r.map_err(|why| self.refuse("secret", &name, &why))?;
            fields.insert(field, Value::String(r.value().to_string()));
            self.env.store.audit().record(
                "secret.used",
                Some(&self.job),
                // `name`: the audit redacts any key called `secret`.
                serde_json::json!({"name": name, "site": without_query(page_url)}),
            );
            out.push(r);
        }
        Ok(out)
    }

    /// Ask the person a question and wait for their words, as a job waits for an approval (the
    /// CLI, the API, the phone page answer it; silence until the approval timeout, a refusal or
    /// a cancel end the wait). The question is audited; the answer's length only.
    pub async fn ask_person(
        &self,
        question: &str,
        choices: &[String],
    ) -> Result<String, StepError> {
        let store = &self.env.store;
        let a = approvals::request(
            store,
            &self.job,
            &self.policy.skill,
            approvals::QUESTION,
            question,
            serde_json::json!({"question": question, "choices": choices}),
            approval_timeout(),
        )
        .await?;
        self.env.dashboard.notify_one();
        tracing::info!(job = %self.job, approval = %a.id,
            "waiting for an answer: deskhand approvals answer {} \"…\"", a.id);
        let state = approvals::wait(store, &a.id, &self.cancel)
            .await
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        if self.cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        match state {
            ApprovalState::Approved => Ok(approvals::answer_of(store, &a.id)
                .await?
                .unwrap_or_default()),
            ApprovalState::Expired => Err(StepError::NotApproved(format!(
                "nobody answered within {} s (question {})",
                approval_timeout().as_secs(),
                a.id
            ))),
            _ => Err(StepError::NotApproved(format!(
                "the person declined to answer (question {})",
                a.id
            ))),
        }
    }

    /// Read a workspace file a job's parameter named (a schema, values, a template): inside the
    /// workspace, never under `.deskhand/`, no symlink out, a regular file of at most
    /// [`MAX_NAMED_READ`] bytes, and matching the skill's read (or write) globs. A refusal is
    /// audited like any other; a read is audited with the file's hash, never its content.
    pub fn read_file(&self, rel: &str) -> Result<Vec<u8>, StepError> {
        let norm = self
            .files
            .resolve(rel)
            .map_err(|e| self.refuse("file read", rel, &refusal_reason(&e)))?;
        let norm_rel = norm
            .strip_prefix(self.files.root())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| rel.to_string());
        self.policy
            .read_allowed(&norm_rel)
            .map_err(|why| self.refuse("file read", &norm_rel, &why))?;
        let bytes = self
            .files
            .read_named(&norm_rel, MAX_NAMED_READ)
            .map_err(|e| match e {
                deskhand_workspace::WorkspaceError::Refused { .. } => {
                    self.refuse("file read", &norm_rel, &refusal_reason(&e))
                }
                other => StepError::Fatal(format!("reading {norm_rel}: {other}")),
            })?;
        self.env.store.audit().record(
            "file.read",
            Some(&self.job),
            json!({"path": norm_rel, "bytes": bytes.len(),
                   "sha256": deskhand_workspace::sha256_hex(&bytes)}),
        );
        Ok(bytes)
    }

    /// The workspace files under the folder `under` (`""`: all) that `keep` keeps and this job
    /// may read (its read or write globs), never `.deskhand/`, symlinks not followed; `hidden`
    /// counts those kept the job may not read (not named). At most `max_visited` entries are
    /// walked.
    pub async fn readable_files(
        &self,
        under: &str,
        max_visited: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Readable, StepError> {
        let files = self.files.clone();
        let u = under.to_string();
        let listing = tokio::task::spawn_blocking(move || files.files(&u, max_visited))
            .await?
            .map_err(|e| match e {
                deskhand_workspace::WorkspaceError::Refused { .. } => {
                    self.refuse("file list", under, &refusal_reason(&e))
                }
                other => StepError::Fatal(format!("listing {under}: {other}")),
            })?;
        let (files, hidden): (Vec<_>, Vec<_>) = listing
            .files
            .into_iter()
            .filter(|f| keep(&f.rel))
            .partition(|f| self.policy.read_allowed(&f.rel).is_ok());
        Ok(Readable {
            files,
            hidden: hidden.len(),
            complete: listing.complete,
        })
    }

    /// Read several files this job may read, each checked as [`Guard::read_file`] checks one
    /// (one refused, larger than `max_each`, or gone meanwhile is skipped), handing each to
    /// `each` until it returns false. One `file.read` audit entry records what was read and
    /// `why` (a search reads many files; an entry each would drown the log). Returns how many
    /// files were read.
    pub fn read_each(
        &self,
        rels: &[String],
        max_each: u64,
        why: &str,
        mut each: impl FnMut(&str, &[u8]) -> bool,
    ) -> usize {
        let (mut read, mut bytes) = (Vec::new(), 0usize);
        for rel in rels {
            if self.policy.read_allowed(rel).is_err() {
                continue;
            }
            let Ok(b) = self.files.read_named(rel, max_each) else {
                continue;
            };
            bytes += b.len();
            read.push(rel.as_str());
            if !each(rel, &b) {
                break;
            }
        }
        if !read.is_empty() {
            self.env.store.audit().record(
                "file.read",
                Some(&self.job),
                json!({"for": why, "files": read.len(), "bytes": bytes,
                       "paths": read.iter().take(50).collect::<Vec<_>>()}),
            );
        }
        read.len()
    }

    /// Read a file inside one folder of the workspace (a skill's own `skills/<name>/`, which a
    /// planned job may read whatever its globs say): `rel` is relative to `folder`, with no `..`
    /// and no symlink leading out of the folder; a regular file of at most `max` bytes. Audited
    /// like [`Guard::read_file`].
    pub fn read_in_folder(&self, folder: &str, rel: &str, max: u64) -> Result<Vec<u8>, StepError> {
        let shown = format!("{}/{}", folder.trim_end_matches('/'), rel);
        let refuse = |why: &str| self.refuse("file read", &shown, why);
        let plain = std::path::Path::new(rel).components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if rel.is_empty() || !plain {
            return Err(refuse(&format!(
                "{rel:?} must be a path inside the folder {folder}, without `..`"
            )));
        }
        let full = self
            .files
            .resolve(&shown)
            .map_err(|e| refuse(&refusal_reason(&e)))?;
        let base = self
            .files
            .resolve(folder)
            .map_err(|e| refuse(&refusal_reason(&e)))?
            .canonicalize()
            .map_err(|e| StepError::Fatal(format!("opening {folder}: {e}")))?;
        // A missing file is the model's mistake, not a refusal: it is told, not audited.
        let real = full
            .canonicalize()
            .map_err(|_| StepError::Invalid(format!("there is no file {rel:?} in {folder}")))?;
        if !real.starts_with(&base) {
            return Err(refuse(&format!("a symlink in it leads outside {folder}")));
        }
        let bytes = self.files.read_named(&shown, max).map_err(|e| match e {
            deskhand_workspace::WorkspaceError::Refused { .. } => refuse(&refusal_reason(&e)),
            other => StepError::Fatal(format!("reading {shown}: {other}")),
        })?;
        self.env.store.audit().record(
            "file.read",
            Some(&self.job),
            json!({"path": shown, "bytes": bytes.len(),
                   "sha256": deskhand_workspace::sha256_hex(&bytes)}),
        );
        Ok(bytes)
    }

    /// Change a text file in place with `edit` (current text → new text; an error goes back to
    /// the caller): the path checks and globs of [`Guard::write_file`]; changing a file this job
    /// has not written is an `overwrite`, asked with the diff unless allowed. `edit` is applied
    /// again to the person's newer text if the file changes meanwhile (see the workspace crate),
    /// so their edit is kept or the change fails. Journaled for undo, audited, recorded as the
    /// job's output.
    pub async fn change_file<F>(&self, rel: &str, edit: F) -> Result<Changed, StepError>
    where
        F: Fn(&str) -> Result<String, String> + Send + 'static,
    {
        let (norm, norm_rel) = self.writable(rel)?;
        if !norm.is_file() {
            return Err(StepError::Invalid(format!(
                "there is no file {norm_rel} to change; create it with file.write"
            )));
        }
        let before = self
            .files
            .read_named(&norm_rel, MAX_NAMED_READ)
            .map_err(|e| self.refuse("file", &norm_rel, &refusal_reason(&e)))?;
        let before = String::from_utf8(before).map_err(|_| {
            StepError::Invalid(format!("{norm_rel} is not UTF-8 text; it cannot be edited"))
        })?;
        let after = edit(&before).map_err(StepError::Invalid)?;
        let journal = crate::journal::Journal::new(&self.env.workspace);
        if !journal.touched(&self.job, &norm_rel) {
            self.approve(
                "overwrite",
                &norm_rel,
                json!({"path": norm_rel, "diff": text_diff(&norm_rel, &before, &after)}),
            )
            .await?;
        }
        let files = self.files.clone();
        let (r, j) = (norm_rel.clone(), self.job.clone());
        let text = tokio::task::spawn_blocking(move || {
            let mut failed = None;
            journal.before(&j, &r).map_err(|e| e.to_string())?;
            let text = files
                .edit(&r, 3, |cur| match cur.map(&edit) {
                    Some(Ok(t)) => Ok(Some(t)),
                    Some(Err(e)) => {
                        failed = Some(e);
                        Ok(None)
                    }
                    None => {
                        failed = Some("the file was removed meanwhile".into());
                        Ok(None)
                    }
                })
                .map_err(|e| e.to_string())?;
            journal.after(&j, &r).map_err(|e| e.to_string())?;
            match failed {
                Some(why) => Err(why),
                None => Ok(text.unwrap_or_default()),
            }
        })
        .await?
        .map_err(|e| StepError::Fatal(format!("editing {norm_rel}: {e}")))?;
        let sha256 = deskhand_workspace::sha256_hex(text.as_bytes());
        self.env.store.audit().record(
            "file.written",
            Some(&self.job),
            json!({"path": norm_rel, "bytes": text.len(), "sha256": sha256, "edit": true}),
        );
        self.env
            .store
            .add_output(&self.job, &norm_rel)
            .await
            .map_err(StepError::from)?;
        Ok(Changed {
            path: norm_rel,
            bytes: text.len(),
        })
    }

    /// Where a write to `rel` would land (absolute, and relative to the workspace), if the
    /// workspace and the skill's globs allow it; a refusal is audited.
    fn writable(&self, rel: &str) -> Result<(std::path::PathBuf, String), StepError> {
        let norm = self
            .files
            .resolve(rel)
            .map_err(|e| self.refuse("file", rel, &e.to_string()))?;
        let norm_rel = norm
            .strip_prefix(self.files.root())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| rel.to_string());
        self.policy
            .path_allowed(&norm_rel)
            .map_err(|why| self.refuse("file", &norm_rel, &why))?;
        Ok((norm, norm_rel))
    }

    /// Write a workspace file for the job: the path must be inside the workspace (no `..`,
    /// absolute paths, symlinks out, `.deskhand/`) and match the skill's globs; replacing a file
    /// the job did not write is an `overwrite` (asks unless allowed). Journaled for undo, audited,
    /// and recorded as the job's output.
    pub async fn write_file(&self, rel: &str, bytes: Vec<u8>) -> Result<(), StepError> {
        let (norm, norm_rel) = self.writable(rel)?;
        self.claim(&norm_rel)?;
        let journal = crate::journal::Journal::new(&self.env.workspace);
        if norm.exists() && !journal.touched(&self.job, &norm_rel) {
            self.approve(
                "overwrite",
                &norm_rel,
                json!({"path": norm_rel, "bytes": bytes.len()}),
            )
            .await?;
        }
        let files = self.files.clone();
        let (r, j) = (norm_rel.clone(), self.job.clone());
        let written = tokio::task::spawn_blocking(move || {
            // What was there first, so `deskhand undo` can put it back.
            journal.before(&j, &r).map_err(|e| e.to_string())?;
            let w = files.write(&r, &bytes).map_err(|e| e.to_string())?;
            journal.after(&j, &r).map_err(|e| e.to_string())?;
            Ok::<_, String>(w)
        })
        .await?
        .map_err(|e| StepError::Retryable(format!("writing {norm_rel}: {e}")))?;
        self.env.store.audit().record(
            "file.written",
            Some(&self.job),
            json!({"path": written.rel, "bytes": written.bytes, "sha256": written.sha256}),
        );
        self.env
            .store
            .add_output(&self.job, &norm_rel)
            .await
            .map_err(StepError::from)
    }

    /// Record something this job made outside the workspace that needed no approval (a Gmail
    /// draft): audited as `kind`, journaled so `deskhand undo` removes it.
    pub fn created_outside(
        &self,
        kind: &str,
        connection: &str,
        id: &str,
        details: Value,
    ) -> Result<(), StepError> {
        crate::journal::Journal::new(&self.env.workspace)
            .created_external(&self.job, kind, connection, id)
            .map_err(StepError::from)?;
        self.env
            .store
            .audit()
            .record(kind, Some(&self.job), details);
        Ok(())
    }

    /// May this step write `rel` (no refusal recorded: for optional outputs)?
    pub fn may_write(&self, rel: &str) -> bool {
        self.files.resolve(rel).is_ok() && self.policy.path_allowed(rel).is_ok()
    }

    /// A workspace folder this skill may change files in: its path and its normalized name.
    pub fn folder(&self, rel: &str) -> Result<(std::path::PathBuf, String), StepError> {
        let rel = rel.trim().trim_end_matches('/');
        let (dir, norm) = self.writable(&format!("{rel}/_"))?;
        let dir = dir
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or(dir);
        let norm = norm
            .trim_end_matches("/_")
            .trim_end_matches('_')
            .trim_end_matches('/')
            .to_string();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => Ok((dir, norm)),
            Ok(_) => Err(self.refuse("folder", &norm, "not a folder (or a symbolic link to one)")),
            Err(_) => Err(StepError::Invalid(format!(
                "no folder {norm:?} in the workspace"
            ))),
        }
    }

    /// A folder outside the workspace that the person granted this skill (`[[files.granted]]`
    /// in config.toml), after following links: `None` when `arg` is a workspace path (neither
    /// absolute nor `~/…`). The folder must be a granted one or inside it, and not inside the
    /// workspace (whose own rules would be bypassed); a refusal says how to grant it.
    pub fn granted_folder(&self, arg: &str) -> Result<Option<std::path::PathBuf>, StepError> {
        let arg = arg.trim();
        if !(arg.starts_with('/') || arg.starts_with('~')) {
            return Ok(None);
        }
        let wanted = crate::config::expand_home(arg).ok_or_else(|| {
            StepError::Invalid(format!(
                "{arg:?}: name a folder outside the workspace as an absolute path or ~/…"
            ))
        })?;
        let real = std::fs::canonicalize(&wanted)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| StepError::Invalid(format!("no folder {arg:?}")))?;
        let config = crate::config::Config::load(&self.env.workspace)
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        let skill = &self.policy.skill;
        let how = format!(
            "grant it in .deskhand/config.toml: [[files.granted]] path = {arg:?} skills = [{skill:?}]"
        );
        let workspace = std::fs::canonicalize(&self.env.workspace)
            .unwrap_or_else(|_| self.env.workspace.clone());
        if real.starts_with(&workspace) {
            return Err(self.refuse(
                "folder",
                arg,
                "inside the workspace: name it relative to the workspace",
            ));
        }
        for grant in &config.files.granted {
            let Some(granted) = grant.folder().and_then(|p| std::fs::canonicalize(p).ok()) else {
                continue;
            };
            if real.starts_with(&granted) {
                if grant.skills.iter().any(|s| s == skill) {
                    return Ok(Some(real));
                }
                return Err(self.refuse(
                    "folder",
                    arg,
                    &format!("granted to {:?} only; {how}", grant.skills),
                ));
            }
        }
        Err(self.refuse(
            "folder",
            arg,
            &format!("outside the workspace and not granted; {how}"),
        ))
    }

    /// Carry out a planned sort of `folder`: the whole plan is the approval (`move`, unless the
    /// skill may move without asking); each file moves only if it is still what was planned and
    /// its new name is still free, never through a symbolic link; every move is in the job's
    /// move log first (`deskhand undo` puts them back) and the audit log keeps the log's hash.
    /// With `outside` (from [`Guard::granted_folder`]) the moves' paths are relative to that
    /// folder, each checked to stay in it without passing a link.
    pub async fn move_files(
        &self,
        folder: &str,
        outside: Option<&std::path::Path>,
        moves: &[crate::moves::Move],
        preview: &impl serde::Serialize,
    ) -> Result<crate::moves::Moved, StepError> {
        self.approve(
            "move",
            folder,
            serde_json::to_value(preview).unwrap_or_default(),
        )
        .await?;
        // Every destination and source must be writable by this skill (inside the workspace),
        // or stay inside the granted folder.
        for m in moves {
            match outside {
                None => {
                    self.writable(&m.from)?;
                    self.writable(&m.to)?;
                }
                Some(root) => {
                    for rel in [&m.from, &m.to] {
                        crate::moves::stays_inside(root, rel)
                            .map_err(|why| self.refuse("file", rel, &why))?;
                    }
                }
            }
        }
        let journal = crate::journal::Journal::new(&self.env.workspace);
        let root = outside.map_or_else(|| self.files.root().to_path_buf(), |p| p.to_path_buf());
        let granted = outside.map(|p| p.display().to_string());
        let (job, moves) = (self.job.clone(), moves.to_vec());
        let (done, hash) = tokio::task::spawn_blocking(move || {
            use crate::journal::MoveEntry;
            let mut log = journal.move_log(&job).map_err(|e| e.to_string())?;
            if let Some(dir) = &granted {
                log.record(&MoveEntry::Root { root: dir.clone() })
                    .map_err(|e| e.to_string())?;
            }
            let done = crate::moves::carry_out(&root, &moves, &mut log);
            if granted.is_some() {
                // Back to the workspace for whatever this job moves next.
                log.record(&MoveEntry::Root {
                    root: String::new(),
                })
                .map_err(|e| e.to_string())?;
            }
            let done = done?;
            let hash = log.finish().map_err(|e| e.to_string())?;
            Ok::<_, String>((done, hash))
        })
        .await?
        .map_err(|e| StepError::Fatal(format!("files.organize: {e}")))?;
        self.env.store.audit().record(
            "files.moved",
            Some(&self.job),
            json!({"folder": folder, "moved": done.moved, "skipped": done.skipped.len(),
                   "move_log_sha256": hash}),
        );
        Ok(done)
    }

    /// Move one workspace file (a rename when the folder stays): asks (`move`) unless allowed,
    /// never replaces a file, journaled like [`Guard::move_files`]. The new path, normalized.
    pub async fn move_path(&self, from: &str, to: &str) -> Result<String, StepError> {
        let (_, from_rel) = self.writable(from)?;
        let (_, to_rel) = self.writable(to)?;
        self.claim(&to_rel)?;
        self.approve("move", &from_rel, json!({"from": from_rel, "to": to_rel}))
            .await?;
        self.move_one(&from_rel, &to_rel, "file.moved").await?;
        Ok(to_rel)
    }

    /// "Delete" a workspace file: it moves into `.deskhand/trash/<job>/` (asks `delete` unless
    /// allowed), so `deskhand undo` brings it back. Where it went.
    pub async fn trash(&self, rel: &str) -> Result<String, StepError> {
        let (_, rel) = self.writable(rel)?;
        self.claim(&rel)?;
        self.approve("delete", &rel, json!({"path": rel})).await?;
        let to = format!(".deskhand/trash/{}/{rel}", self.job);
        self.move_one(&rel, &to, "file.deleted").await?;
        Ok(to)
    }

    async fn move_one(&self, from: &str, to: &str, kind: &str) -> Result<(), StepError> {
        let root = self.files.root().to_path_buf();
        let meta = std::fs::symlink_metadata(root.join(from))
            .ok()
            .filter(std::fs::Metadata::is_file)
            .ok_or_else(|| {
                StepError::Invalid(format!(
                    "no file {from:?} in the workspace (links are not moved)"
                ))
            })?;
        if std::fs::symlink_metadata(root.join(to)).is_ok() {
            return Err(StepError::Invalid(format!(
                "{to} exists; a move never replaces a file: choose another name"
            )));
        }
        let m = crate::moves::Move {
            from: from.to_string(),
            to: to.to_string(),
            size: meta.len(),
            mtime_ns: crate::journal::mtime_of(&meta),
        };
        let journal = crate::journal::Journal::new(&self.env.workspace);
        let job = self.job.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut log = journal.move_log(&job).map_err(|e| e.to_string())?;
            let done = crate::moves::carry_out(&root, &[m], &mut log)?;
            log.finish().map_err(|e| e.to_string())?;
            Ok::<_, String>(done)
        })
        .await?
        .map_err(|e| StepError::Fatal(format!("moving {from}: {e}")))?;
        if let Some((_, why)) = done.skipped.first() {
            return Err(StepError::Invalid(format!("{from} not moved: {why}")));
        }
        self.env
            .store
            .audit()
            .record(kind, Some(&self.job), json!({"from": from, "to": to}));
        Ok(())
    }

    /// Claim `rel` for this step (see [`JobScope::claim`]); a refusal is audited.
    fn claim(&self, rel: &str) -> Result<(), StepError> {
        self.scope
            .claim(rel, &self.writer)
            .map_err(|why| self.refuse("file", rel, &why))
    }

    /// The path this step's output with extension `ext` is written to.
    pub fn output_path(&self, ext: &str) -> String {
        self.output.path(&self.job, ext)
    }

    /// Write this step's output (see [`OutputName`]). The name depends only on the job and the
    /// step, so a redelivered job rewrites its own file instead of adding a second one.
    pub async fn write_output(&self, ext: &str, bytes: Vec<u8>) -> Result<String, StepError> {
        let rel = self.output_path(ext);
        self.write_file(&rel, bytes).await?;
        Ok(rel)
    }

    /// Change a workspace file in place with `edit` (re-applied on the person's newer text; see
    /// the workspace crate), under the same checks and journal as [`Guard::write_file`].
    pub async fn edit_file<T: Send + 'static>(
        &self,
        rel: &str,
        edit: impl FnOnce(&Workspace) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StepError> {
        self.policy
            .path_allowed(rel)
            .map_err(|why| self.refuse("file", rel, &why))?;
        self.files
            .resolve(rel)
            .map_err(|e| self.refuse("file", rel, &e.to_string()))?;
        let journal = crate::journal::Journal::new(&self.env.workspace);
        let files = self.files.clone();
        let (r, j) = (rel.to_string(), self.job.clone());
        let out = tokio::task::spawn_blocking(move || {
            journal.before(&j, &r).map_err(|e| e.to_string())?;
            let out = edit(&files)?;
            journal.after(&j, &r).map_err(|e| e.to_string())?;
            Ok::<_, String>(out)
        })
        .await?
        .map_err(|e| StepError::Retryable(format!("editing {rel}: {e}")))?;
        self.env.store.audit().record(
            "file.written",
            Some(&self.job),
            json!({"path": rel, "edit": true}),
        );
        Ok(out)
    }
}

/// Where a planned job's conversation is kept.
fn transcript_path(workspace: &std::path::Path, job: &str) -> std::path::PathBuf {
    workspace
        .join(".deskhand/jobs")
        .join(job)
        .join("transcript.jsonl")
}

/// The conversation of planned job `job` in `workspace`, entry by entry. Only a job id (a ULID)
/// names one, so no parameter can point this at another file.
pub fn read_transcript(workspace: &std::path::Path, job: &str) -> Result<Vec<Value>, StepError> {
    if job.parse::<ulid::Ulid>().is_err() {
        return Err(StepError::Invalid(format!(
            "{job:?} is not a job id (26 letters and digits, as `deskhand jobs list` shows)"
        )));
    }
    let text = match std::fs::read_to_string(transcript_path(workspace, job)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StepError::Invalid(format!(
                "job {job} has no conversation to continue: only a job asked in plain words \
                 (`deskhand ask`) has one, and it must have run on this desktop"
            )))
        }
        Err(e) => {
            return Err(StepError::Retryable(format!(
                "reading job {job}'s conversation: {e}"
            )))
        }
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_come_from_the_step_and_never_collide() {
        let name = |skill: &str, step: &str, path: Option<&str>| OutputName {
            skill: skill.into(),
            step: step.into(),
            path: path.map(String::from),
        };
        assert_eq!(
            name("browser.extract", "browser.extract", None).path("J1", "csv"),
            "reports/browser.extract-J1.csv"
        );
        let a = name("leads", "a", None).path("J1", "csv");
        let b = name("leads", "b", None).path("J1", "csv");
        assert_eq!(a, "reports/leads-a-J1.csv");
        assert_ne!(a, b);
        let declared = name("leads", "a", Some("reports/leads.csv"));
        assert_eq!(declared.path("J1", "csv"), "reports/leads.csv");
        assert_eq!(declared.path("J1", "png"), "reports/leads.png");
        assert_eq!(with_extension("out", "md"), "out.md");

        let scope = JobScope::new(Policy::new(
            "leads",
            &Permissions::default(),
            &Default::default(),
        ));
        assert!(scope.claim(&a, "a").is_ok());
        assert!(
            scope.claim(&a, "a").is_ok(),
            "a step may rewrite its own file"
        );
        let e = scope.claim(&a, "b").unwrap_err();
        assert!(
            e.contains("step \"a\" already wrote") && e.contains("path:"),
            "{e}"
        );
    }

    #[test]
    fn audited_urls_lose_their_query_and_fragment() {
        assert_eq!(
            without_query("http://127.0.0.1:8080/done.html?password=x&a=b#t"),
            "http://127.0.0.1:8080/done.html"
        );
        assert_eq!(without_query("not a url?secret"), "not a url");
    }
}
