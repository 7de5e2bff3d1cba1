//! Secret values for forms (a password, an account number) that a job fills without the model,
//! the transcript, the audit log or a report ever holding them. The person stores one with
//! `deskhand secrets set NAME --site ORIGIN`: the value goes to the secret store (the OS
//! keyring, as the connectors' tokens do), its name and sites to `.deskhand/form-secrets.json`.
//! A job writes `{{secret:NAME}}` as a field's value; the guard puts the value in only when the
//! form's page is on one of the secret's sites, and takes it out again (raw, URL-encoded and
//! form-encoded) of everything the fill reports.

use std::path::{Path, PathBuf};

use deskhand_connectors::{SecretStoreKind, Secrets};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stored secret, as the catalog knows it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormSecret {
    /// How jobs name it: `{{secret:NAME}}`.
    pub name: String,
    /// The origins of the pages it may be filled into.
    pub sites: Vec<String>,
}

/// What went wrong with a form secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormSecretError {
    /// A name with characters other than letters, digits, `_` and `-`.
    #[error("{0:?} is not a secret name: use 1-64 letters, digits, `_` or `-`")]
    BadName(String),
    /// A site that is not an http(s) origin.
    #[error("{0:?} is not a site: give an http(s) URL such as https://bank.example")]
    BadSite(String),
    /// No such secret.
    #[error("there is no secret {0:?}; `deskhand secrets list` shows them, `deskhand secrets set {0} --site URL` adds it")]
    Unknown(String),
    /// The catalog file could not be read or written.
    #[error("{path}: {source}")]
    Catalog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret store.
    #[error("the secret store: {0}")]
    Store(String),
}

/// A secret revealed for one fill: its name and value (kept only for the fill's duration).
pub struct Revealed {
    name: String,
    value: String,
}

fn catalog_path(workspace: &Path) -> PathBuf {
    workspace.join(".deskhand/form-secrets.json")
}

fn key(name: &str) -> String {
    format!("form-secret/{name}")
}

fn check_name(name: &str) -> Result<(), FormSecretError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(FormSecretError::BadName(name.to_string()))
    }
}

/// The secrets the workspace has, by name (no values).
pub fn list(workspace: &Path) -> Result<Vec<FormSecret>, FormSecretError> {
    let path = catalog_path(workspace);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(FormSecretError::Catalog { path, source }),
    }
}

fn save(workspace: &Path, all: &[FormSecret]) -> Result<(), FormSecretError> {
    let path = catalog_path(workspace);
    let bytes = serde_json::to_vec_pretty(all).unwrap_or_default();
    std::fs::write(&path, bytes).map_err(|source| FormSecretError::Catalog { path, source })
}

/// Store `value` as secret `name`, to be filled only on `sites` (their origins are kept).
pub fn set(
    workspace: &Path,
    store: &Secrets,
    name: &str,
    value: &str,
    sites: &[String],
) -> Result<FormSecret, FormSecretError> {
    check_name(name)?;
    let mut origins = Vec::new();
    for s in sites {
        let origin = url::Url::parse(s)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .map(|u| u.origin().ascii_serialization())
            .ok_or_else(|| FormSecretError::BadSite(s.clone()))?;
        origins.push(origin);
    }
    origins.sort();
    origins.dedup();
    store
        .set(&key(name), value)
        .map_err(|e| FormSecretError::Store(e.to_string()))?;
    let mut all = list(workspace)?;
    all.retain(|s| s.name != name);
    let entry = FormSecret {
        name: name.to_string(),
        sites: origins,
    };
    all.push(entry.clone());
    all.sort_by(|a, b| a.name.cmp(&b.name));
    save(workspace, &all)?;
    Ok(entry)
}

/// Forget secret `name`: its value and its catalog entry.
pub fn forget(workspace: &Path, store: &Secrets, name: &str) -> Result<(), FormSecretError> {
    let mut all = list(workspace)?;
    if !all.iter().any(|s| s.name == name) {
        return Err(FormSecretError::Unknown(name.to_string()));
    }
    store
        .delete(&key(name))
        .map_err(|e| FormSecretError::Store(e.to_string()))?;
    all.retain(|s| s.name != name);
    save(workspace, &all)
}

/// The workspace's secret store of this kind.
pub fn open(workspace: &Path, kind: SecretStoreKind) -> Result<Secrets, FormSecretError> {
    Secrets::open(kind, &workspace.join(".deskhand"))
        .map_err(|e| FormSecretError::Store(e.to_string()))
}

/// The secret a field value names, if it is exactly a placeholder `{{secret:NAME}}`.
pub fn placeholder(value: &str) -> Option<&str> {
    value
        .trim()
        .strip_prefix("{{secret:")?
        .strip_suffix("}}")
        .map(str::trim)
}

/// The value of secret `name` for a form on `page_url`: refused (`Err` with why) when the page
/// is not on one of its sites.
pub(super) fn reveal(
    workspace: &Path,
    store: &Secrets,
    name: &str,
    page_url: &str,
) -> Result<Result<Revealed, String>, FormSecretError> {
    let Some(entry) = list(workspace)?.into_iter().find(|s| s.name == name) else {
        return Err(FormSecretError::Unknown(name.to_string()));
    };
    let origin = url::Url::parse(page_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if !entry.sites.contains(&origin) {
        return Ok(Err(format!(
            "secret {name} is for {} only, not {origin}",
            entry.sites.join(", ")
        )));
    }
    let value = store
        .get(&key(name))
        .map_err(|e| FormSecretError::Store(e.to_string()))?
        .ok_or_else(|| FormSecretError::Unknown(name.to_string()))?;
    Ok(Ok(Revealed {
        name: name.to_string(),
        value,
    }))
}

/// Put every revealed value back into its placeholder in every string of `v` (the value as
/// typed, URL-encoded and form-encoded, as a submitted URL carries it).
pub fn conceal(v: &mut Value, revealed: &[Revealed]) {
    match v {
        Value::String(s) => {
            for r in revealed.iter().filter(|r| !r.value.is_empty()) {
                let mark = format!("{{{{secret:{}}}}}", r.name);
                let forms = [
                    r.value.clone(),
                    url::form_urlencoded::byte_serialize(r.value.as_bytes()).collect(),
                    percent_encoding::utf8_percent_encode(
                        &r.value,
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string(),
                ];
                for f in forms {
                    if s.contains(&f) {
                        *s = s.replace(&f, &mark);
                    }
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| conceal(x, revealed)),
        Value::Object(m) => m.values_mut().for_each(|x| conceal(x, revealed)),
        _ => {}
    }
}

impl Revealed {
    /// The value, to type into the page.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_and_concealing_in_every_encoding() {
        assert_eq!(placeholder(" {{secret:bank-pw}} "), Some("bank-pw"));
        assert_eq!(placeholder("pw {{secret:x}}"), None);
        let r = [Revealed {
            name: "pw".into(),
            value: "s3cr et&/ü".into(),
        }];
        let mut v = json!({"fields": [{"value": "s3cr et&/ü"}],
            "url": "https://x/submitted.html?password=s3cr+et%26%2F%C3%BC&a=1"});
        conceal(&mut v, &r);
        assert_eq!(v["fields"][0]["value"], "{{secret:pw}}");
        assert_eq!(
            v["url"],
            "https://x/submitted.html?password={{secret:pw}}&a=1"
        );
    }

    #[test]
    fn a_catalog_keeps_names_and_origins_never_values() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".deskhand")).unwrap();
        let store = Secrets::encrypted_file(
            &d.path().join(".deskhand"),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .unwrap();
        let store = &store;
        let e = set(
            d.path(),
            store,
            "pw",
            "hunter2",
            &["https://bank.example/login".into()],
        )
        .unwrap();
        assert_eq!(e.sites, ["https://bank.example"]);
        let catalog = std::fs::read_to_string(catalog_path(d.path())).unwrap();
        assert!(!catalog.contains("hunter2"));
        let ok = reveal(d.path(), store, "pw", "https://bank.example/a?b").unwrap();
        assert_eq!(ok.unwrap().value(), "hunter2");
        let no = reveal(d.path(), store, "pw", "https://evil.example/").unwrap();
        assert!(no.err().unwrap().contains("for https://bank.example only"));
        assert!(matches!(
            set(d.path(), store, "a b", "x", &[]),
            Err(FormSecretError::BadName(_))
        ));
        forget(d.path(), store, "pw").unwrap();
        assert!(matches!(
            reveal(d.path(), store, "pw", "https://bank.example/"),
            Err(FormSecretError::Unknown(_))
        ));
    }
}
