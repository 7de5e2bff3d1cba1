//! Deskhand schedules: when saved skills are due, and a durable ledger proving each due time
//! runs at most once. Knows nothing of jobs or queues; the agent wires it to them.
//!
//! - [`Cron`] is a five-field cron expression (or `@daily`-style nickname) in an IANA time
//!   zone. [`Cron::next_after`] gives the next due time, with daylight saving handled as a
//!   person expects (see [`spec`]).
//! - [`Ledger`] is the SQLite file `<workspace>/.deskhand/schedules.db`, shared by the CLI and
//!   the daemon: [`Schedule`]s with their next due time already written, and one [`Run`] row
//!   per claimed due time.
//! - [`Inhibitor`] keeps the machine from sleeping while a due time is close.
//!
//! # Data flow
//!
//! The agent sleeps until [`Ledger::next_wake`], holding the [`Inhibitor`] when that is a few
//! minutes away. Awake, it lists [`Ledger::due`] schedules, and for each calls
//! [`Ledger::claim`] with a fresh job id: one transaction that records the run and moves the
//! schedule to its next due time. `Some(claim)` with `claim.run` means "submit the job with
//! that id now"; `None` means another process got there first. When the job ends the agent
//! calls [`Ledger::finish`]. After a crash, [`Ledger::pending_runs`] lists claims whose job
//! may never have been submitted: resubmit under the same job id if it does not exist.
//!
//! ```
//! use std::time::Duration;
//! use chrono::{TimeZone, Utc};
//! use deskhand_schedule::{Cron, Ledger, Missed, NewSchedule, Outcome};
//!
//! // 02:30 does not exist in Berlin on 2026-03-29: the job runs once, at 03:00 CEST.
//! let cron = Cron::parse("30 2 * * *", "Europe/Berlin")?;
//! let saturday_noon = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
//! let sunday_0300_cest = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
//! assert_eq!(cron.next_after(saturday_noon), Some(sunday_0300_cest));
//!
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::open(dir.path().join(".deskhand/schedules.db"))?;
//! let schedule = ledger.add(
//!     NewSchedule {
//!         cron: "30 2 * * *".into(),
//!         tz: "Europe/Berlin".into(),
//!         skill: "backup-notes".into(),
//!         missed: Missed::RunOnce,
//!         ..Default::default()
//!     },
//!     saturday_noon,
//! )?;
//! assert_eq!(schedule.next_due, Some(sunday_0300_cest));
//!
//! let now = sunday_0300_cest + chrono::TimeDelta::seconds(5);
//! let due = ledger.due(now, Duration::from_secs(15 * 60))?;
//! let claim = ledger.claim(&due[0], now, "job-42")?.expect("nobody else claimed it");
//! assert!(claim.run);
//! assert_eq!(ledger.claim(&due[0], now, "job-43")?, None); // at most once
//!
//! ledger.finish(&claim.schedule_id, claim.due_at, Outcome::Ok, now)?;
//! assert_eq!(ledger.last_run(&schedule.id)?.unwrap().outcome, Outcome::Ok);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod error;
/// Fuzzing properties, shared by `fuzz/` and the corpus replay test; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod inhibit;
pub mod ledger;
pub mod spec;

pub use error::{Result, ScheduleError};
pub use inhibit::{Inhibitor, DEFAULT_INHIBITOR};
pub use ledger::{Claim, Due, Ledger, Missed, NewSchedule, Outcome, Run, Schedule, MISSED_CAP};
pub use spec::Cron;
