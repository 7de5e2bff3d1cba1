//! The Chrome extension's agent side: the native-messaging host Chrome starts, the hub in the
//! daemon it relays to, the installer, and the popup's requests. The extension itself (Manifest
//! V3 files) lives in `extension/` at the repository root and is embedded here, so the installed
//! copy always matches this binary and carries the one in-page script (`browser/js/deskhand.js`).

pub mod host;
pub mod hub;
pub mod install;
pub(crate) mod popup;
pub mod tabs;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub use hub::ExtensionHub;

/// The native messaging host's name, as the extension calls it.
pub const HOST_NAME: &str = "com.deskhand.agent";

/// The extension's files, embedded at build time.
pub(crate) static FILES: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../extension");

/// Every embedded file, depth first.
pub(crate) fn files() -> Vec<&'static include_dir::File<'static>> {
    fn walk(
        d: &'static include_dir::Dir<'static>,
        out: &mut Vec<&'static include_dir::File<'static>>,
    ) {
        out.extend(d.files());
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&FILES, &mut out);
    out
}

/// The extension's `manifest.json` as shipped.
pub fn manifest() -> serde_json::Value {
    let text = FILES
        .get_file("manifest.json")
        .and_then(|f| f.contents_utf8())
        .expect("extension/manifest.json is embedded");
    serde_json::from_str(text).expect("extension/manifest.json is valid JSON")
}

/// Chrome's id for an extension with this public key (the manifest's `key`, base64 DER): the first
/// 32 hex digits of its SHA-256, each digit 0–f written as a letter a–p.
pub fn id_for_key(key_b64: &str) -> Option<String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .ok()?;
    let hash = Sha256::digest(der);
    Some(
        hash.iter()
            .take(16)
            .flat_map(|b| [b >> 4, b & 0x0f])
            .map(|d| (b'a' + d) as char)
            .collect(),
    )
}

/// The id of the Deskhand extension, fixed by the key in its manifest.
pub fn extension_id() -> String {
    let m = manifest();
    id_for_key(m["key"].as_str().unwrap_or_default()).expect("the manifest key is base64 DER")
}

/// The extension id in an origin Chrome passes to a native host (`chrome-extension://ID/`).
pub fn origin_id(origin: &str) -> Option<&str> {
    origin
        .strip_prefix("chrome-extension://")
        .map(|r| r.trim_end_matches('/'))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| (b'a'..=b'p').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_derived_from_the_manifest_key() {
        let id = extension_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| (b'a'..=b'p').contains(&b)), "{id}");
        // The DER of a known key gives a known id (checked against Chromium in the e2e tests).
        assert_eq!(id_for_key("AAAA").unwrap(), {
            let h = Sha256::digest([0u8, 0, 0]);
            h.iter()
                .take(16)
                .flat_map(|b| [b >> 4, b & 15])
                .map(|d| (b'a' + d) as char)
                .collect::<String>()
        });
    }

    #[test]
    fn origins_are_parsed_strictly() {
        let id = extension_id();
        assert_eq!(
            origin_id(&format!("chrome-extension://{id}/")),
            Some(id.as_str())
        );
        assert_eq!(origin_id("chrome-extension://short/"), None);
        assert_eq!(origin_id(&format!("https://{id}/")), None);
    }

    #[test]
    fn the_manifest_asks_for_little() {
        let m = manifest();
        assert_eq!(m["manifest_version"], 3);
        let perms: Vec<&str> = m["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        assert_eq!(
            perms,
            [
                "nativeMessaging",
                "scripting",
                "tabs",
                "activeTab",
                "declarativeNetRequest"
            ]
        );
        // Host access is asked per site at run time, never granted up front.
        assert!(m.get("host_permissions").is_none());
        assert!(!m.to_string().contains("<all_urls>"));
        // No private key may ship with the extension.
        for file in files() {
            let text = String::from_utf8_lossy(file.contents());
            assert!(!text.contains("PRIVATE KEY"), "{:?}", file.path());
        }
    }
}
