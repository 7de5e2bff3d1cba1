//! Google Calendar through `google-calendar3`: windowed full sync of single events, then
//! incremental sync with `syncToken`; 410 Gone starts over.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use google_calendar3::api::{Event, EventDateTime, Events};

/// The Calendar API's types (events to create and patch).
pub use google_calendar3::api;
use google_calendar3::common::{self, Delegate, Retry};
use google_calendar3::CalendarHub;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::connection::Provider;
use crate::error::{ConnectorError, Result};
use crate::retry::{classify, retry_after_secs, with_retries, Attempt, RetryPolicy};
use crate::sync::{Progress, SyncReport};
use crate::token::TokenSource;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Largest page `events.list` allows.
pub const MAX_PAGE: i32 = 2500;

/// An event as Deskhand keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalendarEvent {
    /// Calendar id ("primary" or an address).
    pub calendar_id: String,
    /// Event id (instances of a series have their own).
    pub id: String,
    /// confirmed / tentative.
    pub status: String,
    /// Title.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Location.
    pub location: String,
    /// RFC 3339 with the event's own offset, or `YYYY-MM-DD` for all-day events.
    pub start: String,
    /// Like `start`; exclusive for all-day events, as Google sends it.
    pub end: String,
    /// True for date-only events.
    pub all_day: bool,
    /// IANA time zone the times are shown in.
    pub time_zone: String,
    /// Start as seconds since the epoch (all-day: midnight in `time_zone`), for ordering.
    pub start_ts: i64,
    /// End as seconds since the epoch.
    pub end_ts: i64,
    /// Last change, RFC 3339.
    pub updated: String,
    /// Link to the event in Google Calendar.
    pub html_link: String,
    /// Series id when this is an instance of a recurring event.
    pub recurring_event_id: Option<String>,
    /// Addresses of the other people in it (attendees and organizer, not the calendar's owner),
    /// lowercase.
    #[serde(default)]
    pub attendees: Vec<String>,
}

fn when(dt: Option<&EventDateTime>, default_tz: Tz) -> Option<(String, i64, bool, Tz)> {
    let dt = dt?;
    let tz: Tz = dt
        .time_zone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(default_tz);
    if let Some(t) = dt.date_time {
        // The crate hands us UTC; show it in the event's own zone (Google keeps it in timeZone).
        let local = t.with_timezone(&tz);
        return Some((local.to_rfc3339(), t.timestamp(), false, tz));
    }
    let d: NaiveDate = dt.date?;
    let midnight = tz
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.timestamp())
        .unwrap_or_else(|| {
            d.and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .timestamp()
        });
    Some((d.format("%Y-%m-%d").to_string(), midnight, true, tz))
}

impl CalendarEvent {
    /// Converts an API event; `None` for cancelled or malformed ones.
    pub fn from_api(calendar_id: &str, e: &Event, calendar_tz: Tz) -> Option<CalendarEvent> {
        let status = e.status.clone().unwrap_or_else(|| "confirmed".into());
        if status == "cancelled" {
            return None;
        }
        let (start, start_ts, all_day, tz) = when(e.start.as_ref(), calendar_tz)?;
        let (end, end_ts, _, _) =
            when(e.end.as_ref(), tz).unwrap_or((start.clone(), start_ts, all_day, tz));
        Some(CalendarEvent {
            calendar_id: calendar_id.to_string(),
            id: e.id.clone()?,
            status,
            summary: e.summary.clone().unwrap_or_else(|| "(no title)".into()),
            description: e.description.clone().unwrap_or_default(),
            location: e.location.clone().unwrap_or_default(),
            start,
            end,
            all_day,
            time_zone: tz.name().to_string(),
            start_ts,
            end_ts,
            updated: e.updated.map(|u| u.to_rfc3339()).unwrap_or_default(),
            html_link: e.html_link.clone().unwrap_or_default(),
            recurring_event_id: e.recurring_event_id.clone(),
            attendees: people(e),
        })
    }
}

/// Everyone in the event but the calendar's owner, lowercase, without duplicates.
fn people(e: &Event) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let attendees = e
        .attendees
        .iter()
        .flatten()
        .filter(|a| a.self_ != Some(true));
    let organizer = e
        .organizer
        .iter()
        .filter(|o| o.self_ != Some(true))
        .filter_map(|o| o.email.clone());
    for email in attendees.filter_map(|a| a.email.clone()).chain(organizer) {
        let email = email.to_ascii_lowercase();
        if !out.contains(&email) {
            out.push(email);
        }
    }
    out
}

/// Records the status and `Retry-After` of a failed call (the crate's error drops them).
#[derive(Default)]
struct Capture {
    status: u16,
    retry_after: Option<Duration>,
}

impl Delegate for Capture {
    fn http_failure(&mut self, resp: &common::Response, _: Option<&serde_json::Value>) -> Retry {
        self.status = resp.status().as_u16();
        self.retry_after = retry_after_secs(
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        Retry::Abort // our own policy decides
    }
}

/// One API call's result as the retry loop takes it: transient failures retried, the rest
/// classified by status (401 refreshes the token, 429 and 5xx wait, others fail).
fn outcome<T>(out: std::result::Result<T, common::Error>, dlg: &Capture, what: &str) -> Attempt<T> {
    match out {
        Ok(v) => Attempt::Done(v),
        Err(common::Error::BadRequest(v)) => classify(
            Provider::Google,
            dlg.status,
            dlg.retry_after,
            Some(&v),
            what,
        ),
        Err(common::Error::Failure(resp)) => {
            let ra = retry_after_secs(
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
            );
            classify(Provider::Google, resp.status().as_u16(), ra, None, what)
        }
        Err(common::Error::HttpError(e)) => Attempt::Retry {
            retry_after: None,
            quota: false,
            message: e.to_string(),
        },
        Err(common::Error::Io(e)) => Attempt::Retry {
            retry_after: None,
            quota: false,
            message: e.to_string(),
        },
        Err(e) => Attempt::Fail(ConnectorError::Protocol {
            provider: "Google Calendar".into(),
            message: e.to_string(),
        }),
    }
}

/// How far back and ahead a full sync looks.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Days before now.
    pub past_days: i64,
    /// Days after now.
    pub future_days: i64,
}

/// A Calendar client for one Google account.
pub struct Calendar {
    client: common::Client<Connector>,
    root_url: String,
    base_url: String,
    tokens: Arc<TokenSource>,
    policy: RetryPolicy,
    window: Window,
    requests: AtomicU64,
}

enum Listing<'a> {
    Window {
        min: DateTime<Utc>,
        max: DateTime<Utc>,
    },
    Changes(&'a str),
}

impl Calendar {
    /// `root_url` is `https://www.googleapis.com/` in production (with a trailing slash).
    pub fn new(
        root_url: &str,
        tokens: Arc<TokenSource>,
        policy: RetryPolicy,
        window: Window,
    ) -> Result<Calendar> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ConnectorError::Config(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_all_versions()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        let root = if root_url.ends_with('/') {
            root_url.to_string()
        } else {
            format!("{root_url}/")
        };
        Ok(Calendar {
            client,
            base_url: format!("{root}calendar/v3/"),
            root_url: root,
            tokens,
            policy,
            window,
            requests: AtomicU64::new(0),
        })
    }

    /// Requests made so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn list_page(
        &self,
        calendar_id: &str,
        how: &Listing<'_>,
        page: Option<&str>,
    ) -> Result<Events> {
        with_retries(
            &self.policy,
            Provider::Google,
            &self.tokens,
            |token| async move {
                let hub = self.hub(token);
                let mut dlg = Capture::default();
                let mut call = hub
                    .events()
                    .list(calendar_id)
                    .max_results(MAX_PAGE)
                    .single_events(true);
                call = match how {
                    Listing::Window { min, max } => {
                        call.time_min(*min).time_max(*max).order_by("startTime")
                    }
                    // Google refuses timeMin/timeMax/orderBy together with a sync token.
                    Listing::Changes(token) => call.sync_token(token),
                };
                if let Some(p) = page {
                    call = call.page_token(p);
                }
                self.requests.fetch_add(1, Ordering::Relaxed);
                let out = call.delegate(&mut dlg).doit().await;
                outcome(out.map(|(_, events)| events), &dlg, "calendar events")
            },
        )
        .await
    }

    fn hub(&self, token: String) -> CalendarHub<Connector> {
        let mut hub = CalendarHub::new(self.client.clone(), token);
        hub.root_url(self.root_url.clone());
        hub.base_url(self.base_url.clone());
        hub
    }

    /// One event as the API has it now.
    pub async fn event(&self, calendar_id: &str, id: &str) -> Result<Event> {
        with_retries(
            &self.policy,
            Provider::Google,
            &self.tokens,
            |token| async move {
                let mut dlg = Capture::default();
                self.requests.fetch_add(1, Ordering::Relaxed);
                let out = self
                    .hub(token)
                    .events()
                    .get(calendar_id, id)
                    .delegate(&mut dlg)
                    .doit()
                    .await;
                outcome(out.map(|(_, e)| e), &dlg, "calendar event")
            },
        )
        .await
    }

    /// Create `event` (`events.insert`). Its `id` should be set by the caller: an insert whose
    /// answer was lost is not repeated blindly, the event is looked up by that id instead.
    pub async fn insert(&self, calendar_id: &str, event: Event) -> Result<Event> {
        let made = with_retries(&self.policy, Provider::Google, &self.tokens, |token| {
            let event = event.clone();
            async move {
                let mut dlg = Capture::default();
                self.requests.fetch_add(1, Ordering::Relaxed);
                let out = self
                    .hub(token)
                    .events()
                    .insert(event, calendar_id)
                    .send_updates("all")
                    .delegate(&mut dlg)
                    .doit()
                    .await;
                outcome(out.map(|(_, e)| e), &dlg, "calendar event insert")
            }
        })
        .await;
        match (made, event.id.as_deref()) {
            (Ok(e), _) => Ok(e),
            // Made by an earlier attempt (a 409 for the id, or an answer that was lost)?
            (Err(first), Some(id)) => self.event(calendar_id, id).await.map_err(|_| first),
            (Err(e), None) => Err(e),
        }
    }

    /// Change the fields `patch` sets (`events.patch`); attendees are told.
    pub async fn patch(&self, calendar_id: &str, id: &str, patch: Event) -> Result<Event> {
        with_retries(&self.policy, Provider::Google, &self.tokens, |token| {
            let patch = patch.clone();
            async move {
                let mut dlg = Capture::default();
                self.requests.fetch_add(1, Ordering::Relaxed);
                let out = self
                    .hub(token)
                    .events()
                    .patch(patch, calendar_id, id)
                    .send_updates("all")
                    .delegate(&mut dlg)
                    .doit()
                    .await;
                outcome(out.map(|(_, e)| e), &dlg, "calendar event patch")
            }
        })
        .await
    }

    /// Delete an event (`events.delete`); attendees are told.
    pub async fn delete(&self, calendar_id: &str, id: &str) -> Result<()> {
        with_retries(
            &self.policy,
            Provider::Google,
            &self.tokens,
            |token| async move {
                let mut dlg = Capture::default();
                self.requests.fetch_add(1, Ordering::Relaxed);
                let out = self
                    .hub(token)
                    .events()
                    .delete(calendar_id, id)
                    .send_updates("all")
                    .delegate(&mut dlg)
                    .doit()
                    .await;
                outcome(out.map(|_| ()), &dlg, "calendar event delete")
            },
        )
        .await
    }

    /// Events in the window, straight from the API (no cache).
    pub async fn events(
        &self,
        calendar_id: &str,
        min: DateTime<Utc>,
        max: DateTime<Utc>,
    ) -> Result<Vec<CalendarEvent>> {
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let ev = self
                .list_page(calendar_id, &Listing::Window { min, max }, page.as_deref())
                .await?;
            let tz = calendar_tz(&ev);
            out.extend(
                ev.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| CalendarEvent::from_api(calendar_id, e, tz)),
            );
            match ev.next_page_token {
                Some(p) => page = Some(p),
                None => return Ok(out),
            }
        }
    }

    /// Brings one calendar's cache up to date.
    pub async fn sync(
        &self,
        cache: &Cache,
        conn: &str,
        calendar_id: &str,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let started = Instant::now();
        let before = self.request_count();
        let key = format!("calendar:{calendar_id}");
        let mut report = match cache.cursor(conn, &key)? {
            Some(token) => match self
                .pull(
                    cache,
                    conn,
                    calendar_id,
                    &Listing::Changes(&token),
                    progress,
                )
                .await
            {
                Err(ConnectorError::CursorExpired { .. }) => {
                    tracing::info!(conn, calendar_id, "sync token expired (410); full resync");
                    cache.clear_events(conn, calendar_id)?;
                    let mut r = self.full(cache, conn, calendar_id, progress).await?;
                    r.note = Some("sync token expired: full resync".into());
                    r
                }
                other => other?,
            },
            None => self.full(cache, conn, calendar_id, progress).await?,
        };
        report.requests = self.request_count() - before;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn full(
        &self,
        cache: &Cache,
        conn: &str,
        calendar_id: &str,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let now = Utc::now();
        let how = Listing::Window {
            min: now - chrono::Duration::days(self.window.past_days),
            max: now + chrono::Duration::days(self.window.future_days),
        };
        self.pull(cache, conn, calendar_id, &how, progress).await
    }

    async fn pull(
        &self,
        cache: &Cache,
        conn: &str,
        calendar_id: &str,
        how: &Listing<'_>,
        progress: &dyn Progress,
    ) -> Result<SyncReport> {
        let full = matches!(how, Listing::Window { .. });
        progress.stage(
            if full {
                "fetching events"
            } else {
                "fetching event changes"
            },
            None,
        );
        let mut report = SyncReport {
            full,
            ..SyncReport::default()
        };
        let mut seen = HashSet::new();
        let mut page: Option<String> = None;
        let sync_token = loop {
            let ev = self.list_page(calendar_id, how, page.as_deref()).await?;
            let tz = calendar_tz(&ev);
            let items = ev.items.unwrap_or_default();
            progress.advance(items.len() as u64);
            let mut keep = Vec::new();
            let mut gone = Vec::new();
            for e in &items {
                match CalendarEvent::from_api(calendar_id, e, tz) {
                    Some(c) => {
                        seen.insert(c.id.clone());
                        keep.push(c);
                    }
                    None => gone.extend(e.id.clone()),
                }
            }
            report.fetched += keep.len();
            report.deleted += gone.len();
            cache.upsert_events(conn, &keep)?;
            cache.delete_events(conn, calendar_id, &gone)?;
            match ev.next_page_token {
                Some(p) => page = Some(p),
                None => break ev.next_sync_token, // only the last page carries it
            }
        };
        if full {
            // A full listing replaces the cache: whatever it did not return is gone.
            let stale: Vec<String> = cache
                .event_ids(conn, calendar_id)?
                .difference(&seen)
                .cloned()
                .collect();
            report.deleted += stale.len();
            cache.delete_events(conn, calendar_id, &stale)?;
        }
        let key = format!("calendar:{calendar_id}");
        match sync_token {
            Some(t) => cache.set_cursor(conn, &key, &t)?,
            None => cache.clear_cursor(conn, &key)?, // next sync lists the window again
        }
        Ok(report)
    }
}

fn calendar_tz(ev: &Events) -> Tz {
    ev.time_zone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(Tz::UTC)
}
