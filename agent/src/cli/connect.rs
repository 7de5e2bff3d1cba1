//! `connect`, `disconnect`, `connections`, `sync`, and the cache readers `mail`, `calendar`,
//! `notion`.

use crate::cli::safe_text::print_json;
use crate::{errln, outln};
use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use deskhand_connectors::mail_query::MailQuery;
use deskhand_connectors::{
    Cache, ConnectionId, ConnectionInfo, ConnectionState, Progress, Provider, Resource,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::connect::{client_credentials, open_cache, open_hub};

/// What `connect` and `disconnect` name: a provider, or an MCP server (`mcp:NAME`).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Google or Notion.
    Provider(Provider),
    /// A remote MCP server of the config or a plugin, by its name.
    Mcp(String),
}

fn parse_target(s: &str) -> Result<Target, String> {
    if let Some(name) = s.strip_prefix("mcp:") {
        if name.is_empty() {
            return Err("name the MCP server: mcp:NAME".into());
        }
        return Ok(Target::Mcp(name.to_string()));
    }
    s.parse::<Provider>()
        .map(Target::Provider)
        .map_err(|_| format!("{s:?}: give google, notion or mcp:NAME"))
}

/// `deskhand connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// google, notion, or mcp:NAME (a remote MCP server that asks you to sign in).
    #[arg(value_parser = parse_target)]
    pub target: Target,
    /// Your name for this account when you connect more than one ("work", "home").
    #[arg(long)]
    pub account: Option<String>,
    /// OAuth client id (default: config or $DESKHAND_<PROVIDER>_CLIENT_ID).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the OAuth client secret from standard input (it is kept in the secret store).
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Notion: read an internal-integration token from standard input instead of OAuth.
    #[arg(long)]
    pub token_stdin: bool,
    /// Print the sign-in URL instead of opening the browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Extra Google scope for skills you trust with write access (repeatable).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

/// `deskhand disconnect`.
#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// google, notion, or mcp:NAME.
    #[arg(value_parser = parse_target)]
    pub target: Target,
    /// Account name.
    #[arg(long)]
    pub account: Option<String>,
}

/// `deskhand connections`.
#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    /// JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `deskhand sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// gmail, calendar or notion (default: everything connected).
    pub what: Option<Resource>,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    /// JSON report for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `deskhand mail`.
#[derive(Debug, Args)]
pub struct MailArgs {
    #[command(subcommand)]
    cmd: MailCmd,
}

#[derive(Debug, Subcommand)]
enum MailCmd {
    /// Search cached mail with Gmail syntax: from: to: subject: is:unread label: after: before:
    /// newer_than: has:attachment "phrases" words.
    Search {
        /// The query (quote it).
        query: String,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// `deskhand calendar`.
#[derive(Debug, Args)]
pub struct CalendarArgs {
    #[command(subcommand)]
    cmd: CalendarCmd,
}

#[derive(Debug, Subcommand)]
enum CalendarCmd {
    /// Upcoming events from the cache, in your time zone.
    Agenda {
        /// Days from now.
        #[arg(long, default_value_t = 7)]
        days: i64,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// `deskhand notion`.
#[derive(Debug, Args)]
pub struct NotionArgs {
    #[command(subcommand)]
    cmd: NotionCmd,
}

#[derive(Debug, Subcommand)]
enum NotionCmd {
    /// Pages of a cached data source (id or title), optionally filtered and sorted.
    Query {
        /// Data source id or title.
        data_source: String,
        /// Keep pages whose property equals (or, for lists, contains) a value: `Status=Done`.
        #[arg(long = "where", value_name = "PROP=VALUE")]
        filters: Vec<String>,
        /// Sort by this property (prefix `-` for descending).
        #[arg(long)]
        sort: Option<String>,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn read_stdin_secret(what: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        errln!("Paste the {what} and press Enter, then Ctrl-D:");
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading standard input")?;
    let s = s.trim().to_string();
    anyhow::ensure!(!s.is_empty(), "no {what} on standard input");
    Ok(s)
}

/// `deskhand connect`.
pub async fn connect(a: ConnectArgs, ws: &Path, config: &Config) -> anyhow::Result<()> {
    let provider = match &a.target {
        Target::Provider(p) => *p,
        Target::Mcp(name) => return connect_mcp(name, a.no_browser, ws, config).await,
    };
    let id = ConnectionId::new(provider, a.account.as_deref());
    let hub = open_hub(ws, config)?;
    let info = if a.token_stdin {
        anyhow::ensure!(
            provider == Provider::Notion,
            "--token-stdin is for Notion internal integrations; Google connects in the browser"
        );
        let token = read_stdin_secret("Notion integration token")?;
        hub.connect_token(&id, &token).await?
    } else {
        let secret = if a.client_secret_stdin {
            Some(read_stdin_secret("OAuth client secret")?)
        } else {
            None
        };
        let client = client_credentials(provider, config, a.client_id.clone(), secret)?;
        let no_browser = a.no_browser;
        hub.connect(&id, &client, &a.scopes, |url| {
            // The URL carries no secret: state and the PKCE challenge only.
            // Nothing to stop here on a closed stdout: the sign-in fails by its own timeout.
            let _ = outln!("Open this URL to allow access:\n{url}");
            if !no_browser && webbrowser::open(url.as_str()).is_err() {
                errln!("(could not open a browser; open the URL yourself)");
            }
            errln!("Waiting for the browser to come back to 127.0.0.1 ...");
        })
        .await?
    };
    outln!(
        "Connected {} as {} ({}). Run `deskhand sync` to fill the local cache.",
        info.id,
        info.identity.as_deref().unwrap_or("?"),
        hub_secrets_note(ws, config)
    )?;
    Ok(())
}

/// `deskhand connect mcp:NAME`: sign in to a remote MCP server of the config or of a plugin.
async fn connect_mcp(
    name: &str,
    no_browser: bool,
    ws: &Path,
    config: &Config,
) -> anyhow::Result<()> {
    let url = mcp_http_url(ws, config, name).map_err(anyhow::Error::msg)?;
    let secrets = crate::connect::open_secrets(ws, config)?;
    crate::mcp::auth::sign_in(
        name,
        &url,
        &secrets,
        |url| {
            // The URL carries no secret: state, the PKCE challenge and the resource only.
            let _ = outln!("Open this URL to allow access:\n{url}");
            if !no_browser && webbrowser::open(url.as_str()).is_err() {
                errln!("(could not open a browser; open the URL yourself)");
            }
            errln!("Waiting for the browser to come back to 127.0.0.1 ...");
        },
        std::time::Duration::from_secs(300),
    )
    .await?;
    outln!(
        "Signed in to MCP server {name} ({url}); {}.",
        hub_secrets_note(ws, config)
    )?;
    Ok(())
}

/// The URL of the streamable HTTP MCP server `name`: of `[mcp.servers.NAME]`, or of an active
/// plugin's server (`PLUGIN-SERVER`): what `deskhand connect mcp:NAME` signs in to.
fn mcp_http_url(workspace: &Path, config: &Config, name: &str) -> Result<String, String> {
    if let Some(c) = config.mcp.servers.get(name) {
        let one = crate::mcp::McpSection {
            servers: [(name.to_string(), c.clone())].into(),
        };
        let spec = crate::mcp::specs(&one, |k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
        return match spec.into_iter().next().map(|s| s.transport) {
            Some(crate::mcp::Transport::Http { url, .. }) => Ok(url),
            _ => Err(format!(
                "[mcp.servers.{name}] is a program Deskhand starts, not a streamable HTTP server; \
                 only those sign in"
            )),
        };
    }
    for a in crate::plugins::active(workspace) {
        for s in &a.plugin.servers {
            if s.name == name {
                return match &s.kind {
                    crate::plugins::servers::ServerKind::Http { url, .. } => Ok(url.clone()),
                    _ => Err(format!(
                        "MCP server {name} (plugin {}) is not a streamable HTTP server; only those sign in",
                        a.plugin.name
                    )),
                };
            }
        }
    }
    Err(format!(
        "there is no streamable HTTP MCP server {name}: add `[mcp.servers.{name}] url = \"https://…\"` \
         to .deskhand/config.toml, or install the plugin that brings it"
    ))
}

fn hub_secrets_note(ws: &Path, config: &Config) -> String {
    crate::connect::open_secrets(ws, config)
        .map(|s| format!("secrets in {}", s.describe()))
        .unwrap_or_default()
}

/// `deskhand disconnect`.
pub async fn disconnect(a: DisconnectArgs, ws: &Path, config: &Config) -> anyhow::Result<()> {
    let provider = match &a.target {
        Target::Provider(p) => *p,
        Target::Mcp(name) => {
            let secrets = crate::connect::open_secrets(ws, config)?;
            anyhow::ensure!(
                crate::mcp::auth::signed_in(&secrets, name),
                "there is no sign-in for MCP server {name}"
            );
            crate::mcp::auth::forget(&secrets, name)?;
            outln!("Forgot the sign-in for MCP server {name}.")?;
            return Ok(());
        }
    };
    let id = ConnectionId::new(provider, a.account.as_deref());
    open_hub(ws, config)?.disconnect(&id).await?;
    outln!("Disconnected {id}: its secrets and cached data are gone.")?;
    Ok(())
}

/// `deskhand connections`.
pub fn connections(a: ConnectionsArgs, ws: &Path) -> anyhow::Result<()> {
    let list = open_cache(ws)?.connections()?;
    if a.json {
        print_json(&list, true)?;
        return Ok(());
    }
    if list.is_empty() {
        outln!("No connections. Connect one with `deskhand connect google` or `deskhand connect notion`.")?;
        return Ok(());
    }
    outln!(
        "{:<18} {:<26} {:<6} {:<22} SCOPES",
        "CONNECTION",
        "ACCOUNT",
        "STATE",
        "LAST SYNC"
    )?;
    for c in &list {
        let scopes: Vec<&str> = c
            .scopes
            .iter()
            .map(|s| s.rsplit('/').next().unwrap_or(s))
            .collect();
        outln!(
            "{:<18} {:<26} {:<6} {:<22} {}",
            c.id,
            c.identity.as_deref().unwrap_or("-"),
            c.state.as_str(),
            c.last_sync_at
                .as_deref()
                .map(ago)
                .unwrap_or_else(|| "never".into()),
            if scopes.is_empty() {
                "-".into()
            } else {
                scopes.join(" ")
            }
        )?;
        if let Some(r) = c
            .reason
            .as_deref()
            .filter(|_| c.state != ConnectionState::Ok)
        {
            outln!("    {}", fix_hint(c, r))?;
        }
    }
    Ok(())
}

fn fix_hint(c: &ConnectionInfo, reason: &str) -> String {
    let flag = if c.account == deskhand_connectors::connection::DEFAULT_ACCOUNT {
        String::new()
    } else {
        format!(" --account {}", c.account)
    };
    match c.state {
        ConnectionState::Stale => format!(
            "{reason} — reconnect: deskhand connect {}{flag}",
            c.provider
        ),
        _ => format!("last error: {reason}"),
    }
}

/// "3 min ago" for an RFC 3339 time.
fn ago(t: &str) -> String {
    let Ok(then) = chrono::DateTime::parse_from_rfc3339(t) else {
        return t.to_string();
    };
    let s = (chrono::Utc::now() - then.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// Progress bars on a terminal; nothing otherwise.
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    prefix: String,
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: Option<u64>) {
        let mut b = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = b.take() {
            old.finish_and_clear();
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix} {msg:24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_prefix(crate::cli::safe_text::terminal_safe(&self.prefix).into_owned());
        bar.set_message(crate::cli::safe_text::terminal_safe(name).into_owned());
        *b = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            b.inc(n);
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

/// `deskhand sync`.
pub async fn sync(a: SyncArgs, ws: &Path, config: &Config) -> anyhow::Result<()> {
    let hub = open_hub(ws, config)?;
    let conns = hub.cache().connections()?;
    let mut plan: Vec<(ConnectionId, Resource)> = Vec::new();
    for c in &conns {
        if a.account.as_deref().is_some_and(|acc| acc != c.account) {
            continue;
        }
        let id = ConnectionId::new(c.provider, Some(&c.account));
        let resources: &[Resource] = match c.provider {
            Provider::Google => &[Resource::Gmail, Resource::Calendar],
            Provider::Notion => &[Resource::Notion],
        };
        for r in resources {
            if a.what.is_none_or(|w| w == *r) {
                plan.push((id.clone(), *r));
            }
        }
    }
    if plan.is_empty() {
        anyhow::bail!(
            "nothing to sync: no {}connection{}; run `deskhand connect {}` first",
            a.what
                .map(|w| format!("{} ", w.provider()))
                .unwrap_or_default(),
            a.account
                .as_deref()
                .map(|x| format!(" for account {x}"))
                .unwrap_or_default(),
            a.what.map(|w| w.provider().as_str()).unwrap_or("google"),
        );
    }
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for (id, r) in plan {
        let bars = Bars {
            bar: Mutex::new(None),
            prefix: format!("{id} {}", r.as_str()),
        };
        match hub.sync(&id, r, &bars).await {
            Ok(o) => outcomes.extend(o),
            Err(e) => failures.push(format!("{id} {}: {e}", r.as_str())),
        }
    }
    if a.json {
        print_json(
            &serde_json::json!({"synced": outcomes, "failed": failures}),
            true,
        )?;
    } else {
        for o in &outcomes {
            let r = &o.report;
            outln!(
                "{} {}: {} {} fetched, {} updated, {} removed in {:.2} s ({} requests){}",
                o.connection,
                o.resource,
                if r.full {
                    "full sync,"
                } else {
                    "changes only,"
                },
                r.fetched,
                r.updated,
                r.deleted,
                r.seconds,
                r.requests,
                r.note
                    .as_deref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default()
            )?;
        }
        for f in &failures {
            errln!("error: {f}");
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of the syncs failed (see above)",
        failures.len()
    );
    Ok(())
}

/// Says how fresh the cache is for `resource`, and warns about connections needing attention.
fn freshness(
    cache: &Cache,
    resource: &str,
    provider: Provider,
) -> anyhow::Result<serde_json::Value> {
    let last = cache.last_sync(resource)?;
    let attention: Vec<String> = cache
        .connections()?
        .iter()
        .filter(|c| c.provider == provider && c.state != ConnectionState::Ok)
        .map(|c| {
            format!(
                "{}: {}",
                c.id,
                fix_hint(c, c.reason.as_deref().unwrap_or("needs attention"))
            )
        })
        .collect();
    match &last {
        Some(t) => errln!("(cache of {resource} synced {})", ago(t)),
        None => {
            errln!("(the {resource} cache was never synced: run `deskhand sync {resource}`)")
        }
    }
    for w in &attention {
        errln!("warning: {w}");
    }
    Ok(serde_json::json!({ "synced_at": last, "attention": attention }))
}

fn conn_filter(provider: Provider, account: Option<&str>) -> Option<String> {
    account.map(|a| ConnectionId::new(provider, Some(a)).to_string())
}

/// `deskhand mail`.
pub fn mail(a: MailArgs, ws: &Path) -> anyhow::Result<()> {
    let MailCmd::Search {
        query,
        limit,
        account,
        json,
    } = a.cmd;
    let cache = open_cache(ws)?;
    let q = MailQuery::parse(&query, chrono::Utc::now().timestamp_millis())
        .map_err(|e| anyhow::anyhow!("bad query: {e}"))?;
    let fresh = freshness(&cache, "gmail", Provider::Google)?;
    let found = cache.search_mail(
        conn_filter(Provider::Google, account.as_deref()).as_deref(),
        &q,
        limit,
    )?;
    if json {
        print_json(
            &serde_json::json!({"cache": fresh, "messages": found}),
            true,
        )?;
        return Ok(());
    }
    if found.is_empty() {
        outln!("No cached messages match.")?;
    }
    for m in &found {
        let local = chrono::DateTime::parse_from_rfc3339(&m.date)
            .map(|d| {
                d.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|_| m.date.clone());
        let unread = if m.labels.iter().any(|l| l == "UNREAD") {
            "*"
        } else {
            " "
        };
        outln!("{unread} {local}  {:<32.32}  {}", m.from, m.subject)?;
    }
    Ok(())
}

/// `deskhand calendar`.
pub fn calendar(a: CalendarArgs, ws: &Path) -> anyhow::Result<()> {
    let CalendarCmd::Agenda {
        days,
        account,
        json,
    } = a.cmd;
    anyhow::ensure!(days > 0, "--days must be at least 1");
    let cache = open_cache(ws)?;
    let fresh = freshness(&cache, "calendar", Provider::Google)?;
    let now = chrono::Local::now();
    let start = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    let from = start
        .and_local_timezone(chrono::Local)
        .earliest()
        .unwrap_or(now)
        .timestamp();
    let to = from + days * 86_400;
    let events = cache.agenda(
        conn_filter(Provider::Google, account.as_deref()).as_deref(),
        from,
        to,
    )?;
    if json {
        print_json(&serde_json::json!({"cache": fresh, "events": events}), true)?;
        return Ok(());
    }
    if events.is_empty() {
        outln!("Nothing in the next {days} days.")?;
    }
    let mut day = String::new();
    for e in &events {
        let start = chrono::DateTime::from_timestamp(e.start_ts, 0)
            .unwrap_or_default()
            .with_timezone(&chrono::Local);
        let end = chrono::DateTime::from_timestamp(e.end_ts, 0)
            .unwrap_or_default()
            .with_timezone(&chrono::Local);
        let d = if e.all_day {
            e.start.clone()
        } else {
            start.format("%Y-%m-%d").to_string()
        };
        if d != day {
            outln!(
                "{}",
                chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map(|x| x.format("%A %d %B %Y").to_string())
                    .unwrap_or(d.clone())
            )?;
            day = d;
        }
        let when = if e.all_day {
            "all day      ".to_string()
        } else {
            format!("{}–{}", start.format("%H:%M"), end.format("%H:%M"))
        };
        let place = if e.location.is_empty() {
            String::new()
        } else {
            format!("  @ {}", e.location)
        };
        outln!("  {when}  {}{place}", e.summary)?;
    }
    Ok(())
}

/// `deskhand notion`.
pub fn notion(a: NotionArgs, ws: &Path) -> anyhow::Result<()> {
    let NotionCmd::Query {
        data_source,
        filters,
        sort,
        account,
        json,
    } = a.cmd;
    let cache = open_cache(ws)?;
    let fresh = freshness(&cache, "notion", Provider::Notion)?;
    let conn = conn_filter(Provider::Notion, account.as_deref());
    let sources = cache.data_sources(conn.as_deref())?;
    let ds = sources
        .iter()
        .find(|d| d.id == data_source || d.title.eq_ignore_ascii_case(&data_source))
        .ok_or_else(|| {
            let known: Vec<String> = sources.iter().map(|d| format!("{:?} ({})", d.title, d.id)).collect();
            anyhow::anyhow!(
                "no cached data source {data_source:?}; known: {}. Run `deskhand sync notion` if it is new, \
                 and share it with the integration in Notion",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })?;
    let mut pages = cache.pages(conn.as_deref(), &ds.id)?;
    for f in &filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--where {f:?}: write PROP=VALUE"))?;
        pages.retain(|p| match p.properties.get(k) {
            Some(serde_json::Value::Array(a)) => a.iter().any(|x| plain(x).eq_ignore_ascii_case(v)),
            Some(x) => plain(x).eq_ignore_ascii_case(v),
            None => false,
        });
    }
    if let Some(s) = sort {
        let (key, desc) = match s.strip_prefix('-') {
            Some(k) => (k.to_string(), true),
            None => (s.clone(), false),
        };
        pages.sort_by(|a, b| {
            let o = plain(a.properties.get(&key).unwrap_or(&serde_json::Value::Null)).cmp(&plain(
                b.properties.get(&key).unwrap_or(&serde_json::Value::Null),
            ));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    if json {
        print_json(
            &serde_json::json!({"cache": fresh, "data_source": ds, "pages": pages}),
            true,
        )?;
        return Ok(());
    }
    outln!("{} — {} page(s)", ds.title, pages.len())?;
    for p in &pages {
        let props: Vec<String> = p
            .properties
            .iter()
            .filter(|(_, v)| !v.is_null() && plain(v) != p.title && !plain(v).is_empty())
            .map(|(k, v)| format!("{k}: {}", plain(v)))
            .collect();
        outln!("  {}  [{}]", p.title, props.join("; "))?;
    }
    Ok(())
}

/// A property value as text.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        serde_json::Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
