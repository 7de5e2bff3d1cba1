//! Where refresh tokens and client secrets live: the OS keyring, or an encrypted file by explicit choice.
//!
//! Never a silent plain-text fallback: with no keyring service the person gets an error naming the
//! alternatives. Values never appear in errors or logs; only key names do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use keyring_core::{CredentialStore, Entry};
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, Result};

/// Keyring service name for every Deskhand secret.
pub const SERVICE: &str = "deskhand";
/// Environment variable holding the encrypted-file key (32 random bytes, base64).
pub const FILE_KEY_ENV: &str = "DESKHAND_SECRETS_KEY";

/// Which secret store to use (`[secrets] store` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretStoreKind {
    /// The desktop keyring (Secret Service); an error if there is none.
    #[default]
    Auto,
    /// Secret Service over D-Bus (GNOME Keyring, KWallet, KeePassXC).
    SecretService,
    /// The kernel keyutils session keyring: memory only, forgotten at logout or reboot.
    Keyutils,
    /// `.deskhand/secrets.enc`, ChaCha20-Poly1305 with the key from `DESKHAND_SECRETS_KEY`.
    File,
}

impl std::str::FromStr for SecretStoreKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "secret-service" => Ok(Self::SecretService),
            "keyutils" => Ok(Self::Keyutils),
            "file" => Ok(Self::File),
            o => Err(format!(
                "unknown secret store {o:?}: use auto, secret-service, keyutils or file"
            )),
        }
    }
}

/// An open secret store.
pub struct Secrets {
    inner: Inner,
    description: String,
}

enum Inner {
    Keyring(Arc<CredentialStore>),
    File {
        path: PathBuf,
        cipher: ChaCha20Poly1305,
    },
}

#[derive(Default, Serialize, Deserialize)]
struct SecretFile {
    version: u32,
    /// key name -> base64(nonce || ciphertext); the key name is the associated data.
    entries: BTreeMap<String, String>,
}

fn no_keyring_help(detail: &str) -> ConnectorError {
    ConnectorError::Secrets(format!(
        "no OS keyring is available ({detail}). Start one in your session (GNOME Keyring, \
         KWallet or KeePassXC with Secret Service), or choose a store explicitly in \
         .deskhand/config.toml: `[secrets] store = \"file\"` with {FILE_KEY_ENV} set to 32 random \
         bytes in base64 (`openssl rand -base64 32`), or `store = \"keyutils\"` (kernel keyring, \
         forgotten at logout)"
    ))
}

impl Secrets {
    /// Opens the store of the given kind; `state_dir` is the workspace's `.deskhand/`.
    pub fn open(kind: SecretStoreKind, state_dir: &Path) -> Result<Secrets> {
        match kind {
            SecretStoreKind::Auto | SecretStoreKind::SecretService => {
                let store = zbus_secret_service_keyring_store::Store::new()
                    .map_err(|e| no_keyring_help(&format!("Secret Service: {e}")))?;
                Ok(Secrets {
                    inner: Inner::Keyring(store),
                    description: "Secret Service (OS keyring)".into(),
                })
            }
            SecretStoreKind::Keyutils => {
                let store = linux_keyutils_keyring_store::Store::new()
                    .map_err(|e| no_keyring_help(&format!("kernel keyutils: {e}")))?;
                Ok(Secrets {
                    inner: Inner::Keyring(store),
                    description: "kernel keyutils (memory only)".into(),
                })
            }
            SecretStoreKind::File => {
                let raw = std::env::var(FILE_KEY_ENV).map_err(|_| {
                    ConnectorError::Secrets(format!(
                        "[secrets] store = \"file\" needs {FILE_KEY_ENV} set to 32 random bytes in \
                         base64; create one with `openssl rand -base64 32` and keep it outside the \
                         workspace"
                    ))
                })?;
                Self::encrypted_file(state_dir, &raw)
            }
        }
    }

    /// The encrypted-file store with an explicit key (32 bytes, base64).
    pub fn encrypted_file(state_dir: &Path, key_b64: &str) -> Result<Secrets> {
        let key = B64
            .decode(key_b64.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                ConnectorError::Secrets(format!(
                    "{FILE_KEY_ENV} must be 32 bytes in base64 (`openssl rand -base64 32`)"
                ))
            })?;
        let path = state_dir.join("secrets.enc");
        Ok(Secrets {
            description: format!("encrypted file {}", path.display()),
            inner: Inner::File {
                path,
                cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            },
        })
    }

    /// Where secrets are kept, for messages.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Reads a secret; `None` when absent.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        match &self.inner {
            Inner::Keyring(store) => match entry(store, key)?.get_password() {
                Ok(v) => Ok(Some(v)),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(keyring_err(key, e)),
            },
            Inner::File { path, cipher } => {
                let file = read_file(path)?;
                let Some(blob) = file.entries.get(key) else {
                    return Ok(None);
                };
                let bytes = B64.decode(blob).map_err(|_| corrupt(path, key))?;
                if bytes.len() < 12 {
                    return Err(corrupt(path, key));
                }
                let (nonce, ct) = bytes.split_at(12);
                let plain = cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: ct,
                            aad: key.as_bytes(),
                        },
                    )
                    .map_err(|_| {
                        ConnectorError::Secrets(format!(
                            "cannot decrypt {key:?} in {}: {FILE_KEY_ENV} is not the key it was \
                             written with",
                            path.display()
                        ))
                    })?;
                String::from_utf8(plain)
                    .map(Some)
                    .map_err(|_| corrupt(path, key))
            }
        }
    }

    /// Stores a secret, replacing any previous value.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        match &self.inner {
            Inner::Keyring(store) => entry(store, key)?
                .set_password(value)
                .map_err(|e| keyring_err(key, e)),
            Inner::File { path, cipher } => {
                let mut file = read_file(path)?;
                let mut nonce = [0u8; 12];
                getrandom::fill(&mut nonce).map_err(|e| ConnectorError::Secrets(e.to_string()))?;
                let ct = cipher
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: value.as_bytes(),
                            aad: key.as_bytes(),
                        },
                    )
                    .map_err(|_| ConnectorError::Secrets("encryption failed".into()))?;
                let mut blob = nonce.to_vec();
                blob.extend_from_slice(&ct);
                file.version = 1;
                file.entries.insert(key.to_string(), B64.encode(blob));
                write_file(path, &file)
            }
        }
    }

    /// Removes a secret; absent is fine.
    pub fn delete(&self, key: &str) -> Result<()> {
        match &self.inner {
            Inner::Keyring(store) => match entry(store, key)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(keyring_err(key, e)),
            },
            Inner::File { path, .. } => {
                let mut file = read_file(path)?;
                if file.entries.remove(key).is_some() {
                    write_file(path, &file)?;
                }
                Ok(())
            }
        }
    }
}

fn entry(store: &Arc<CredentialStore>, key: &str) -> Result<Entry> {
    Entry::new_in_store(store, SERVICE, key).map_err(|e| keyring_err(key, e))
}

fn keyring_err(key: &str, e: keyring_core::Error) -> ConnectorError {
    // keyring errors carry platform messages, never the secret itself.
    ConnectorError::Secrets(format!("keyring entry {SERVICE}/{key}: {e}"))
}

fn corrupt(path: &Path, key: &str) -> ConnectorError {
    ConnectorError::Secrets(format!(
        "entry {key:?} in {} is damaged; reconnect to write it again",
        path.display()
    ))
}

fn read_file(path: &Path) -> Result<SecretFile> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ConnectorError::Secrets(format!(
                "{} is not a Deskhand secret file: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SecretFile::default()),
        Err(e) => Err(ConnectorError::Secrets(format!("{}: {e}", path.display()))),
    }
}

fn write_file(path: &Path, file: &SecretFile) -> Result<()> {
    let io = |e: std::io::Error| ConnectorError::Secrets(format!("{}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("enc.tmp");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&serde_json::to_vec_pretty(file).unwrap_or_default())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_and_hides_values() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Secrets::encrypted_file(dir.path(), &B64.encode([7u8; 32])).unwrap();
            assert_eq!(s.get("google:default:refresh").unwrap(), None);
            s.set("google:default:refresh", "1//very-secret").unwrap();
            assert_eq!(
                s.get("google:default:refresh").unwrap().as_deref(),
                Some("1//very-secret")
            );
            let on_disk = std::fs::read_to_string(dir.path().join("secrets.enc")).unwrap();
            assert!(!on_disk.contains("very-secret"));
            // A value moved under another name does not decrypt (the name is authenticated).
            let mut f: SecretFile = serde_json::from_str(&on_disk).unwrap();
            let blob = f.entries.remove("google:default:refresh").unwrap();
            f.entries.insert("notion:default:token".into(), blob);
            write_file(&dir.path().join("secrets.enc"), &f).unwrap();
            assert!(s.get("notion:default:token").is_err());
            s.delete("notion:default:token").unwrap();
            assert_eq!(s.get("notion:default:token").unwrap(), None);
        }
        assert!(Secrets::encrypted_file(dir.path(), "c2hvcnQ=").is_err());
    }

    #[test]
    fn store_names_parse() {
        assert_eq!("file".parse::<SecretStoreKind>(), Ok(SecretStoreKind::File));
        assert!("plain".parse::<SecretStoreKind>().is_err());
    }
}
