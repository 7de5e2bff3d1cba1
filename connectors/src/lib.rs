//! Deskhand connectors: OAuth with PKCE on a loopback redirect, secrets in the OS keyring,
//! Gmail, Google Calendar and Notion clients with a shared retry policy, and an offline cache
//! with incremental sync. Knows nothing of jobs or queues; the agent hands it what it needs.

pub mod cache;
pub mod calendar;
pub mod connection;
pub mod error;
pub mod gmail;
pub mod http;
pub mod hub;
pub mod mail_query;
pub mod notion;
pub mod oauth;
pub mod retry;
pub mod secrets;
pub mod sync;
pub mod token;

pub use cache::Cache;
pub use connection::{ConnectionId, ConnectionInfo, ConnectionState, Provider};
pub use error::{ConnectorError, Result};
pub use hub::{ClientCredentials, Endpoints, Hub, Resource, Settings, SyncOutcome};
pub use retry::RetryPolicy;
pub use secrets::{SecretStoreKind, Secrets};
pub use sync::{Progress, Quiet, SyncReport};
