//! What a running skill's guard stands in front of: the workspace, the browser pool, the
//! connectors, the state store, the schedule ledger and the link to the person's browser. Every
//! field is private to the guard: an action is handed a [`Guard`](super::Guard), never this, so
//! the only way to a page, a connector or a file is through the guard's checks. The agent gets
//! the few lifecycle handles it needs (shutting the browsers down, installing the demo's hub).
//!
//! What the agent may use compiles (and proves the paths below are the real ones):
//!
//! ```
//! fn fine(env: &deskhand_agent::guard::SkillEnv) -> &std::path::Path {
//!     env.workspace()
//! }
//! ```
//!
//! An action that reaches for a connector or the browser pool directly does not compile:
//!
//! ```compile_fail
//! fn sneak(env: &deskhand_agent::guard::SkillEnv) -> &deskhand_agent::connector_skills::Connectors {
//!     &env.connectors
//! }
//! ```
//!
//! ```compile_fail
//! fn sneak(env: &deskhand_agent::guard::SkillEnv) -> &deskhand_agent::browsers::BrowserPool {
//!     &env.browsers
//! }
//! ```
//!
//! ```compile_fail
//! // Nor can it make itself a guard: the constructor is the agent's.
//! fn sneak(env: std::sync::Arc<deskhand_agent::guard::SkillEnv>, w: deskhand_workspace::Workspace) {
//!     let _ = deskhand_agent::guard::Guard::new;
//! }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deskhand_workspace::Workspace;

use crate::browsers::BrowserPool;
use crate::connector_skills::Connectors;
use crate::extension::ExtensionHub;
use crate::store::Store;

/// What a planned job runs with: the model, its budget, and what it may touch.
#[derive(Debug, Clone, Default)]
pub struct PlannerEnv {
    /// The model (none: not configured; a planned job says how to configure one).
    pub model: Option<deskhand_model::ModelConfig>,
    /// How much a job may spend.
    pub budget: deskhand_model::Budget,
    /// What a planned job may touch.
    pub permissions: super::Permissions,
    /// Ask the person to approve the plan before the first consequential call (`--plan`).
    pub show_plan: bool,
    /// The MCP servers whose tools a planned job gets (`[mcp.servers.*]`).
    pub mcp: Vec<crate::mcp::ServerSpec>,
}

/// Where a running job's progress goes: the agent records it and tells every watcher (the
/// terminal, the API's event stream, the phone, the queue's subscribers).
pub trait JobEvents: Send + Sync {
    /// Record `t` for `job` and pass it on.
    fn emit<'a>(
        &'a self,
        job: &'a str,
        t: crate::job::Transition,
    ) -> futures::future::BoxFuture<'a, ()>;
}

/// The resources behind the guard.
pub struct SkillEnv {
    /// Where progress events go (set by the agent once it is up).
    pub(super) events: std::sync::OnceLock<Arc<dyn JobEvents>>,
    /// The planner's model and limits.
    pub(super) planner: std::sync::RwLock<Arc<PlannerEnv>>,
    pub(super) workspace: PathBuf,
    /// The workspace-write API, handed only to guards.
    pub(super) files: Workspace,
    pub(super) browsers: BrowserPool,
    pub(super) store: Store,
    pub(super) connectors: Connectors,
    pub(super) schedules: Arc<deskhand_schedule::Ledger>,
    /// Wakes the dashboard writer (a new approval should show at once, not after the job).
    pub(super) dashboard: Arc<tokio::sync::Notify>,
    /// The link to the extension in the person's own browser (for `target: tab:…`).
    pub(super) extension: Arc<ExtensionHub>,
}

impl SkillEnv {
    /// An environment for a workspace.
    pub fn new(
        workspace: PathBuf,
        browsers: BrowserPool,
        store: Store,
        connectors: Connectors,
        schedules: Arc<deskhand_schedule::Ledger>,
    ) -> SkillEnv {
        let extension = ExtensionHub::new(&workspace);
        SkillEnv {
            events: Default::default(),
            planner: Default::default(),
            files: Workspace::new(&workspace),
            workspace,
            browsers,
            store,
            connectors,
            schedules,
            dashboard: Arc::new(tokio::sync::Notify::new()),
            extension,
        }
    }

    /// Use this model and these limits for planned jobs.
    pub fn set_planner(&self, p: PlannerEnv) {
        *self.planner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
    }

    /// Send jobs' progress events here (the first call wins).
    pub fn set_events(&self, sink: Arc<dyn JobEvents>) {
        let _ = self.events.set(sink);
    }

    /// What a planned job may touch.
    pub fn planner_permissions(&self) -> super::Permissions {
        self.planner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .permissions
            .clone()
    }

    /// The workspace folder.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// Read-only access to the workspace's files.
    pub fn reader(&self) -> Reader {
        Reader(self.files.clone())
    }

    /// The dashboard writer's wake-up.
    pub fn dashboard(&self) -> &Arc<tokio::sync::Notify> {
        &self.dashboard
    }

    /// The link to the person's browser.
    pub fn extension(&self) -> &Arc<ExtensionHub> {
        &self.extension
    }

    /// Every connection with its health (read from the cache; no network).
    pub fn connections(&self) -> Vec<deskhand_connectors::ConnectionInfo> {
        self.connectors.list()
    }

    /// Is this connection connected and not stale?
    pub fn usable(&self, id: &deskhand_connectors::ConnectionId) -> bool {
        self.connectors.usable(id)
    }

    /// Use this hub for the connectors (the demo's fake accounts).
    pub async fn set_hub(&self, hub: Arc<deskhand_connectors::Hub>) {
        self.connectors.set_hub(hub).await;
    }

    /// Close the shared browser (agent shutdown).
    pub async fn shutdown_browsers(&self) {
        self.browsers.shutdown().await;
    }

    /// The guard for one step of a job.
    pub fn guard(
        self: &Arc<Self>,
        scope: Arc<super::JobScope>,
        job: &str,
        output: super::OutputName,
        cancel: tokio_util::sync::CancellationToken,
    ) -> super::Guard {
        super::Guard::new(
            scope,
            Arc::clone(self),
            self.files.clone(),
            job,
            output,
            cancel,
        )
    }
}

/// Reads workspace files (same path checks as writes), and nothing else.
#[derive(Clone)]
pub struct Reader(Workspace);

impl Reader {
    /// The bytes at `rel`, or None when there is no such file.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, deskhand_workspace::WorkspaceError> {
        self.0.read(rel)
    }

    /// The regular files under the folder `rel`, never `.deskhand/`, no symlink followed (see
    /// `Workspace::files`).
    pub fn files(
        &self,
        rel: &str,
        max_visited: usize,
    ) -> Result<deskhand_workspace::Listing, deskhand_workspace::WorkspaceError> {
        self.0.files(rel, max_visited)
    }
}
