//! How the agent proves itself to a NATS server and checks the server (issue 18): TLS (the
//! system's roots, or a CA file; an optional client certificate) and one kind of credentials —
//! a `.creds` file (JWT + nkey), an nkey seed file, a user and password, or a token — from
//! `[nats]` in the config, the `--queue-…` flags, or the URL's userinfo, taken as the other
//! NATS clients take it (async-nats 0.51 itself leaves it unused). Secret values (password, token) come from the
//! environment (`DESKHAND_NATS_PASSWORD`, `DESKHAND_NATS_TOKEN`) or the secret store (the OS
//! keyring, `deskhand secrets nats password|token`), never from the config file;
//! credential files must not be readable by others. Nothing here reaches a log: URLs are shown
//! with [`redact`], `Debug` hides the values.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where `deskhand secrets nats password` keeps the NATS user's password.
pub const PASSWORD_KEY: &str = "nats/password";
/// Where `deskhand secrets nats token` keeps the NATS token.
pub const TOKEN_KEY: &str = "nats/token";

/// `[nats]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    /// A `.creds` file (user JWT and nkey seed), as `nsc` writes it.
    pub creds_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU…`).
    pub nkey_file: Option<PathBuf>,
    /// A user name; its password comes from `DESKHAND_NATS_PASSWORD`.
    pub user: Option<String>,
    /// A CA certificate (PEM) to check the server with, instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key_file: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    #[serde(default)]
    pub tls_required: bool,
    /// Result files larger than this (MiB) stay on the desktop; the phone is told why (25).
    pub file_limit_mb: Option<u64>,
    /// Days the hub keeps result files (7).
    pub files_keep_days: Option<u64>,
    /// The hub's JetStream domain, when the server Deskhand talks to is a leaf node of it
    /// (docs/hub.md, "Running a leaf"): jobs sent to the hub while this desktop was off wait in a
    /// stream there, which the local queue sources from.
    pub hub_domain: Option<String>,
}

/// Everything the connection needs, secrets included.
#[derive(Clone, Default)]
pub struct NatsAuth {
    /// What the config and flags say.
    pub section: NatsSection,
    /// The user's password.
    pub password: Option<String>,
    /// A token.
    pub token: Option<String>,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAuth")
            .field("section", &self.section)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl NatsAuth {
    /// `[nats]` with the secret values from `env` (`DESKHAND_NATS_PASSWORD`, `…_TOKEN`).
    pub fn from(section: NatsSection, env: impl Fn(&str) -> Option<String>) -> NatsAuth {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        NatsAuth {
            section,
            password: get("DESKHAND_NATS_PASSWORD"),
            token: get("DESKHAND_NATS_TOKEN"),
        }
    }

    /// Fill the password and token the environment did not give from the secret store (the OS
    /// keyring; `deskhand secrets nats password|token` puts them there), for a NATS `url` only:
    /// the embedded queue never opens the keyring. A store that cannot be opened is logged and
    /// left out (the connection then says what is missing).
    pub fn fill_from_store(&mut self, workspace: &Path, config: &crate::config::Config, url: &str) {
        if url == "embedded" || url.is_empty() || (self.password.is_some() && self.token.is_some())
        {
            return;
        }
        let store = match crate::connect::open_secrets(workspace, config) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "no secret store for NATS credentials");
                return;
            }
        };
        let get = |k: &str| store.get(k).ok().flatten().filter(|v| !v.is_empty());
        if self.password.is_none() && self.section.user.is_some() {
            self.password = get(PASSWORD_KEY);
        }
        let other_kind = self.section.creds_file.is_some()
            || self.section.nkey_file.is_some()
            || self.section.user.is_some();
        if self.token.is_none() && !other_kind {
            self.token = get(TOKEN_KEY);
        }
    }

    /// The connect options for `url`, and the URL to connect to: a user and password, or a
    /// token, in the URL's userinfo are taken out of it and used as those credentials (as the
    /// other NATS clients do; async-nats itself leaves them unused).
    pub async fn connect_options(
        &self,
        url: &str,
    ) -> Result<(async_nats::ConnectOptions, String), String> {
        let mut auth = self.clone();
        let mut bare = url.to_string();
        if let Ok(mut u) = url::Url::parse(url) {
            if !u.username().is_empty() {
                let user = percent(u.username());
                match u.password() {
                    Some(p) => {
                        auth.section.user = Some(user);
                        auth.password = Some(percent(p));
                    }
                    None => auth.token = Some(user),
                }
                let _ = u.set_username("");
                let _ = u.set_password(None);
                bare = u.to_string();
            }
        }
        Ok((auth.options().await?, bare))
    }

    /// The connect options, checked: at most one kind of credentials, files present and private.
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, String> {
        let s = &self.section;
        let kinds = [
            s.creds_file.is_some(),
            s.nkey_file.is_some(),
            s.user.is_some(),
            self.token.is_some(),
        ]
        .iter()
        .filter(|k| **k)
        .count();
        if kinds > 1 {
            return Err(
                "give one kind of NATS credentials: a .creds file, an nkey file, a user (with \
                 DESKHAND_NATS_PASSWORD) or a token (DESKHAND_NATS_TOKEN)"
                    .into(),
            );
        }
        let mut o = async_nats::ConnectOptions::new();
        if let Some(p) = &s.creds_file {
            private(p, "the .creds file")?;
            o = o
                .credentials_file(p)
                .await
                .map_err(|e| format!("the .creds file {}: {e}", p.display()))?;
        }
        if let Some(p) = &s.nkey_file {
            private(p, "the nkey seed file")?;
            let seed = std::fs::read_to_string(p)
                .map_err(|e| format!("the nkey seed file {}: {e}", p.display()))?;
            let seed = seed.trim().to_string();
            if !seed.starts_with("SU") {
                return Err(format!(
                    "{} holds no user nkey seed (one starts with SU)",
                    p.display()
                ));
            }
            o = o.nkey(seed);
        }
        if let Some(u) = &s.user {
            let pass = self.password.clone().ok_or_else(|| {
                format!("NATS user {u:?} needs its password in DESKHAND_NATS_PASSWORD")
            })?;
            o = o.user_and_password(u.clone(), pass);
        }
        if let Some(t) = &self.token {
            o = o.token(t.clone());
        }
        if let Some(ca) = &s.ca_file {
            if !ca.is_file() {
                return Err(format!("the CA file {} does not exist", ca.display()));
            }
            o = o.add_root_certificates(ca.clone());
        }
        match (&s.cert_file, &s.key_file) {
            (Some(c), Some(k)) => {
                private(k, "the client key")?;
                o = o.add_client_certificate(c.clone(), k.clone());
            }
            (None, None) => {}
            _ => return Err("a client certificate needs both cert_file and key_file".into()),
        }
        if s.tls_required {
            o = o.require_tls(true);
        }
        Ok(o)
    }
}

/// A URL's percent-encoded userinfo part, decoded.
fn percent(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Refuse a secret file others may read.
fn private(p: &Path, what: &str) -> Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{what} {}: {e}", p.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {} may be read by other users; `chmod 600 {}`",
            p.display(),
            p.display()
        ));
    }
    Ok(())
}

/// `url` without a user, password or token in it, for messages and files.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().replacen("://", "://***@", 1)
        }
        Ok(_) => url.to_string(),
        // Not a URL: keep what is before an `@`, if any, out.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_never_show() {
        assert_eq!(
            redact("nats://alice:s3cret@hub.example:4222"),
            "nats://***@hub.example:4222"
        );
        assert_eq!(
            redact("nats://t0ken@127.0.0.1:4222"),
            "nats://***@127.0.0.1:4222"
        );
        assert_eq!(redact("tls://hub.example:4443"), "tls://hub.example:4443");
        assert_eq!(redact("embedded"), "embedded");
    }

    #[tokio::test]
    async fn one_kind_of_credentials_and_private_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed");
        std::fs::write(&seed, "SUAbogus").unwrap();
        std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o644)).unwrap();
        let auth = |section: NatsSection, token: Option<&str>| NatsAuth {
            section,
            password: None,
            token: token.map(String::from),
        };
        let open = NatsSection {
            nkey_file: Some(seed.clone()),
            ..Default::default()
        };
        let e = auth(open.clone(), None).options().await.err().unwrap();
        assert!(e.contains("chmod 600"), "{e}");
        let e = auth(open, Some("t")).options().await.err().unwrap();
        assert!(e.contains("one kind"), "{e}");
        let e = auth(
            NatsSection {
                user: Some("alice".into()),
                ..Default::default()
            },
            None,
        )
        .options()
        .await
        .err()
        .unwrap();
        assert!(e.contains("DESKHAND_NATS_PASSWORD"), "{e}");
        let shown = format!("{:?}", auth(NatsSection::default(), Some("s3cret")));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
