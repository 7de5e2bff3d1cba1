//! Skills that read Gmail, Calendar and Notion: sync first, then report from the cache. A job
//! whose connection needs the person (never connected, or stale) is held, not failed, and the
//! agent resumes it once `deskhand connect` has fixed the connection.

use std::path::PathBuf;
use std::sync::Arc;

use deskhand_connectors::mail_query::MailQuery;
use deskhand_connectors::{
    Cache, ConnectionId, ConnectionState, Hub, Provider, Quiet, Resource, SecretStoreKind, Settings,
};
use serde_json::{json, Map, Value};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::guard::{Access, Guard};
use crate::runner::{StepCtx, StepError};
use crate::skills::args::Line;
use crate::skills::Account;

/// The connectors a running agent uses, opened on first use (no keyring needed until then).
pub struct Connectors {
    workspace: PathBuf,
    settings: Settings,
    store: SecretStoreKind,
    hub: tokio::sync::Mutex<Option<Arc<Hub>>>,
}

impl Connectors {
    /// Connectors for a workspace.
    pub fn new(workspace: PathBuf, settings: Settings, store: SecretStoreKind) -> Connectors {
        Connectors {
            workspace,
            settings,
            store,
            hub: tokio::sync::Mutex::new(None),
        }
    }

    /// Where secrets are kept (also the form secrets the guard fills in).
    pub fn secret_store(&self) -> SecretStoreKind {
        self.store
    }

    /// Use this hub instead of opening one from the settings (the demo's fake accounts).
    pub async fn set_hub(&self, hub: Arc<Hub>) {
        *self.hub.lock().await = Some(hub);
    }

    /// The hub, opening the cache and the secret store the first time.
    pub async fn hub(&self) -> Result<Arc<Hub>, String> {
        let mut slot = self.hub.lock().await;
        if let Some(h) = slot.as_ref() {
            return Ok(h.clone());
        }
        let (ws, store) = (self.workspace.clone(), self.store);
        let opened = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let cache =
                Arc::new(Cache::open(&crate::connect::cache_path(&ws)).map_err(|e| e.to_string())?);
            let secrets = deskhand_connectors::Secrets::open(store, &ws.join(".deskhand"))
                .map_err(|e| e.to_string())?;
            Ok((cache, Arc::new(secrets)))
        })
        .await
        .map_err(|e| e.to_string())??;
        let hub = Arc::new(Hub::new(opened.0, opened.1, self.settings.clone()));
        *slot = Some(hub.clone());
        Ok(hub)
    }

    /// Every connection with its health, from the cache.
    pub fn list(&self) -> Vec<deskhand_connectors::ConnectionInfo> {
        Cache::open(&crate::connect::cache_path(&self.workspace))
            .and_then(|c| c.connections())
            .unwrap_or_default()
    }

    /// True when `id` has been connected and is not stale (read from the cache; no network).
    pub fn usable(&self, id: &ConnectionId) -> bool {
        Cache::open(&crate::connect::cache_path(&self.workspace))
            .ok()
            .and_then(|c| c.connection(id).ok().flatten())
            .is_some_and(|c| c.state != ConnectionState::Stale)
    }
}

/// The connection an action's step depends on (`gmail.*`, `calendar.*`, `notion.*`).
pub fn connection_of(resource: &str, args: &Map<String, Value>) -> Option<ConnectionId> {
    let provider = match resource {
        "gmail" | "calendar" => Provider::Google,
        "notion" => Provider::Notion,
        _ => return None,
    };
    Some(ConnectionId::new(
        provider,
        args.get("account").and_then(|a| a.as_str()),
    ))
}

/// Bring one resource's cache up to date (held while the connection needs the person).
async fn sync(
    g: &Guard,
    resource: Resource,
    id: &ConnectionId,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let hub = g.connector(resource.as_str(), Access::Read).await?;
    let work = hub.sync(id, resource, &Quiet);
    let out = tokio::select! {
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
        r = work => r?,
    };
    Ok(serde_json::to_value(out).unwrap_or_default())
}

/// `gmail.sync`.
pub(crate) async fn gmail_sync(g: Guard, a: Account, ctx: StepCtx) -> Result<Value, StepError> {
    sync(&g, Resource::Gmail, &a.of(Provider::Google), &ctx).await
}

/// `calendar.sync`.
pub(crate) async fn calendar_sync(g: Guard, a: Account, ctx: StepCtx) -> Result<Value, StepError> {
    sync(&g, Resource::Calendar, &a.of(Provider::Google), &ctx).await
}

/// `notion.sync`.
pub(crate) async fn notion_sync(g: Guard, a: Account, ctx: StepCtx) -> Result<Value, StepError> {
    sync(&g, Resource::Notion, &a.of(Provider::Notion), &ctx).await
}

/// `gmail.search`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Gmail search syntax, e.g. "from:grace is:unread newer_than:7d".
    query: Line,
    /// At most this many messages, newest first.
    #[serde(default = "fifty")]
    limit: u32,
    #[serde(flatten)]
    account: Account,
}

fn fifty() -> u32 {
    50
}

/// The mail `gmail.search` found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOut {
    /// The file the matches were saved to (JSON).
    path: String,
    /// The connection searched.
    connection: String,
    /// How many messages matched.
    count: usize,
    /// The messages (id, thread, from, to, subject, date, snippet, labels).
    messages: Vec<Value>,
}

/// Sync, then save what matches in reports/ and return it.
async fn save_matches(
    g: &Guard,
    id: &ConnectionId,
    items: Value,
) -> Result<(String, usize, Vec<Value>), StepError> {
    let items = match items {
        Value::Array(a) => a,
        other => vec![other],
    };
    let body = json!({ "connection": id.to_string(), "count": items.len(), "items": items });
    let path = g
        .write_output("json", serde_json::to_vec_pretty(&body).unwrap_or_default())
        .await?;
    Ok((path, items.len(), items))
}

/// `gmail.search`: sync, then save the messages matching the query in reports/.
pub(crate) async fn gmail_search(
    g: Guard,
    a: SearchArgs,
    ctx: StepCtx,
) -> Result<SearchOut, StepError> {
    let id = a.account.of(Provider::Google);
    sync(&g, Resource::Gmail, &id, &ctx).await?;
    let hub = g.connector("gmail", Access::Read).await?;
    let q = MailQuery::parse(a.query.as_str(), chrono::Utc::now().timestamp_millis())
        .map_err(|e| StepError::Fatal(format!("bad query: {e}")))?;
    let found = hub
        .cache()
        .search_mail(Some(&id.to_string()), &q, a.limit as usize)?;
    let (path, count, messages) = save_matches(&g, &id, json!(found)).await?;
    Ok(SearchOut {
        path,
        connection: id.to_string(),
        count,
        messages,
    })
}

/// `calendar.agenda`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AgendaArgs {
    /// Days from today.
    #[serde(default = "seven")]
    days: u32,
    #[serde(flatten)]
    account: Account,
}

fn seven() -> u32 {
    7
}

/// The events `calendar.agenda` found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AgendaOut {
    /// The file the events were saved to (JSON).
    path: String,
    /// How many events.
    count: usize,
    /// The events (title, start, end, attendees, …).
    events: Vec<Value>,
}

/// `calendar.agenda`: sync, then save the coming days' events in reports/.
pub(crate) async fn calendar_agenda(
    g: Guard,
    a: AgendaArgs,
    ctx: StepCtx,
) -> Result<AgendaOut, StepError> {
    let id = a.account.of(Provider::Google);
    sync(&g, Resource::Calendar, &id, &ctx).await?;
    let hub = g.connector("calendar", Access::Read).await?;
    let now = chrono::Local::now();
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|d| d.and_local_timezone(chrono::Local).earliest())
        .unwrap_or(now)
        .timestamp();
    let days = i64::from(a.days.max(1));
    let events = hub
        .cache()
        .agenda(Some(&id.to_string()), midnight, midnight + days * 86_400)?;
    let (path, count, events) = save_matches(&g, &id, json!(events)).await?;
    Ok(AgendaOut {
        path,
        count,
        events,
    })
}

/// `notion.query`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryArgs {
    /// Data source id or title.
    data_source: Line,
    /// Property values to match, e.g. {"Status": "Done"}.
    #[serde(default, rename = "where")]
    filter: Map<String, Value>,
    #[serde(flatten)]
    account: Account,
}

/// The pages `notion.query` found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryOut {
    /// The file the pages were saved to (JSON).
    path: String,
    /// How many pages.
    count: usize,
    /// The pages (id, title, properties, url).
    pages: Vec<Value>,
}

/// `notion.query`: sync, then save a data source's matching pages in reports/.
pub(crate) async fn notion_query(
    g: Guard,
    a: QueryArgs,
    ctx: StepCtx,
) -> Result<QueryOut, StepError> {
    let id = a.account.of(Provider::Notion);
    sync(&g, Resource::Notion, &id, &ctx).await?;
    let hub = g.connector("notion", Access::Read).await?;
    let (cache, conn, wanted) = (hub.cache(), id.to_string(), a.data_source.as_str());
    let ds = cache
        .data_sources(Some(&conn))?
        .into_iter()
        .find(|d| d.id == wanted || d.title.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            StepError::Fatal(format!(
                "no data source {wanted:?} is shared with {conn}; share it with the \
                 integration in Notion"
            ))
        })?;
    let pages: Vec<_> = cache
        .pages(Some(&conn), &ds.id)?
        .into_iter()
        .filter(|p| {
            a.filter.iter().all(|(k, v)| match p.properties.get(k) {
                Some(Value::Array(a)) => a.contains(v),
                Some(x) => x == v,
                None => false,
            })
        })
        .collect();
    let (path, count, pages) = save_matches(&g, &id, json!(pages)).await?;
    Ok(QueryOut { path, count, pages })
}
