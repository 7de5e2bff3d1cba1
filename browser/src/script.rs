//! The in-page script (`browser/js/deskhand.js`) and how Rust calls into it.

/// The whole in-page script: an expression that installs and yields the `__deskhand` API.
pub const SCRIPT: &str = include_str!("../js/deskhand.js");

/// Marker the short call form returns when the script is not installed in this document yet.
pub(crate) const MISSING: &str = "__deskhand_missing__";

/// A fresh, unguessable-enough marker for one navigation or pick (not a secret).
pub(crate) fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("dh{:x}{:x}", t, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A call that assumes the script is already installed (cheap; CDP installs it on every new document).
pub(crate) fn short_call(method: &str, args: &str) -> String {
    format!("(globalThis.__deskhand && globalThis.__deskhand.version === 1) ? globalThis.__deskhand.{method}({args}) : {MISSING:?}")
}

/// A call that installs the script first if needed (one round trip, larger message).
pub(crate) fn full_call(method: &str, args: &str) -> String {
    format!(
        "({}).{method}({args})",
        SCRIPT.trim_end().trim_end_matches(';')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script must stay self-contained so the extension can load the very same file.
    #[test]
    fn script_is_self_contained() {
        for banned in [
            "import ",
            "require(",
            "export ",
            "fetch(",
            "XMLHttpRequest",
            "chrome.",
        ] {
            let hits: Vec<_> = SCRIPT
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .filter(|l| l.contains(banned))
                .collect();
            assert!(hits.is_empty(), "in-page script uses {banned:?}: {hits:?}");
        }
        assert!(SCRIPT.trim_start().starts_with("//"));
        assert!(
            SCRIPT.trim_end().ends_with("})()"),
            "the script must be a single expression"
        );
    }
}
