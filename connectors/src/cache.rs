//! The offline cache (`.deskhand/cache.db`): messages, events, Notion pages, sync cursors and
//! connection health. Readers never need the network.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::calendar::CalendarEvent;
use crate::connection::{ConnectionId, ConnectionInfo, ConnectionState};
use crate::error::{ConnectorError, Result};
use crate::gmail::MailMessage;
use crate::mail_query::MailQuery;
use crate::notion::{DataSource, NotionPage};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS connections(
  id TEXT PRIMARY KEY, provider TEXT NOT NULL, account TEXT NOT NULL, identity TEXT,
  scopes TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT 'ok', reason TEXT,
  connected_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_state(
  connection TEXT NOT NULL, resource TEXT NOT NULL, cursor TEXT, last_sync_at TEXT,
  PRIMARY KEY(connection, resource));
CREATE TABLE IF NOT EXISTS messages(
  connection TEXT NOT NULL, id TEXT NOT NULL, thread_id TEXT, labels TEXT NOT NULL,
  snippet TEXT, from_addr TEXT, to_addrs TEXT, cc_addrs TEXT, subject TEXT, date TEXT,
  internal_date INTEGER NOT NULL, body_text TEXT, attachments TEXT NOT NULL, history_id INTEGER,
  PRIMARY KEY(connection, id));
CREATE INDEX IF NOT EXISTS messages_by_date ON messages(connection, internal_date DESC);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
  subject, from_addr, to_addrs, body_text, content='messages', content_rowid='rowid');
CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, subject, from_addr, to_addrs, body_text)
  VALUES (new.rowid, new.subject, new.from_addr, new.to_addrs || ' ' || new.cc_addrs, new.body_text);
END;
CREATE TRIGGER IF NOT EXISTS messages_ad AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, subject, from_addr, to_addrs, body_text)
  VALUES ('delete', old.rowid, old.subject, old.from_addr, old.to_addrs || ' ' || old.cc_addrs, old.body_text);
END;
CREATE TRIGGER IF NOT EXISTS messages_au AFTER UPDATE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, subject, from_addr, to_addrs, body_text)
  VALUES ('delete', old.rowid, old.subject, old.from_addr, old.to_addrs || ' ' || old.cc_addrs, old.body_text);
  INSERT INTO messages_fts(rowid, subject, from_addr, to_addrs, body_text)
  VALUES (new.rowid, new.subject, new.from_addr, new.to_addrs || ' ' || new.cc_addrs, new.body_text);
END;
CREATE TABLE IF NOT EXISTS events(
  connection TEXT NOT NULL, calendar_id TEXT NOT NULL, id TEXT NOT NULL, status TEXT,
  summary TEXT, description TEXT, location TEXT, start TEXT, end TEXT, all_day INTEGER,
  time_zone TEXT, start_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL, updated TEXT,
  html_link TEXT, recurring_event_id TEXT, attendees TEXT,
  PRIMARY KEY(connection, calendar_id, id));
CREATE INDEX IF NOT EXISTS events_by_start ON events(connection, start_ts);
CREATE TABLE IF NOT EXISTS notion_data_sources(
  connection TEXT NOT NULL, id TEXT NOT NULL, title TEXT, PRIMARY KEY(connection, id));
CREATE TABLE IF NOT EXISTS notion_pages(
  connection TEXT NOT NULL, id TEXT NOT NULL, data_source_id TEXT NOT NULL, title TEXT,
  url TEXT, properties TEXT NOT NULL, created_time TEXT, last_edited_time TEXT,
  PRIMARY KEY(connection, id));
CREATE INDEX IF NOT EXISTS pages_by_source ON notion_pages(connection, data_source_id);
"#;

/// The cache database.
pub struct Cache {
    db: Mutex<Connection>,
    path: PathBuf,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Cache {
    /// Opens (creating if needed) the cache at `path`.
    pub fn open(path: &Path) -> Result<Cache> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectorError::Config(format!("{}: {e}", dir.display())))?;
        }
        let err = |source| ConnectorError::Cache {
            path: path.display().to_string(),
            source,
        };
        let db = Connection::open(path).map_err(err)?;
        // The agent and a CLI command may use the cache at once.
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        db.execute_batch(SCHEMA).map_err(err)?;
        // Caches made before attendees were kept gain the column; their events refill on sync.
        let has_attendees = db
            .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'attendees'")
            .and_then(|mut st| st.exists([]))
            .map_err(err)?;
        if !has_attendees {
            db.execute_batch("ALTER TABLE events ADD COLUMN attendees TEXT")
                .map_err(err)?;
        }
        Ok(Cache {
            db: Mutex::new(db),
            path: path.to_path_buf(),
        })
    }

    /// Where the cache lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db).map_err(|source| ConnectorError::Cache {
            path: self.path.display().to_string(),
            source,
        })
    }

    // ---- connections -------------------------------------------------------------------------

    /// Records a (re)connected account as healthy.
    pub fn upsert_connection(
        &self,
        id: &ConnectionId,
        identity: Option<&str>,
        scopes: &[String],
    ) -> Result<()> {
        self.with(|db| {
            db.execute(
                "INSERT INTO connections(id, provider, account, identity, scopes, state, reason, connected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'ok', NULL, ?6)
                 ON CONFLICT(id) DO UPDATE SET identity = coalesce(excluded.identity, identity),
                   scopes = excluded.scopes, state = 'ok', reason = NULL, connected_at = excluded.connected_at",
                params![id.to_string(), id.provider.as_str(), id.account, identity, scopes.join(" "), now()],
            )
            .map(|_| ())
        })
    }

    /// Removes a connection and everything cached for it.
    pub fn forget_connection(&self, id: &ConnectionId) -> Result<()> {
        let key = id.to_string();
        self.with(|db| {
            let tx = db.transaction()?;
            for t in [
                "connections WHERE id",
                "sync_state WHERE connection",
                "messages WHERE connection",
                "events WHERE connection",
                "notion_pages WHERE connection",
                "notion_data_sources WHERE connection",
            ] {
                tx.execute(&format!("DELETE FROM {t} = ?1"), [&key])?;
            }
            tx.commit()
        })
    }

    /// Sets a connection's health and the reason shown to the person.
    pub fn set_state(
        &self,
        id: &ConnectionId,
        state: ConnectionState,
        reason: Option<&str>,
    ) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE connections SET state = ?2, reason = ?3 WHERE id = ?1",
                params![id.to_string(), state.as_str(), reason],
            )
            .map(|_| ())
        })
    }

    /// One connection, if known.
    pub fn connection(&self, id: &ConnectionId) -> Result<Option<ConnectionInfo>> {
        Ok(self
            .connections()?
            .into_iter()
            .find(|c| c.id == id.to_string()))
    }

    /// Every known connection with its last successful sync.
    pub fn connections(&self) -> Result<Vec<ConnectionInfo>> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT c.id, c.provider, c.account, c.identity, c.scopes, c.state, c.reason, c.connected_at,
                        (SELECT max(last_sync_at) FROM sync_state s WHERE s.connection = c.id)
                 FROM connections c ORDER BY c.id",
            )?;
            let rows = st.query_map([], |r| {
                let provider: String = r.get(1)?;
                let scopes: String = r.get(4)?;
                let state: String = r.get(5)?;
                Ok(ConnectionInfo {
                    id: r.get(0)?,
                    provider: provider.parse().unwrap_or(crate::connection::Provider::Google),
                    account: r.get(2)?,
                    identity: r.get(3)?,
                    scopes: scopes.split_whitespace().map(str::to_string).collect(),
                    state: ConnectionState::parse(&state),
                    reason: r.get(6)?,
                    connected_at: r.get(7)?,
                    last_sync_at: r.get(8)?,
                })
            })?;
            rows.collect()
        })
    }

    // ---- cursors -----------------------------------------------------------------------------

    /// The stored sync cursor of `resource` ("gmail", "calendar:primary", "notion:<id>").
    pub fn cursor(&self, conn: &str, resource: &str) -> Result<Option<String>> {
        self.with(|db| {
            db.query_row(
                "SELECT cursor FROM sync_state WHERE connection = ?1 AND resource = ?2",
                params![conn, resource],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
    }

    /// Stores a cursor and marks the resource synced now.
    pub fn set_cursor(&self, conn: &str, resource: &str, cursor: &str) -> Result<()> {
        self.with(|db| {
            db.execute(
                "INSERT INTO sync_state(connection, resource, cursor, last_sync_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(connection, resource) DO UPDATE SET cursor = excluded.cursor, last_sync_at = excluded.last_sync_at",
                params![conn, resource, cursor, now()],
            )
            .map(|_| ())
        })
    }

    /// Forgets a cursor (the next sync is full) but records the sync time.
    pub fn clear_cursor(&self, conn: &str, resource: &str) -> Result<()> {
        self.with(|db| {
            db.execute(
                "INSERT INTO sync_state(connection, resource, cursor, last_sync_at) VALUES (?1, ?2, NULL, ?3)
                 ON CONFLICT(connection, resource) DO UPDATE SET cursor = NULL, last_sync_at = excluded.last_sync_at",
                params![conn, resource, now()],
            )
            .map(|_| ())
        })
    }

    /// When resources whose name starts with `prefix` were last synced (oldest of them), if ever.
    pub fn last_sync(&self, prefix: &str) -> Result<Option<String>> {
        self.with(|db| {
            db.query_row(
                "SELECT min(last_sync_at) FROM sync_state WHERE resource LIKE ?1 || '%'",
                [prefix],
                |r| r.get(0),
            )
        })
    }

    // ---- mail --------------------------------------------------------------------------------

    /// Ids of every cached message of a connection.
    pub fn message_ids(&self, conn: &str) -> Result<HashSet<String>> {
        self.with(|db| {
            let mut st = db.prepare("SELECT id FROM messages WHERE connection = ?1")?;
            let ids = st.query_map([conn], |r| r.get(0))?.collect();
            ids
        })
    }

    /// Inserts or replaces messages in one transaction.
    pub fn upsert_messages(&self, conn: &str, msgs: &[MailMessage]) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO messages(connection, id, thread_id, labels, snippet, from_addr, to_addrs, cc_addrs,
                       subject, date, internal_date, body_text, attachments, history_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT(connection, id) DO UPDATE SET thread_id = excluded.thread_id, labels = excluded.labels,
                       snippet = excluded.snippet, from_addr = excluded.from_addr, to_addrs = excluded.to_addrs,
                       cc_addrs = excluded.cc_addrs, subject = excluded.subject, date = excluded.date,
                       internal_date = excluded.internal_date, body_text = excluded.body_text,
                       attachments = excluded.attachments, history_id = excluded.history_id",
                )?;
                for m in msgs {
                    st.execute(params![
                        conn,
                        m.id,
                        m.thread_id,
                        label_field(&m.labels),
                        m.snippet,
                        m.from,
                        m.to.join(", "),
                        m.cc.join(", "),
                        m.subject,
                        m.date,
                        m.internal_date_ms,
                        m.body_text,
                        serde_json::to_string(&m.attachments).unwrap_or_default(),
                        m.history_id as i64,
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// Replaces one message's labels.
    pub fn set_labels(&self, conn: &str, id: &str, labels: &[String]) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE messages SET labels = ?3 WHERE connection = ?1 AND id = ?2",
                params![conn, id, label_field(labels)],
            )
            .map(|_| ())
        })
    }

    /// Removes messages.
    pub fn delete_messages(&self, conn: &str, ids: &[String]) -> Result<()> {
        self.delete_where("messages", conn, ids)
    }

    /// Removes every message of a connection (before a full resync).
    pub fn clear_messages(&self, conn: &str) -> Result<()> {
        self.with(|db| {
            db.execute("DELETE FROM messages WHERE connection = ?1", [conn])
                .map(|_| ())
        })
    }

    fn delete_where(&self, table: &str, conn: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut st = tx.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE connection = ?1 AND id = ?2"
                ))?;
                for id in ids {
                    st.execute(params![conn, id])?;
                }
            }
            tx.commit()
        })
    }

    /// Messages matching a Gmail-style query, newest first. `conn` narrows to one connection.
    pub fn search_mail(
        &self,
        conn: Option<&str>,
        q: &MailQuery,
        limit: usize,
    ) -> Result<Vec<MailMessage>> {
        let mut sql = String::from(
            "SELECT m.id, m.thread_id, m.labels, m.snippet, m.from_addr, m.to_addrs, m.cc_addrs, m.subject, m.date,
                    m.internal_date, m.body_text, m.attachments, m.history_id FROM messages m WHERE 1 = 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(c) = conn {
            push(&mut sql, " AND m.connection = ?", c.to_string().into());
        }
        // Literal text: % and _ in a search are not wildcards.
        let lit = |v: &str| -> rusqlite::types::Value {
            v.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
                .into()
        };
        for f in &q.from {
            push(
                &mut sql,
                " AND lower(m.from_addr) LIKE '%' || ? || '%' ESCAPE '\\'",
                lit(f),
            );
        }
        for t in &q.to {
            push(
                &mut sql,
                " AND lower(m.to_addrs || ' ' || m.cc_addrs) LIKE '%' || ? || '%' ESCAPE '\\'",
                lit(t),
            );
        }
        for s in &q.subject {
            push(
                &mut sql,
                " AND lower(m.subject) LIKE '%' || ? || '%' ESCAPE '\\'",
                lit(s),
            );
        }
        for l in &q.labels {
            push(
                &mut sql,
                " AND m.labels LIKE '% ' || ? || ' %' ESCAPE '\\'",
                lit(l),
            );
        }
        for l in &q.not_labels {
            push(
                &mut sql,
                " AND m.labels NOT LIKE '% ' || ? || ' %' ESCAPE '\\'",
                lit(l),
            );
        }
        if let Some(a) = q.after_ms {
            push(&mut sql, " AND m.internal_date >= ?", a.into());
        }
        if let Some(b) = q.before_ms {
            push(&mut sql, " AND m.internal_date < ?", b.into());
        }
        if q.has_attachment {
            sql.push_str(" AND m.attachments != '[]'");
        }
        if !q.words.is_empty() {
            // Each word or phrase quoted for FTS5, so punctuation in them is literal text.
            let fts = q
                .words
                .iter()
                .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" ");
            push(
                &mut sql,
                " AND m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)",
                fts.into(),
            );
        }
        sql.push_str(&format!(" ORDER BY m.internal_date DESC LIMIT {limit}"));
        self.with(|db| {
            let mut st = db.prepare(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                let labels: String = r.get(2)?;
                let to: String = r.get(5)?;
                let cc: String = r.get(6)?;
                let att: String = r.get(11)?;
                let split = |s: &str| {
                    s.split(", ")
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                };
                Ok(MailMessage {
                    id: r.get(0)?,
                    thread_id: r.get(1)?,
                    labels: labels.split_whitespace().map(str::to_string).collect(),
                    snippet: r.get(3)?,
                    from: r.get(4)?,
                    to: split(&to),
                    cc: split(&cc),
                    subject: r.get(7)?,
                    date: r.get(8)?,
                    internal_date_ms: r.get(9)?,
                    body_text: r.get(10)?,
                    attachments: serde_json::from_str(&att).unwrap_or_default(),
                    history_id: r.get::<_, i64>(12)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    // ---- calendar ----------------------------------------------------------------------------

    /// Inserts or replaces events.
    pub fn upsert_events(&self, conn: &str, events: &[CalendarEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR REPLACE INTO events(connection, calendar_id, id, status, summary, description, location,
                       start, end, all_day, time_zone, start_ts, end_ts, updated, html_link, recurring_event_id, attendees)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                )?;
                for e in events {
                    st.execute(params![
                        conn, e.calendar_id, e.id, e.status, e.summary, e.description, e.location, e.start, e.end,
                        e.all_day, e.time_zone, e.start_ts, e.end_ts, e.updated, e.html_link, e.recurring_event_id,
                        serde_json::to_string(&e.attendees).unwrap_or_default()
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// Removes events of one calendar.
    pub fn delete_events(&self, conn: &str, calendar_id: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "DELETE FROM events WHERE connection = ?1 AND calendar_id = ?2 AND id = ?3",
                )?;
                for id in ids {
                    st.execute(params![conn, calendar_id, id])?;
                }
            }
            tx.commit()
        })
    }

    /// Removes every event of one calendar (after a 410).
    pub fn clear_events(&self, conn: &str, calendar_id: &str) -> Result<()> {
        self.with(|db| {
            db.execute(
                "DELETE FROM events WHERE connection = ?1 AND calendar_id = ?2",
                [conn, calendar_id],
            )
            .map(|_| ())
        })
    }

    /// Ids of one calendar's cached events.
    pub fn event_ids(&self, conn: &str, calendar_id: &str) -> Result<HashSet<String>> {
        self.with(|db| {
            let mut st =
                db.prepare("SELECT id FROM events WHERE connection = ?1 AND calendar_id = ?2")?;
            let ids = st.query_map([conn, calendar_id], |r| r.get(0))?.collect();
            ids
        })
    }

    /// Events overlapping `[from_ts, to_ts)` (seconds), in start order.
    pub fn agenda(
        &self,
        conn: Option<&str>,
        from_ts: i64,
        to_ts: i64,
    ) -> Result<Vec<CalendarEvent>> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT calendar_id, id, status, summary, description, location, start, end, all_day, time_zone,
                        start_ts, end_ts, updated, html_link, recurring_event_id, attendees
                 FROM events WHERE (?1 IS NULL OR connection = ?1) AND start_ts < ?3 AND end_ts > ?2
                 ORDER BY start_ts, all_day DESC, summary",
            )?;
            let rows = st.query_map(params![conn, from_ts, to_ts], |r| {
                Ok(CalendarEvent {
                    calendar_id: r.get(0)?,
                    id: r.get(1)?,
                    status: r.get(2)?,
                    summary: r.get(3)?,
                    description: r.get(4)?,
                    location: r.get(5)?,
                    start: r.get(6)?,
                    end: r.get(7)?,
                    all_day: r.get(8)?,
                    time_zone: r.get(9)?,
                    start_ts: r.get(10)?,
                    end_ts: r.get(11)?,
                    updated: r.get(12)?,
                    html_link: r.get(13)?,
                    recurring_event_id: r.get(14)?,
                    attendees: r
                        .get::<_, Option<String>>(15)?
                        .and_then(|a| serde_json::from_str(&a).ok())
                        .unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    // ---- notion ------------------------------------------------------------------------------

    /// Replaces the list of shared data sources.
    pub fn set_data_sources(&self, conn: &str, sources: &[DataSource]) -> Result<()> {
        self.with(|db| {
            let tx = db.transaction()?;
            tx.execute(
                "DELETE FROM notion_data_sources WHERE connection = ?1",
                [conn],
            )?;
            for s in sources {
                tx.execute(
                    "INSERT INTO notion_data_sources(connection, id, title) VALUES (?1, ?2, ?3)",
                    params![conn, s.id, s.title],
                )?;
            }
            tx.commit()
        })
    }

    /// Cached data sources.
    pub fn data_sources(&self, conn: Option<&str>) -> Result<Vec<DataSource>> {
        self.with(|db| {
            let mut st = db.prepare("SELECT id, title FROM notion_data_sources WHERE (?1 IS NULL OR connection = ?1) ORDER BY title")?;
            let rows = st.query_map([conn], |r| Ok(DataSource { id: r.get(0)?, title: r.get(1)? }))?;
            rows.collect()
        })
    }

    /// Inserts or replaces pages.
    pub fn upsert_pages(&self, conn: &str, pages: &[NotionPage]) -> Result<()> {
        if pages.is_empty() {
            return Ok(());
        }
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR REPLACE INTO notion_pages(connection, id, data_source_id, title, url, properties, created_time, last_edited_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for p in pages {
                    st.execute(params![
                        conn, p.id, p.data_source_id, p.title, p.url,
                        serde_json::to_string(&p.properties).unwrap_or_default(), p.created_time, p.last_edited_time
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// Removes pages.
    pub fn delete_pages(&self, conn: &str, ids: &[String]) -> Result<()> {
        self.delete_where("notion_pages", conn, ids)
    }

    /// Cached pages of a data source, by most recently edited.
    pub fn pages(&self, conn: Option<&str>, data_source_id: &str) -> Result<Vec<NotionPage>> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT id, data_source_id, title, url, properties, created_time, last_edited_time FROM notion_pages
                 WHERE (?1 IS NULL OR connection = ?1) AND data_source_id = ?2 ORDER BY last_edited_time DESC, title",
            )?;
            let rows = st.query_map(params![conn, data_source_id], |r| {
                let props: String = r.get(4)?;
                Ok(NotionPage {
                    id: r.get(0)?,
                    data_source_id: r.get(1)?,
                    title: r.get(2)?,
                    url: r.get(3)?,
                    properties: serde_json::from_str(&props).unwrap_or_default(),
                    created_time: r.get(5)?,
                    last_edited_time: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }
}

/// Labels stored space-padded so `LIKE '% INBOX %'` matches whole labels only.
fn label_field(labels: &[String]) -> String {
    format!(" {} ", labels.join(" "))
}
