//! What one job may touch, compiled from its skill's declared permissions and the job's
//! parameters: browser origins (allow-list with `*.` wildcards for subdomains; `!` entries deny,
//! and deny wins), workspace paths (globs), connectors with read or write, and the consequential
//! actions that run without asking. Anything not granted is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use url::Url;

use super::{Access, Permissions};

/// One origin pattern: `https://example.com`, `https://*.example.com`, `http://127.0.0.1:8080`,
/// `*.example.com` (any scheme of http/https, default port).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginRule {
    scheme: Option<String>,
    /// Lowercase host, without the `*.`.
    host: String,
    /// `*.host`: the host itself and any subdomain.
    subdomains: bool,
    port: Option<u16>,
}

impl OriginRule {
    fn parse(s: &str) -> Option<OriginRule> {
        let (scheme, rest) = match s.split_once("://") {
            Some((sc, rest)) => (Some(sc.to_ascii_lowercase()), rest),
            None => (None, s),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.is_empty() {
            return None;
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (h, Some(p.parse::<u16>().ok()?))
            }
            _ => (rest, None),
        };
        let (host, subdomains) = match host.strip_prefix("*.") {
            Some(h) => (h, true),
            None => (host, false),
        };
        if host.is_empty() || host.contains('*') {
            return None;
        }
        Some(OriginRule {
            scheme,
            host: host.to_ascii_lowercase(),
            subdomains,
            port,
        })
    }

    fn of_url(u: &Url) -> Option<OriginRule> {
        Some(OriginRule {
            scheme: Some(u.scheme().to_string()),
            host: u.host_str()?.to_ascii_lowercase(),
            subdomains: false,
            port: u.port_or_known_default(),
        })
    }

    /// The same rule as RE2 regexes over a request URL, one per scheme (the Chrome extension's
    /// `declarativeNetRequest` filters). Chrome drops a scheme's default port from URLs.
    fn regexes(&self) -> Vec<String> {
        let schemes: Vec<&str> = match &self.scheme {
            Some(s) => vec![s.as_str()],
            None => vec!["http", "https"],
        };
        let host = regex_escape(&self.host);
        let sub = if self.subdomains {
            "([a-z0-9-]+\\.)*"
        } else {
            ""
        };
        schemes
            .into_iter()
            .map(|scheme| {
                let default = match scheme {
                    "http" => Some(80),
                    "https" => Some(443),
                    _ => None,
                };
                let port = match self.port {
                    Some(p) if Some(p) == default => format!("(:{p})?"),
                    Some(p) => format!(":{p}"),
                    None => String::new(),
                };
                format!("^{}://{sub}{host}{port}([/?#]|$)", regex_escape(scheme))
            })
            .collect()
    }

    fn matches(&self, u: &Url) -> bool {
        let Some(host) = u.host_str().map(|h| h.to_ascii_lowercase()) else {
            return false;
        };
        let scheme_ok = match &self.scheme {
            Some(s) => s == u.scheme(),
            None => matches!(u.scheme(), "http" | "https"),
        };
        let host_ok = host == self.host
            || (self.subdomains
                && host
                    .strip_suffix(&self.host)
                    .is_some_and(|p| p.ends_with('.')));
        let port_ok = match self.port {
            Some(p) => u.port_or_known_default() == Some(p),
            None => u.port().is_none(),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// The compiled permissions of one job.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The skill they belong to (for messages).
    pub skill: String,
    allow: Vec<OriginRule>,
    deny: Vec<OriginRule>,
    paths: globset::GlobSet,
    path_globs: Vec<String>,
    reads: globset::GlobSet,
    read_globs: Vec<String>,
    connectors: BTreeMap<String, Access>,
    without_asking: BTreeSet<String>,
    /// The browser entries as written (for showing a plan to the person).
    sites: Vec<String>,
}

impl Policy {
    /// Compile `perms`, resolving `param:NAME` origins from `params`.
    pub fn new(skill: &str, perms: &Permissions, params: &Map<String, Value>) -> Policy {
        let mut allow = Vec::new();
        let mut deny = Vec::new();
        for entry in &perms.browser {
            let (neg, e) = match entry.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, entry.trim()),
            };
            let rule = match e.strip_prefix("param:") {
                Some(name) => params
                    .get(name)
                    .and_then(Value::as_str)
                    .and_then(|s| Url::parse(s).ok())
                    .and_then(|u| OriginRule::of_url(&u)),
                None => OriginRule::parse(e),
            };
            match (rule, neg) {
                (Some(r), false) => allow.push(r),
                (Some(r), true) => deny.push(r),
                (None, _) => tracing::warn!(skill, entry, "an origin pattern that matches nothing"),
            }
        }
        let globs = |list: &[String]| {
            let mut b = globset::GlobSetBuilder::new();
            for g in list {
                if let Ok(g) = globset::GlobBuilder::new(g).literal_separator(true).build() {
                    b.add(g);
                }
            }
            b.build().unwrap_or_else(|_| globset::GlobSet::empty())
        };
        // `param:NAME`: the folder a parameter names, and everything in it.
        let expand = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter_map(|g| match g.trim().strip_prefix("param:") {
                    Some(name) => params
                        .get(name)
                        .and_then(Value::as_str)
                        .map(|v| v.trim().trim_matches('/'))
                        .filter(|v| !v.is_empty())
                        .map(|v| format!("{}/**", globset::escape(v))),
                    None => Some(g.clone()),
                })
                .collect()
        };
        let workspace = expand(&perms.workspace);
        // What a skill may write it may read back.
        let read_globs: Vec<String> = expand(&perms.read)
            .into_iter()
            .chain(workspace.iter().cloned())
            .collect();
        Policy {
            skill: skill.to_string(),
            allow,
            deny,
            paths: globs(&workspace),
            path_globs: workspace,
            reads: globs(&read_globs),
            read_globs,
            connectors: perms.connectors.clone(),
            without_asking: perms.without_asking.iter().cloned().collect(),
            sites: perms.browser.clone(),
        }
    }

    /// What the job may touch, for the person to read: sites, connectors, files written and read.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "sites": self.sites,
            "connectors": self.connectors,
            "writes": self.path_globs,
            "reads": self.read_globs,
        })
    }

    /// The origins as regexes for a browser that filters requests itself (the person's browser,
    /// through the extension): `(allow, deny)`; deny wins.
    pub fn navigation_filters(&self) -> (Vec<String>, Vec<String>) {
        let all = |rules: &[OriginRule]| rules.iter().flat_map(OriginRule::regexes).collect();
        (all(&self.allow), all(&self.deny))
    }

    /// May the browser load this URL as a document? `about:blank` and `data:` are always fine
    /// (nothing leaves the machine); anything else needs an allowed origin that no deny matches.
    pub fn url_allowed(&self, url: &str) -> Result<(), String> {
        let u = Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
        match u.scheme() {
            "about" | "data" => return Ok(()),
            "http" | "https" => {}
            other => return Err(format!("skill {} may not open {other}: URLs", self.skill)),
        }
        if self.deny.iter().any(|r| r.matches(&u)) {
            return Err(format!(
                "skill {} is denied the origin {}",
                self.skill,
                u.origin().ascii_serialization()
            ));
        }
        if self.allow.iter().any(|r| r.matches(&u)) {
            return Ok(());
        }
        Err(format!(
            "skill {} may not open {} (allowed: {}); add the origin to its permissions.browser",
            self.skill,
            u.origin().ascii_serialization(),
            if self.allow.is_empty() {
                "none".to_string()
            } else {
                self.allow
                    .iter()
                    .map(|r| {
                        format!(
                            "{}{}{}{}",
                            r.scheme
                                .as_deref()
                                .map(|s| format!("{s}://"))
                                .unwrap_or_default(),
                            if r.subdomains { "*." } else { "" },
                            r.host,
                            r.port.map(|p| format!(":{p}")).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    }

    /// May the job write this (already normalised, workspace-relative) path?
    pub fn path_allowed(&self, rel: &str) -> Result<(), String> {
        // Case tricks: `.DESKHAND/x` is refused by the workspace API; a glob matches as written.
        if self.paths.is_match(rel) {
            Ok(())
        } else {
            Err(format!(
                "skill {} may not write {rel} (allowed: {}); add a glob to its permissions.workspace",
                self.skill,
                if self.path_globs.is_empty() {
                    "nothing".to_string()
                } else {
                    self.path_globs.join(", ")
                }
            ))
        }
    }

    /// May the job read this (already normalised, workspace-relative) path? The skill's
    /// `permissions.read` globs and its write globs; `.deskhand/` and anything outside the
    /// workspace are refused before this by the workspace itself.
    pub fn read_allowed(&self, rel: &str) -> Result<(), String> {
        if self.reads.is_match(rel) {
            Ok(())
        } else {
            Err(format!(
                "skill {} may not read {rel} (allowed: {}); add a glob to its permissions.read",
                self.skill,
                if self.read_globs.is_empty() {
                    "nothing".to_string()
                } else {
                    self.read_globs.join(", ")
                }
            ))
        }
    }

    /// May the job use this connector resource with this access?
    pub fn connector_allowed(&self, resource: &str, access: Access) -> Result<(), String> {
        match self.connectors.get(resource) {
            Some(a) if *a >= access => Ok(()),
            _ => Err(format!(
                "skill {} has no {} access to {resource}; add `{resource}: {}` to its permissions.connectors",
                self.skill,
                if access == Access::Write { "write" } else { "read" },
                if access == Access::Write { "write" } else { "read" },
            )),
        }
    }

    /// Whether the permissions name `resource` at all (a tool's own entry, `mcp:SERVER.TOOL`,
    /// then wins over its server's).
    pub fn names_connector(&self, resource: &str) -> bool {
        self.connectors.contains_key(resource)
    }

    /// Does this consequential action (`submit`, `send`, `overwrite`, `delete`,
    /// `external-write`) run without asking?
    pub fn without_asking(&self, action: &str) -> bool {
        self.without_asking.contains(action)
    }
}

/// Escape RE2 metacharacters.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn perms(browser: &[&str], workspace: &[&str]) -> Permissions {
        Permissions {
            browser: browser.iter().map(|s| s.to_string()).collect(),
            workspace: workspace.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_extension_filters_decide_as_the_policy_does() {
        let p = Policy::new(
            "t",
            &perms(
                &[
                    "https://*.example.com",
                    "!https://evil.example.com",
                    "http://127.0.0.1:8080",
                    "docs.example.org",
                    "https://a.example.net:443",
                ],
                &[],
            ),
            &Map::new(),
        );
        let (allow, deny) = p.navigation_filters();
        let compile = |v: &[String]| {
            v.iter()
                .map(|r| regex::Regex::new(r).unwrap())
                .collect::<Vec<_>>()
        };
        let (allow, deny) = (compile(&allow), compile(&deny));
        // What Chrome would decide with these rules (deny above allow above block-all).
        let filtered = |url: &str| {
            !deny.iter().any(|r| r.is_match(url)) && allow.iter().any(|r| r.is_match(url))
        };
        for url in [
            "https://example.com/a",
            "https://shop.example.com/a?b",
            "https://evil.example.com/",
            "https://notexample.com/",
            "https://example.com.evil.io/",
            "https://example.com@evil.io/",
            "http://example.com/",
            "https://example.com:8443/",
            "http://127.0.0.1:8080/x",
            "http://127.0.0.1:8081/x",
            "http://127.0.0.1/x",
            "http://docs.example.org/",
            "https://docs.example.org/?q",
            "https://docs.example.org:8443/",
            "https://a.example.net/",
            "https://a.example.net:443/",
            "https://a.example.net:444/",
            "ftp://docs.example.org/",
        ] {
            assert_eq!(
                filtered(url),
                p.url_allowed(url).is_ok(),
                "{url}: filters and policy disagree"
            );
        }
    }

    #[test]
    fn origins_allow_with_subdomain_wildcards_and_deny_wins() {
        let p = Policy::new(
            "t",
            &perms(
                &[
                    "https://*.example.com",
                    "!https://evil.example.com",
                    "http://127.0.0.1:8080",
                ],
                &[],
            ),
            &Map::new(),
        );
        assert!(p.url_allowed("https://example.com/a").is_ok());
        assert!(p.url_allowed("https://shop.example.com/a?b").is_ok());
        assert!(
            p.url_allowed("https://evil.example.com/").is_err(),
            "deny wins"
        );
        assert!(p.url_allowed("https://notexample.com/").is_err());
        assert!(p.url_allowed("https://example.com.evil.io/").is_err());
        assert!(
            p.url_allowed("http://example.com/").is_err(),
            "scheme is part of the origin"
        );
        assert!(
            p.url_allowed("https://example.com:8443/").is_err(),
            "so is the port"
        );
        assert!(p.url_allowed("http://127.0.0.1:8080/x").is_ok());
        assert!(p.url_allowed("http://127.0.0.1:8081/x").is_err());
        assert!(p.url_allowed("file:///etc/passwd").is_err());
        assert!(p.url_allowed("about:blank").is_ok());
        let e = p.url_allowed("https://other.org/").unwrap_err();
        assert!(
            e.contains("https://other.org") && e.contains("*.example.com"),
            "{e}"
        );
    }

    #[test]
    fn param_origins_come_from_the_job() {
        let p = Policy::new(
            "fill-form",
            &perms(&["param:url"], &[]),
            json!({"url": "http://127.0.0.1:4000/form.html"})
                .as_object()
                .unwrap(),
        );
        assert!(p.url_allowed("http://127.0.0.1:4000/done").is_ok());
        assert!(p.url_allowed("http://127.0.0.1:4001/").is_err());
        assert!(p.url_allowed("http://localhost:4000/").is_err());
        let none = Policy::new("x", &perms(&["param:url"], &[]), &Map::new());
        assert!(none.url_allowed("http://127.0.0.1:4000/").is_err());
    }

    #[test]
    fn paths_match_globs_without_crossing_folders_by_star() {
        let p = Policy::new("t", &perms(&[], &["reports/*", "TASKS.md"]), &Map::new());
        assert!(p.path_allowed("reports/a.csv").is_ok());
        assert!(p.path_allowed("reports/sub/a.csv").is_err());
        assert!(p.path_allowed("TASKS.md").is_ok());
        assert!(p.path_allowed("tasks.md").is_err());
        assert!(p.path_allowed("MEMORY.md").is_err());
        let deep = Policy::new("t", &perms(&[], &["reports/**"]), &Map::new());
        assert!(deep.path_allowed("reports/sub/a.csv").is_ok());
    }

    #[test]
    fn connectors_need_the_declared_access() {
        let mut p = Permissions::default();
        p.connectors.insert("gmail".into(), Access::Read);
        p.connectors.insert("notion".into(), Access::Write);
        let p = Policy::new("t", &p, &Map::new());
        assert!(p.connector_allowed("gmail", Access::Read).is_ok());
        assert!(p.connector_allowed("gmail", Access::Write).is_err());
        assert!(p.connector_allowed("notion", Access::Read).is_ok());
        assert!(p.connector_allowed("calendar", Access::Read).is_err());
    }
}
