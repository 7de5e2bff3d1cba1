//! Gmail: list, get (metadata / full / raw), history, and incremental sync into the cache.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cache::Cache;
use crate::error::{ConnectorError, Result};
use crate::http::ApiClient;
use crate::sync::{Progress, SyncReport};

/// Google's base64url, accepting bodies with or without padding.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Largest page `messages.list` and `history.list` allow.
pub const MAX_PAGE: u32 = 500;

/// `messages.get` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Ids and labels only.
    Minimal,
    /// Headers, no bodies.
    Metadata,
    /// Parsed MIME tree with bodies.
    Full,
    /// The RFC 822 message, base64url.
    Raw,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Minimal => "minimal",
            Format::Metadata => "metadata",
            Format::Full => "full",
            Format::Raw => "raw",
        }
    }
}

/// A Gmail `Message` resource as the API sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageResource {
    /// Message id.
    pub id: String,
    /// Thread id.
    #[serde(default)]
    pub thread_id: String,
    /// Label ids (INBOX, UNREAD, Label_12, ...).
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// Short preview.
    #[serde(default)]
    pub snippet: String,
    /// Last history record touching this message (decimal string).
    pub history_id: Option<String>,
    /// Receipt time, ms since the epoch (decimal string).
    pub internal_date: Option<String>,
    /// base64url RFC 822 text (format=raw).
    pub raw: Option<String>,
    /// MIME tree (format=full / metadata).
    pub payload: Option<MessagePart>,
}

/// One node of a message's MIME tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePart {
    /// MIME type.
    #[serde(default)]
    pub mime_type: String,
    /// Attachment file name, empty if none.
    #[serde(default)]
    pub filename: String,
    /// Headers of this part.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Body (data inline for small text parts).
    pub body: Option<PartBody>,
    /// Child parts.
    #[serde(default)]
    pub parts: Vec<MessagePart>,
}

/// A header line.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value (already decoded by Gmail).
    pub value: String,
}

/// Body of a part.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartBody {
    /// base64url data.
    pub data: Option<String>,
    /// Set for attachments fetched separately.
    pub attachment_id: Option<String>,
}

/// A message as Deskhand keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MailMessage {
    /// Gmail message id.
    pub id: String,
    /// Gmail thread id.
    pub thread_id: String,
    /// Label ids.
    pub labels: Vec<String>,
    /// Gmail's preview.
    pub snippet: String,
    /// `Name <address>` of the sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    pub cc: Vec<String>,
    /// Decoded subject.
    pub subject: String,
    /// Receipt time, RFC 3339 UTC.
    pub date: String,
    /// Receipt time, ms since the epoch.
    pub internal_date_ms: i64,
    /// Plain-text body (from text/plain, or HTML converted by the MIME parser).
    pub body_text: String,
    /// Attachment file names.
    pub attachments: Vec<String>,
    /// Last history id touching it.
    pub history_id: u64,
}

impl MailMessage {
    /// Builds a message from a `raw` or `full`/`metadata` resource.
    pub fn from_resource(r: &MessageResource) -> Result<MailMessage> {
        let internal_date_ms: i64 = r
            .internal_date
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let mut m = MailMessage {
            id: r.id.clone(),
            thread_id: r.thread_id.clone(),
            labels: r.label_ids.clone(),
            snippet: r.snippet.clone(),
            from: String::new(),
            to: Vec::new(),
            cc: Vec::new(),
            subject: String::new(),
            date: chrono::DateTime::from_timestamp_millis(internal_date_ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            internal_date_ms,
            body_text: String::new(),
            attachments: Vec::new(),
            history_id: r
                .history_id
                .as_deref()
                .and_then(|h| h.parse().ok())
                .unwrap_or(0),
        };
        if let Some(raw) = &r.raw {
            let bytes = B64URL
                .decode(raw.trim())
                .map_err(|e| protocol(&r.id, &format!("raw is not base64url: {e}")))?;
            fill_from_rfc822(&mut m, &bytes)
                .ok_or_else(|| protocol(&r.id, "raw is not an RFC 822 message"))?;
        } else if let Some(p) = &r.payload {
            fill_from_payload(&mut m, p);
        }
        Ok(m)
    }
}

fn protocol(id: &str, what: &str) -> ConnectorError {
    ConnectorError::Protocol {
        provider: "Gmail".into(),
        message: format!("message {id}: {what}"),
    }
}

fn fill_from_rfc822(m: &mut MailMessage, bytes: &[u8]) -> Option<()> {
    use mail_parser::MimeHeaders as _;
    let msg = mail_parser::MessageParser::default().parse(bytes)?;
    let fmt = |a: &mail_parser::Addr| match (&a.name, &a.address) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (None, Some(e)) => e.to_string(),
        (Some(n), None) => n.to_string(),
        (None, None) => String::new(),
    };
    let list = |a: Option<&mail_parser::Address>| -> Vec<String> {
        a.map(|a| a.iter().map(fmt).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    m.from = msg
        .from()
        .and_then(|a| a.first())
        .map(fmt)
        .unwrap_or_default();
    m.to = list(msg.to());
    m.cc = list(msg.cc());
    m.subject = msg.subject().unwrap_or_default().to_string();
    m.body_text = msg.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
    m.attachments = msg
        .attachments()
        .filter_map(|a| a.attachment_name().map(str::to_string))
        .collect();
    Some(())
}

fn fill_from_payload(m: &mut MailMessage, p: &MessagePart) {
    let split = |v: &str| -> Vec<String> {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for h in &p.headers {
        match h.name.to_ascii_lowercase().as_str() {
            "from" => m.from = h.value.clone(),
            "to" => m.to = split(&h.value),
            "cc" => m.cc = split(&h.value),
            "subject" => m.subject = h.value.clone(),
            _ => {}
        }
    }
    fn walk(p: &MessagePart, m: &mut MailMessage) {
        if !p.filename.is_empty() {
            m.attachments.push(p.filename.clone());
        } else if p.mime_type == "text/plain" && m.body_text.is_empty() {
            if let Some(d) = p.body.as_ref().and_then(|b| b.data.as_ref()) {
                if let Ok(bytes) = B64URL.decode(d.trim()) {
                    m.body_text = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
        }
        for c in &p.parts {
            walk(c, m);
        }
    }
    walk(p, m);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    email_address: String,
    history_id: String,
}

/// A draft Gmail saved.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Draft {
    /// The draft's id.
    pub id: String,
    /// Its message.
    pub message: SentMessage,
}

/// A draft id as one path segment (ids are URL-safe already; anything else is escaped).
fn urlencoding_path(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What `messages.send` answers: the sent message's id and thread.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// The message id.
    pub id: String,
    /// Its thread.
    pub thread_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    messages: Vec<IdRef>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdRef {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryPage {
    #[serde(default)]
    history: Vec<HistoryRecord>,
    next_page_token: Option<String>,
    history_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryRecord {
    #[serde(default)]
    messages_added: Vec<MessageChange>,
    #[serde(default)]
    messages_deleted: Vec<MessageChange>,
    #[serde(default)]
    labels_added: Vec<MessageChange>,
    #[serde(default)]
    labels_removed: Vec<MessageChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageChange {
    message: ChangedMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangedMessage {
    id: String,
    #[serde(default)]
    label_ids: Option<Vec<String>>,
}

/// A Gmail client for one account.
pub struct Gmail {
    api: Arc<ApiClient>,
    base: Url,
    concurrency: usize,
}

impl Gmail {
    /// `base` is the `users/me/` URL (ends with a slash); `concurrency` bounds parallel gets.
    pub fn new(api: Arc<ApiClient>, base: Url, concurrency: usize) -> Gmail {
        Gmail {
            api,
            base,
            concurrency: concurrency.max(1),
        }
    }

    /// Requests made through this client's connection so far.
    pub fn request_count(&self) -> u64 {
        self.api.request_count()
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("static Gmail path")
    }

    /// The account's address and current history id.
    pub async fn profile(&self) -> Result<(String, u64)> {
        let p: Profile = self.api.get(self.url("profile"), "profile").await?;
        Ok((p.email_address, p.history_id.parse().unwrap_or(0)))
    }

    /// Send a complete RFC 5322 message as the account (`messages.send`); Gmail files it under
    /// SENT. The connection needs the `gmail.send` scope. Never repeated after an answer that
    /// leaves open whether it went out (see [`ApiClient::send_once`]).
    pub async fn send(&self, rfc5322: &[u8]) -> Result<SentMessage> {
        let body = serde_json::json!({ "raw": B64URL.encode(rfc5322) });
        self.api
            .send_once(
                reqwest::Method::POST,
                self.url("messages/send"),
                Some(&body),
                "messages.send",
            )
            .await
    }

    /// Save a complete RFC 5322 message as a draft (`drafts.create`), in `thread` when it
    /// replies there; nothing is sent. Needs the `gmail.compose` (or broader) scope. Not
    /// repeated after an answer that leaves open whether it was made (a second draft).
    pub async fn create_draft(&self, rfc5322: &[u8], thread: Option<&str>) -> Result<Draft> {
        let mut message = serde_json::json!({ "raw": B64URL.encode(rfc5322) });
        if let Some(t) = thread {
            message["threadId"] = serde_json::Value::String(t.to_string());
        }
        self.api
            .send_once(
                reqwest::Method::POST,
                self.url("drafts"),
                Some(&serde_json::json!({ "message": message })),
                "drafts.create",
            )
            .await
    }

    /// Delete a draft for good (`drafts.delete`).
    pub async fn delete_draft(&self, id: &str) -> Result<()> {
        let url = self
            .base
            .join(&format!("drafts/{}", urlencoding_path(id)))
            .expect("draft path");
        self.api
            .send(reqwest::Method::DELETE, url, None, "drafts.delete")
            .await
    }

    /// One page of message ids matching `q`.
    pub async fn list(
        &self,
        q: Option<&str>,
        page_token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<String>, Option<String>)> {
        let mut url = self.url("messages");
        {
            let mut qp = url.query_pairs_mut();
            qp.append_pair("maxResults", &max.min(MAX_PAGE).to_string());
            if let Some(q) = q {
                qp.append_pair("q", q);
            }
            if let Some(t) = page_token {
                qp.append_pair("pageToken", t);
            }
        }
        let page: ListPage = self.api.get(url, "messages.list").await?;
        Ok((
            page.messages.into_iter().map(|m| m.id).collect(),
            page.next_page_token,
        ))
    }

    /// One message in the given format.
    pub async fn get(&self, id: &str, format: Format) -> Result<MessageResource> {
        let mut url = self.url(&format!("messages/{id}"));
        url.query_pairs_mut().append_pair("format", format.as_str());
        self.api.get(url, &format!("message {id}")).await
    }

    /// Fetches and parses messages with bounded parallelism, in batches handed to `sink`.
    async fn fetch_all(
        &self,
        ids: Vec<String>,
        progress: &dyn Progress,
        mut sink: impl FnMut(Vec<MailMessage>) -> Result<()>,
    ) -> Result<usize> {
        let mut stream = futures::stream::iter(ids.into_iter().map(|id| async move {
            match self.get(&id, Format::Raw).await {
                Ok(r) => MailMessage::from_resource(&r).map(Some),
                // Deleted between list and get: nothing to keep.
                Err(ConnectorError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .buffer_unordered(self.concurrency)
        .try_ready_chunks(250);
        let mut n = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.1)?;
            progress.advance(chunk.len() as u64);
            let batch: Vec<MailMessage> = chunk.into_iter().flatten().collect();
            n += batch.len();
            sink(batch)?;
        }
        Ok(n)
    }

    /// Brings the cache up to date: history since the stored cursor, or a full sync.
    pub async fn sync(
        &self,
        cache: &Cache,
        conn: &str,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let started = Instant::now();
        let before = self.request_count();
        let cursor = cache
            .cursor(conn, "gmail")?
            .and_then(|c| c.parse::<u64>().ok());
        let mut report = match cursor {
            Some(start) => match self.incremental(cache, conn, start, progress).await {
                Err(ConnectorError::CursorExpired { .. })
                | Err(ConnectorError::NotFound { .. }) => {
                    tracing::info!(conn, "Gmail history id expired; full resync");
                    cache.clear_messages(conn)?;
                    let mut r = self.full(cache, conn, progress).await?;
                    r.note = Some("history expired: full resync".into());
                    r
                }
                other => other?,
            },
            None => self.full(cache, conn, progress).await?,
        };
        report.requests = self.request_count() - before;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn full(&self, cache: &Cache, conn: &str, progress: &dyn Progress) -> Result<SyncReport> {
        // The history id is read first so changes made while listing are replayed next time.
        let (_, history_id) = self.profile().await?;
        progress.stage("listing messages", None);
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = self.list(None, token.as_deref(), MAX_PAGE).await?;
            ids.extend(page);
            progress.advance(0);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let listed: HashSet<String> = ids.iter().cloned().collect();
        let known = cache.message_ids(conn)?;
        let gone: Vec<String> = known.difference(&listed).cloned().collect();
        let missing: Vec<String> = ids.into_iter().filter(|id| !known.contains(id)).collect();
        progress.stage("fetching messages", Some(missing.len() as u64));
        let fetched = self
            .fetch_all(missing, progress, |batch| {
                cache.upsert_messages(conn, &batch)
            })
            .await?;
        cache.delete_messages(conn, &gone)?;
        cache.set_cursor(conn, "gmail", &history_id.to_string())?;
        Ok(SyncReport {
            full: true,
            fetched,
            deleted: gone.len(),
            ..SyncReport::default()
        })
    }

    async fn incremental(
        &self,
        cache: &Cache,
        conn: &str,
        start: u64,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        progress.stage("reading mail history", None);
        let mut added: BTreeSet<String> = BTreeSet::new();
        let mut deleted: HashSet<String> = HashSet::new();
        let mut labels: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut token: Option<String> = None;
        let latest;
        loop {
            let mut url = self.url("history");
            {
                let mut qp = url.query_pairs_mut();
                qp.append_pair("startHistoryId", &start.to_string());
                qp.append_pair("maxResults", &MAX_PAGE.to_string());
                if let Some(t) = &token {
                    qp.append_pair("pageToken", t);
                }
            }
            let page: HistoryPage = self.api.get(url, "history").await.map_err(|e| match e {
                ConnectorError::NotFound { .. } => ConnectorError::CursorExpired {
                    provider: "Gmail".into(),
                },
                e => e,
            })?;
            for rec in page.history {
                for c in rec.messages_added {
                    deleted.remove(&c.message.id);
                    added.insert(c.message.id);
                }
                for c in rec.messages_deleted {
                    added.remove(&c.message.id);
                    labels.remove(&c.message.id);
                    deleted.insert(c.message.id);
                }
                for c in rec.labels_added.into_iter().chain(rec.labels_removed) {
                    if let Some(l) = c.message.label_ids {
                        labels.insert(c.message.id, l);
                    }
                }
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => {
                    latest = page.history_id;
                    break;
                }
            }
        }
        let known = cache.message_ids(conn)?;
        let mut report = SyncReport::default();
        let mut fetch: Vec<String> = added.iter().cloned().collect();
        for (id, l) in labels {
            if added.contains(&id) {
                continue; // the fetch brings current labels
            }
            if l.iter().any(|l| l == "SPAM" || l == "TRASH") {
                deleted.insert(id);
            } else if known.contains(&id) {
                cache.set_labels(conn, &id, &l)?;
                report.updated += 1;
            } else {
                fetch.push(id); // e.g. moved out of spam: not cached yet
            }
        }
        progress.stage("fetching new messages", Some(fetch.len() as u64));
        report.fetched = self
            .fetch_all(fetch, progress, |batch| {
                // A message that arrived and went to spam is not kept, as in a full sync.
                let keep: Vec<MailMessage> = batch
                    .into_iter()
                    .filter(|m| !m.labels.iter().any(|l| l == "SPAM" || l == "TRASH"))
                    .collect();
                cache.upsert_messages(conn, &keep)
            })
            .await?;
        let deleted: Vec<String> = deleted.into_iter().collect();
        cache.delete_messages(conn, &deleted)?;
        report.deleted = deleted.len();
        cache.set_cursor(conn, "gmail", &latest)?;
        Ok(report)
    }
}
