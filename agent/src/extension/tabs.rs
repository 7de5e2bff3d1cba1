//! Which tab of the person's browser a job means: `tab:active`, `tab:new`, `tab:<id>`, or
//! `tab:<URL pattern>` (`*` matches anything, e.g. `tab:https://mail.example.com/*`).

use deskhand_browser::Error as BrowserError;
use serde_json::{json, Value};

use super::ExtensionHub;

/// A job's `target` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The agent's own headless Chromium (the default).
    Headless,
    /// The active tab (of the first window that has one).
    Active,
    /// A new tab, opened at the job's URL.
    New,
    /// A tab by its id.
    Id(i64),
    /// The tab whose URL matches this pattern.
    Url(String),
}

impl Target {
    /// Parse a `target` value; empty or `headless` means the agent's own browser.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        if s.is_empty() || s == "headless" {
            return Ok(Target::Headless);
        }
        let Some(rest) = s.strip_prefix("tab:") else {
            return Err(format!(
                "target {s:?} is not understood: write headless, tab:active, tab:new, tab:<id> or tab:<URL pattern>"
            ));
        };
        Ok(match rest {
            "active" => Target::Active,
            "new" => Target::New,
            r if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) => {
                Target::Id(r.parse().map_err(|e| format!("tab id {r:?}: {e}"))?)
            }
            "" => return Err("target tab: needs active, new, an id or a URL pattern".into()),
            pattern => Target::Url(pattern.to_string()),
        })
    }

    /// Is this a tab of the person's browser?
    pub fn is_tab(&self) -> bool {
        *self != Target::Headless
    }
}

/// Find (or open) the tab a target means. `url` is where a new tab should go.
pub async fn resolve(
    hub: &ExtensionHub,
    target: &Target,
    url: &str,
    filters: &Value,
) -> Result<i64, BrowserError> {
    let pick = |code: &str, message: String| BrowserError::Extension {
        code: code.into(),
        message,
    };
    if let Target::New = target {
        let v = hub
            .command(json!({"op": "open", "url": url, "timeout_ms": 30_000, "guard": filters}))
            .await?;
        return v["tab"]
            .as_i64()
            .ok_or_else(|| pick("script", "the extension opened a tab but gave no id".into()));
    }
    let tabs = hub.command(json!({"op": "tabs"})).await?;
    let tabs = tabs.as_array().cloned().unwrap_or_default();
    let list = || {
        tabs.iter()
            .map(|t| format!("tab:{} {}", t["id"], t["url"].as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found: Vec<&Value> = match target {
        Target::Active => tabs
            .iter()
            .filter(|t| t["active"] == true)
            .take(1)
            .collect(),
        Target::Id(id) => tabs
            .iter()
            .filter(|t| t["id"].as_i64() == Some(*id))
            .collect(),
        Target::Url(p) => {
            let m = globset::GlobBuilder::new(p)
                .literal_separator(false)
                .build()
                .map_err(|e| pick("invalid", format!("tab pattern {p:?}: {e}")))?
                .compile_matcher();
            let all: Vec<&Value> = tabs
                .iter()
                .filter(|t| m.is_match(t["url"].as_str().unwrap_or_default()))
                .collect();
            // Several matches: the one in front wins, else it is ambiguous.
            match all.iter().find(|t| t["active"] == true) {
                Some(a) if all.len() > 1 => vec![*a],
                _ => all,
            }
        }
        Target::Headless | Target::New => unreachable!("handled by the caller"),
    };
    match found.as_slice() {
        [one] => one["id"]
            .as_i64()
            .ok_or_else(|| pick("script", "a tab without an id".into())),
        [] => Err(pick(
            "no_tab",
            format!(
                "no tab in your browser matches {target:?}; open tabs: {}",
                list()
            ),
        )),
        many => Err(pick(
            "ambiguous",
            format!(
                "{} tabs match {target:?} and none is in front: {}; name one as tab:<id>",
                many.len(),
                many.iter()
                    .map(|t| format!("tab:{} {}", t["id"], t["url"].as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Let `tab` load documents only from the origins in `filters` (`{"allow": [..], "deny": [..]}`,
/// regexes), blocked inside the browser until [`unguard`].
pub async fn guard(hub: &ExtensionHub, tab: i64, filters: &Value) -> Result<(), BrowserError> {
    let mut cmd = filters.clone();
    cmd["op"] = "guard".into();
    cmd["tab"] = tab.into();
    hub.command(cmd).await.map(|_| ())
}

/// Give the person's tab back its freedom to navigate.
pub async fn unguard(hub: &ExtensionHub, tab: i64) -> Result<(), BrowserError> {
    hub.command(json!({"op": "unguard", "tab": tab}))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("").unwrap(), Target::Headless);
        assert_eq!(Target::parse("tab:active").unwrap(), Target::Active);
        assert_eq!(Target::parse("tab:new").unwrap(), Target::New);
        assert_eq!(Target::parse("tab:42").unwrap(), Target::Id(42));
        assert_eq!(
            Target::parse("tab:https://x.test/*").unwrap(),
            Target::Url("https://x.test/*".into())
        );
        assert!(Target::parse("window:1")
            .unwrap_err()
            .contains("tab:active"));
        assert!(Target::parse("tab:").is_err());
    }
}
