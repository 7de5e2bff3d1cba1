//! A plugin's MCP servers, `.mcp.json` (`{"mcpServers": {NAME: {...}}}`): a stdio server
//! (`command`, `args`, `env`) or a streamable HTTP one (`type: "http"`, `url`, `headers`). An
//! entry Deskhand cannot start as written (no command or URL, or the old SSE transport) is
//! listed as "needs configuration", not refused: the rest of the plugin works.
//!
//! A server is named `PLUGIN-NAME` inside Deskhand (its tools `mcp_PLUGIN-NAME_TOOL`, its
//! permission `mcp:PLUGIN-NAME`), so two plugins' servers never collide. `${CLAUDE_PLUGIN_ROOT}`
//! and `${CLAUDE_PLUGIN_DATA}` are expanded when a job starts the server, as are `${VAR}` and
//! `${VAR:-default}` from Deskhand's environment, except Deskhand's own `DESKHAND_*` variables,
//! which a plugin never gets.

use std::collections::BTreeMap;

use serde_json::Value;

/// One server of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Its name in `.mcp.json`.
    pub declared: String,
    /// Its name in Deskhand: `PLUGIN-NAME`.
    pub name: String,
    /// How it is reached.
    pub kind: ServerKind,
}

/// How a plugin's server is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerKind {
    /// A child process speaking MCP on stdio.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its whole environment (values may name variables).
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP.
    Http {
        /// The endpoint.
        url: String,
        /// Headers sent with every request (values may name variables).
        headers: BTreeMap<String, String>,
    },
    /// Not startable as written: why.
    NeedsConfiguration(String),
}

impl Server {
    /// One line for people: what runs or what is reached.
    pub fn shown(&self) -> String {
        match &self.kind {
            ServerKind::Stdio { command, args, env } => {
                let mut s = format!("runs {command}");
                for a in args {
                    s.push(' ');
                    s.push_str(a);
                }
                if !env.is_empty() {
                    let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    s.push_str(&format!(" (env {})", vars.join(", ")));
                }
                s
            }
            ServerKind::Http { url, headers } => {
                let mut s = format!("reaches {url}");
                if !headers.is_empty() {
                    s.push_str(&format!(
                        " (headers {})",
                        headers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                s
            }
            ServerKind::NeedsConfiguration(why) => format!("needs configuration: {why}"),
        }
    }
}

/// Deskhand's name for a plugin's server: `PLUGIN-NAME`, lowercase, other characters `-`.
pub fn runtime_name(plugin: &str, declared: &str) -> String {
    let mut s: String = declared
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    format!("{plugin}-{}", s.trim_matches('-'))
}

/// The servers of an `.mcp.json` value, and warnings.
pub fn parse(plugin: &str, file: &str, v: &Value) -> Result<(Vec<Server>, Vec<String>), String> {
    let map = v
        .get("mcpServers")
        .unwrap_or(v)
        .as_object()
        .ok_or("must be an object of servers by name (\"mcpServers\": {NAME: {...}})")?;
    let mut out: Vec<Server> = Vec::new();
    let mut warnings = Vec::new();
    for (declared, e) in map {
        let e = e
            .as_object()
            .ok_or_else(|| format!("server {declared:?} must be an object"))?;
        let strings = |k: &str| -> Result<BTreeMap<String, String>, String> {
            match e.get(k) {
                None => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k2, v)| {
                        v.as_str()
                            .map(|s| (k2.clone(), s.to_string()))
                            .ok_or_else(|| {
                                format!("server {declared:?}: {k}.{k2} must be a string")
                            })
                    })
                    .collect(),
                Some(_) => Err(format!(
                    "server {declared:?}: {k:?} must be an object of strings"
                )),
            }
        };
        for k in e.keys() {
            if !["type", "command", "args", "env", "url", "headers", "cwd"].contains(&k.as_str()) {
                warnings.push(format!(
                    "{file}: server {declared:?}: field {k:?} is ignored"
                ));
            }
        }
        let kind_field = e.get("type").and_then(Value::as_str).unwrap_or_default();
        let command = e.get("command").and_then(Value::as_str).unwrap_or_default();
        let url = e.get("url").and_then(Value::as_str).unwrap_or_default();
        let kind = match kind_field {
            "sse" => ServerKind::NeedsConfiguration(
                "the SSE transport is not supported; give a streamable HTTP URL (type \"http\")"
                    .into(),
            ),
            "http" | "streamable-http" | "" if !url.is_empty() => ServerKind::Http {
                url: url.to_string(),
                headers: strings("headers")?,
            },
            "stdio" | "" if !command.is_empty() => ServerKind::Stdio {
                command: command.to_string(),
                args: match e.get("args") {
                    None => vec![],
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect(),
                    Some(_) => {
                        return Err(format!(
                            "server {declared:?}: \"args\" must be a list of strings"
                        ))
                    }
                },
                env: strings("env")?,
            },
            "http" | "streamable-http" => {
                ServerKind::NeedsConfiguration("it names no \"url\"".into())
            }
            "stdio" | "" => {
                ServerKind::NeedsConfiguration("it names no \"command\" or \"url\"".into())
            }
            other => ServerKind::NeedsConfiguration(format!(
                "transport {other:?} is not supported (stdio or http)"
            )),
        };
        if e.contains_key("cwd") {
            warnings.push(format!(
                "{file}: server {declared:?}: \"cwd\" is ignored; servers start in the plugin's data folder"
            ));
        }
        let name = runtime_name(plugin, declared);
        if out.iter().any(|s| s.name == name) {
            return Err(format!(
                "two servers are both named {name:?} in Deskhand; rename one"
            ));
        }
        out.push(Server {
            declared: declared.clone(),
            name,
            kind,
        });
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn servers_parse_and_unusable_ones_need_configuration() {
        let v = json!({"mcpServers": {
            "Shop DB": {"command": "${CLAUDE_PLUGIN_ROOT}/bin/shop", "args": ["--x"], "env": {"T": "${TOKEN}"}},
            "remote": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${KEY}"}},
            "old": {"type": "sse", "url": "https://x/sse"},
            "empty": {"type": "http"},
        }});
        let (s, w) = parse("tools", ".mcp.json", &v).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let by = |n: &str| s.iter().find(|x| x.declared == n).unwrap();
        assert_eq!(by("Shop DB").name, "tools-shop-db");
        assert!(matches!(by("Shop DB").kind, ServerKind::Stdio { .. }));
        assert!(matches!(by("remote").kind, ServerKind::Http { .. }));
        assert!(by("remote").shown().contains("headers Authorization"));
        assert!(!by("remote").shown().contains("KEY"));
        assert!(matches!(by("old").kind, ServerKind::NeedsConfiguration(_)));
        assert!(by("empty").shown().starts_with("needs configuration"));
        assert!(parse("t", "f", &json!({"a": {"command": "x", "args": "no"}})).is_err());
    }
}
