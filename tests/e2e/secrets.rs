//! Secrets in the real OS keyrings: Secret Service (GNOME Keyring on a private D-Bus session)
//! and kernel keyutils, plus the clear refusal when there is no keyring at all.

use std::process::Stdio;

use deskhand_fake_providers::FakeData;

use crate::connectors::Env;

const TOKEN: &str = "ntn_keyring_test_token_0123456789";

impl Env {
    /// Runs `sh -c script` under `wrapper` with the workspace's environment, a private HOME and
    /// XDG dirs, no inherited session bus, and `$DESKHAND` naming the binary.
    async fn shell(&self, wrapper: &[&str], script: &str) -> (bool, String, String) {
        let home = self.ws.path().join("home");
        let run = home.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let probe = self.cmd(&[]);
        let mut c = tokio::process::Command::new(wrapper[0]);
        c.args(&wrapper[1..]).args(["sh", "-c", script]);
        for (k, v) in probe.as_std().get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.env("DESKHAND", env!("CARGO_BIN_EXE_deskhand"))
            .env("TOKEN", TOKEN)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DESKHAND_SECRETS_KEY")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(std::time::Duration::from_secs(90), c.output())
            .await
            .expect("keyring session finished in time")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A private session bus with GNOME Keyring unlocked, as a desktop login provides.
pub(crate) const KEYRING_SESSION: [&str; 2] = ["dbus-run-session", "--"];
/// Starts the keyring in the foreground so the script's exit trap stops it (a daemonized one
/// outlives the bus), and waits for its control socket.
pub(crate) const UNLOCK: &str = "echo test-password | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 & KR=$!; \
    trap 'kill $KR 2>/dev/null' EXIT; \
    for i in $(seq 200); do [ -S \"$XDG_RUNTIME_DIR/keyring/control\" ] && break; sleep 0.05; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_service_keeps_the_grant_across_sessions() {
    let env = Env::with_config(
        FakeData::bundled().unwrap(),
        "[secrets]\nstore = \"auto\"\n",
    )
    .await;
    env.h().add_internal_token(TOKEN);
    let (ok, out, err) = env
        .shell(&KEYRING_SESSION, &format!("{UNLOCK}; printf %s \"$TOKEN\" | \"$DESKHAND\" connect notion --token-stdin && \"$DESKHAND\" sync notion"))
        .await;
    assert!(ok, "connect + sync under Secret Service:\n{out}\n{err}");
    assert!(out.contains("Secret Service"), "{out}");
    assert!(
        !env.ws.path().join(".deskhand/secrets.enc").exists(),
        "no file fallback"
    );
    // A new login session: GNOME Keyring reloads the grant from its own (encrypted) store.
    env.h().reset_requests();
    let (ok, out, err) = env
        .shell(
            &KEYRING_SESSION,
            &format!("{UNLOCK}; \"$DESKHAND\" sync notion --json"),
        )
        .await;
    assert!(ok, "sync in a second session:\n{out}\n{err}");
    assert!(env.h().request_count("/v1/") > 0);
    let keyring_files = env.ws.path().join("home/data/keyrings");
    assert!(keyring_files.exists(), "GNOME Keyring wrote its store");
    for f in std::fs::read_dir(&keyring_files).unwrap().flatten() {
        let bytes = std::fs::read(f.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "the keyring file is encrypted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_keyutils_store_works_inside_a_session_keyring() {
    let env = Env::with_config(
        FakeData::bundled().unwrap(),
        "[secrets]\nstore = \"keyutils\"\n",
    )
    .await;
    env.h().add_internal_token(TOKEN);
    let (ok, out, err) = env
        .shell(&["keyctl", "session", "-"], "printf %s \"$TOKEN\" | \"$DESKHAND\" connect notion --token-stdin && \"$DESKHAND\" sync notion --json")
        .await;
    assert!(ok, "keyutils:\n{out}\n{err}");
    assert!(out.contains("keyutils"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keyring_is_a_clear_error_not_a_plain_text_fallback() {
    let env = Env::with_config(
        FakeData::generated(0, 0, 0),
        "[secrets]\nstore = \"auto\"\n",
    )
    .await;
    env.h().add_internal_token(TOKEN);
    let (ok, out, err) = env
        .shell(
            &["env"],
            "printf %s \"$TOKEN\" | \"$DESKHAND\" connect notion --token-stdin",
        )
        .await;
    assert!(!ok, "must refuse without a keyring: {out}");
    assert!(err.contains("no OS keyring"), "{err}");
    assert!(
        err.contains("store = \\\"file\\\"") || err.contains("store = \"file\""),
        "names the alternative: {err}"
    );
    assert!(!err.contains(TOKEN));
    for f in ["secrets.enc", "cache.db"] {
        let p = env.ws.path().join(".deskhand").join(f);
        if p.exists() {
            assert!(
                !String::from_utf8_lossy(&std::fs::read(&p).unwrap()).contains(TOKEN),
                "{f} holds the token"
            );
        }
    }
}
