//! Skills that read Gmail, Calendar and Notion: sync first, then report from the cache. A job
//! whose connection needs the person (never connected, or stale) is held, not failed, and the
//! agent resumes it once `deskhand connect` has fixed the connection.

use std::path::PathBuf;
use std::sync::Arc;

use deskhand_connectors::mail_query::MailQuery;
use deskhand_connectors::{
    Cache, ConnectionId, ConnectionState, ConnectorError, Hub, Provider, Quiet, Resource,
    SecretStoreKind, Settings,
};
use serde_json::{json, Map, Value};

use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};
use crate::skills::manifest::Access;

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

fn resource_of(action: &str) -> Option<Resource> {
    Some(match action.split('.').next()? {
        "gmail" => Resource::Gmail,
        "calendar" => Resource::Calendar,
        "notion" => Resource::Notion,
        _ => return None,
    })
}

/// The connection an action's step depends on (`gmail.*`, `calendar.*`, `notion.*`).
pub fn connection_of(action: &str, args: &Map<String, Value>) -> Option<ConnectionId> {
    let provider: Provider = resource_of(action)?.provider();
    Some(ConnectionId::new(
        provider,
        args.get("account").and_then(|a| a.as_str()),
    ))
}

/// How a connector failure affects a step: held while the person must reconnect.
pub(crate) fn step_error(e: ConnectorError) -> StepError {
    match e {
        e if e.needs_reconnect() => StepError::Held(e.to_string()),
        e @ (ConnectorError::Transient { .. } | ConnectorError::Quota { .. }) => {
            StepError::Retryable(e.to_string())
        }
        e => StepError::Fatal(e.to_string()),
    }
}

/// `gmail.sync`, `calendar.sync`, `notion.sync`: bring the cache up to date (held while the
/// connection needs the person).
pub(crate) async fn sync(
    action: &str,
    g: &Guard,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let env = g.env();
    let resource =
        resource_of(action).ok_or_else(|| StepError::Fatal(format!("{action} syncs nothing")))?;
    g.connector(resource.as_str(), Access::Read)?;
    let id = connection_of(action, args).expect("a connector action");
    let hub = env.connectors.hub().await.map_err(StepError::Fatal)?;
    let work = hub.sync(&id, resource, &Quiet);
    let out = tokio::select! {
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
        r = work => r.map_err(step_error)?,
    };
    Ok(serde_json::to_value(out).unwrap_or_default())
}

/// `gmail.search`, `calendar.agenda`, `notion.query`: sync, then save what matches in reports/.
pub(crate) async fn search(
    action: &str,
    g: &Guard,
    args: &Map<String, Value>,
    ctx: &StepCtx,
) -> Result<Value, StepError> {
    let env = g.env();
    sync(action, g, args, ctx).await?;
    let id = connection_of(action, args).expect("a connector action");
    let hub = env.connectors.hub().await.map_err(StepError::Fatal)?;
    let body = read_cache(hub.cache(), &id, action, args)?;
    let mut out = g
        .write_output(
            action,
            "json",
            serde_json::to_vec_pretty(&body).unwrap_or_default(),
        )
        .await?;
    out["items"] = body["count"].clone();
    Ok(out)
}

fn read_cache(
    cache: &Cache,
    id: &ConnectionId,
    skill: &str,
    params: &Map<String, Value>,
) -> Result<Value, StepError> {
    let conn = id.to_string();
    let fatal = |e: ConnectorError| StepError::Fatal(e.to_string());
    let items: Value = match skill {
        "gmail.search" => {
            let q = MailQuery::parse(
                crate::skills::arg(params, "query")
                    .as_str()
                    .unwrap_or_default(),
                chrono::Utc::now().timestamp_millis(),
            )
            .map_err(|e| StepError::Fatal(format!("bad query: {e}")))?;
            let limit = crate::skills::arg(params, "limit").as_u64().unwrap_or(50) as usize;
            json!(cache.search_mail(Some(&conn), &q, limit).map_err(fatal)?)
        }
        "calendar.agenda" => {
            let now = chrono::Local::now();
            let midnight = now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .and_then(|d| d.and_local_timezone(chrono::Local).earliest())
                .unwrap_or(now)
                .timestamp();
            let days = crate::skills::arg(params, "days")
                .as_i64()
                .unwrap_or(7)
                .max(1);
            json!(cache
                .agenda(Some(&conn), midnight, midnight + days * 86_400)
                .map_err(fatal)?)
        }
        _ => {
            let wanted = crate::skills::arg(params, "data_source")
                .as_str()
                .unwrap_or_default();
            let ds = cache
                .data_sources(Some(&conn))
                .map_err(fatal)?
                .into_iter()
                .find(|d| d.id == wanted || d.title.eq_ignore_ascii_case(wanted))
                .ok_or_else(|| {
                    StepError::Fatal(format!(
                        "no data source {wanted:?} is shared with {conn}; share it with the \
                         integration in Notion"
                    ))
                })?;
            let filter = crate::skills::arg(params, "where")
                .as_object()
                .cloned()
                .unwrap_or_default();
            let pages: Vec<_> = cache
                .pages(Some(&conn), &ds.id)
                .map_err(fatal)?
                .into_iter()
                .filter(|p| {
                    filter.iter().all(|(k, v)| match p.properties.get(k) {
                        Some(Value::Array(a)) => a.contains(v),
                        Some(x) => x == v,
                        None => false,
                    })
                })
                .collect();
            json!(pages)
        }
    };
    let count = items.as_array().map(|a| a.len()).unwrap_or(0);
    Ok(json!({ "connection": conn, "count": count, "items": items }))
}
