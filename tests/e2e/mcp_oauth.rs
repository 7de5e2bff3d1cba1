//! A remote MCP server that wants OAuth (the MCP authorization spec): `deskhand connect
//! mcp:NAME` discovers its authorization server, registers, signs in with PKCE and the resource
//! indicator, keeps the tokens in the secret store, and planned jobs send the token (refreshed
//! when it is about to expire). The fixture MCP server checks every token with the fake
//! authorization server's introspection endpoint.

use std::process::Stdio;
use std::time::Duration;

use deskhand_fake_providers::{FakeData, FakeModel, Script, Turn};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::connectors::Env;
use crate::mcp_client::fake_mcp;

const KEY: &str = "sk-test-mcp-oauth-0123456789";

async fn ask(env: &Env, model: &FakeModel, request: &str) -> std::process::Output {
    let mut c = env.cmd(&["ask", request]);
    c.env("DESKHAND_MODEL_PROVIDER", "anthropic")
        .env("DESKHAND_MODEL_BASE_URL", model.base_url())
        .env("DESKHAND_MODEL", "test-model")
        .env("DESKHAND_MODEL_API_KEY", KEY)
        .env("DESKHAND_MODEL_RETRY_MS", "20");
    tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("finished in time")
        .expect("ran")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_mcp_server_is_signed_in_to_with_oauth_and_its_token_goes_with_each_job() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let issuer = env.fake.base_url();
    let mut server = tokio::process::Command::new(fake_mcp())
        .args(["--http", "--oauth", &issuer])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start fake-mcp --http --oauth");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the server printed its URL")
        .unwrap()
        .unwrap();
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:remote\" = \"read\" }}\nworkspace = [\"reports/**\"]\n\
         [mcp.servers.remote]\nurl = {url:?}\n"
    ));
    std::fs::write(&config, c).unwrap();

    // Not signed in: the server is reported with the way to sign in, and the job goes on.
    let model = FakeModel::start_with_key(
        Script::new([Turn::text("No shop today.").expect_no_tool("mcp_remote_lookup_price")]),
        KEY,
    )
    .await;
    let out = ask(&env, &model, "what does tea cost?").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("deskhand connect mcp:remote"), "{said}");

    // Short-lived access tokens, so the next job must refresh first.
    env.h().set_access_token_lifetime(30);
    let (ok, out, err) = env.connect("mcp:remote", &[]).await;
    assert!(ok, "connect failed:\n{out}\n{err}");
    assert!(out.contains("Signed in to MCP server remote"), "{out}");
    let seen = env.h().requests();
    let registered = seen.iter().filter(|r| r.path == "/register").count();
    assert_eq!(registered, 1, "one dynamic registration");
    let authorize = seen
        .iter()
        .find(|r| r.path == "/o/oauth2/v2/auth")
        .expect("the sign-in page was opened");
    let resource: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>();
    assert!(
        authorize.query.contains(&format!("resource={resource}")),
        "{}",
        authorize.query
    );
    assert!(
        authorize.query.contains("code_challenge_method=S256"),
        "{}",
        authorize.query
    );
    // The tokens are in the secret store, nowhere in the workspace's plain files.
    let config_text = std::fs::read_to_string(&config).unwrap();
    assert!(!config_text.contains("Bearer"));

    // Signed in: the job's call reaches the server with a (refreshed) token.
    let tokens_before = env.h().request_count("/token");
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_remote_lookup_price", json!({"product": "tea"}))
                .expect_tool("mcp_remote_lookup_price"),
            Turn::text("Tea costs 12.50 EUR.").expect_tool_result_contains("tea costs 12.50 EUR"),
        ]),
        KEY,
    )
    .await;
    let out = ask(&env, &model, "what does tea cost?").await;
    assert!(
        out.status.success(),
        "{}\n{}\n{:?}",
        text(&out.stdout),
        text(&out.stderr),
        model.failures()
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert_eq!(
        env.h().request_count("/token"),
        tokens_before + 1,
        "the near-expiry token was refreshed once"
    );
    assert!(env.h().request_count("/introspect") >= 1);

    // Signed out: the server refuses again.
    let out = env
        .cmd(&["disconnect", "mcp:remote"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let model = FakeModel::start_with_key(
        Script::new([Turn::text("No shop.").expect_no_tool("mcp_remote_lookup_price")]),
        KEY,
    )
    .await;
    let out = ask(&env, &model, "what does tea cost?").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    let _ = server.kill().await;
}
