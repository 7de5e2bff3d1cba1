//! The schedule ledger (`<workspace>/.deskhand/schedules.db`): saved schedules, and one run
//! row per due time that was claimed, so each due time runs at most once — across processes
//! (the CLI and the daemon open it at once) and across restarts.
//!
//! # Rules the ledger keeps
//!
//! - The next due time is written when a schedule is added, resumed or claimed: before it is
//!   due, never reconstructed afterwards from a "last run" time. There is no last-run column;
//!   the last run is the newest run row.
//! - [`Ledger::claim`] is one transaction: compare-and-swap `next_due` from the claimed due
//!   time to the first due time after now, and insert the run row, keyed
//!   `UNIQUE(schedule_id, due_at)`. A second claimer, in any process, gets `None`.
//! - Due times that passed while Deskhand was down or the machine slept collapse into one
//!   claim: one late run ([`Missed::RunOnce`]) or one `skipped` row ([`Missed::Skip`]), never
//!   a burst.
//! - A claimed run stays `pending` until [`Ledger::finish`]. After a crash the agent reads
//!   [`Ledger::pending_runs`] and resubmits a job under the same job id if none exists, so a
//!   claim is neither lost nor doubled.
//! - Removing a schedule forgets it: its run rows go with it (pause keeps everything). The
//!   agent's job journal still records the jobs those runs started.
//!
//! Times are stored as UTC milliseconds since the Unix epoch; returned times carry that
//! precision.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{params, Connection, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, ScheduleError};
use crate::spec::Cron;

/// The layout this build writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS schedules(
  id TEXT PRIMARY KEY,
  cron TEXT NOT NULL,
  tz TEXT NOT NULL,
  skill TEXT NOT NULL,
  params TEXT NOT NULL,
  missed TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  next_due INTEGER,
  created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS schedules_by_next_due ON schedules(next_due) WHERE paused = 0;
CREATE TABLE IF NOT EXISTS runs(
  schedule_id TEXT NOT NULL,
  due_at INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL,
  job_id TEXT,
  outcome TEXT NOT NULL,
  detail TEXT,
  finished_at INTEGER,
  missed INTEGER NOT NULL DEFAULT 0,
  UNIQUE(schedule_id, due_at));
CREATE INDEX IF NOT EXISTS runs_by_claim ON runs(claimed_at);
CREATE INDEX IF NOT EXISTS runs_unfinished ON runs(claimed_at) WHERE finished_at IS NULL;
"#;

const SCHEDULE_COLUMNS: &str = "id, cron, tz, skill, params, missed, paused, next_due, created_at";
const RUN_COLUMNS: &str =
    "schedule_id, due_at, claimed_at, job_id, outcome, detail, finished_at, missed";

/// The most collapsed due times a claim counts; past it, `missed` means "at least this many".
pub const MISSED_CAP: u32 = 10_000;

/// Crockford's base32 alphabet, lowercase: no i, l, o or u to misread when typing an id.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// What to do with due times that passed while Deskhand was down or the machine slept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Run once, late, for all of them.
    #[default]
    RunOnce,
    /// Record them as skipped and wait for the next due time.
    Skip,
}

impl Missed {
    /// The name stored in the ledger and accepted by [`FromStr`]: `run-once` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::RunOnce => "run-once",
            Missed::Skip => "skip",
        }
    }
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Missed {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Missed> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "run-once" | "runonce" => Ok(Missed::RunOnce),
            "skip" => Ok(Missed::Skip),
            _ => Err(ScheduleError::UnknownMissedPolicy(s.to_string())),
        }
    }
}

/// A saved schedule: run `skill` with `params` whenever `cron` is due in `tz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// `s-` and eight base32 characters; lookups also take a unique prefix.
    pub id: String,
    /// The cron expression as given (five fields or a nickname).
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub tz: String,
    /// The skill to run.
    pub skill: String,
    /// The skill's parameters.
    pub params: Map<String, Value>,
    /// What to do with due times missed while Deskhand was not running.
    pub missed: Missed,
    /// A paused schedule is never due and has no `next_due`.
    pub paused: bool,
    /// The next due time not yet claimed; `None` while paused or if it never recurs.
    pub next_due: Option<DateTime<Utc>>,
    /// When the schedule was added.
    pub created_at: DateTime<Utc>,
}

impl Schedule {
    /// The parsed cron expression, for `describe()` or to preview due times.
    pub fn spec(&self) -> Result<Cron> {
        Cron::parse(&self.cron, &self.tz)
    }
}

/// What [`Ledger::add`] needs to create a schedule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSchedule {
    /// Five-field cron expression or nickname.
    pub cron: String,
    /// IANA time zone, such as `Europe/Berlin`; the agent resolves "local" before calling.
    pub tz: String,
    /// The skill to run.
    pub skill: String,
    /// The skill's parameters.
    pub params: Map<String, Value>,
    /// The missed-run policy.
    pub missed: Missed,
}

/// A schedule whose next due time has come, as listed by [`Ledger::due`]; pass it to
/// [`Ledger::claim`].
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// The schedule as read when listed.
    pub schedule: Schedule,
    /// The due time this is for (the schedule's `next_due` when listed).
    pub due_at: DateTime<Utc>,
    /// How late a claim may be and still count as on time.
    pub late_after: Duration,
}

impl Due {
    /// Whether claiming at `now` is later than `late_after` past the due time.
    pub fn is_late(&self, now: DateTime<Utc>) -> bool {
        let grace = TimeDelta::from_std(self.late_after).unwrap_or(TimeDelta::MAX);
        now.signed_duration_since(self.due_at) > grace
    }
}

/// The result of a successful [`Ledger::claim`]: this process owns the due time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Whether to run the skill now (submit the job with `job_id`); `false` when the
    /// policy skipped missed due times and a `skipped` row was recorded instead.
    pub run: bool,
    /// The schedule.
    pub schedule_id: String,
    /// The due time claimed; with `schedule_id` it names the run row.
    pub due_at: DateTime<Utc>,
    /// The job id recorded for the run, when `run` is true.
    pub job_id: Option<String>,
    /// Due times that did not get a run at their own time (see [`Run::missed`]).
    pub missed: u32,
    /// Why nothing runs, when `run` is false.
    pub skip_reason: Option<String>,
    /// The schedule's new next due time.
    pub next_due: Option<DateTime<Utc>>,
}

/// How a run ended, or that it has not yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    /// Claimed; its job was submitted (or is about to be) and has not finished.
    Pending,
    /// The job succeeded.
    Ok,
    /// The job failed, with why.
    Error(String),
    /// Nothing ran, with why (for example a missed due time under [`Missed::Skip`]).
    Skipped(String),
    /// The job is waiting (for an approval, say); not final, so it may still finish.
    Held(String),
}

impl Outcome {
    /// Whether this outcome ends the run: `ok`, `error` and `skipped` do; `pending` and
    /// `held` do not.
    pub fn is_final(&self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Error(_) | Outcome::Skipped(_))
    }

    /// The stored name: `pending`, `ok`, `error`, `skipped` or `held`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Ok => "ok",
            Outcome::Error(_) => "error",
            Outcome::Skipped(_) => "skipped",
            Outcome::Held(_) => "held",
        }
    }

    /// The reason carried by `error`, `skipped` and `held`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Outcome::Pending | Outcome::Ok => None,
            Outcome::Error(d) | Outcome::Skipped(d) | Outcome::Held(d) => Some(d),
        }
    }

    fn from_parts(kind: &str, detail: Option<String>) -> Option<Outcome> {
        let detail = detail.unwrap_or_default();
        Some(match kind {
            "pending" => Outcome::Pending,
            "ok" => Outcome::Ok,
            "error" => Outcome::Error(detail),
            "skipped" => Outcome::Skipped(detail),
            "held" => Outcome::Held(detail),
            _ => return None,
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail() {
            Some(detail) => write!(f, "{}: {detail}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// One claimed due time of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The schedule.
    pub schedule_id: String,
    /// The due time; unique per schedule.
    pub due_at: DateTime<Utc>,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
    /// The job started for it; `None` when it was skipped at claim time.
    pub job_id: Option<String>,
    /// How it ended, or `Pending`/`Held`.
    pub outcome: Outcome,
    /// When a final outcome was recorded.
    pub finished_at: Option<DateTime<Utc>>,
    /// Due times that did not get a run at their own time: 0 on time; when late, this one
    /// and every later one up to the claim, collapsed into this row. At most [`MISSED_CAP`].
    pub missed: u32,
}

/// The ledger file. Cheap to share by reference; each call locks one SQLite connection.
pub struct Ledger {
    db: Mutex<Connection>,
    path: PathBuf,
}

/// Failures inside a ledger call, before the file path is attached.
enum Fail {
    Sql(rusqlite::Error),
    Corrupt(String),
    Other(ScheduleError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Fail {
        Fail::Sql(e)
    }
}

impl From<ScheduleError> for Fail {
    fn from(e: ScheduleError) -> Fail {
        Fail::Other(e)
    }
}

type Sql<T> = std::result::Result<T, Fail>;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> Sql<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Fail::Corrupt(format!("time {ms} ms is out of range")))
}

/// `t` at the precision the ledger stores, so returned values equal what reads give back.
fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms(t)).unwrap_or(t)
}

fn new_id() -> String {
    let mut id = String::from("s-");
    for _ in 0..8 {
        id.push(char::from(
            ID_ALPHABET[fastrand::usize(..ID_ALPHABET.len())],
        ));
    }
    id
}

struct RawSchedule {
    id: String,
    cron: String,
    tz: String,
    skill: String,
    params: String,
    missed: String,
    paused: bool,
    next_due: Option<i64>,
    created_at: i64,
}

fn raw_schedule(row: &Row<'_>) -> rusqlite::Result<RawSchedule> {
    Ok(RawSchedule {
        id: row.get(0)?,
        cron: row.get(1)?,
        tz: row.get(2)?,
        skill: row.get(3)?,
        params: row.get(4)?,
        missed: row.get(5)?,
        paused: row.get(6)?,
        next_due: row.get(7)?,
        created_at: row.get(8)?,
    })
}

impl RawSchedule {
    fn decode(self) -> Sql<Schedule> {
        let params = match serde_json::from_str::<Value>(&self.params) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Fail::Corrupt(format!(
                    "schedule {} has params that are not a JSON object",
                    self.id
                )))
            }
        };
        let missed = Missed::from_str(&self.missed).map_err(|_| {
            Fail::Corrupt(format!(
                "schedule {} has unknown missed policy {:?}",
                self.id, self.missed
            ))
        })?;
        Ok(Schedule {
            next_due: self.next_due.map(from_ms).transpose()?,
            created_at: from_ms(self.created_at)?,
            id: self.id,
            cron: self.cron,
            tz: self.tz,
            skill: self.skill,
            params,
            missed,
            paused: self.paused,
        })
    }
}

struct RawRun {
    schedule_id: String,
    due_at: i64,
    claimed_at: i64,
    job_id: Option<String>,
    outcome: String,
    detail: Option<String>,
    finished_at: Option<i64>,
    missed: u32,
}

fn raw_run(row: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        schedule_id: row.get(0)?,
        due_at: row.get(1)?,
        claimed_at: row.get(2)?,
        job_id: row.get(3)?,
        outcome: row.get(4)?,
        detail: row.get(5)?,
        finished_at: row.get(6)?,
        missed: row.get(7)?,
    })
}

impl RawRun {
    fn decode(self) -> Sql<Run> {
        let outcome = Outcome::from_parts(&self.outcome, self.detail).ok_or_else(|| {
            Fail::Corrupt(format!(
                "a run of schedule {} has unknown outcome {:?}",
                self.schedule_id, self.outcome
            ))
        })?;
        Ok(Run {
            due_at: from_ms(self.due_at)?,
            claimed_at: from_ms(self.claimed_at)?,
            finished_at: self.finished_at.map(from_ms).transpose()?,
            schedule_id: self.schedule_id,
            job_id: self.job_id,
            outcome,
            missed: self.missed,
        })
    }
}

fn query_schedules(
    db: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Sql<Vec<Schedule>> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules {filter}");
    let raws = db
        .prepare(&sql)?
        .query_map(args, raw_schedule)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(RawSchedule::decode).collect()
}

fn query_runs(db: &Connection, filter: &str, args: impl rusqlite::Params) -> Sql<Vec<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs {filter}");
    let raws = db
        .prepare(&sql)?
        .query_map(args, raw_run)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(RawRun::decode).collect()
}

/// Finds one schedule by exact id, or by a unique prefix of the id with or without `s-`.
fn resolve(db: &Connection, id_or_prefix: &str) -> Sql<Schedule> {
    let key = id_or_prefix.trim().to_ascii_lowercase();
    if key.is_empty() {
        return Err(ScheduleError::NotFound(id_or_prefix.to_string()).into());
    }
    if let Some(exact) = query_schedules(db, "WHERE id = ?1", [&key])?.pop() {
        return Ok(exact);
    }
    // substr rather than LIKE: a typed `%` or `_` must not act as a wildcard.
    let mut found = query_schedules(
        db,
        "WHERE substr(id, 1, length(?1)) = ?1 OR substr(id, 1, length(?2)) = ?2
         ORDER BY id LIMIT 10",
        [&key, &format!("s-{key}")],
    )?;
    match found.len() {
        0 => Err(ScheduleError::NotFound(id_or_prefix.to_string()).into()),
        1 => Ok(found.remove(0)),
        _ => Err(ScheduleError::AmbiguousId {
            prefix: id_or_prefix.to_string(),
            matches: found.into_iter().map(|s| s.id).collect(),
        }
        .into()),
    }
}

impl Ledger {
    /// Opens the ledger at `path`, creating the file and its folder if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ScheduleError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let ledger_err = |source| ScheduleError::Ledger {
            path: path.clone(),
            source,
        };
        let db = Connection::open(&path).map_err(ledger_err)?;
        // The CLI and the daemon open the ledger at once; a writer holds the lock briefly.
        db.busy_timeout(Duration::from_secs(5))
            .map_err(ledger_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(ledger_err)?;
        // FULL, not NORMAL: with NORMAL a power cut can undo a committed claim, and the
        // due time would be claimed and run a second time after the reboot.
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(ledger_err)?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(ledger_err)?;
        if version > SCHEMA_VERSION {
            return Err(ScheduleError::NewerLedger {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        db.execute_batch(SCHEMA).map_err(ledger_err)?;
        if version < SCHEMA_VERSION {
            db.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(ledger_err)?;
        }
        Ok(Ledger {
            db: Mutex::new(db),
            path,
        })
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Sql<T>) -> Result<T> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db).map_err(|fail| match fail {
            Fail::Sql(source) => ScheduleError::Ledger {
                path: self.path.clone(),
                source,
            },
            Fail::Corrupt(detail) => ScheduleError::Corrupt {
                path: self.path.clone(),
                detail,
            },
            Fail::Other(e) => e,
        })
    }

    // ---- schedules ---------------------------------------------------------------------------

    /// Validates and saves a new schedule, with its first due time after `now` already set.
    pub fn add(&self, new: NewSchedule, now: DateTime<Utc>) -> Result<Schedule> {
        let cron = Cron::parse(&new.cron, &new.tz)?;
        let skill = new.skill.trim();
        if skill.is_empty() {
            return Err(ScheduleError::EmptySkill);
        }
        let now = stored(now);
        let mut schedule = Schedule {
            id: String::new(),
            cron: cron.expr().to_string(),
            tz: cron.tz().name().to_string(),
            skill: skill.to_string(),
            params: new.params,
            missed: new.missed,
            paused: false,
            next_due: cron.next_after(now),
            created_at: now,
        };
        let params = Value::Object(schedule.params.clone()).to_string();
        self.with(|db| {
            // 32^8 ids make a clash unlikely; a few fresh draws make it practically impossible.
            for _ in 0..8 {
                schedule.id = new_id();
                let inserted = db.execute(
                    "INSERT OR IGNORE INTO schedules(id, cron, tz, skill, params, missed, paused, next_due, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)",
                    params![
                        schedule.id,
                        schedule.cron,
                        schedule.tz,
                        schedule.skill,
                        params,
                        schedule.missed.as_str(),
                        schedule.next_due.map(ms),
                        ms(schedule.created_at),
                    ],
                )?;
                if inserted == 1 {
                    return Ok(());
                }
            }
            Err(Fail::Corrupt("no free schedule id after 8 tries".to_string()))
        })?;
        Ok(schedule)
    }

    /// Every schedule, oldest first.
    pub fn list(&self) -> Result<Vec<Schedule>> {
        self.with(|db| query_schedules(db, "ORDER BY created_at, id", []))
    }

    /// The schedule with this id, or the only one whose id starts with it (`s-` optional).
    pub fn get(&self, id_or_prefix: &str) -> Result<Schedule> {
        self.with(|db| resolve(db, id_or_prefix))
    }

    /// Pauses a schedule: it is never due and its `next_due` is cleared until resumed.
    pub fn pause(&self, id_or_prefix: &str) -> Result<Schedule> {
        self.with(|db| {
            let schedule = resolve(db, id_or_prefix)?;
            db.execute(
                "UPDATE schedules SET paused = 1, next_due = NULL WHERE id = ?1",
                [&schedule.id],
            )?;
            resolve(db, &schedule.id)
        })
    }

    /// Resumes a paused schedule with its next due time after `now`, so the due times it
    /// slept through never run in a burst. Resuming an active schedule changes nothing.
    pub fn resume(&self, id_or_prefix: &str, now: DateTime<Utc>) -> Result<Schedule> {
        self.with(|db| {
            let schedule = resolve(db, id_or_prefix)?;
            if !schedule.paused {
                return Ok(schedule);
            }
            let next_due = schedule.spec()?.next_after(stored(now));
            db.execute(
                "UPDATE schedules SET paused = 0, next_due = ?2 WHERE id = ?1 AND paused = 1",
                params![schedule.id, next_due.map(ms)],
            )?;
            resolve(db, &schedule.id)
        })
    }

    /// Deletes a schedule and its run history; returns what was removed.
    pub fn remove(&self, id_or_prefix: &str) -> Result<Schedule> {
        self.with(|db| {
            let schedule = resolve(db, id_or_prefix)?;
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM runs WHERE schedule_id = ?1", [&schedule.id])?;
            tx.execute("DELETE FROM schedules WHERE id = ?1", [&schedule.id])?;
            tx.commit()?;
            Ok(schedule)
        })
    }

    // ---- due times ---------------------------------------------------------------------------

    /// Active schedules whose next due time is at or before `now`, earliest first. A claim
    /// more than `late_after` past its due time counts as missed.
    pub fn due(&self, now: DateTime<Utc>, late_after: Duration) -> Result<Vec<Due>> {
        let schedules = self.with(|db| {
            query_schedules(
                db,
                "WHERE paused = 0 AND next_due IS NOT NULL AND next_due <= ?1 ORDER BY next_due, id",
                [ms(now)],
            )
        })?;
        Ok(schedules
            .into_iter()
            .filter_map(|schedule| {
                let due_at = schedule.next_due?;
                Some(Due {
                    schedule,
                    due_at,
                    late_after,
                })
            })
            .collect())
    }

    /// Claims `due` for this process and records a run under `job_id`, advancing the
    /// schedule to its first due time after `now`. `None` means it is not this process's to
    /// run: another process claimed it first, or the schedule was paused or removed.
    ///
    /// A claim more than `late_after` past its due time follows the schedule's policy:
    /// `RunOnce` runs (once, for all the due times that passed), `Skip` records a `skipped`
    /// row and returns a claim with `run == false`.
    pub fn claim(&self, due: &Due, now: DateTime<Utc>, job_id: &str) -> Result<Option<Claim>> {
        let schedule = &due.schedule;
        let cron = schedule.spec().map_err(|e| ScheduleError::Corrupt {
            path: self.path.clone(),
            detail: format!("schedule {} no longer parses: {e}", schedule.id),
        })?;
        let now = stored(now);
        // Never before the claimed due time, or a claim with a clock behind it could hand
        // the same due time out again.
        let next_due = cron.next_after(now.max(due.due_at));
        let collapsed = count_due(&cron, due.due_at, now);
        let (run, missed) = if due.is_late(now) {
            (
                schedule.missed == Missed::RunOnce,
                collapsed.saturating_add(1).min(MISSED_CAP),
            )
        } else {
            (true, collapsed)
        };
        let skip_reason = (!run).then(|| format!("asleep or agent down; {missed} slot(s) missed"));
        let outcome = match &skip_reason {
            Some(reason) => Outcome::Skipped(reason.clone()),
            None => Outcome::Pending,
        };
        let claim = Claim {
            run,
            schedule_id: schedule.id.clone(),
            due_at: due.due_at,
            job_id: run.then(|| job_id.to_string()),
            missed,
            skip_reason,
            next_due,
        };
        self.with(|db| {
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Compare-and-swap: only the claimer that still sees this due time moves it on.
            let moved = tx.execute(
                "UPDATE schedules SET next_due = ?3
                 WHERE id = ?1 AND paused = 0 AND next_due = ?2 AND cron = ?4 AND tz = ?5",
                params![
                    claim.schedule_id,
                    ms(claim.due_at),
                    claim.next_due.map(ms),
                    schedule.cron,
                    schedule.tz,
                ],
            )?;
            if moved == 0 {
                return Ok(None);
            }
            // The unique key is the second guard: it holds even if next_due were rewound.
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO runs(schedule_id, due_at, claimed_at, job_id, outcome, detail, finished_at, missed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    claim.schedule_id,
                    ms(claim.due_at),
                    ms(now),
                    claim.job_id,
                    outcome.kind(),
                    outcome.detail(),
                    outcome.is_final().then(|| ms(now)),
                    claim.missed,
                ],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            tx.commit()?;
            Ok(Some(claim.clone()))
        })
    }

    /// The earliest next due time among active schedules, or `now` if one is already due;
    /// `None` when nothing is scheduled. The agent sleeps until then.
    pub fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let earliest: Option<i64> = self.with(|db| {
            Ok(db.query_row(
                "SELECT MIN(next_due) FROM schedules WHERE paused = 0",
                [],
                |row| row.get(0),
            )?)
        })?;
        let earliest = earliest.map(from_ms).transpose();
        let earliest = earliest.map_err(|_| ScheduleError::Corrupt {
            path: self.path.clone(),
            detail: "a next due time is out of range".to_string(),
        })?;
        Ok(earliest.map(|t| t.max(stored(now))))
    }

    // ---- runs --------------------------------------------------------------------------------

    /// Records how the run for (`schedule_id`, `due_at`) went. Idempotent: the first final
    /// outcome wins and later calls return `false`; `Held` may be recorded (and replaced)
    /// until then. Returns whether this call changed the run (`false` also when the run or
    /// its schedule no longer exists).
    pub fn finish(
        &self,
        schedule_id: &str,
        due_at: DateTime<Utc>,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if outcome == Outcome::Pending {
            return Err(ScheduleError::PendingIsNotAnOutcome);
        }
        self.with(|db| {
            let changed = db.execute(
                "UPDATE runs SET outcome = ?3, detail = ?4, finished_at = ?5
                 WHERE schedule_id = ?1 AND due_at = ?2 AND finished_at IS NULL",
                params![
                    schedule_id,
                    ms(due_at),
                    outcome.kind(),
                    outcome.detail(),
                    outcome.is_final().then(|| ms(now)),
                ],
            )?;
            Ok(changed > 0)
        })
    }

    /// Up to `limit` runs, of one schedule (exact id) or of all, newest claim first.
    pub fn runs(&self, schedule_id: Option<&str>, limit: usize) -> Result<Vec<Run>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|db| match schedule_id {
            Some(id) => query_runs(
                db,
                "WHERE schedule_id = ?1 ORDER BY claimed_at DESC, due_at DESC LIMIT ?2",
                params![id, limit],
            ),
            None => query_runs(
                db,
                "ORDER BY claimed_at DESC, due_at DESC, schedule_id LIMIT ?1",
                [limit],
            ),
        })
    }

    /// The run of the latest due time claimed for a schedule (exact id), skipped or not.
    pub fn last_run(&self, schedule_id: &str) -> Result<Option<Run>> {
        self.with(|db| {
            Ok(query_runs(
                db,
                "WHERE schedule_id = ?1 ORDER BY due_at DESC LIMIT 1",
                [schedule_id],
            )?
            .pop())
        })
    }

    /// Claimed runs without a final outcome (`Pending` or `Held`), oldest first. After a
    /// restart the agent resubmits each one whose job does not exist, under its job id.
    pub fn pending_runs(&self) -> Result<Vec<Run>> {
        self.with(|db| {
            query_runs(
                db,
                "WHERE finished_at IS NULL ORDER BY claimed_at, schedule_id",
                [],
            )
        })
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

/// How many due times fall in `(after, until]`, counting at most [`MISSED_CAP`].
fn count_due(cron: &Cron, after: DateTime<Utc>, until: DateTime<Utc>) -> u32 {
    let mut count = 0;
    let mut t = after;
    while count < MISSED_CAP {
        match cron.next_after(t) {
            Some(next) if next <= until => {
                count += 1;
                t = next;
            }
            _ => break,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn daily(missed: Missed) -> NewSchedule {
        NewSchedule {
            cron: "0 9 * * *".into(),
            tz: "UTC".into(),
            skill: "morning-brief".into(),
            params: json!({"inbox": "work"}).as_object().unwrap().clone(),
            missed,
        }
    }

    fn temp_ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join(".deskhand/schedules.db")).unwrap();
        (dir, ledger)
    }

    #[test]
    fn add_writes_the_next_due_time_before_it_is_due() {
        let (_dir, ledger) = temp_ledger();
        let now =
            utc(2026, 1, 1, 10, 0) + TimeDelta::milliseconds(1234) + TimeDelta::nanoseconds(5);
        let s = ledger.add(daily(Missed::RunOnce), now).unwrap();
        assert!(s.id.starts_with("s-") && s.id.len() == 10, "{}", s.id);
        assert_eq!(s.next_due, Some(utc(2026, 1, 2, 9, 0)));
        assert_eq!(s.created_at, now - TimeDelta::nanoseconds(5));
        assert_eq!(s.params["inbox"], "work");
        assert!(!s.paused);
        assert_eq!(ledger.get(&s.id).unwrap(), s);
        assert_eq!(ledger.list().unwrap(), vec![s]);
        assert_eq!(ledger.next_wake(now).unwrap(), Some(utc(2026, 1, 2, 9, 0)));
        assert!(ledger.due(now, HOUR).unwrap().is_empty());
    }

    #[test]
    fn add_refuses_bad_input_and_saves_nothing() {
        let (_dir, ledger) = temp_ledger();
        let now = utc(2026, 1, 1, 10, 0);
        let bad_cron = NewSchedule {
            cron: "0 0 9 * * *".into(),
            ..daily(Missed::RunOnce)
        };
        assert!(matches!(
            ledger.add(bad_cron, now),
            Err(ScheduleError::FieldCount { fields: 6, .. })
        ));
        let bad_tz = NewSchedule {
            tz: "Europe/Berln".into(),
            ..daily(Missed::RunOnce)
        };
        let err = ledger.add(bad_tz, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone \"Europe/Berln\"; use an IANA name such as Europe/Berlin"
        );
        let no_skill = NewSchedule {
            skill: " ".into(),
            ..daily(Missed::RunOnce)
        };
        assert!(matches!(
            ledger.add(no_skill, now),
            Err(ScheduleError::EmptySkill)
        ));
        assert!(ledger.list().unwrap().is_empty());
    }

    #[test]
    fn lookup_takes_a_unique_prefix_and_explains_ambiguity() {
        let (_dir, ledger) = temp_ledger();
        let now = utc(2026, 1, 1, 10, 0);
        let a = ledger.add(daily(Missed::RunOnce), now).unwrap();
        let b = ledger.add(daily(Missed::Skip), now).unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(ledger.get(&a.id[..9]).unwrap().id, a.id);
        assert_eq!(ledger.get(&b.id[2..9].to_uppercase()).unwrap().id, b.id);
        match ledger.get("s-") {
            Err(ScheduleError::AmbiguousId { matches, .. }) => {
                let mut want = vec![a.id.clone(), b.id.clone()];
                want.sort();
                assert_eq!(matches, want);
            }
            other => panic!("{other:?}"),
        }
        let msg = ledger.get("s-").unwrap_err().to_string();
        assert!(
            msg.starts_with("schedule id prefix \"s-\" matches 2: ")
                && msg.ends_with("type more of the id"),
            "{msg}"
        );
        assert!(matches!(
            ledger.get("s-zzzzzzzzz"),
            Err(ScheduleError::NotFound(_))
        ));
        assert!(matches!(ledger.get("%"), Err(ScheduleError::NotFound(_))));
        assert!(matches!(ledger.get(""), Err(ScheduleError::NotFound(_))));
    }

    #[test]
    fn an_on_time_claim_runs_and_advances() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::Skip), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 2, 9, 0) + TimeDelta::seconds(30);
        let due = ledger.due(now, HOUR).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].due_at, utc(2026, 1, 2, 9, 0));
        assert_eq!(due[0].schedule.skill, "morning-brief");
        let claim = ledger.claim(&due[0], now, "job-1").unwrap().unwrap();
        assert!(claim.run);
        assert_eq!(claim.job_id.as_deref(), Some("job-1"));
        assert_eq!(claim.missed, 0);
        assert_eq!(claim.skip_reason, None);
        assert_eq!(claim.next_due, Some(utc(2026, 1, 3, 9, 0)));
        assert_eq!(ledger.get(&s.id).unwrap().next_due, claim.next_due);
        let run = ledger.last_run(&s.id).unwrap().unwrap();
        assert_eq!(run.outcome, Outcome::Pending);
        assert_eq!(run.job_id.as_deref(), Some("job-1"));
        assert_eq!(
            (run.due_at, run.claimed_at, run.finished_at),
            (claim.due_at, now, None)
        );
        assert!(ledger.due(now, HOUR).unwrap().is_empty());
    }

    #[test]
    fn two_handles_on_one_file_claim_a_due_time_once() {
        let (dir, first) = temp_ledger();
        let second = Ledger::open(dir.path().join(".deskhand/schedules.db")).unwrap();
        first
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 2, 9, 1);
        let due_first = first.due(now, HOUR).unwrap().remove(0);
        let due_second = second.due(now, HOUR).unwrap().remove(0);
        assert_eq!(due_first, due_second);
        let a = first.claim(&due_first, now, "job-a").unwrap();
        let b = second.claim(&due_second, now, "job-b").unwrap();
        assert!(a.is_some());
        assert_eq!(b, None);
        assert_eq!(second.runs(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn racing_processes_claim_a_due_time_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedules.db");
        let setup = Ledger::open(&path).unwrap();
        setup
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 2, 9, 1);
        let due = setup.due(now, HOUR).unwrap().remove(0);
        let start = Arc::new(Barrier::new(4));
        let claimers: Vec<_> = (0..4)
            .map(|i| {
                let (path, due, start) = (path.clone(), due.clone(), start.clone());
                std::thread::spawn(move || {
                    let ledger = Ledger::open(&path).unwrap();
                    start.wait();
                    ledger.claim(&due, now, &format!("job-{i}")).unwrap()
                })
            })
            .collect();
        let won: Vec<Claim> = claimers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(won.len(), 1, "{won:?}");
        let runs = setup.runs(None, 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].job_id, won[0].job_id);
    }

    #[test]
    fn a_restart_does_not_run_a_claimed_due_time_again() {
        let (dir, ledger) = temp_ledger();
        let path = ledger.path().to_path_buf();
        let s = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 2, 9, 0);
        let due = ledger.due(now, HOUR).unwrap().remove(0);
        ledger.claim(&due, now, "job-1").unwrap().unwrap();
        drop(ledger);

        let reopened = Ledger::open(&path).unwrap();
        let later = now + TimeDelta::minutes(5);
        assert!(reopened.due(later, HOUR).unwrap().is_empty());
        assert_eq!(reopened.claim(&due, later, "job-2").unwrap(), None);
        // The unfinished claim is still there for the agent to check and resubmit.
        let pending = reopened.pending_runs().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (
                pending[0].schedule_id.as_str(),
                pending[0].job_id.as_deref()
            ),
            (s.id.as_str(), Some("job-1"))
        );
        assert!(reopened
            .finish(&s.id, due.due_at, Outcome::Ok, later)
            .unwrap());
        assert!(!reopened
            .finish(&s.id, due.due_at, Outcome::Error("late".into()), later)
            .unwrap());
        assert!(reopened.pending_runs().unwrap().is_empty());
        let run = reopened.last_run(&s.id).unwrap().unwrap();
        assert_eq!((run.outcome, run.finished_at), (Outcome::Ok, Some(later)));
        drop(dir);
    }

    #[test]
    fn a_three_day_outage_runs_once_with_run_once() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        // Down from before Jan 2 09:00 until Jan 4 10:00: Jan 2, 3 and 4 09:00 passed.
        let now = utc(2026, 1, 4, 10, 0);
        let due = ledger.due(now, HOUR).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].is_late(now));
        let claim = ledger.claim(&due[0], now, "job-1").unwrap().unwrap();
        assert!(claim.run);
        assert_eq!(claim.missed, 3);
        assert_eq!(claim.due_at, utc(2026, 1, 2, 9, 0));
        assert_eq!(claim.next_due, Some(utc(2026, 1, 5, 9, 0)));
        let runs = ledger.runs(Some(&s.id), 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].missed, &runs[0].outcome), (3, &Outcome::Pending));
        assert!(ledger.due(now, HOUR).unwrap().is_empty());
        assert_eq!(ledger.next_wake(now).unwrap(), Some(utc(2026, 1, 5, 9, 0)));
    }

    #[test]
    fn a_three_day_outage_records_a_skip_with_skip() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::Skip), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 4, 10, 0);
        let due = ledger.due(now, HOUR).unwrap().remove(0);
        let claim = ledger.claim(&due, now, "job-1").unwrap().unwrap();
        assert!(!claim.run);
        assert_eq!(claim.job_id, None);
        assert_eq!(
            claim.skip_reason.as_deref(),
            Some("asleep or agent down; 3 slot(s) missed")
        );
        assert_eq!(claim.next_due, Some(utc(2026, 1, 5, 9, 0)));
        let runs = ledger.runs(Some(&s.id), 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0].outcome,
            Outcome::Skipped("asleep or agent down; 3 slot(s) missed".into())
        );
        assert_eq!(
            (runs[0].job_id.as_deref(), runs[0].finished_at),
            (None, Some(now))
        );
        assert!(ledger.pending_runs().unwrap().is_empty());
        // A skipped row is final: the agent cannot turn it into a run afterwards.
        assert!(!ledger.finish(&s.id, due.due_at, Outcome::Ok, now).unwrap());
    }

    #[test]
    fn a_slightly_late_claim_collapses_later_due_times_without_a_burst() {
        let (_dir, ledger) = temp_ledger();
        let every_five = NewSchedule {
            cron: "*/5 * * * *".into(),
            ..daily(Missed::Skip)
        };
        ledger.add(every_five, utc(2026, 1, 1, 10, 1)).unwrap();
        // 10:05, 10:10 and 10:15 have passed; within the hour of grace, so it is on time.
        let now = utc(2026, 1, 1, 10, 17);
        let due = ledger.due(now, HOUR).unwrap().remove(0);
        let claim = ledger.claim(&due, now, "job-1").unwrap().unwrap();
        assert!(claim.run);
        assert_eq!((claim.due_at, claim.missed), (utc(2026, 1, 1, 10, 5), 2));
        assert_eq!(claim.next_due, Some(utc(2026, 1, 1, 10, 20)));
        assert!(ledger.due(now, HOUR).unwrap().is_empty());
    }

    #[test]
    fn pause_and_resume_never_burst() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let stale = ledger.due(utc(2026, 1, 2, 9, 0), HOUR).unwrap().remove(0);
        let paused = ledger.pause(&s.id[..8]).unwrap();
        assert!(paused.paused);
        assert_eq!(paused.next_due, None);
        let much_later = utc(2026, 1, 10, 12, 0);
        assert!(ledger.due(much_later, HOUR).unwrap().is_empty());
        assert_eq!(ledger.next_wake(much_later).unwrap(), None);
        // A due time listed before the pause can no longer be claimed.
        assert_eq!(ledger.claim(&stale, much_later, "job-1").unwrap(), None);

        let resumed = ledger.resume(&s.id, much_later).unwrap();
        assert!(!resumed.paused);
        assert_eq!(resumed.next_due, Some(utc(2026, 1, 11, 9, 0)));
        assert!(ledger.due(much_later, HOUR).unwrap().is_empty());
        assert!(ledger.runs(None, 10).unwrap().is_empty());
        // Resuming an active schedule leaves its next due time alone.
        assert_eq!(
            ledger.resume(&s.id, utc(2026, 1, 20, 0, 0)).unwrap(),
            resumed
        );
    }

    #[test]
    fn remove_forgets_the_schedule_and_its_runs() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let keep = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 2, 9, 0);
        for due in ledger.due(now, HOUR).unwrap() {
            ledger
                .claim(&due, now, &format!("job-{}", due.schedule.id))
                .unwrap()
                .unwrap();
        }
        assert_eq!(ledger.remove(&s.id).unwrap().id, s.id);
        assert!(matches!(ledger.get(&s.id), Err(ScheduleError::NotFound(_))));
        let runs = ledger.runs(None, 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].schedule_id, keep.id);
        assert!(!ledger.finish(&s.id, now, Outcome::Ok, now).unwrap());
    }

    #[test]
    fn held_runs_stay_pending_until_a_final_outcome() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        let now = utc(2026, 1, 2, 9, 0);
        let due = ledger.due(now, HOUR).unwrap().remove(0);
        ledger.claim(&due, now, "job-1").unwrap().unwrap();
        assert!(matches!(
            ledger.finish(&s.id, due.due_at, Outcome::Pending, now),
            Err(ScheduleError::PendingIsNotAnOutcome)
        ));
        assert!(ledger
            .finish(
                &s.id,
                due.due_at,
                Outcome::Held("awaiting approval".into()),
                now
            )
            .unwrap());
        let pending = ledger.pending_runs().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending[0].outcome,
            Outcome::Held("awaiting approval".into())
        );
        let done = now + TimeDelta::minutes(3);
        assert!(ledger
            .finish(
                &s.id,
                due.due_at,
                Outcome::Error("mail server down".into()),
                done
            )
            .unwrap());
        assert!(ledger.pending_runs().unwrap().is_empty());
        let run = ledger.last_run(&s.id).unwrap().unwrap();
        assert_eq!(run.outcome.to_string(), "error: mail server down");
        assert_eq!(run.finished_at, Some(done));
    }

    #[test]
    fn runs_are_listed_newest_first() {
        let (_dir, ledger) = temp_ledger();
        let s = ledger
            .add(daily(Missed::RunOnce), utc(2026, 1, 1, 10, 0))
            .unwrap();
        for day in 2..=5 {
            let now = utc(2026, 1, day, 9, 0);
            let due = ledger.due(now, HOUR).unwrap().remove(0);
            ledger
                .claim(&due, now, &format!("job-{day}"))
                .unwrap()
                .unwrap();
        }
        let runs = ledger.runs(Some(&s.id), 3).unwrap();
        let days: Vec<u32> = runs
            .iter()
            .map(|r| chrono::Datelike::day(&r.due_at))
            .collect();
        assert_eq!(days, [5, 4, 3]);
        assert_eq!(
            ledger.last_run(&s.id).unwrap().unwrap().job_id.as_deref(),
            Some("job-5")
        );
        assert_eq!(ledger.last_run("s-nothing").unwrap(), None);
        assert_eq!(ledger.runs(Some("s-nothing"), 3).unwrap(), []);
    }

    #[test]
    fn next_wake_is_the_earliest_active_due_time() {
        let (_dir, ledger) = temp_ledger();
        let now = utc(2026, 1, 1, 10, 0);
        assert_eq!(ledger.next_wake(now).unwrap(), None);
        ledger.add(daily(Missed::RunOnce), now).unwrap();
        let hourly = NewSchedule {
            cron: "@hourly".into(),
            ..daily(Missed::RunOnce)
        };
        let h = ledger.add(hourly, now).unwrap();
        assert_eq!(ledger.next_wake(now).unwrap(), Some(utc(2026, 1, 1, 11, 0)));
        // Overdue: wake now.
        let late = utc(2026, 1, 1, 11, 30);
        assert_eq!(ledger.next_wake(late).unwrap(), Some(late));
        ledger.pause(&h.id).unwrap();
        assert_eq!(ledger.next_wake(now).unwrap(), Some(utc(2026, 1, 2, 9, 0)));
    }

    #[test]
    fn missed_policy_names_round_trip() {
        for m in [Missed::RunOnce, Missed::Skip] {
            assert_eq!(m.as_str().parse::<Missed>().unwrap(), m);
            assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
        }
        assert_eq!("RUN_ONCE".parse::<Missed>().unwrap(), Missed::RunOnce);
        let err = "later".parse::<Missed>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown missed-run policy \"later\"; use run-once or skip"
        );
        assert_eq!(Missed::default(), Missed::RunOnce);
    }

    #[test]
    fn refuses_a_ledger_from_a_newer_deskhand() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedules.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match Ledger::open(&path) {
            Err(ScheduleError::NewerLedger {
                found: 99,
                supported: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
