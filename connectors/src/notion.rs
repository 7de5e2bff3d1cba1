//! Notion over its REST API (version 2025-09-03, data sources): search, query, blocks,
//! page creation and block appends, and incremental sync of data sources into the cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

use crate::cache::Cache;
use crate::error::{ConnectorError, Result};
use crate::http::ApiClient;
use crate::sync::{Progress, SyncReport};

/// The API version we speak.
pub const NOTION_VERSION: &str = "2025-09-03";
/// Largest page and largest append Notion allows.
pub const MAX_PAGE: usize = 100;

/// A page of a data source as Deskhand keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotionPage {
    /// Page id.
    pub id: String,
    /// Data source it belongs to.
    pub data_source_id: String,
    /// Plain-text title.
    pub title: String,
    /// Link to the page.
    pub url: String,
    /// Property values as plain JSON (strings, numbers, booleans, lists).
    pub properties: BTreeMap<String, Value>,
    /// RFC 3339.
    pub created_time: String,
    /// RFC 3339 (Notion rounds it to the minute).
    pub last_edited_time: String,
}

/// A data source (a database's table) as Deskhand keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataSource {
    /// Data source id.
    pub id: String,
    /// Plain-text title.
    pub title: String,
}

fn rich_text(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["plain_text"].as_str())
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// Reduces a Notion property value to plain JSON.
pub fn plain_value(p: &Value) -> Value {
    let kind = p["type"].as_str().unwrap_or_default();
    let v = &p[kind];
    match kind {
        "title" | "rich_text" => json!(rich_text(v)),
        "select" | "status" => v["name"].clone(),
        "multi_select" => json!(v
            .as_array()
            .map(|a| a.iter().map(|o| o["name"].clone()).collect::<Vec<_>>())
            .unwrap_or_default()),
        "date" => {
            if v["end"].is_string() {
                json!(format!(
                    "{}/{}",
                    v["start"].as_str().unwrap_or_default(),
                    v["end"].as_str().unwrap_or_default()
                ))
            } else {
                v["start"].clone()
            }
        }
        "people" => json!(v
            .as_array()
            .map(|a| a
                .iter()
                .map(|u| u["name"]
                    .as_str()
                    .or(u["id"].as_str())
                    .unwrap_or_default()
                    .to_string())
                .collect::<Vec<_>>())
            .unwrap_or_default()),
        "formula" => plain_value(
            &json!({"type": v["type"].clone(), (v["type"].as_str().unwrap_or("x")): v[v["type"].as_str().unwrap_or("x")].clone()}),
        ),
        "relation" => json!(v
            .as_array()
            .map(|a| a.iter().map(|r| r["id"].clone()).collect::<Vec<_>>())
            .unwrap_or_default()),
        _ => v.clone(), // number, checkbox, url, email, phone_number, created_time, ...
    }
}

impl NotionPage {
    /// Converts an API page object.
    pub fn from_api(data_source_id: &str, page: &Value) -> Option<NotionPage> {
        let mut title = String::new();
        let mut properties = BTreeMap::new();
        for (name, p) in page["properties"].as_object()? {
            if p["type"] == "title" {
                title = rich_text(&p["title"]);
            }
            properties.insert(name.clone(), plain_value(p));
        }
        Some(NotionPage {
            id: page["id"].as_str()?.to_string(),
            data_source_id: data_source_id.to_string(),
            title,
            url: page["url"].as_str().unwrap_or_default().to_string(),
            properties,
            created_time: page["created_time"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            last_edited_time: page["last_edited_time"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
    }
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    results: Vec<Value>,
    next_cursor: Option<String>,
    #[serde(default)]
    has_more: bool,
}

/// A Notion client for one workspace connection.
pub struct Notion {
    api: Arc<ApiClient>,
    base: Url,
}

impl Notion {
    /// `base` is `https://api.notion.com/v1/` in production (trailing slash).
    pub fn new(api: Arc<ApiClient>, base: Url) -> Notion {
        Notion { api, base }
    }

    /// Requests made so far.
    pub fn request_count(&self) -> u64 {
        self.api.request_count()
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("static Notion path")
    }

    /// Follows `next_cursor` until `has_more` is false. `body` is POSTed (with `start_cursor`),
    /// or for GET the cursor goes in the query.
    async fn paged(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(path);
            let page: List = if method == Method::GET {
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("page_size", &MAX_PAGE.to_string());
                    if let Some(c) = &cursor {
                        q.append_pair("start_cursor", c);
                    }
                }
                self.api.get(url, what).await?
            } else {
                let mut b = body.clone().unwrap_or_else(|| json!({}));
                b["page_size"] = json!(MAX_PAGE);
                if let Some(c) = &cursor {
                    b["start_cursor"] = json!(c);
                }
                self.api.send(method.clone(), url, Some(&b), what).await?
            };
            out.extend(page.results);
            match page.next_cursor.filter(|_| page.has_more) {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// One cheap authenticated call, to check a token.
    pub async fn check(&self) -> Result<()> {
        let body = json!({ "query": "", "page_size": 1 });
        let _: Value = self
            .api
            .send(Method::POST, self.url("search"), Some(&body), "search")
            .await?;
        Ok(())
    }

    /// Pages and data sources whose title contains `query`; `object` narrows to "page" or "data_source".
    pub async fn search(&self, query: &str, object: Option<&str>) -> Result<Vec<Value>> {
        let mut body = json!({ "query": query });
        if let Some(o) = object {
            body["filter"] = json!({ "property": "object", "value": o });
        }
        self.paged(Method::POST, "search", Some(body), "search")
            .await
    }

    /// A data source's schema.
    pub async fn data_source(&self, id: &str) -> Result<Value> {
        self.api
            .get(
                self.url(&format!("data_sources/{id}")),
                &format!("data source {id}"),
            )
            .await
    }

    /// All pages of a data source matching `filter`, in `sorts` order (Notion's JSON forms).
    pub async fn query(
        &self,
        data_source_id: &str,
        filter: Option<Value>,
        sorts: Option<Value>,
    ) -> Result<Vec<Value>> {
        let mut body = json!({});
        if let Some(f) = filter {
            body["filter"] = f;
        }
        if let Some(s) = sorts {
            body["sorts"] = s;
        }
        self.paged(
            Method::POST,
            &format!("data_sources/{data_source_id}/query"),
            Some(body),
            &format!("data source {data_source_id}"),
        )
        .await
    }

    /// Every child block of a page or block, following cursors.
    pub async fn blocks(&self, block_id: &str) -> Result<Vec<Value>> {
        self.paged(
            Method::GET,
            &format!("blocks/{block_id}/children"),
            None,
            &format!("block {block_id}"),
        )
        .await
    }

    /// Creates a page in a data source. Callers pass this through the workspace guard.
    pub async fn create_page(
        &self,
        data_source_id: &str,
        properties: Value,
        children: Vec<Value>,
    ) -> Result<Value> {
        let (first, rest) = children.split_at(children.len().min(MAX_PAGE));
        let body = json!({
            "parent": { "type": "data_source_id", "data_source_id": data_source_id },
            "properties": properties,
            "children": first,
        });
        let page: Value = self
            .api
            .send(Method::POST, self.url("pages"), Some(&body), "create page")
            .await?;
        if !rest.is_empty() {
            let id = page["id"]
                .as_str()
                .ok_or_else(|| ConnectorError::Protocol {
                    provider: "Notion".into(),
                    message: "created page has no id".into(),
                })?;
            self.append_blocks(id, rest.to_vec()).await?;
        }
        Ok(page)
    }

    /// Changes a page's properties (and `archived` when given). Callers pass this through the guard.
    pub async fn update_page(&self, page_id: &str, body: Value) -> Result<Value> {
        self.api
            .send(
                Method::PATCH,
                self.url(&format!("pages/{page_id}")),
                Some(&body),
                "update page",
            )
            .await
    }

    /// Appends blocks, 100 per request as Notion requires. Callers pass this through the guard.
    pub async fn append_blocks(&self, block_id: &str, children: Vec<Value>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for chunk in children.chunks(MAX_PAGE) {
            let body = json!({ "children": chunk });
            let res: List = self
                .api
                .send(
                    Method::PATCH,
                    self.url(&format!("blocks/{block_id}/children")),
                    Some(&body),
                    &format!("block {block_id}"),
                )
                .await?;
            out.extend(res.results);
        }
        Ok(out)
    }

    /// Syncs every shared data source: new and edited pages since the last sync.
    pub async fn sync(
        &self,
        cache: &Cache,
        conn: &str,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let started = Instant::now();
        let before = self.request_count();
        progress.stage("finding data sources", None);
        let sources: Vec<DataSource> = self
            .search("", Some("data_source"))
            .await?
            .iter()
            .filter_map(|d| {
                Some(DataSource {
                    id: d["id"].as_str()?.to_string(),
                    title: rich_text(&d["title"]),
                })
            })
            .collect();
        cache.set_data_sources(conn, &sources)?;
        let mut report = SyncReport::default();
        progress.stage("fetching pages", Some(sources.len() as u64));
        for ds in &sources {
            let key = format!("notion:{}", ds.id);
            let since = cache.cursor(conn, &key)?;
            report.full |= since.is_none();
            // Notion rounds last_edited_time to the minute, so "on or after" the last seen value
            // re-reads that minute's pages rather than missing one edited in the same minute.
            let filter = since.as_ref().map(|s| json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": s}}));
            let sorts = json!([{ "timestamp": "last_edited_time", "direction": "ascending" }]);
            let pages = self.query(&ds.id, filter, Some(sorts)).await?;
            let mut keep = Vec::new();
            let mut gone = Vec::new();
            let mut latest = since.clone().unwrap_or_default();
            for p in &pages {
                if p["archived"] == true || p["in_trash"] == true {
                    gone.extend(p["id"].as_str().map(str::to_string));
                    continue;
                }
                if let Some(np) = NotionPage::from_api(&ds.id, p) {
                    if np.last_edited_time > latest {
                        latest = np.last_edited_time.clone();
                    }
                    keep.push(np);
                }
            }
            report.fetched += keep.len();
            report.deleted += gone.len();
            cache.upsert_pages(conn, &keep)?;
            cache.delete_pages(conn, &gone)?;
            if !latest.is_empty() {
                cache.set_cursor(conn, &key, &latest)?;
            }
            progress.advance(1);
        }
        report.requests = self.request_count() - before;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}
