//! The Deskhand desktop agent: the `deskhand` command line, jobs and queues (embedded SQLite or NATS),
//! the runner, skills (SKILL.md + skill.yaml) and their actions, schedules, the dashboard, the local
//! API and phone page. Browser work is `deskhand-browser`, accounts `deskhand-connectors`, workspace
//! files `deskhand-workspace`, schedule timing `deskhand-schedule`; the guard arrives with the
//! guardrails work.
//!
//! ```
//! let c = deskhand_agent::config::Config::parse("[browser]\nbackend = \"webdriver\"\n").unwrap();
//! assert_eq!(c.browser.backend.as_deref(), Some("webdriver"));
//! ```

pub mod agent;
pub mod api;
pub mod audit;
pub mod browsers;
pub mod cli;
pub mod config;
pub mod connect;
pub mod connector_skills;
pub mod dashboard;
pub mod doctor;
pub mod eval;
pub mod extension;
/// Fuzzing properties, shared by `fuzz/` and the corpus replay tests; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod hub;
pub mod job;
pub mod journal;
pub mod mcp;
pub mod model_key;
pub mod moves;
pub mod open_files;
pub mod planner;
pub mod plugins;
pub mod queue;
pub mod runner;
pub mod scheduler;
pub mod service;
pub mod site;
pub mod skills;
pub mod store;
pub mod transcript;
