//! The Deskhand desktop agent. This release holds the command line surface of the browser engine
//! (`deskhand browse …`), the bundled demo, the benchmarks, configuration and atomic outputs; jobs,
//! queues and the guard arrive with the dispatch and guardrails work.
//!
//! ```
//! let c = deskhand_agent::config::Config::parse("[browser]\nbackend = \"webdriver\"\n").unwrap();
//! assert_eq!(c.browser.backend.as_deref(), Some("webdriver"));
//! ```

pub mod agent;
pub mod api;
pub mod browsers;
pub mod cli;
pub mod config;
pub mod connect;
pub mod connector_skills;
pub mod dashboard;
pub mod job;
pub mod output;
pub mod queue;
pub mod runner;
pub mod scheduler;
pub mod site;
pub mod skills;
pub mod store;
