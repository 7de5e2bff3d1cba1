//! The road to a NATS hub with credentials (issue 18): a real nats-server with users
//! (password and nkey) and one with a token; the agent and the CLI connect with each kind,
//! from the config, the flags, the environment and the URL's userinfo; wrong credentials are
//! refused by the server with a clear error that never shows the secret.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::util::{certificates, deskhand, temp, Daemon, NatsServer};

fn dispatch(ws: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = deskhand();
    c.args(["dispatch", "--text", "/noop"])
        .args(extra)
        .env("DESKHAND_WORKSPACE", ws)
        .env_remove("DESKHAND_QUEUE")
        .env_remove("DESKHAND_NATS_PASSWORD")
        .env_remove("DESKHAND_NATS_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run deskhand dispatch");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_agent_and_the_cli_reach_nats_with_an_nkey_a_password_or_a_token_and_wrong_ones_are_refused()
{
    let user = nkeys::KeyPair::new_user();
    let hub = NatsServer::start_with(&format!(
        "authorization {{ users = [ {{ user: \"desk\", password: \"pw-123\" }}, {{ nkey: \"{}\" }} ] }}\n",
        user.public_key()
    ));
    let ws = temp();
    let seed = ws.path().join("agent.nk");
    std::fs::write(&seed, user.seed().unwrap()).unwrap();
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        format!(
            "[agent]\nqueue = {:?}\n[nats]\nnkey_file = {:?}\n",
            hub.url,
            seed.display().to_string()
        ),
    )
    .unwrap();

    // The daemon (nkey from the config) runs a job the CLI (same config) sends and follows.
    let _agent = Daemon::start(ws.path());
    let (ok, out) = dispatch(ws.path(), &["--wait"], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("succeeded"), "{out}");

    // The daemon keeps a presence key in its bucket: what a phone shows as "last seen".
    let seed_text = user.seed().unwrap();
    let presence = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = async_nats::ConnectOptions::with_nkey(seed_text)
            .connect(hub.url.as_str())
            .await
            .expect("the test connects with the nkey");
        let kv = async_nats::jetstream::new(client)
            .get_key_value("deskhand_default_jobs")
            .await
            .expect("the agent's bucket");
        for _ in 0..100 {
            if let Ok(Some(v)) = kv.get("presence").await {
                return serde_json::from_slice::<serde_json::Value>(&v).ok();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    });
    let presence = presence.expect("a presence key");
    assert_eq!(presence["agent"], "default", "{presence}");
    assert!(
        presence["at"].as_str().is_some_and(|t| t.starts_with("20")),
        "{presence}"
    );

    // A user and password in the URL's userinfo, as NATS clients take them; never shown.
    let other = temp();
    let with_password = hub.url.replace("nats://", "nats://desk:pw-123@");
    let (ok, out) = dispatch(other.path(), &["--queue", &with_password], &[]);
    assert!(ok, "{out}");
    // The same user with the password from the environment and the name from a flag.
    let (ok, out) = dispatch(
        other.path(),
        &["--queue", &hub.url, "--queue-user", "desk"],
        &[("DESKHAND_NATS_PASSWORD", "pw-123")],
    );
    assert!(ok, "{out}");

    // Refused by the server, said plainly, the secret nowhere.
    let wrong = hub.url.replace("nats://", "nats://desk:wrong-pw-9@");
    let (ok, out) = dispatch(other.path(), &["--queue", &wrong], &[]);
    assert!(!ok);
    assert!(
        out.contains("cannot connect to NATS at nats://***@127.0.0.1"),
        "{out}"
    );
    assert!(out.to_lowercase().contains("authorization"), "{out}");
    assert!(!out.contains("wrong-pw-9"), "{out}");
    let (ok, out) = dispatch(other.path(), &["--queue", &hub.url], &[]);
    assert!(!ok, "no credentials: {out}");

    // A seed file others may read is refused before anything is sent.
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = dispatch(ws.path(), &[], &[]);
    assert!(!ok);
    assert!(out.contains("chmod 600"), "{out}");
    assert!(!out.contains(&user.seed().unwrap()), "{out}");
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The agent's files never hold the password of a URL it was given.
    let info = std::fs::read_to_string(ws.path().join(".deskhand/agent.json")).unwrap();
    assert!(!info.contains("pw-123"), "{info}");

    // A hub with a token: from the environment.
    let token_hub = NatsServer::start_with("authorization { token: \"tok-456\" }\n");
    let (ok, out) = dispatch(
        other.path(),
        &["--queue", &token_hub.url],
        &[("DESKHAND_NATS_TOKEN", "tok-456")],
    );
    assert!(ok, "{out}");
    let (ok, out) = dispatch(other.path(), &["--queue", &token_hub.url], &[]);
    assert!(!ok, "{out}");
    // The token kept in the secret store instead (`deskhand secrets nats token`, from stdin).
    let keyed = temp();
    std::fs::create_dir_all(keyed.path().join(".deskhand")).unwrap();
    std::fs::write(
        keyed.path().join(".deskhand/config.toml"),
        "[secrets]\nstore = \"file\"\n",
    )
    .unwrap();
    let key = (
        "DESKHAND_SECRETS_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    let mut set = deskhand()
        .args(["secrets", "nats", "token"])
        .env("DESKHAND_WORKSPACE", keyed.path())
        .env(key.0, key.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut set.stdin.take().unwrap(), b"tok-456\n").unwrap();
    let stored = set.wait_with_output().unwrap();
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    let (ok, out) = dispatch(keyed.path(), &["--queue", &token_hub.url], &[key]);
    assert!(ok, "{out}");
    for f in walk(keyed.path()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("tok-456"),
            "the token is in {} in plain text",
            f.display()
        );
    }
    let _ = Command::new("true").status();
}

#[test]
fn a_hub_with_tls_is_trusted_through_its_ca_file_and_refused_without_it() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("no openssl: skipped");
        return;
    }
    let certs = temp();
    certificates(certs.path());
    let p = |f: &str| certs.path().join(f).display().to_string();
    let hub = NatsServer::start_with(&format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}\nauthorization {{ token: \"tok-789\" }}\n",
        p("server.pem"),
        p("server-key.pem")
    ));
    let url = hub.url.replace("nats://", "tls://");
    let ws = temp();
    let token = [("DESKHAND_NATS_TOKEN", "tok-789")];
    let (ok, out) = dispatch(
        ws.path(),
        &["--queue", &url, "--queue-ca", &p("ca.pem")],
        &token,
    );
    assert!(ok, "{out}");
    // Without the CA, the system's roots do not know this server: refused, and said.
    let (ok, out) = dispatch(ws.path(), &["--queue", &url], &token);
    assert!(!ok, "{out}");
    assert!(
        out.to_lowercase().contains("certificate") || out.contains("tls"),
        "{out}"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
