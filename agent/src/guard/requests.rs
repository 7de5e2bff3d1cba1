//! Signed API requests: a paired device (the phone page) authenticates every call to the local
//! API with its own key, the same key that signs its jobs, instead of the desktop's bearer token.
//!
//! The credential is `Authorization: Deskhand-Device <device>.<unix seconds>.<nonce>.<signature>`,
//! or the same value as `?auth=` for EventSource, which cannot set headers. The signature covers
//! one line each of: `deskhand-request/1`, the method, the path and query (without `auth`), the
//! time, the nonce, and the SHA-256 (hex) of the body. A request is accepted within
//! [`MAX_SKEW`] of the agent's clock, once per nonce.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::devices::{DeviceKey, Devices, SignatureError, MAX_SKEW};

/// The `Authorization` scheme of a device-signed request.
pub const SCHEME: &str = "Deskhand-Device";

/// Why a signed request was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not `<device>.<unix seconds>.<nonce>.<signature>`.
    #[error("malformed device credential ({0}); expected `Deskhand-Device <device>.<unix seconds>.<nonce>.<signature>`")]
    Malformed(&'static str),
    /// Signed too long ago or in the future.
    #[error("request signed at {0}, more than 5 minutes from this agent's clock (replayed, or a wrong clock on the device)")]
    Stale(DateTime<Utc>),
    /// Nonce seen before.
    #[error("request reuses nonce {0} (replayed)")]
    Replayed(String),
    /// Signature does not verify.
    #[error(
        "request signature does not match the request or the device's key (forged or altered)"
    )]
    Forged,
    /// Unknown or revoked device, or the device file.
    #[error("{0}")]
    Device(SignatureError),
}

impl RequestError {
    /// A stable code for clients: whether to keep the key (a clock off, a retry) or drop it.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Malformed(_) => "malformed_credential",
            RequestError::Stale(_) => "stale_request",
            RequestError::Replayed(_) => "replayed_request",
            RequestError::Forged => "forged_request",
            RequestError::Device(SignatureError::UnknownDevice(_)) => "unknown_device",
            RequestError::Device(SignatureError::Revoked(_)) => "revoked_device",
            RequestError::Device(_) => "devices_unreadable",
        }
    }

    /// Worth an audit entry: a paired device's key was used wrongly. Malformed credentials and
    /// unknown devices are noise anyone on this machine can make, so they are only logged.
    pub fn about_a_paired_device(&self) -> bool {
        matches!(
            self,
            RequestError::Stale(_)
                | RequestError::Replayed(_)
                | RequestError::Forged
                | RequestError::Device(SignatureError::Revoked(_))
        )
    }
}

/// A parsed credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// The paired device.
    pub device: String,
    /// When it was signed (unix seconds).
    pub time: i64,
    /// Unique per request.
    pub nonce: String,
    /// Ed25519 over [`message`], base64url.
    pub signature: String,
}

impl Credential {
    /// Parse the header value after the scheme, or the `auth` query parameter.
    pub fn parse(s: &str) -> Result<Credential, RequestError> {
        let mut p = s.trim().split('.');
        let (Some(device), Some(time), Some(nonce), Some(signature), None) =
            (p.next(), p.next(), p.next(), p.next(), p.next())
        else {
            return Err(RequestError::Malformed("not four dot-separated parts"));
        };
        let time = time
            .parse()
            .map_err(|_| RequestError::Malformed("time is not unix seconds"))?;
        if device.is_empty() || signature.is_empty() {
            return Err(RequestError::Malformed("empty device or signature"));
        }
        if nonce.len() < 16 || nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RequestError::Malformed("nonce is not 16 to 64 hex digits"));
        }
        Ok(Credential {
            device: device.into(),
            time,
            nonce: nonce.into(),
            signature: signature.into(),
        })
    }
}

/// The bytes a device signs for a request.
pub fn message(method: &str, target: &str, time: i64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let hash: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "deskhand-request/1\n{}\n{target}\n{time}\n{nonce}\n{hash}",
        method.to_ascii_uppercase()
    )
    .into_bytes()
}

/// The path and query a request signs: `auth` (the credential itself) left out.
pub fn signed_target(path: &str, query: Option<&str>) -> String {
    let rest: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("auth="))
        .collect();
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

/// The credential for a request, as a device sends it (the value after the scheme).
pub fn sign(
    key: &DeviceKey,
    method: &str,
    target: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> String {
    let nonce = crate::job::random_hex(16);
    let time = now.timestamp();
    let sig = key.sign_bytes(&message(method, target, time, &nonce, body));
    format!("{}.{time}.{nonce}.{sig}", key.id())
}

/// Nonces seen within the time window, so a captured request cannot be sent again.
///
/// Kept in memory: after a restart a request captured in the last five minutes could be replayed
/// once. That is acceptable here because jobs carry their own nonce (kept in the state database)
/// and the other writes (approve, refuse, cancel) cannot be applied twice.
#[derive(Default)]
pub struct Nonces {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl Nonces {
    /// Record a nonce; false if it was seen within the window.
    fn fresh(&self, device: &str, nonce: &str, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let window = MAX_SKEW.num_seconds();
        seen.retain(|_, t| now - *t <= 2 * window);
        seen.insert((device.into(), nonce.into()), now).is_none()
    }
}

/// Check a device-signed request; the device id on success.
pub fn verify(
    devices: &Devices,
    nonces: &Nonces,
    cred: &Credential,
    method: &str,
    target: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<String, RequestError> {
    let signed_at = DateTime::from_timestamp(cred.time, 0)
        .ok_or(RequestError::Malformed("time out of range"))?;
    if (now - signed_at).abs() > MAX_SKEW {
        return Err(RequestError::Stale(signed_at));
    }
    let msg = message(method, target, cred.time, &cred.nonce, body);
    devices
        .check(&cred.device, &cred.signature, &msg, now)
        .map_err(|e| match e {
            SignatureError::BadSignature => RequestError::Forged,
            other => RequestError::Device(other),
        })?;
    if !nonces.fresh(&cred.device, &cred.nonce, now.timestamp()) {
        return Err(RequestError::Replayed(cred.nonce.clone()));
    }
    Ok(cred.device.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_once_and_altered_stale_foreign_or_revoked_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        let devices = Devices::new(d.path());
        let (phone, secret) = devices.pair("phone").unwrap();
        let key = DeviceKey::parse(&secret).unwrap();
        let nonces = Nonces::default();
        let now = Utc::now();
        let check = |cred: &str, method: &str, target: &str, body: &[u8]| {
            verify(
                &devices,
                &nonces,
                &Credential::parse(cred)?,
                method,
                target,
                body,
                now,
            )
        };
        let cred = sign(&key, "POST", "/api/approvals/a1/approve", b"", now);
        assert_eq!(
            check(&cred, "POST", "/api/approvals/a1/approve", b""),
            Ok(phone.id.clone())
        );
        assert!(matches!(
            check(&cred, "POST", "/api/approvals/a1/approve", b""),
            Err(RequestError::Replayed(_))
        ));
        // Another path, method or body than was signed.
        for (m, t, b) in [
            ("POST", "/api/approvals/a2/approve", &b""[..]),
            ("GET", "/api/approvals/a1/approve", b""),
            ("POST", "/api/approvals/a1/approve", b"{}"),
        ] {
            let cred = sign(&key, "POST", "/api/approvals/a1/approve", b"", now);
            assert_eq!(check(&cred, m, t, b), Err(RequestError::Forged), "{m} {t}");
        }
        let old = sign(
            &key,
            "GET",
            "/api/jobs",
            b"",
            now - chrono::Duration::minutes(6),
        );
        assert!(matches!(
            check(&old, "GET", "/api/jobs", b""),
            Err(RequestError::Stale(_))
        ));
        let (_, other) = Devices::new(tempfile::tempdir().unwrap().path())
            .pair("elsewhere")
            .unwrap();
        let stranger = sign(
            &DeviceKey::parse(&other).unwrap(),
            "GET",
            "/api/jobs",
            b"",
            now,
        );
        assert!(matches!(
            check(&stranger, "GET", "/api/jobs", b""),
            Err(RequestError::Device(SignatureError::UnknownDevice(_)))
        ));
        assert!(matches!(
            check("a.b.c", "GET", "/api/jobs", b""),
            Err(RequestError::Malformed(_))
        ));
        devices.revoke(&phone.id).unwrap();
        let later = Utc::now() + chrono::Duration::seconds(1);
        let late = sign(&key, "GET", "/api/jobs", b"", later);
        assert!(matches!(
            verify(
                &devices,
                &nonces,
                &Credential::parse(&late).unwrap(),
                "GET",
                "/api/jobs",
                b"",
                later
            ),
            Err(RequestError::Device(SignatureError::Revoked(_)))
        ));
    }

    #[test]
    fn the_credential_parameter_is_not_part_of_what_is_signed() {
        assert_eq!(signed_target("/api/jobs", None), "/api/jobs");
        assert_eq!(
            signed_target("/api/jobs/1/events", Some("auth=x.1.2.3")),
            "/api/jobs/1/events"
        );
        assert_eq!(
            signed_target("/api/jobs", Some("limit=5&auth=x.1.2.3")),
            "/api/jobs?limit=5"
        );
    }
}
