//! What a skill may touch, as it declares it: the guard's input. Deny by default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a skill may touch. Deny by default: anything not listed is not allowed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Connector resources and the access needed: `gmail: read`, `notion: write`.
    #[serde(default)]
    pub connectors: BTreeMap<String, Access>,
    /// Browser origins (`https://*.example.com`), or `param:NAME` for the origin of a URL
    /// parameter given at run time.
    #[serde(default)]
    pub browser: Vec<String>,
    /// Workspace paths (globs) the skill may write (and read back).
    #[serde(default)]
    pub workspace: Vec<String>,
    /// Workspace paths (globs) the skill may read when a parameter names a file (an extraction
    /// schema, say). Never `.deskhand/`, never outside the workspace, whatever the glob says.
    #[serde(default)]
    pub read: Vec<String>,
    /// Consequential actions that may run without asking (`submit`, `send`, `overwrite`,
    /// `delete`, `external-write`).
    #[serde(default, rename = "without-asking")]
    pub without_asking: Vec<String>,
}

/// Read or read-and-write.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    Write,
}

