//! `deskhand doctor` (issue 18): each line says what it found and, when it fails, how to fix it.

use serde_json::Value;

use crate::util::{deskhand, temp};

fn doctor(ws: &std::path::Path, chrome: &str) -> (bool, Value) {
    let out = deskhand()
        .args(["doctor", "--json"])
        .env("DESKHAND_WORKSPACE", ws)
        .env("DESKHAND_CHROME", chrome)
        .env_remove("DESKHAND_QUEUE")
        .output()
        .expect("run deskhand doctor");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), v)
}

fn find<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

#[test]
fn doctor_without_chromium_fails_and_says_how_to_install_it() {
    let ws = temp();
    let (ok, v) = doctor(ws.path(), "/nonexistent/deskhand-test/chromium");
    assert!(!ok, "a failed check must fail the command: {v}");
    let c = find(&v, "chromium");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/deskhand-test/chromium"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("apt-get install -y chromium"),
        "{c}"
    );
    assert_eq!(find(&v, "queue")["status"], "ok");
    assert_eq!(find(&v, "model")["status"], "warn");
    assert!(v["failed"].as_u64().unwrap() >= 1);
}

#[test]
fn doctor_finds_the_installed_chromium() {
    let Ok(chrome) = deskhand_browser::find_chrome(None) else {
        return;
    };
    let ws = temp();
    let (_, v) = doctor(ws.path(), chrome.to_str().unwrap());
    let c = find(&v, "chromium");
    assert_eq!(c["status"], "ok", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("Chromium"), "{c}");
}

#[test]
fn the_user_config_is_read_below_the_workspace_config() {
    let ws = temp();
    let user = ws.path().join("user-config.toml");
    std::fs::write(
        &user,
        "[browser]\nchrome = \"/nonexistent/from-user-config/chromium\"\n",
    )
    .unwrap();
    let run = || {
        let out = deskhand()
            .args(["doctor", "--json"])
            .env("DESKHAND_WORKSPACE", ws.path())
            .env("DESKHAND_USER_CONFIG", &user)
            .env_remove("DESKHAND_CHROME")
            .env_remove("DESKHAND_QUEUE")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        find(&v, "chromium").clone()
    };
    let c = run();
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/from-user-config/chromium"),
        "{c}"
    );
    // The workspace's own setting wins.
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        "[browser]\nchrome = \"/nonexistent/from-workspace/chromium\"\n",
    )
    .unwrap();
    let c = run();
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/from-workspace/chromium"),
        "{c}"
    );
}
