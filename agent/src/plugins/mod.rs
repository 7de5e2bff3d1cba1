//! Plugins in the Claude Code format (issue 17): a folder with skills, slash commands,
//! sub-agents, MCP servers and hooks, installed from a folder, a git URL or a marketplace
//! ([`install`], `deskhand plugins …`).
//!
//! Installed plugins live read-only in `<workspace>/plugins/NAME/`, recorded in
//! `.deskhand/plugins.json` with the hash of their whole tree. A plugin's parts are in use only
//! while it is enabled and its tree still has that hash ([`active`]); then:
//! - its skills and commands are skills named `PLUGIN:NAME` (`/PLUGIN:NAME` runs one;
//!   commands and prompt-only skills run through the planner, under the planner's permissions);
//! - its agents are sub-agents the planner may delegate to;
//! - its MCP servers start with planned jobs, which may call them (`mcp:PLUGIN-SERVER`, every
//!   call not marked read-only waiting for approval);
//! - its command hooks run around the planner's tool calls, if the person allowed them.

pub mod agents;
pub mod commands;
pub mod hooks;
pub mod install;
pub mod manifest;
pub mod marketplace;
pub mod servers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use install::{PluginError, Record};
pub use manifest::Plugin;

use crate::mcp::{McpSection, ServerConfig, ServerSpec};
use servers::ServerKind;

/// Whether an installed plugin's parts are in use.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Enabled, and its tree is the one accepted.
    Active,
    /// Turned off by the person (or installed off: hooks not allowed).
    Disabled,
    /// Its installed files changed since it was accepted: off until installed again.
    Modified,
    /// It no longer reads (a file removed by hand): off, with why.
    Broken(String),
}

impl State {
    /// For people, about the plugin `name`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            State::Active => "enabled".into(),
            State::Disabled => "disabled".into(),
            State::Modified => format!(
                "off: its files changed since you accepted it; `deskhand plugins update {name}` installs it again"
            ),
            State::Broken(why) => format!("off: {why}"),
        }
    }
}

/// One installed plugin.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its name.
    pub name: String,
    /// What was recorded at install.
    pub record: Record,
    /// Whether its parts are in use.
    pub state: State,
    /// The plugin, when it reads.
    pub plugin: Option<Plugin>,
}

/// Every installed plugin with its state, by name.
pub fn installed(workspace: &Path) -> Result<Vec<Installed>, PluginError> {
    let reg = install::registry(workspace)?;
    Ok(reg
        .into_iter()
        .map(|(name, record)| {
            let dir = install::installed_dir(workspace, &name);
            let (state, plugin) = match install::tree_hash(&dir) {
                Err(e) => (State::Broken(e.to_string()), None),
                Ok(h) if h != record.tree => (State::Modified, manifest::read(&dir).ok()),
                Ok(_) => match manifest::read(&dir) {
                    Err(p) => (
                        State::Broken(
                            p.iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join("; "),
                        ),
                        None,
                    ),
                    Ok(p) if record.enabled => (State::Active, Some(p)),
                    Ok(p) => (State::Disabled, Some(p)),
                },
            };
            Installed {
                name,
                record,
                state,
                plugin,
            }
        })
        .collect())
}

/// An active plugin: its parts and what the person allowed.
#[derive(Debug, Clone)]
pub struct Active {
    /// The plugin, read from its installed folder.
    pub plugin: Plugin,
    /// Whether its command hooks may run.
    pub hooks_allowed: bool,
    /// `${CLAUDE_PLUGIN_DATA}`.
    pub data: PathBuf,
}

/// The plugins whose parts are in use. A damaged registry means none (and says so in the log).
pub fn active(workspace: &Path) -> Vec<Active> {
    match installed(workspace) {
        Err(e) => {
            tracing::warn!(error = %e, "plugins are off");
            vec![]
        }
        Ok(all) => all
            .into_iter()
            .filter(|i| i.state == State::Active)
            .filter_map(|i| {
                Some(Active {
                    data: install::data_dir(workspace, &i.name),
                    hooks_allowed: i.record.hooks_allowed,
                    plugin: i.plugin?,
                })
            })
            .collect(),
    }
}

/// Where a plugin part's `${CLAUDE_PLUGIN_*}` variables point, and the rest of the environment:
/// Deskhand's own `DESKHAND_*` variables are never given to a plugin.
fn variable(a: &Active, name: &str) -> Option<String> {
    match name {
        "CLAUDE_PLUGIN_ROOT" => Some(a.plugin.root.display().to_string()),
        "CLAUDE_PLUGIN_DATA" => Some(a.data.display().to_string()),
        n if n.starts_with("DESKHAND_") => None,
        n => std::env::var(n).ok(),
    }
}

/// The MCP servers of active plugins, ready to start, and those that cannot start (with why).
pub fn server_specs(plugins: &[Active]) -> (Vec<ServerSpec>, BTreeMap<String, String>) {
    let mut specs = Vec::new();
    let mut unusable = BTreeMap::new();
    for a in plugins {
        for s in &a.plugin.servers {
            let config = match &s.kind {
                ServerKind::Stdio { command, args, env } => ServerConfig {
                    command: command.clone(),
                    args: args.clone(),
                    env: env.clone(),
                    ..Default::default()
                },
                ServerKind::Http { url, headers } => ServerConfig {
                    url: Some(url.clone()),
                    headers: headers.clone(),
                    ..Default::default()
                },
                ServerKind::NeedsConfiguration(why) => {
                    unusable.insert(s.name.clone(), format!("needs configuration: {why}"));
                    continue;
                }
            };
            let section = McpSection {
                servers: [(s.name.clone(), config)].into(),
            };
            match crate::mcp::specs(&section, |k| variable(a, k)) {
                Ok(mut v) => specs.append(&mut v),
                Err(e) => {
                    unusable.insert(
                        s.name.clone(),
                        format!("{e} (in plugin {}'s .mcp.json)", a.plugin.name),
                    );
                }
            }
        }
    }
    (specs, unusable)
}

/// The permission resources of active plugins' servers (`mcp:PLUGIN-SERVER`): planned jobs may
/// call them, every call not marked read-only still waiting for approval.
pub fn server_resources(plugins: &[Active]) -> Vec<String> {
    plugins
        .iter()
        .flat_map(|a| a.plugin.servers.iter())
        .filter(|s| !matches!(s.kind, ServerKind::NeedsConfiguration(_)))
        .map(|s| format!("mcp:{}", s.name))
        .collect()
}

/// A sub-agent of an active plugin, by its full name `PLUGIN:NAME`.
pub fn agents(plugins: &[Active]) -> Vec<(String, agents::AgentDef)> {
    plugins
        .iter()
        .flat_map(|a| {
            a.plugin
                .agents
                .iter()
                .map(|d| (format!("{}:{}", a.plugin.name, d.name), d.clone()))
        })
        .collect()
}

/// A command of an active plugin, by its full name `PLUGIN:NAME`.
pub fn command<'a>(plugins: &'a [Active], full: &str) -> Option<&'a commands::CommandDef> {
    let (p, c) = full.split_once(':')?;
    plugins
        .iter()
        .find(|a| a.plugin.name == p)?
        .plugin
        .commands
        .iter()
        .find(|d| d.name == c)
}

/// Tool names as a plugin writes them (Claude Code's `Read`, `mcp__server__tool`, or
/// Deskhand's own `file_read`) matched against the tools on offer: the names of those it may
/// use. Names that match nothing (`Bash(git:*)`: Deskhand has no shell tool) give nothing.
pub fn allowed_tools(plugin: &str, written: &[String], offered: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for w in written {
        let w = w.trim();
        let wanted: Vec<String> = match w {
            "Read" => vec!["file_read".into()],
            "Write" => vec!["file_write".into()],
            "Edit" | "MultiEdit" => vec!["file_edit".into()],
            "Glob" | "LS" => vec!["file_list".into()],
            "Grep" => vec!["file_search".into()],
            "WebFetch" => vec!["browser_extract".into()],
            "Task" => vec!["delegate".into()],
            _ => match w.strip_prefix("mcp__") {
                // `mcp__SERVER__TOOL`; SERVER as the plugin declared it, or Claude Code's
                // `plugin_PLUGIN_SERVER`; TOOL may be `*`.
                Some(rest) => match rest.split_once("__") {
                    Some((server, tool)) => {
                        let server = server
                            .strip_prefix(&format!("plugin_{plugin}_"))
                            .unwrap_or(server);
                        let ours = servers::runtime_name(plugin, server);
                        let prefixes = [format!("mcp_{ours}_"), format!("mcp_{server}_")];
                        offered
                            .iter()
                            .filter(|o| {
                                prefixes.iter().any(|p| {
                                    o.strip_prefix(p.as_str())
                                        .is_some_and(|t| tool == "*" || t == tool)
                                })
                            })
                            .cloned()
                            .collect()
                    }
                    None => offered
                        .iter()
                        .filter(|o| {
                            o.starts_with(&format!("mcp_{}_", servers::runtime_name(plugin, rest)))
                        })
                        .cloned()
                        .collect(),
                },
                None => vec![w.to_string()],
            },
        };
        for t in wanted {
            if offered.contains(&t) && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_tool_names_map_to_deskhand_tools() {
        let offered: Vec<String> = [
            "file_read",
            "file_write",
            "browser_extract",
            "mcp_shop-db_lookup_price",
            "mcp_shop-db_delete_all",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            allowed_tools(
                "shop",
                &w(&["Read", "Bash(git:*)", "mcp__db__lookup_price"]),
                &offered
            ),
            vec!["file_read", "mcp_shop-db_lookup_price"]
        );
        assert_eq!(
            allowed_tools("shop", &w(&["mcp__plugin_shop_db__*"]), &offered).len(),
            2
        );
        assert_eq!(
            allowed_tools("shop", &w(&["file_write"]), &offered),
            vec!["file_write"]
        );
        assert!(allowed_tools("shop", &w(&["Bash"]), &offered).is_empty());
    }
}
