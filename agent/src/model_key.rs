//! The model's API key in the OS keyring (`deskhand model set-key`, issue 16): kept in the same
//! secret store the connectors use (`[secrets] store`), one entry per provider, so an Anthropic
//! key is never sent to an OpenAI-compatible server. The environment's key wins over it
//! ([`crate::config::model_settings`]). The key is never written to a file, a log or an error:
//! only the entry's name is.

use std::path::Path;

use deskhand_model::Provider;

use crate::config::Config;

/// The keyring entry holding `provider`'s key (service `deskhand`).
pub fn entry(provider: Provider) -> String {
    format!("model:{}:api-key", provider.as_str())
}

/// Store `key` for `provider`, replacing any earlier one; returns where it went ("Secret Service
/// (OS keyring)", "kernel keyutils (memory only)", …).
pub fn store(
    workspace: &Path,
    config: &Config,
    provider: Provider,
    key: &str,
) -> anyhow::Result<String> {
    let key = key.trim();
    anyhow::ensure!(
        !key.is_empty(),
        "the key is empty; paste it on standard input or at the prompt"
    );
    anyhow::ensure!(
        !key.chars().any(char::is_control),
        "the key has a line break or another control character in it; give the key alone"
    );
    let secrets = crate::connect::open_secrets(workspace, config)?;
    secrets.set(&entry(provider), key)?;
    Ok(secrets.describe().to_string())
}

/// Remove `provider`'s key; returns where it was looked for. Absent is fine.
pub fn forget(workspace: &Path, config: &Config, provider: Provider) -> anyhow::Result<String> {
    let secrets = crate::connect::open_secrets(workspace, config)?;
    secrets.delete(&entry(provider))?;
    Ok(secrets.describe().to_string())
}

/// `provider`'s stored key, if there is one. A missing or unusable keyring is not an error here
/// (a local server needs no key; a server that does says so with a 401 and what to set), but an
/// unreadable entry is logged, by name only.
pub fn read(workspace: &Path, config: &Config, provider: Provider) -> Option<String> {
    let secrets = match crate::connect::open_secrets(workspace, config) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "no secret store for the model key");
            return None;
        }
    };
    match secrets.get(&entry(provider)) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the model key from the secret store");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_the_file_store_per_provider_and_never_in_plain_text() {
        let ws = tempfile::tempdir().unwrap();
        // The encrypted-file store with an explicit key (`store()` would read it from the
        // environment); the e2e tests cover the real keyrings.
        let config = Config::parse("[secrets]\nstore = \"file\"\n").unwrap();
        let secrets = deskhand_connectors::Secrets::encrypted_file(
            &ws.path().join(".deskhand"),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .unwrap();
        secrets
            .set(&entry(Provider::Anthropic), "sk-ant-test")
            .unwrap();
        assert_eq!(entry(Provider::Openai), "model:openai:api-key");
        assert_eq!(
            secrets.get(&entry(Provider::Openai)).unwrap(),
            None,
            "one entry per provider"
        );
        let on_disk = std::fs::read_to_string(ws.path().join(".deskhand/secrets.enc")).unwrap();
        assert!(!on_disk.contains("sk-ant-test"));
        assert!(store(ws.path(), &config, Provider::Openai, " \n").is_err());
        assert!(store(ws.path(), &config, Provider::Openai, "sk-a\nsk-b").is_err());
    }
}
