//! OAuth for remote MCP servers, as the MCP authorization spec asks: the server's protected
//! resource metadata (RFC 9728, found through its `WWW-Authenticate` answer or the well-known
//! URL), its authorization server's metadata (RFC 8414, or OpenID discovery), dynamic client
//! registration (RFC 7591) as a public client, and the authorization code flow with PKCE (S256)
//! on a 127.0.0.1 redirect with the `resource` indicator (RFC 8707), through the connectors'
//! OAuth code. `deskhand connect mcp:NAME` signs in; tokens live in the secret store (the OS
//! keyring) as the other connections' do, under `mcp-oauth/NAME`, and are refreshed before they
//! expire. Nothing here is logged with a token in it.

use std::time::Duration;

use deskhand_connectors::oauth::OAuthApp;
use deskhand_connectors::secrets::Secrets;
use deskhand_connectors::Provider;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// How long discovery and registration requests may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Refresh when the access token has less than this left.
const REFRESH_BEFORE: i64 = 60;

/// What went wrong signing in to an MCP server, or using its tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Discovery found no way to sign in.
    #[error("MCP server {server}: {what}")]
    Discovery {
        /// The server's name.
        server: String,
        /// What was missing or wrong.
        what: String,
    },
    /// The sign-in itself failed.
    #[error("signing in to MCP server {server} failed: {why}; run `deskhand connect mcp:{server}` again")]
    SignIn {
        /// The server's name.
        server: String,
        /// Why.
        why: String,
    },
    /// Not signed in, or the grant is gone.
    #[error("MCP server {server} needs you to sign in: `deskhand connect mcp:{server}`{why}")]
    NeedsSignIn {
        /// The server's name.
        server: String,
        /// Why, when there is more to say (`: the grant was revoked`).
        why: String,
    },
    /// The secret store.
    #[error("the secret store: {0}")]
    Store(String),
}

/// An MCP server's authorization, discovered.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The resource the tokens are for (the server's URL, as its metadata names it).
    pub resource: String,
    /// Where the person signs in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens become access tokens.
    pub token_endpoint: Url,
    /// Where Deskhand registers itself, if the server allows it.
    pub registration_endpoint: Option<Url>,
    /// Scopes to ask for (the resource's, else none).
    pub scopes: Vec<String>,
}

/// A sign-in, as kept in the secret store.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    client_id: String,
    authorization_endpoint: String,
    token_endpoint: String,
    resource: String,
    access_token: String,
    refresh_token: Option<String>,
    /// Unix seconds; none: the server did not say.
    expires_at: Option<i64>,
}

fn key(server: &str) -> String {
    format!("mcp-oauth/{server}")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// `resource_metadata="…"` of a `WWW-Authenticate: Bearer …` header.
fn resource_metadata(header: &str) -> Option<String> {
    let at = header.find("resource_metadata=")? + "resource_metadata=".len();
    let rest = &header[at..];
    let value = match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split([',', ' ']).next()?,
    };
    Some(value.to_string())
}

/// The well-known URLs of `base`'s metadata `doc`, the path-inserted one first (RFC 8414 §3,
/// RFC 9728 §3.1).
fn well_known(base: &Url, doc: &str) -> Vec<Url> {
    let mut out = Vec::new();
    let path = base.path().trim_end_matches('/');
    let mut origin = base.clone();
    origin.set_query(None);
    origin.set_fragment(None);
    if !path.is_empty() {
        origin.set_path(&format!("/.well-known/{doc}{path}"));
        out.push(origin.clone());
    }
    origin.set_path(&format!("/.well-known/{doc}"));
    out.push(origin);
    out
}

async fn get_json(http: &reqwest::Client, url: &Url) -> Option<Value> {
    let r = http.get(url.clone()).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Find how to sign in to the MCP server `name` at `server_url`.
pub async fn discover(name: &str, server_url: &str) -> Result<Discovered, AuthError> {
    let bad = |what: String| AuthError::Discovery {
        server: name.to_string(),
        what,
    };
    let url =
        Url::parse(server_url).map_err(|e| bad(format!("{server_url:?} is not a URL: {e}")))?;
    let http = http();
    // An unauthenticated request: a protected server answers 401 and names its metadata.
    let probe = http
        .post(url.clone())
        .header("accept", "application/json, text/event-stream")
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "deskhand", "version": env!("CARGO_PKG_VERSION")}}}),
        )
        .send()
        .await
        .map_err(|e| bad(format!("cannot reach {url}: {e}")))?;
    let mut candidates: Vec<Url> = probe
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(resource_metadata)
        .filter_map(|u| Url::parse(&u).ok())
        .collect();
    if probe.status().is_success() {
        return Err(bad(
            "it answers without signing in; it needs no `deskhand connect`".into(),
        ));
    }
    candidates.extend(well_known(&url, "oauth-protected-resource"));
    let mut prm = None;
    for c in &candidates {
        if let Some(v) = get_json(&http, c).await {
            prm = Some(v);
            break;
        }
    }
    let prm = prm.ok_or_else(|| {
        bad(format!(
            "it publishes no protected resource metadata (tried {}); it may not support OAuth",
            candidates
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let resource = prm["resource"].as_str().unwrap_or(server_url).to_string();
    // RFC 9728 §3.3: the metadata must be for this server, or a token could be sent elsewhere.
    if resource.trim_end_matches('/') != server_url.trim_end_matches('/')
        && !server_url.starts_with(resource.trim_end_matches('/'))
    {
        return Err(bad(format!(
            "its metadata is for {resource:?}, not {server_url:?}; not signing in"
        )));
    }
    let issuer = prm["authorization_servers"][0]
        .as_str()
        .and_then(|s| Url::parse(s).ok())
        .ok_or_else(|| bad("its metadata names no authorization server".into()))?;
    let mut meta = None;
    let mut tried = well_known(&issuer, "oauth-authorization-server");
    tried.extend(well_known(&issuer, "openid-configuration"));
    for c in &tried {
        if let Some(v) = get_json(&http, c).await {
            meta = Some(v);
            break;
        }
    }
    let meta = meta.ok_or_else(|| {
        bad(format!(
            "its authorization server {issuer} publishes no metadata"
        ))
    })?;
    let endpoint = |k: &str| meta[k].as_str().and_then(|s| Url::parse(s).ok());
    // PKCE with S256 is required; a server that does not say it supports it is not used.
    let s256 = meta["code_challenge_methods_supported"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "S256"));
    if !s256 {
        return Err(bad(format!(
            "its authorization server {issuer} does not support PKCE with S256; not signing in"
        )));
    }
    let scopes = prm["scopes_supported"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Discovered {
        resource,
        authorization_endpoint: endpoint("authorization_endpoint")
            .ok_or_else(|| bad("its authorization server has no authorization_endpoint".into()))?,
        token_endpoint: endpoint("token_endpoint")
            .ok_or_else(|| bad("its authorization server has no token_endpoint".into()))?,
        registration_endpoint: endpoint("registration_endpoint"),
        scopes,
    })
}

/// Register Deskhand as a public client (no secret, PKCE, loopback redirects) with `d`.
async fn register(name: &str, d: &Discovered) -> Result<String, AuthError> {
    let bad = |what: String| AuthError::Discovery {
        server: name.to_string(),
        what,
    };
    let endpoint = d.registration_endpoint.clone().ok_or_else(|| {
        bad(
            "its authorization server does not register clients dynamically, and Deskhand has \
             no client of its own there"
                .into(),
        )
    })?;
    let r = http()
        .post(endpoint.clone())
        .json(&serde_json::json!({
            "client_name": "Deskhand",
            // RFC 8252 §7.3: the port of a loopback redirect may vary.
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .map_err(|e| bad(format!("registering with {endpoint}: {e}")))?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(bad(format!(
            "{endpoint} refused the registration ({status}): {}",
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("")
        )));
    }
    body["client_id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| bad(format!("{endpoint} registered no client_id")))
}

fn app(s: &Stored) -> Result<OAuthApp, String> {
    Ok(OAuthApp {
        // The plain OAuth 2.1 flavour: form bodies, no provider extras (the resource is set).
        provider: Provider::Google,
        client_id: s.client_id.clone(),
        client_secret: None,
        auth_url: Url::parse(&s.authorization_endpoint).map_err(|e| e.to_string())?,
        token_url: Url::parse(&s.token_endpoint).map_err(|e| e.to_string())?,
        resource: Some(s.resource.clone()),
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Sign in to the MCP server `name` at `server_url`: discover, register, open the sign-in URL
/// with `show`, wait for the browser to come back, keep the tokens.
pub async fn sign_in(
    name: &str,
    server_url: &str,
    secrets: &Secrets,
    show: impl FnOnce(&Url),
    timeout: Duration,
) -> Result<(), AuthError> {
    let d = discover(name, server_url).await?;
    let client_id = register(name, &d).await?;
    let mut stored = Stored {
        client_id,
        authorization_endpoint: d.authorization_endpoint.to_string(),
        token_endpoint: d.token_endpoint.to_string(),
        resource: d.resource.clone(),
        access_token: String::new(),
        refresh_token: None,
        expires_at: None,
    };
    let fail = |why: String| AuthError::SignIn {
        server: name.to_string(),
        why,
    };
    let app = app(&stored).map_err(fail)?;
    let pending = app
        .begin(&d.scopes)
        .await
        .map_err(|e| fail(e.to_string()))?;
    show(&pending.url);
    let grant = pending
        .finish(&app, timeout)
        .await
        .map_err(|e| fail(e.to_string()))?;
    stored.access_token = grant.access_token;
    stored.refresh_token = grant.refresh_token;
    stored.expires_at = grant.expires_in.map(|d| now() + d.as_secs() as i64);
    save(secrets, name, &stored)
}

fn save(secrets: &Secrets, name: &str, s: &Stored) -> Result<(), AuthError> {
    let text = serde_json::to_string(s).map_err(|e| AuthError::Store(e.to_string()))?;
    secrets
        .set(&key(name), &text)
        .map_err(|e| AuthError::Store(e.to_string()))
}

/// Whether there is a sign-in for `name`.
pub fn signed_in(secrets: &Secrets, name: &str) -> bool {
    secrets.get(&key(name)).ok().flatten().is_some()
}

/// Forget the sign-in for `name`.
pub fn forget(secrets: &Secrets, name: &str) -> Result<(), AuthError> {
    secrets
        .delete(&key(name))
        .map_err(|e| AuthError::Store(e.to_string()))
}

/// The access token for `name`, refreshed first when it is about to expire; `None` when there
/// is no sign-in.
pub async fn bearer(secrets: &Secrets, name: &str) -> Result<Option<String>, AuthError> {
    let Some(text) = secrets
        .get(&key(name))
        .map_err(|e| AuthError::Store(e.to_string()))?
    else {
        return Ok(None);
    };
    let mut s: Stored = serde_json::from_str(&text).map_err(|_| AuthError::NeedsSignIn {
        server: name.to_string(),
        why: ": the kept sign-in is damaged".into(),
    })?;
    let fresh = s.expires_at.is_none_or(|t| t - now() > REFRESH_BEFORE);
    if fresh {
        return Ok(Some(s.access_token));
    }
    let Some(refresh) = s.refresh_token.clone() else {
        return Err(AuthError::NeedsSignIn {
            server: name.to_string(),
            why: ": the access expired and the server gave no refresh token".into(),
        });
    };
    let app = app(&s).map_err(|why| AuthError::SignIn {
        server: name.to_string(),
        why,
    })?;
    match app.refresh(&refresh).await {
        Ok(g) => {
            s.access_token = g.access_token;
            if g.refresh_token.is_some() {
                s.refresh_token = g.refresh_token;
            }
            s.expires_at = g.expires_in.map(|d| now() + d.as_secs() as i64);
            save(secrets, name, &s)?;
            Ok(Some(s.access_token))
        }
        Err(deskhand_connectors::oauth::RefreshError::Refused(why)) => {
            Err(AuthError::NeedsSignIn {
                server: name.to_string(),
                why: format!(": the grant was refused ({why})"),
            })
        }
        Err(deskhand_connectors::oauth::RefreshError::Transient(why)) => Err(AuthError::SignIn {
            server: name.to_string(),
            why: format!("refreshing the access failed for now ({why})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_is_found_where_the_rfcs_put_it() {
        let h = r#"Bearer error="invalid_token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;
        assert_eq!(
            resource_metadata(h).as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(resource_metadata("Bearer realm=x"), None);
        let urls: Vec<String> = well_known(
            &Url::parse("https://mcp.example.com/mcp").unwrap(),
            "oauth-protected-resource",
        )
        .iter()
        .map(|u| u.to_string())
        .collect();
        assert_eq!(
            urls,
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            well_known(
                &Url::parse("https://as.example.com").unwrap(),
                "oauth-authorization-server"
            )
            .len(),
            1
        );
    }
}
