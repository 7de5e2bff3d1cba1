//! A plugin's hooks, `hooks/hooks.json`: commands run on events of a planned job. Hooks run
//! arbitrary programs, so a plugin that has command hooks is installed disabled and is enabled
//! only when the person allows its hooks explicitly (`plugins enable NAME --allow-hooks`).
//!
//! Supported: `type: "command"` hooks on `PreToolUse` (before a tool call; exit code 2 blocks
//! the call and its stderr is what the model is told) and `PostToolUse` (after it), with a
//! `matcher` (a regular expression over the tool's name; empty or `*` matches all). Other events
//! and hook types are listed at install and never run.

use std::path::PathBuf;

use serde_json::Value;

/// Events whose hooks Deskhand runs.
pub const SUPPORTED: &[&str] = &["PreToolUse", "PostToolUse"];

/// How long a hook may run unless its `timeout` says otherwise, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// One hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The event (`PreToolUse`).
    pub event: String,
    /// The tool names it applies to (a regular expression; empty: all).
    pub matcher: String,
    /// `command`, `prompt`, …
    pub kind: String,
    /// The shell command (for `command` hooks).
    pub command: String,
    /// Seconds it may run.
    pub timeout_secs: u64,
}

impl Hook {
    /// Whether Deskhand runs it (when the person allowed the plugin's hooks).
    pub fn supported(&self) -> bool {
        self.kind == "command" && SUPPORTED.contains(&self.event.as_str())
    }

    /// Whether it applies to the tool `name`.
    pub fn matches(&self, name: &str) -> bool {
        let m = self.matcher.trim();
        if m.is_empty() || m == "*" {
            return true;
        }
        regex::Regex::new(&format!("^(?:{m})$")).is_ok_and(|r| r.is_match(name))
    }
}

/// The hooks in a hooks.json value (`{"hooks": {EVENT: [{matcher, hooks: [...]}]}}`), and
/// warnings about those that will not run.
pub fn parse(file: &str, v: &Value) -> Result<(Vec<Hook>, Vec<String>), String> {
    let events = v
        .get("hooks")
        .unwrap_or(v)
        .as_object()
        .ok_or("must hold an object \"hooks\" of events")?;
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (event, groups) in events {
        let groups = groups
            .as_array()
            .ok_or_else(|| format!("event {event:?} must be a list of matcher groups"))?;
        for g in groups {
            let matcher = g
                .get("matcher")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !matcher.is_empty()
                && matcher != "*"
                && regex::Regex::new(&format!("^(?:{matcher})$")).is_err()
            {
                return Err(format!(
                    "matcher {matcher:?} of {event} is not a regular expression"
                ));
            }
            let hooks = g
                .get("hooks")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("a group of {event} must hold a list \"hooks\""))?;
            for h in hooks {
                let kind = h
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("a hook of {event} has no \"type\""))?
                    .to_string();
                let command = h
                    .get("command")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if kind == "command" && command.trim().is_empty() {
                    return Err(format!("a command hook of {event} has no \"command\""));
                }
                let timeout_secs = match h.get("timeout") {
                    None => DEFAULT_TIMEOUT_SECS,
                    Some(t) => t
                        .as_u64()
                        .filter(|t| (1..=3600).contains(t))
                        .ok_or_else(|| {
                            format!("a hook's timeout of {event} must be 1 to 3600 seconds")
                        })?,
                };
                let hook = Hook {
                    event: event.clone(),
                    matcher: matcher.clone(),
                    kind,
                    command,
                    timeout_secs,
                };
                if !hook.supported() {
                    warnings.push(format!(
                        "{file}: a {} hook on {event} is not supported by Deskhand and never runs",
                        hook.kind
                    ));
                }
                out.push(hook);
            }
        }
    }
    Ok((out, warnings))
}

/// A hook ready to run in a job: its plugin's folders with it.
#[derive(Debug, Clone)]
pub struct Armed {
    /// The plugin's name.
    pub plugin: String,
    /// `${CLAUDE_PLUGIN_ROOT}`.
    pub root: PathBuf,
    /// `${CLAUDE_PLUGIN_DATA}`: where it runs.
    pub data: PathBuf,
    /// The hook.
    pub hook: Hook,
}

/// How a hook run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    /// Its exit code (none: killed at its timeout, or it did not start).
    pub code: Option<i32>,
    /// Its stderr (at most 2,000 characters), or why it did not run.
    pub said: String,
}

impl Ran {
    /// Exit code 2 of a `PreToolUse` hook: the call must not run.
    pub fn blocks(&self) -> bool {
        self.code == Some(2)
    }
}

/// The most of a hook's stderr kept.
const MAX_SAID: usize = 2_000;

/// Run one hook for the tool call `tool` (its `input`, and `response` after it ran): `sh -c`
/// with a clean environment (PATH and the plugin's two folders only), in the plugin's data
/// folder, the event as JSON on stdin, killed at its timeout.
pub async fn run(a: &Armed, job: &str, tool: &str, input: &Value, response: Option<&Value>) -> Ran {
    use tokio::io::AsyncWriteExt;
    let root = a.root.display().to_string();
    let data = a.data.display().to_string();
    let command = a
        .hook
        .command
        .replace("${CLAUDE_PLUGIN_ROOT}", &root)
        .replace("${CLAUDE_PLUGIN_DATA}", &data);
    let mut event = serde_json::json!({
        "session_id": job,
        "hook_event_name": a.hook.event,
        "tool_name": tool,
        "tool_input": input,
        "cwd": data,
    });
    if let Some(r) = response {
        event["tool_response"] = r.clone();
    }
    let _ = std::fs::create_dir_all(&a.data);
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&command)
        .env_clear()
        .env("CLAUDE_PLUGIN_ROOT", &root)
        .env("CLAUDE_PLUGIN_DATA", &data)
        .current_dir(&a.data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                code: None,
                said: format!("the hook did not start: {e}"),
            }
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = event.to_string().into_bytes();
        // A hook that does not read its input is not an error.
        let _ = stdin.write_all(&bytes).await;
    }
    let limit = std::time::Duration::from_secs(a.hook.timeout_secs);
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => Ran {
            code: None,
            said: format!(
                "the hook took longer than {} s and was stopped",
                a.hook.timeout_secs
            ),
        },
        Ok(Err(e)) => Ran {
            code: None,
            said: format!("the hook failed: {e}"),
        },
        Ok(Ok(out)) => Ran {
            code: out.status.code(),
            said: String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(MAX_SAID)
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hooks_parse_and_match() {
        let v = json!({"hooks": {
            "PreToolUse": [{"matcher": "mcp_.*_delete.*|file_write", "hooks": [
                {"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/check.sh", "timeout": 5}]}],
            "SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}],
        }});
        let (h, w) = parse("hooks/hooks.json", &v).unwrap();
        assert_eq!(h.len(), 2);
        let pre = h.iter().find(|h| h.event == "PreToolUse").unwrap();
        assert!(pre.supported() && pre.matches("file_write") && pre.matches("mcp_x_delete_all"));
        assert!(!pre.matches("file_read"));
        assert_eq!(pre.timeout_secs, 5);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("SessionStart"));
        assert!(parse(
            "f",
            &json!({"hooks": {"PreToolUse": [{"matcher": "(", "hooks": []}]}})
        )
        .is_err());
        assert!(parse(
            "f",
            &json!({"hooks": {"PreToolUse": [{"hooks": [{"type": "command"}]}]}})
        )
        .is_err());
    }

    #[tokio::test]
    async fn a_hook_runs_clean_and_exit_2_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let hook = |command: &str| Armed {
            plugin: "p".into(),
            root: dir.path().join("root"),
            data: dir.path().join("data"),
            hook: Hook {
                event: "PreToolUse".into(),
                matcher: String::new(),
                kind: "command".into(),
                command: command.into(),
                timeout_secs: 2,
            },
        };
        std::env::set_var("DESKHAND_HOOK_TEST_SECRET", "s3cret");
        let r = run(
            &hook("read -r l; echo \"$l|$DESKHAND_HOOK_TEST_SECRET|$CLAUDE_PLUGIN_ROOT|$(pwd)\" >&2; exit 2"),
            "j1",
            "file_write",
            &json!({"path": "x"}),
            None,
        )
        .await;
        assert!(r.blocks(), "{r:?}");
        assert!(
            r.said.contains("\"tool_name\":\"file_write\""),
            "{}",
            r.said
        );
        assert!(!r.said.contains("s3cret"), "{}", r.said);
        assert!(
            r.said.ends_with(&format!(
                "|{}|{}",
                dir.path().join("root").display(),
                dir.path().join("data").display()
            )),
            "{}",
            r.said
        );
        let slow = run(&hook("sleep 10"), "j1", "t", &json!({}), None).await;
        assert_eq!(slow.code, None);
        assert!(slow.said.contains("longer than 2 s"));
        assert_eq!(
            run(&hook("exit 0"), "j1", "t", &json!({}), None).await.code,
            Some(0)
        );
    }
}
