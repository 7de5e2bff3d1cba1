//! Connection identity and health: which provider, which account, and whether it works.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConnectorError;

/// A service we connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Gmail and Google Calendar share one Google connection.
    Google,
    /// A Notion workspace.
    Notion,
}

impl Provider {
    /// Lower-case name used in commands and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Notion => "notion",
        }
    }

    /// Human name for messages.
    pub fn title(self) -> &'static str {
        match self {
            Provider::Google => "Google",
            Provider::Notion => "Notion",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "google" | "gmail" | "calendar" => Ok(Provider::Google),
            "notion" => Ok(Provider::Notion),
            other => Err(format!("unknown provider {other:?}: use google or notion")),
        }
    }
}

/// Account name used when the person has only one.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One connection: a provider and the person's name for the account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// Which service.
    pub provider: Provider,
    /// The person's label for the account ("default", "work", ...).
    pub account: String,
}

impl ConnectionId {
    /// Builds an id, using the default account when none is given.
    pub fn new(provider: Provider, account: Option<&str>) -> ConnectionId {
        ConnectionId {
            provider,
            account: account.unwrap_or(DEFAULT_ACCOUNT).to_string(),
        }
    }

    /// The `--account` flag a command needs to name this connection ("" for the default).
    pub fn account_flag(&self) -> String {
        if self.account == DEFAULT_ACCOUNT {
            String::new()
        } else {
            format!(" --account {}", self.account)
        }
    }

    /// The error for a connection without credentials.
    pub fn not_connected(&self) -> ConnectorError {
        ConnectorError::NotConnected {
            connection: self.to_string(),
            provider: self.provider.to_string(),
            account_flag: self.account_flag(),
        }
    }

    /// The error for a connection whose grant was refused.
    pub fn stale(&self, reason: impl Into<String>) -> ConnectorError {
        ConnectorError::Stale {
            connection: self.to_string(),
            provider: self.provider.to_string(),
            account_flag: self.account_flag(),
            reason: reason.into(),
        }
    }

    /// Key prefix for this connection's secrets.
    pub fn secret_key(&self, what: &str) -> String {
        format!("{}:{}:{what}", self.provider, self.account)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.account)
    }
}

impl FromStr for ConnectionId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (p, a) = s.split_once(':').unwrap_or((s, DEFAULT_ACCOUNT));
        Ok(ConnectionId::new(p.parse()?, Some(a)))
    }
}

/// Health of a connection as the person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// Working.
    Ok,
    /// The grant was refused: reconnect.
    Stale,
    /// The last sync failed for another reason (network, quota, server).
    Error,
}

impl ConnectionState {
    /// Lower-case name stored in the cache.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Ok => "ok",
            ConnectionState::Stale => "stale",
            ConnectionState::Error => "error",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> ConnectionState {
        match s {
            "stale" => ConnectionState::Stale,
            "error" => ConnectionState::Error,
            _ => ConnectionState::Ok,
        }
    }
}

/// What `deskhand connections` shows for one connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    /// `provider:account`.
    pub id: String,
    /// Which service.
    pub provider: Provider,
    /// The person's label for the account.
    pub account: String,
    /// The provider's name for the identity (email, workspace name).
    pub identity: Option<String>,
    /// Granted scopes, space separated.
    pub scopes: Vec<String>,
    /// Health.
    pub state: ConnectionState,
    /// Why it is stale or failing.
    pub reason: Option<String>,
    /// When it was connected (RFC 3339).
    pub connected_at: String,
    /// When a sync last finished well (RFC 3339).
    pub last_sync_at: Option<String>,
}
