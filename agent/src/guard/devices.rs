//! Signed dispatch: devices paired with this agent hold an Ed25519 key; a job is accepted only
//! when its envelope is signed by a paired, unrevoked device, was created within
//! [`MAX_SKEW`] of now, and its nonce was not used by another job of that device.
//!
//! The device list (public keys) is `.deskhand/devices.json`; a device's secret is shown once by
//! `deskhand pair` as `dh1.<device id>.<base64url seed>`. This desktop's own CLI signs with a
//! device key of its own in `.deskhand/device.key` (mode 0600), paired on first use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::job::Job;

/// How far a job's `created_at` may be from the agent's clock.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The id of this desktop's own CLI device.
pub const LOCAL_DEVICE: &str = "this-desktop";

/// A paired device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// `dev-…`, or [`LOCAL_DEVICE`].
    pub id: String,
    /// What the person called it.
    pub name: String,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    /// When it was paired.
    pub paired_at: DateTime<Utc>,
    /// When it was revoked; its jobs are refused from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature.
    #[error("job is not signed; send it from a paired device (`deskhand pair` on the desktop)")]
    Unsigned,
    /// The origin is not a paired device.
    #[error("job comes from unknown device {0:?}; pair it first with `deskhand pair`")]
    UnknownDevice(String),
    /// Revoked.
    #[error("device {0} was revoked; pair it again to send jobs")]
    Revoked(String),
    /// Signature does not verify.
    #[error("job signature does not match its content or its device's key (forged or altered)")]
    BadSignature,
    /// Too old or from the future.
    #[error("job was created at {0}, more than 5 minutes from this agent's clock (replayed, or a wrong clock)")]
    Stale(DateTime<Utc>),
    /// Nonce reused by another job.
    #[error("job reuses nonce {0} of an earlier job from this device (replayed)")]
    Replayed(String),
    /// A bad secret string.
    #[error("{0}")]
    BadKey(String),
    /// The device file.
    #[error("devices file {path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

/// The paired devices of a workspace.
#[derive(Debug, Clone)]
pub struct Devices {
    path: PathBuf,
}

impl Devices {
    /// `.deskhand/devices.json` of a workspace.
    pub fn new(workspace: &Path) -> Devices {
        Devices {
            path: workspace.join(".deskhand/devices.json"),
        }
    }

    fn file_err(&self, why: impl ToString) -> SignatureError {
        SignatureError::File {
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    /// Every device ever paired.
    pub fn list(&self) -> Result<Vec<Device>, SignatureError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| self.file_err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(self.file_err(e)),
        }
    }

    /// The device list with its keys decoded, cached per file while its mtime and size hold
    /// (pairing and revoking in another process change both).
    fn known(&self) -> Result<Arc<Known>, SignatureError> {
        static CACHE: LazyLock<Mutex<HashMap<PathBuf, Arc<Known>>>> =
            LazyLock::new(Default::default);
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()));
        if let Some(k) = CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.path)
            .filter(|k| k.stamp == stamp)
        {
            return Ok(Arc::clone(k));
        }
        let devices = self.list()?;
        let keys = devices
            .iter()
            .filter_map(|d| {
                let pk: [u8; 32] = B64.decode(&d.public_key).ok()?.try_into().ok()?;
                Some((d.id.clone(), VerifyingKey::from_bytes(&pk).ok()?))
            })
            .collect();
        let k = Arc::new(Known {
            stamp,
            devices,
            keys,
        });
        CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.path.clone(), Arc::clone(&k));
        Ok(k)
    }

    fn save(&self, list: &[Device]) -> Result<(), SignatureError> {
        let bytes = serde_json::to_vec_pretty(list).map_err(|e| self.file_err(e))?;
        deskhand_workspace::atomic_write(&self.path, &bytes).map_err(|e| self.file_err(e))
    }

    /// Pair a new device: returns it and its secret (shown once, never stored here).
    pub fn pair(&self, name: &str) -> Result<(Device, String), SignatureError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| self.file_err(e))?;
        let key = SigningKey::from_bytes(&seed);
        let id = format!("dev-{}", &crate::job::random_hex(5));
        let device = Device {
            id: id.clone(),
            name: name.to_string(),
            public_key: B64.encode(key.verifying_key().as_bytes()),
            paired_at: Utc::now(),
            revoked_at: None,
        };
        let mut list = self.list()?;
        list.push(device.clone());
        self.save(&list)?;
        Ok((device, format!("dh1.{id}.{}", B64.encode(seed))))
    }

    /// Revoke a device: its jobs are refused from now on.
    pub fn revoke(&self, id: &str) -> Result<Device, SignatureError> {
        let mut list = self.list()?;
        let d = list
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or_else(|| SignatureError::UnknownDevice(id.to_string()))?;
        if d.revoked_at.is_none() {
            d.revoked_at = Some(Utc::now());
        }
        let out = d.clone();
        self.save(&list)?;
        Ok(out)
    }

    /// This desktop's own signing key (cached while its file is unchanged).
    pub fn local_key(&self) -> Result<Arc<DeviceKey>, SignatureError> {
        type Keys = Mutex<HashMap<PathBuf, (Stamp, Arc<DeviceKey>)>>;
        static CACHE: LazyLock<Keys> = LazyLock::new(Default::default);
        let key_path = self.path.with_file_name("device.key");
        let stamp = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().ok(), m.len()))
        };
        let now = (stamp(&key_path), stamp(&self.path));
        if let Some((s, k)) = CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key_path)
        {
            if *s == now {
                return Ok(Arc::clone(k));
            }
        }
        let k = Arc::new(DeviceKey::parse(&self.local_secret()?)?);
        let now = (stamp(&key_path), stamp(&self.path));
        CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key_path, (now, Arc::clone(&k)));
        Ok(k)
    }

    /// This desktop's own device secret, paired on first use.
    pub fn local_secret(&self) -> Result<String, SignatureError> {
        let key_path = self.path.with_file_name("device.key");
        if let Ok(s) = std::fs::read_to_string(&key_path) {
            let s = s.trim().to_string();
            let known = self.list()?.into_iter().any(|d| {
                d.id == LOCAL_DEVICE
                    && d.revoked_at.is_none()
                    && DeviceKey::parse(&s).is_ok_and(|k| k.public_key() == d.public_key)
            });
            if known {
                return Ok(s);
            }
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| self.file_err(e))?;
        let secret = format!("dh1.{LOCAL_DEVICE}.{}", B64.encode(seed));
        let key = DeviceKey::parse(&secret)?;
        write_private(&key_path, secret.as_bytes()).map_err(|e| self.file_err(e))?;
        let mut list = self.list()?;
        list.retain(|d| d.id != LOCAL_DEVICE);
        list.push(Device {
            id: LOCAL_DEVICE.into(),
            name: "this desktop (CLI)".into(),
            public_key: key.public_key(),
            paired_at: Utc::now(),
            revoked_at: None,
        });
        self.save(&list)?;
        Ok(secret)
    }

    /// The devices of the agent whose private folder (`.deskhand/`) is `dir`.
    pub fn in_dir(dir: &Path) -> Devices {
        Devices {
            path: dir.join("devices.json"),
        }
    }

    /// Check a job's signature, device and age (not its nonce: see [`crate::store`]).
    pub fn verify(&self, job: &Job, now: DateTime<Utc>) -> Result<(), SignatureError> {
        self.verify_signature(job, now)?;
        if (now - job.created_at).abs() > MAX_SKEW {
            return Err(SignatureError::Stale(job.created_at));
        }
        Ok(())
    }

    /// Check only who signed it and that nothing changed since (a redelivery of a job accepted
    /// earlier may be older than the time window).
    pub fn verify_signature(&self, job: &Job, now: DateTime<Utc>) -> Result<(), SignatureError> {
        let sig = job.signature.as_deref().ok_or(SignatureError::Unsigned)?;
        self.check(signer_of(&job.origin), sig, &signed_bytes(job), now)
    }

    /// Did paired, unrevoked device `signer` sign `message` with `sig` (base64url)?
    pub(crate) fn check(
        &self,
        signer: &str,
        sig: &str,
        message: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let known = self.known()?;
        let device = known
            .devices
            .iter()
            .find(|d| d.id == signer)
            .ok_or_else(|| SignatureError::UnknownDevice(signer.to_string()))?;
        if device.revoked_at.is_some_and(|t| t <= now) {
            return Err(SignatureError::Revoked(device.id.clone()));
        }
        let pk = known
            .keys
            .get(&device.id)
            .ok_or_else(|| self.file_err(format!("device {} has a bad key", device.id)))?;
        let sig: [u8; 64] = B64
            .decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignatureError::BadSignature)?;
        pk.verify(message, &Signature::from_bytes(&sig))
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// (mtime, size) of a file, or None when it is missing.
type Stamp = (
    Option<(Option<std::time::SystemTime>, u64)>,
    Option<(Option<std::time::SystemTime>, u64)>,
);

/// The decoded device list.
struct Known {
    stamp: Option<(Option<std::time::SystemTime>, u64)>,
    devices: Vec<Device>,
    keys: HashMap<String, VerifyingKey>,
}

/// What the device key is hashed with to make its hub nkey (see [`DeviceKey::hub_nkey`]).
pub const HUB_NKEY_LABEL: &[u8] = b"deskhand-hub-nkey/1\0";

/// A device's signing key, from its secret string.
pub struct DeviceKey {
    id: String,
    key: SigningKey,
}

impl DeviceKey {
    /// Parse `dh1.<device id>.<base64url seed>`.
    pub fn parse(secret: &str) -> Result<DeviceKey, SignatureError> {
        let bad = || {
            SignatureError::BadKey(
                "not a device key; it looks like dh1.<device>.<key>, as `deskhand pair` printed it"
                    .into(),
            )
        };
        let mut parts = secret.trim().splitn(3, '.');
        let (Some("dh1"), Some(id), Some(seed)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let seed: [u8; 32] = B64
            .decode(seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Ok(DeviceKey {
            id: id.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The device id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key, base64url.
    pub fn public_key(&self) -> String {
        B64.encode(self.key.verifying_key().as_bytes())
    }

    /// The seed of this device's NATS user key (an nkey) for a hub: derived from the device key
    /// with its own label, so the hub, which makes the client sign a nonce it chose, never gets
    /// a signature by the key that signs jobs. The phone page derives the same seed.
    pub fn hub_nkey(&self) -> nkeys::KeyPair {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(HUB_NKEY_LABEL);
        h.update(self.key.to_bytes());
        let seed: [u8; 32] = h.finalize().into();
        nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, seed)
            .expect("32 bytes make an nkey seed")
    }

    /// Sign any message as this device (base64url), e.g. an API request.
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).to_bytes())
    }

    /// Sign a job as this device: sets its origin, a fresh `created_at`, then the signature.
    pub fn sign(&self, job: &mut Job) {
        self.sign_at(job, Utc::now());
    }

    /// Sign with a given creation time (a sender whose clock is off; tests of the time window).
    pub fn sign_at(&self, job: &mut Job, created_at: DateTime<Utc>) {
        if signer_of(&job.origin) != self.id {
            job.origin = self.id.clone();
        }
        job.created_at = created_at;
        job.signature = None;
        let sig = self.key.sign(&signed_bytes(job));
        job.signature = Some(B64.encode(sig.to_bytes()));
    }
}

/// The device that signs a job with this origin: the origin itself, except that jobs a schedule
/// started (`schedule:<id>@<due>`, the origin the schedule ledger matches them by) are signed by
/// this desktop.
pub fn signer_of(origin: &str) -> &str {
    if origin.starts_with("schedule:") {
        LOCAL_DEVICE
    } else {
        origin
    }
}

/// What is signed: the envelope as JSON without its signature (serde_json writes struct fields in
/// declaration order and object keys sorted, so signer and verifier produce the same bytes).
pub fn signed_bytes(job: &Job) -> Vec<u8> {
    let mut j = job.clone();
    j.signature = None;
    serde_json::to_vec(&j).unwrap_or_default()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_jobs_verify_and_forgeries_unknown_revoked_and_stale_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        let devices = Devices::new(d.path());
        let (phone, secret) = devices.pair("phone").unwrap();
        assert!(
            !std::fs::read_to_string(d.path().join(".deskhand/devices.json"))
                .unwrap()
                .contains(secret.rsplit('.').next().unwrap()),
            "the secret is not stored"
        );
        let key = DeviceKey::parse(&secret).unwrap();
        let mut job = Job::new("noop", Default::default(), "x");
        key.sign(&mut job);
        assert_eq!(job.origin, phone.id);
        let now = Utc::now();
        devices.verify(&job, now).unwrap();
        // Round trip through JSON, as it travels.
        let back = Job::from_bytes(&job.to_bytes()).unwrap();
        devices.verify(&back, now).unwrap();

        let mut altered = job.clone();
        altered
            .params
            .insert("url".into(), "https://evil.example".into());
        assert_eq!(
            devices.verify(&altered, now),
            Err(SignatureError::BadSignature)
        );
        let mut unsigned = job.clone();
        unsigned.signature = None;
        assert_eq!(
            devices.verify(&unsigned, now),
            Err(SignatureError::Unsigned)
        );
        let stranger = DeviceKey::parse(&format!("dh1.dev-zzz.{}", B64.encode([7u8; 32]))).unwrap();
        let mut foreign = Job::new("noop", Default::default(), "x");
        stranger.sign(&mut foreign);
        assert!(matches!(
            devices.verify(&foreign, now),
            Err(SignatureError::UnknownDevice(_))
        ));
        // Someone else's key under the phone's name.
        let imposter =
            DeviceKey::parse(&format!("dh1.{}.{}", phone.id, B64.encode([9u8; 32]))).unwrap();
        let mut forged = Job::new("noop", Default::default(), "x");
        imposter.sign(&mut forged);
        assert_eq!(
            devices.verify(&forged, now),
            Err(SignatureError::BadSignature)
        );
        assert!(matches!(
            devices.verify(&job, now + chrono::Duration::minutes(6)),
            Err(SignatureError::Stale(_))
        ));
        devices.revoke(&phone.id).unwrap();
        assert!(matches!(
            devices.verify(&job, Utc::now()),
            Err(SignatureError::Revoked(_))
        ));

        let local = devices.local_secret().unwrap();
        assert_eq!(
            devices.local_secret().unwrap(),
            local,
            "made once, then reused"
        );
        let mut mine = Job::new("noop", Default::default(), "x");
        DeviceKey::parse(&local).unwrap().sign(&mut mine);
        devices.verify(&mine, Utc::now()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join(".deskhand/device.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key file is private");
        assert!(DeviceKey::parse("hello").is_err());
    }
}
