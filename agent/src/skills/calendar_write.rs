//! `calendar.create` and `calendar.update`: an event in Google Calendar with attendees, a time
//! zone and a description. The approval shows the event whole (an update: before and after);
//! attendees are told by Google. `deskhand undo` deletes a created event and restores an updated
//! one to what it was.

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use deskhand_connectors::calendar::api::{Event, EventAttendee, EventDateTime};
use deskhand_connectors::Provider;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::args::{Line, Text};
use super::Account;
use crate::guard::{Access, Guard};
use crate::runner::{StepCtx, StepError};

/// Scopes that allow writing events.
const WRITE_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar",
];

fn primary() -> Line {
    Line::from("primary")
}

/// `calendar.create`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// The title.
    summary: Line,
    /// `2026-12-04T10:00` (in `time_zone`), `2026-12-04T10:00:00+01:00`, or `2026-12-04` for a
    /// whole day.
    start: Line,
    /// Like `start` (a whole day's end is the next day).
    end: Line,
    /// IANA time zone of the times, e.g. Europe/Berlin (needed for times without an offset).
    #[serde(default)]
    time_zone: Option<Line>,
    /// The description (several lines).
    #[serde(default)]
    description: Option<Text>,
    /// Where.
    #[serde(default)]
    location: Option<Line>,
    /// Guests' addresses.
    #[serde(default)]
    attendees: Vec<Line>,
    /// The calendar (default: primary).
    #[serde(default = "primary")]
    calendar: Line,
    #[serde(flatten)]
    account: Account,
}

/// `calendar.update`'s arguments: the event, and only the fields to change.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateArgs {
    /// The event's id (from `calendar.agenda`).
    id: Line,
    /// A new title.
    #[serde(default)]
    summary: Option<Line>,
    /// A new start (as for `calendar.create`).
    #[serde(default)]
    start: Option<Line>,
    /// A new end.
    #[serde(default)]
    end: Option<Line>,
    /// The time zone of the new times.
    #[serde(default)]
    time_zone: Option<Line>,
    /// A new description.
    #[serde(default)]
    description: Option<Text>,
    /// A new place.
    #[serde(default)]
    location: Option<Line>,
    /// The whole new guest list.
    #[serde(default)]
    attendees: Option<Vec<Line>>,
    /// The calendar (default: primary).
    #[serde(default = "primary")]
    calendar: Line,
    #[serde(flatten)]
    account: Account,
}

/// A time as Google takes it: a date, an instant, or a wall-clock time in `tz`.
fn when(text: &str, tz: Option<&str>) -> Result<EventDateTime, StepError> {
    let text = text.trim();
    let bad = |why: &str| {
        StepError::Invalid(format!(
            "time {text:?}: {why}; write 2026-12-04T10:00 with time_zone, 2026-12-04T10:00:00+01:00, or 2026-12-04"
        ))
    };
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(EventDateTime {
            date: Some(d),
            ..Default::default()
        });
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(EventDateTime {
            date_time: Some(t.with_timezone(&chrono::Utc)),
            time_zone: tz.map(str::to_string),
            ..Default::default()
        });
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| bad("not a date or a time"))?;
    let tz_name = tz.ok_or_else(|| bad("a time without an offset needs time_zone"))?;
    let zone: chrono_tz::Tz = tz_name
        .parse()
        .map_err(|_| bad(&format!("{tz_name:?} is not an IANA time zone")))?;
    let local = zone
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| bad("that wall-clock time does not exist there (a clock change)"))?;
    Ok(EventDateTime {
        date_time: Some(local.with_timezone(&chrono::Utc)),
        time_zone: Some(tz_name.to_string()),
        ..Default::default()
    })
}

fn guests(list: &[Line]) -> Result<Vec<EventAttendee>, StepError> {
    list.iter()
        .map(|a| {
            let addr = a.as_str().trim();
            if addr.contains('@') && !addr.contains(char::is_whitespace) {
                Ok(EventAttendee {
                    email: Some(addr.to_string()),
                    ..Default::default()
                })
            } else {
                Err(StepError::Invalid(format!(
                    "attendee {addr:?} is not an address; write ada@example.com"
                )))
            }
        })
        .collect()
}

/// What the person is shown of an event (and what undo puts back).
fn shown(e: &Event) -> Value {
    let t = |d: &Option<EventDateTime>| {
        d.as_ref().map(|d| {
            json!({"date": d.date.map(|x| x.to_string()),
                   "date_time": d.date_time.map(|x| x.to_rfc3339()),
                   "time_zone": d.time_zone})
        })
    };
    json!({
        "summary": e.summary, "description": e.description, "location": e.location,
        "start": t(&e.start), "end": t(&e.end),
        "attendees": e.attendees.as_ref().map(|a| a.iter().filter_map(|x| x.email.clone()).collect::<Vec<_>>()),
    })
}

/// An event id Google accepts (base32hex), the same for every delivery of this step, so a
/// retried insert finds the event it made instead of making a second.
fn event_id(step: &str) -> String {
    const HEX32: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let d = Sha256::digest(format!("deskhand:{step}").as_bytes());
    d.iter()
        .take(20)
        .map(|b| HEX32[(b & 31) as usize] as char)
        .collect()
}

async fn calendar_for(
    g: &Guard,
    account: &Account,
) -> Result<
    (
        deskhand_connectors::ConnectionId,
        deskhand_connectors::calendar::Calendar,
    ),
    StepError,
> {
    let id = account.of(Provider::Google);
    let hub = g.connector("calendar", Access::Write).await?;
    if let Ok(Some(info)) = hub.cache().connection(&id) {
        if !info
            .scopes
            .iter()
            .any(|s| WRITE_SCOPES.contains(&s.as_str()))
        {
            return Err(StepError::Fatal(format!(
                "{id} may read the calendar but not change it: run `deskhand connect google \
                 --scope {}` and accept, then retry this job",
                WRITE_SCOPES[0]
            )));
        }
    }
    let cal = hub.calendar(&id).await?;
    Ok((id, cal))
}

/// `calendar.create`: asks with the whole event (unless allowed), then makes it.
pub(super) async fn create(g: Guard, a: CreateArgs, _: StepCtx) -> Result<Value, StepError> {
    let tz = a.time_zone.as_ref().map(Line::as_str);
    let event = Event {
        // This job's step, whichever delivery runs it (its output name is per job and step).
        id: Some(event_id(&g.output_path("event"))),
        summary: Some(a.summary.0.clone()),
        description: a.description.map(|d| d.0),
        location: a.location.map(|l| l.0),
        start: Some(when(a.start.as_str(), tz)?),
        end: Some(when(a.end.as_str(), tz)?),
        attendees: (!a.attendees.is_empty())
            .then(|| guests(&a.attendees))
            .transpose()?,
        ..Default::default()
    };
    let (conn, cal) = calendar_for(&g, &a.account).await?;
    let calendar_id = a.calendar.0.clone();
    let mut preview = shown(&event);
    preview["calendar"] = json!(calendar_id);
    let target = format!("{calendar_id}: {}", a.summary.0);
    let key = event.id.clone();
    g.external(
        "external-write",
        &target,
        preview,
        key.as_deref(),
        |fx| async move {
            let made = cal.insert(&calendar_id, event).await?;
            let eid = made.id.clone().unwrap_or_default();
            fx.created(
                "calendar.event",
                &conn.to_string(),
                &format!("{calendar_id}/{eid}"),
            )?;
            let out = json!({"id": eid, "calendar": calendar_id, "summary": made.summary,
                         "link": made.html_link, "event": shown(&made)});
            fx.done("calendar.created", out.clone());
            Ok(out)
        },
    )
    .await
}

/// `calendar.update`: asks with the event before and after (unless allowed), then patches it.
pub(super) async fn update(g: Guard, a: UpdateArgs, _: StepCtx) -> Result<Value, StepError> {
    let tz = a.time_zone.as_ref().map(Line::as_str);
    let patch = Event {
        summary: a.summary.map(|s| s.0),
        description: a.description.map(|d| d.0),
        location: a.location.map(|l| l.0),
        start: a.start.as_ref().map(|s| when(s.as_str(), tz)).transpose()?,
        end: a.end.as_ref().map(|s| when(s.as_str(), tz)).transpose()?,
        attendees: a.attendees.as_deref().map(guests).transpose()?,
        ..Default::default()
    };
    let (conn, cal) = calendar_for(&g, &a.account).await?;
    let calendar_id = a.calendar.0.clone();
    let id = a.id.0.clone();
    let before = cal.event(&calendar_id, &id).await?;
    let before_shown = shown(&before);
    let preview = json!({"calendar": calendar_id, "id": id, "before": before_shown,
                         "change": shown(&patch)});
    let target = format!(
        "{calendar_id}: {}",
        before.summary.clone().unwrap_or_else(|| id.clone())
    );
    g.external("external-write", &target, preview, None, |fx| async move {
        let after = cal.patch(&calendar_id, &id, patch).await?;
        // Undo puts back exactly the fields it may have changed.
        fx.changed(
            "calendar.event.updated",
            &conn.to_string(),
            &format!("{calendar_id}/{id}"),
            serde_json::to_value(restorable(&before)).unwrap_or_default(),
        )?;
        let out = json!({"id": id, "calendar": calendar_id, "event": shown(&after)});
        fx.done(
            "calendar.updated",
            json!({"id": id, "before": before_shown, "after": shown(&after)}),
        );
        Ok(out)
    })
    .await
}

/// The fields `calendar.update` can change, as they were: the patch that restores them.
pub fn restorable(e: &Event) -> Event {
    Event {
        summary: Some(e.summary.clone().unwrap_or_default()),
        description: Some(e.description.clone().unwrap_or_default()),
        location: Some(e.location.clone().unwrap_or_default()),
        start: e.start.clone(),
        end: e.end.clone(),
        attendees: Some(e.attendees.clone().unwrap_or_default()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_forms_people_write() {
        let d = when("2026-12-04", None).unwrap();
        assert_eq!(d.date.unwrap().to_string(), "2026-12-04");
        let t = when("2026-12-04T10:00", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            t.date_time.unwrap().to_rfc3339(),
            "2026-12-04T09:00:00+00:00"
        );
        assert_eq!(t.time_zone.as_deref(), Some("Europe/Berlin"));
        let o = when("2026-12-04T10:00:00+01:00", None).unwrap();
        assert_eq!(
            o.date_time.unwrap().to_rfc3339(),
            "2026-12-04T09:00:00+00:00"
        );
        for bad in [
            ("2026-12-04T10:00", None),
            ("tomorrow", None),
            ("2026-12-04T10:00", Some("Mars/Base")),
        ] {
            let e = when(bad.0, bad.1).unwrap_err().to_string();
            assert!(e.contains("2026-12-04T10:00 with time_zone"), "{e}");
        }
        assert!(guests(&[Line::from("not an address")]).is_err());
        let id = event_id("reports/x-meet-01JOB.event");
        assert_eq!(id, event_id("reports/x-meet-01JOB.event"));
        assert_ne!(id, event_id("reports/x-meet-01JOC.event"));
        assert!(
            id.len() >= 5
                && id
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c))
        );
    }
}
