//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while parsing a schedule, using the ledger or holding the
/// sleep inhibitor. Messages say what was wrong and what to do instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression was empty or blank.
    #[error(
        "the cron expression is empty; write five fields such as \"0 9 * * MON-FRI\" or a nickname such as @daily"
    )]
    EmptyCron,

    /// The cron expression did not have exactly five fields (seconds and years are refused).
    #[error(
        "cron expression \"{expr}\" has {fields} field(s); write exactly five (minute hour day-of-month month day-of-week), without seconds or years"
    )]
    FieldCount {
        /// The expression as given.
        expr: String,
        /// How many whitespace-separated fields it had.
        fields: usize,
    },

    /// An `@nickname` that is not one of the standard ones.
    #[error(
        "unknown cron nickname \"{0}\"; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
    )]
    UnknownNickname(String),

    /// The cron parser refused a field (a value out of range, an unknown name, bad syntax).
    #[error(
        "invalid cron expression \"{expr}\": {reason}; fields are minute 0-59, hour 0-23, day 1-31, month 1-12 or JAN-DEC, weekday 0-7 or SUN-SAT"
    )]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// What the parser said.
        reason: String,
    },

    /// The expression parses but names no date that exists, such as February 30.
    #[error(
        "cron expression \"{0}\" never matches a real date; pick a day that exists in that month"
    )]
    NeverDue(String),

    /// The time zone is not an IANA name that chrono-tz knows.
    #[error("unknown time zone \"{tz}\"; use an IANA name such as {suggestion}")]
    UnknownTimeZone {
        /// The zone as given.
        tz: String,
        /// The closest known name, or a common example.
        suggestion: String,
    },

    /// A missed-run policy name that is not `run-once` or `skip`.
    #[error("unknown missed-run policy \"{0}\"; use run-once or skip")]
    UnknownMissedPolicy(String),

    /// A schedule needs the name of the skill it runs.
    #[error("a schedule needs a skill name; got an empty one")]
    EmptySkill,

    /// No schedule has this id or id prefix.
    #[error("no schedule has the id or id prefix \"{0}\"; list the schedules to see their ids")]
    NotFound(String),

    /// An id prefix matched more than one schedule.
    #[error("schedule id prefix \"{prefix}\" matches {}: {}; type more of the id", .matches.len(), .matches.join(", "))]
    AmbiguousId {
        /// The prefix as given.
        prefix: String,
        /// The ids it matched.
        matches: Vec<String>,
    },

    /// `finish` was asked to record `Outcome::Pending`, which is the state before finishing.
    #[error("a run cannot be finished as pending; record ok, error, skipped or held")]
    PendingIsNotAnOutcome,

    /// The folder that should hold the ledger could not be created.
    #[error("cannot create {path} for the schedule ledger: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// SQLite refused an operation on the ledger file.
    #[error("schedule ledger {path}: {source}")]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// The ledger was written by a newer Deskhand whose layout this one does not know.
    #[error(
        "schedule ledger {path} has layout version {found}, newer than the {supported} this Deskhand knows; upgrade Deskhand"
    )]
    NewerLedger {
        /// The ledger file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },

    /// A row in the ledger holds a value that cannot be read back (edited by hand or damaged).
    #[error(
        "schedule ledger {path}: {detail}; remove and re-add the schedule, or restore the file"
    )]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// Which value and why.
        detail: String,
    },

    /// The sleep inhibitor program was found but could not be started.
    #[error("cannot start the sleep inhibitor {program}: {source}")]
    Inhibitor {
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// This crate's result type.
pub type Result<T, E = ScheduleError> = std::result::Result<T, E>;

impl ScheduleError {
    /// Another process held the ledger's database lock at that instant: worth trying again.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            ScheduleError::Ledger { source, .. } if matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        )
    }
}
