//! OAuth 2.0 authorization code flow with PKCE and a loopback redirect on 127.0.0.1, plus
//! token refresh. Google's token endpoint takes form bodies (through the `oauth2` crate);
//! Notion's takes JSON with HTTP Basic client auth, as its reference documents.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Html;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardErrorResponse,
    TokenResponse, TokenUrl,
};
use serde::Deserialize;
use std::future::IntoFuture as _;
use tokio::sync::mpsc;
use url::Url;

use crate::connection::Provider;
use crate::error::{ConnectorError, Result};

/// The `oauth2` client with the auth and token endpoints set.
type GoogleClient = oauth2::Client<
    StandardErrorResponse<BasicErrorResponseType>,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// A registered OAuth client and the provider's endpoints.
#[derive(Clone)]
pub struct OAuthApp {
    /// Which provider's flavour of the protocol to speak.
    pub provider: Provider,
    /// Public client id.
    pub client_id: String,
    /// Client secret (Google installed apps have one that is not really secret; Notion's is).
    pub client_secret: Option<String>,
    /// Authorization endpoint the browser opens.
    pub auth_url: Url,
    /// Token endpoint.
    pub token_url: Url,
    /// The resource the tokens are for (RFC 8707), sent with every authorization and token
    /// request: an MCP server's URL. Set, the provider's own extras are not sent: the flow is
    /// plain OAuth 2.1 with PKCE, as the MCP authorization spec asks.
    pub resource: Option<String>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<hidden>"),
            )
            .field("auth_url", &self.auth_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("resource", &self.resource)
            .finish()
    }
}

/// What a token endpoint granted.
pub struct TokenGrant {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Lifetime of the access token, when the provider says.
    pub expires_in: Option<Duration>,
    /// Long-lived grant, when issued (or rotated).
    pub refresh_token: Option<String>,
    /// Scopes actually granted.
    pub scopes: Vec<String>,
    /// The provider's name for what was connected (Notion workspace), when it says.
    pub identity: Option<String>,
}

/// Why a refresh failed.
#[derive(Debug)]
pub enum RefreshError {
    /// The provider refused the grant (4xx: revoked, expired): reconnect.
    Refused(String),
    /// Network trouble or a server error: try again later.
    Transient(String),
}

/// An authorization in progress: the URL for the browser and the loopback listener waiting for it.
pub struct PendingAuthorization {
    /// Open this in the person's browser.
    pub url: Url,
    redirect_uri: String,
    state: String,
    verifier: String,
    listener: tokio::net::TcpListener,
}

fn http_client() -> Result<oauth2::reqwest::Client> {
    // No redirects: a token endpoint that redirects is misconfigured or hostile.
    oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ConnectorError::OAuth(format!("HTTP client: {e}")))
}

impl OAuthApp {
    fn client(&self, redirect: Option<&str>) -> Result<GoogleClient> {
        let mut c = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            // Google's installed-app flow documents credentials in the form body.
            .set_auth_type(AuthType::RequestBody);
        if let Some(s) = &self.client_secret {
            c = c.set_client_secret(ClientSecret::new(s.clone()));
        }
        if let Some(r) = redirect {
            let r = RedirectUrl::new(r.to_string())
                .map_err(|e| ConnectorError::OAuth(format!("redirect URL: {e}")))?;
            c = c.set_redirect_uri(r);
        }
        Ok(c)
    }

    /// Binds the loopback listener and builds the authorization URL (state + PKCE S256).
    pub async fn begin(&self, scopes: &[String]) -> Result<PendingAuthorization> {
        // 127.0.0.1, not localhost: Google's loopback guidance, and no IPv6/IPv4 ambiguity.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ConnectorError::OAuth(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| ConnectorError::OAuth(e.to_string()))?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(Some(&redirect_uri))?;
        let mut req = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge);
        req = match (&self.resource, self.provider) {
            (Some(resource), _) => req.add_extra_param("resource", resource.clone()),
            // A refresh token is only issued with offline access; consent makes Google reissue it.
            (None, Provider::Google) => req
                .add_extra_param("access_type", "offline")
                .add_extra_param("prompt", "consent"),
            (None, Provider::Notion) => req.add_extra_param("owner", "user"),
        };
        let (url, state) = req.url();
        Ok(PendingAuthorization {
            url,
            redirect_uri,
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            listener,
        })
    }

    /// Trades an authorization code for tokens.
    async fn exchange(&self, code: &str, redirect_uri: &str, verifier: &str) -> Result<TokenGrant> {
        match self.provider {
            Provider::Google => {
                let client = self.client(Some(redirect_uri))?;
                let mut req = client
                    .exchange_code(AuthorizationCode::new(code.to_string()))
                    .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()));
                if let Some(r) = &self.resource {
                    req = req.add_extra_param("resource", r.clone());
                }
                let resp = req.request_async(&http_client()?).await.map_err(|e| {
                    ConnectorError::OAuth(format!("code exchange: {}", describe(&e)))
                })?;
                Ok(grant_from(&resp))
            }
            Provider::Notion => {
                let body = serde_json::json!({
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                });
                self.notion_token(body).await.map_err(|e| {
                    ConnectorError::OAuth(format!("code exchange: {}", refresh_msg(&e)))
                })
            }
        }
    }

    /// Gets a new access token from a refresh token.
    pub async fn refresh(
        &self,
        refresh_token: &str,
    ) -> std::result::Result<TokenGrant, RefreshError> {
        match self.provider {
            Provider::Google => {
                let client = self
                    .client(None)
                    .map_err(|e| RefreshError::Transient(e.to_string()))?;
                let http = http_client().map_err(|e| RefreshError::Transient(e.to_string()))?;
                let refresh = RefreshToken::new(refresh_token.to_string());
                let mut req = client.exchange_refresh_token(&refresh);
                if let Some(r) = &self.resource {
                    req = req.add_extra_param("resource", r.clone());
                }
                match req.request_async(&http).await {
                    Ok(resp) => Ok(grant_from(&resp)),
                    Err(RequestTokenError::ServerResponse(r)) => {
                        let text = match r.error_description() {
                            Some(d) => format!("{}: {d}", r.error()),
                            None => r.error().to_string(),
                        };
                        match r.error() {
                            BasicErrorResponseType::InvalidGrant
                            | BasicErrorResponseType::InvalidClient
                            | BasicErrorResponseType::UnauthorizedClient
                            | BasicErrorResponseType::InvalidScope => {
                                Err(RefreshError::Refused(text))
                            }
                            _ => Err(RefreshError::Transient(text)),
                        }
                    }
                    // Unparseable bodies come from 5xx pages and proxies; network errors too.
                    Err(e) => Err(RefreshError::Transient(describe(&e))),
                }
            }
            Provider::Notion => {
                let body = serde_json::json!({
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                });
                self.notion_token(body).await
            }
        }
    }

    /// Notion's token endpoint: JSON body, HTTP Basic client auth.
    async fn notion_token(
        &self,
        body: serde_json::Value,
    ) -> std::result::Result<TokenGrant, RefreshError> {
        let http = http_client().map_err(|e| RefreshError::Transient(e.to_string()))?;
        let resp = http
            .post(self.token_url.clone())
            .basic_auth(&self.client_id, self.client_secret.as_deref())
            .header("Notion-Version", crate::notion::NOTION_VERSION)
            .json(&body)
            .send()
            .await
            .map_err(|e| RefreshError::Transient(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let json: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if status >= 400 {
            let msg = crate::retry::error_message(Some(&json))
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(if (400..500).contains(&status) && status != 429 {
                RefreshError::Refused(msg)
            } else {
                RefreshError::Transient(msg)
            });
        }
        let access_token = json["access_token"]
            .as_str()
            .ok_or_else(|| RefreshError::Transient("token response without access_token".into()))?
            .to_string();
        Ok(TokenGrant {
            access_token,
            expires_in: json["expires_in"].as_u64().map(Duration::from_secs),
            refresh_token: json["refresh_token"].as_str().map(str::to_string),
            scopes: Vec::new(),
            identity: json["workspace_name"].as_str().map(str::to_string),
        })
    }
}

fn grant_from(resp: &oauth2::basic::BasicTokenResponse) -> TokenGrant {
    TokenGrant {
        access_token: resp.access_token().secret().clone(),
        expires_in: resp.expires_in(),
        refresh_token: resp.refresh_token().map(|r| r.secret().clone()),
        scopes: resp
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        identity: None,
    }
}

fn describe<RE: std::error::Error + 'static>(
    e: &RequestTokenError<RE, StandardErrorResponse<BasicErrorResponseType>>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{}: {d}", r.error()),
            None => r.error().to_string(),
        },
        RequestTokenError::Request(e) => format!("request failed: {e}"),
        RequestTokenError::Parse(e, _) => format!("unreadable token response: {e}"),
        RequestTokenError::Other(s) => s.clone(),
    }
}

fn refresh_msg(e: &RefreshError) -> &str {
    match e {
        RefreshError::Refused(m) | RefreshError::Transient(m) => m,
    }
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Deskhand</title>\
<p style='font:16px system-ui;margin:3em'>Deskhand is connected. You can close this tab.</p>";

impl PendingAuthorization {
    /// The redirect URI registered for this attempt.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the browser to come back, checks `state`, and exchanges the code.
    pub async fn finish(self, app: &OAuthApp, timeout: Duration) -> Result<TokenGrant> {
        let (tx, mut rx) = mpsc::channel::<std::result::Result<String, String>>(4);
        let expected = self.state.clone();
        let router = axum::Router::new()
            .route(
                "/callback",
                axum::routing::get(
                    |State((tx, expected)): State<(
                        mpsc::Sender<std::result::Result<String, String>>,
                        String,
                    )>,
                     Query(q): Query<Callback>| async move {
                        if q.state.as_deref() != Some(expected.as_str()) {
                            // Possibly forged: refuse it and keep waiting for the real one.
                            return (
                                axum::http::StatusCode::BAD_REQUEST,
                                Html(
                                    "<p>State mismatch: this response was not for this sign-in."
                                        .to_string(),
                                ),
                            );
                        }
                        let outcome = match (q.code, q.error) {
                            (_, Some(err)) => Err(err),
                            (Some(code), None) => Ok(code),
                            (None, None) => Err("no code in the redirect".to_string()),
                        };
                        let page = match &outcome {
                            Ok(_) => DONE_PAGE.to_string(),
                            Err(e) => format!("<p>Authorization failed: {}</p>", html_escape(e)),
                        };
                        let _ = tx.send(outcome).await;
                        (axum::http::StatusCode::OK, Html(page))
                    },
                ),
            )
            .with_state((tx, expected));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(self.listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .into_future(),
        );
        let got = tokio::time::timeout(timeout, rx.recv()).await;
        let _ = stop_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        let code = match got {
            Err(_) => {
                return Err(ConnectorError::OAuth(format!(
                    "no answer from the browser within {}s; run the command again and finish \
                     signing in",
                    timeout.as_secs()
                )))
            }
            Ok(None) => {
                return Err(ConnectorError::OAuth(
                    "the redirect listener stopped".into(),
                ))
            }
            Ok(Some(Err(e))) if e == "access_denied" => {
                return Err(ConnectorError::OAuth(
                    "access was denied in the browser; run the command again and allow access"
                        .into(),
                ))
            }
            Ok(Some(Err(e))) => {
                return Err(ConnectorError::OAuth(format!("the provider said: {e}")))
            }
            Ok(Some(Ok(code))) => code,
        };
        app.exchange(&code, &self.redirect_uri, &self.verifier)
            .await
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
