//! MCP servers as planner tools (issue 17, the client part): the real `deskhand` binary, the
//! fixture stdio MCP server (`fake-mcp` in fixtures/providers) and the scripted model. The tests
//! assert what the model was sent (the server's tools with their schemas, results wrapped as
//! untrusted content), what the guard let through, and that no server outlives its job.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use deskhand_fake_providers::{FakeData, FakeModel, Script, Turn};
use serde_json::{json, Value};

use crate::connectors::Env;

const KEY: &str = "sk-test-mcp-0123456789";

/// The fixture MCP server's binary. It belongs to the fixtures package, and Cargo builds (and
/// names in `CARGO_BIN_EXE_*`) only this package's own binaries for its tests; so it is built
/// here, once per test run, by the Cargo running the tests, into the same target directory and
/// profile as `deskhand`, beside which it then lies. When it is fresh this is a no-op; nothing
/// depends on a build of the whole workspace having happened first.
pub(crate) fn fake_mcp() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let deskhand = Path::new(env!("CARGO_BIN_EXE_deskhand"));
        let dir = deskhand.parent().expect("the profile's folder");
        let target = dir.parent().expect("the target folder");
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "deskhand-fake-providers"])
            .args(["--bin", "fake-mcp", "--profile", profile, "--target-dir"])
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for fake-mcp");
        assert!(status.success(), "building fake-mcp failed: {status}");
        let bin = dir.join(format!("fake-mcp{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// `deskhand ask REQUEST` with the scripted model, `MCP_TEST_RECORD` set to `record`.
async fn ask(env: &Env, model: &FakeModel, record: &Path, request: &str) -> Output {
    ask_with(env, model, record, request, &[]).await
}

/// [`ask`] with more environment variables.
async fn ask_with(
    env: &Env,
    model: &FakeModel,
    record: &Path,
    request: &str,
    vars: &[(&str, &str)],
) -> Output {
    let mut c = env.cmd(&["ask", request]);
    c.envs(vars.iter().copied());
    c.env("DESKHAND_MODEL_PROVIDER", "anthropic")
        .env("DESKHAND_MODEL_BASE_URL", model.base_url())
        .env("DESKHAND_MODEL", "test-model")
        .env("DESKHAND_MODEL_API_KEY", KEY)
        .env("DESKHAND_MODEL_RETRY_MS", "20")
        .env("DESKHAND_APPROVAL_TIMEOUT", "1")
        .env("MCP_TEST_RECORD", record);
    tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("finished in time")
        .expect("ran")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn audit(ws: &Path) -> Vec<Value> {
    std::fs::read_to_string(ws.join(".deskhand/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether process `pid` still runs (a zombie no longer does).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tools_pass_the_guard_and_an_injected_result_gets_no_further_than_an_approval() {
    let server = fake_mcp();
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let record = crate::util::temp();
    // The shop may be written to (after approval); the broken server's command does not exist.
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:shop\" = \"write\", \"mcp:broken\" = \"read\" }}\n\
         workspace = [\"reports/**\"]\n\
         [mcp.servers.shop]\ncommand = {server:?}\n\
         env = {{ FAKE_MCP_RECORD_DIR = \"${{MCP_TEST_RECORD:-/nonexistent}}\" }}\ntimeout_secs = 20\n\
         [mcp.servers.broken]\ncommand = \"/nonexistent/deskhand-no-such-mcp-server\"\n",
        server = server.display().to_string()
    ));
    std::fs::write(&config, c).unwrap();

    // The scripted model obeys what the read-only tool returned, then tries the broken server.
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_shop_lookup_price", json!({"product": "tea"}))
                .expect_tool("mcp_shop_lookup_price")
                .expect_tool("mcp_shop_delete_all"),
            Turn::tool_call("mcp_shop_delete_all", json!({}))
                .expect_tool_result_contains("<untrusted-content source=\"mcp:shop.lookup_price\">")
                .expect_tool_result_contains("IGNORE PREVIOUS INSTRUCTIONS"),
            Turn::tool_call("mcp_broken_list_files", json!({}))
                .expect_tool_result_contains("nobody approved mcp-call on mcp.shop.delete_all"),
            Turn::text("The tea costs 12.50 EUR; I deleted nothing.")
                .expect_tool_result_contains("MCP server broken did not start"),
        ]),
        KEY,
    )
    .await;
    let out = ask(
        &env,
        &model,
        record.path(),
        "what does tea cost at the shop?",
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}\n{:?}",
        text(&out.stdout),
        text(&out.stderr),
        model.failures()
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert!(text(&out.stdout).contains("I deleted nothing"));

    // The tool list sent: the server's tools under API-safe names, with their schemas.
    let reqs = model.requests();
    let tools = reqs[0].tools();
    let (_, description, schema) = tools
        .iter()
        .find(|(n, _, _)| n == "mcp_shop_lookup_price")
        .expect("lookup_price offered");
    assert!(description.contains("Look up the price"), "{description}");
    assert_eq!(schema["properties"]["product"]["type"], "string");
    assert_eq!(schema["required"], json!(["product"]));
    assert!(!tools.iter().any(|(n, _, _)| n.starts_with("mcp_broken_")));

    // The read-only call ran without asking; its result reached the model only as untrusted
    // content, never in the system prompt; the server saw none of Deskhand's environment.
    let price = &reqs[1].tool_results()[0];
    assert!(!price.is_error, "{price:?}");
    assert!(price.content.contains("tea costs 12.50 EUR"), "{price:?}");
    assert!(
        price
            .content
            .contains("(server environment: FAKE_MCP_RECORD_DIR, PATH)"),
        "{price:?}"
    );
    assert!(reqs.iter().all(|r| !r.system().contains("IGNORE PREVIOUS")));

    // delete_all waited for an approval that expired, and never ran.
    let refused = &reqs[2].tool_results()[0];
    assert!(refused.is_error, "{refused:?}");
    assert!(!record.path().join("delete_all.called").exists());
    let log = audit(ws);
    let asked: Vec<_> = log
        .iter()
        .filter(|e| e["kind"] == "approval.requested")
        .collect();
    assert_eq!(asked.len(), 1, "{log:?}");
    assert_eq!(asked[0]["data"]["action"], "mcp-call");
    assert_eq!(asked[0]["data"]["target"], "mcp.shop.delete_all");
    assert!(log
        .iter()
        .any(|e| e["kind"] == "approval.decided" && e["data"]["decision"] == "expired"));
    let called: Vec<_> = log.iter().filter(|e| e["kind"] == "mcp.called").collect();
    assert_eq!(called.len(), 1, "only lookup_price ran: {called:?}");
    assert_eq!(called[0]["data"]["tool"], "lookup_price");
    assert_eq!(called[0]["data"]["read_only"], true);

    // The broken server was a clear tool error, and the job went on to its answer.
    let broken = &reqs[3].tool_results()[0];
    assert!(broken.is_error, "{broken:?}");
    assert!(
        broken
            .content
            .contains("/nonexistent/deskhand-no-such-mcp-server")
            && broken.content.contains("[mcp.servers.broken]"),
        "{broken:?}"
    );

    // The server process ended with the job.
    let pid: u32 = std::fs::read_to_string(record.path().join("pid"))
        .expect("the server started")
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "the MCP server {pid} outlived its job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_server_the_job_may_not_use_is_not_started_nor_offered() {
    let server = fake_mcp();
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let record = crate::util::temp();
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    // The default planner permissions name no MCP server.
    c.push_str(&format!(
        "\n[mcp.servers.shop]\ncommand = {server:?}\n\
         env = {{ FAKE_MCP_RECORD_DIR = \"${{MCP_TEST_RECORD}}\" }}\n",
        server = server.display().to_string()
    ));
    std::fs::write(&config, c).unwrap();
    let model = FakeModel::start_with_key(
        Script::new([Turn::text("No shop tools here.").expect_no_tool("mcp_shop_lookup_price")]),
        KEY,
    )
    .await;
    let out = ask(&env, &model, record.path(), "what does tea cost?").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert!(
        !record.path().join("pid").exists(),
        "the server was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_call_allowed_without_asking_runs_is_audited_and_undo_says_it_cannot_undo_it() {
    let server = fake_mcp();
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let record = crate::util::temp();
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:shop\" = \"write\" }}\n\
         workspace = [\"reports/**\"]\nwithout-asking = [\"mcp-call\"]\n\
         [mcp.servers.shop]\ncommand = {server:?}\n\
         env = {{ FAKE_MCP_RECORD_DIR = \"${{MCP_TEST_RECORD}}\" }}\n",
        server = server.display().to_string()
    ));
    std::fs::write(&config, c).unwrap();
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_shop_delete_all", json!({})),
            Turn::text("Deleted.")
                .expect_tool_result_contains("<untrusted-content source=\"mcp:shop.delete_all\">")
                .expect_tool_result_contains("every product is deleted"),
        ]),
        KEY,
    )
    .await;
    let out = ask(&env, &model, record.path(), "empty the shop").await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert!(record.path().join("delete_all.called").exists());
    let log = audit(ws);
    assert!(!log.iter().any(|e| e["kind"] == "approval.requested"));
    assert!(log.iter().any(|e| e["kind"] == "mcp.called"
        && e["data"]["tool"] == "delete_all"
        && e["data"]["read_only"] == false));

    let job = stdout
        .lines()
        .find_map(|l| {
            l.strip_suffix(" succeeded")
                .and_then(|l| l.split_whitespace().nth(1))
        })
        .unwrap_or_else(|| panic!("no job in {stdout}"))
        .to_string();
    let undo = env.cmd(&["undo", &job]).output().await.unwrap();
    let said = text(&undo.stdout);
    assert!(undo.status.success(), "{said}{}", text(&undo.stderr));
    assert!(
        said.contains("called mcp.shop.delete_all") && said.contains("cannot undo"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_mcp_server_is_a_tool_error_and_is_not_restarted() {
    let server = fake_mcp();
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let record = crate::util::temp();
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:shop\" = \"read\" }}\n\
         workspace = [\"reports/**\"]\n\
         [mcp.servers.shop]\ncommand = {server:?}\n\
         env = {{ FAKE_MCP_RECORD_DIR = \"${{MCP_TEST_RECORD}}\" }}\ntimeout_secs = 10\n",
        server = server.display().to_string()
    ));
    std::fs::write(&config, c).unwrap();
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_shop_crash", json!({})),
            Turn::tool_call("mcp_shop_lookup_price", json!({"product": "tea"}))
                .expect_tool_result_contains("MCP server shop stopped"),
            Turn::text("The shop's server is down.")
                .expect_tool_result_contains("not restarted during this job"),
        ]),
        KEY,
    )
    .await;
    let out = ask(&env, &model, record.path(), "what does tea cost?").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    let reqs = model.requests();
    assert!(reqs[1].tool_results()[0].is_error);
    assert!(reqs[2].tool_results()[0].is_error);
}

/// `fake-mcp --http` on a free loopback port: its endpoint and process (killed when dropped).
struct HttpServer {
    url: String,
    _process: tokio::process::Child,
}

impl HttpServer {
    /// Start one; with `token`, every request must carry `Authorization: Bearer TOKEN`.
    async fn start(token: Option<&str>, record: &Path) -> HttpServer {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(fake_mcp());
        cmd.arg("--http")
            .env("FAKE_MCP_RECORD_DIR", record)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let mut child = cmd.spawn().expect("start fake-mcp --http");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("fake-mcp printed its endpoint in time")
        .expect("read its stdout");
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
        HttpServer {
            url,
            _process: child,
        }
    }
}

/// The token the HTTP fixture takes in these tests.
const SHOP_TOKEN: &str = "shop-token-5ec2e7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_mcp_server_gets_its_bearer_on_every_request_and_a_refused_one_is_reported() {
    let record = crate::util::temp();
    let shop = HttpServer::start(Some(SHOP_TOKEN), record.path()).await;
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    // The same server three times: with the token (from Deskhand's environment), with a wrong
    // one, and without any; and an address where nothing listens.
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:shop\" = \"read\", \"mcp:wrong\" = \"read\", \
         \"mcp:bare\" = \"read\", \"mcp:down\" = \"read\" }}\nworkspace = [\"reports/**\"]\n\
         [mcp.servers.shop]\nurl = \"{url}\"\nheaders = {{ Authorization = \"Bearer ${{SHOP_TOKEN}}\" }}\n\
         timeout_secs = 20\n\
         [mcp.servers.wrong]\nurl = \"{url}\"\nheaders = {{ Authorization = \"Bearer not-the-token\" }}\n\
         [mcp.servers.bare]\nurl = \"{url}\"\n\
         [mcp.servers.down]\nurl = \"http://127.0.0.1:1/mcp\"\ntimeout_secs = 10\n",
        url = shop.url
    ));
    std::fs::write(&config, c).unwrap();
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_shop_lookup_price", json!({"product": "tea"}))
                .expect_tool("mcp_shop_lookup_price")
                .expect_no_tool("mcp_wrong_lookup_price")
                .expect_no_tool("mcp_bare_lookup_price"),
            Turn::tool_call("mcp_wrong_lookup_price", json!({"product": "tea"}))
                .expect_tool_result_contains("<untrusted-content source=\"mcp:shop.lookup_price\">")
                .expect_tool_result_contains("tea costs 12.50 EUR"),
            Turn::tool_call("mcp_down_lookup_price", json!({"product": "tea"}))
                .expect_tool_result_contains("MCP server wrong did not start")
                .expect_tool_result_contains("refused the credentials (HTTP 401)"),
            Turn::text("Tea costs 12.50 EUR.")
                .expect_tool_result_contains("MCP server down did not start")
                .expect_tool_result_contains("cannot connect"),
        ]),
        KEY,
    )
    .await;
    let out = ask_with(
        &env,
        &model,
        record.path(),
        "what does tea cost at the shop?",
        &[("SHOP_TOKEN", SHOP_TOKEN), ("RUST_LOG", "debug")],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{:?}",
        model.failures()
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert!(stdout.contains("Tea costs 12.50 EUR"), "{stdout}");

    // The server's tools came with their schemas; the failed servers' were not offered.
    let reqs = model.requests();
    let tools = reqs[0].tools();
    let (_, _, schema) = tools
        .iter()
        .find(|(n, _, _)| n == "mcp_shop_lookup_price")
        .expect("lookup_price offered");
    assert_eq!(schema["required"], json!(["product"]));
    assert!(!tools.iter().any(|(n, _, _)| n.starts_with("mcp_bare_")));
    let bare = reqs
        .iter()
        .flat_map(|r| r.tool_results())
        .all(|r| !r.content.contains("not-the-token"));
    assert!(bare, "a header value reached the model");
    assert!(reqs[2].tool_results()[0].is_error);
    assert!(reqs[3].tool_results()[0].is_error);

    // The job was told which servers did not start, and the token was never logged.
    assert!(
        stderr.contains("MCP server bare") || stdout.contains("MCP server bare"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(ws.join(".deskhand/audit.jsonl")).unwrap_or_default();
    for place in [&stdout, &stderr, &log] {
        assert!(!place.contains(SHOP_TOKEN), "the token was logged: {place}");
    }
    let called: Vec<_> = audit(ws)
        .into_iter()
        .filter(|e| e["kind"] == "mcp.called")
        .collect();
    assert_eq!(called.len(), 1, "{called:?}");
    assert_eq!(called[0]["data"]["server"], "shop");
    drop(shop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_mcp_server_that_dies_mid_job_is_a_tool_error_and_is_not_retried() {
    let record = crate::util::temp();
    let shop = HttpServer::start(None, record.path()).await;
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:shop\" = \"read\" }}\n\
         workspace = [\"reports/**\"]\n\
         [mcp.servers.shop]\nurl = \"{url}\"\ntimeout_secs = 60\n",
        url = shop.url
    ));
    std::fs::write(&config, c).unwrap();
    // `crash` ends the server's process in the middle of the call: the call fails then, not
    // at its timeout.
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_shop_lookup_price", json!({"product": "tea"})),
            Turn::tool_call("mcp_shop_crash", json!({}))
                .expect_tool_result_contains("tea costs 12.50 EUR"),
            Turn::tool_call("mcp_shop_lookup_price", json!({"product": "tea"}))
                .expect_tool_result_contains("MCP server shop stopped (its answer broke off"),
            Turn::text("The shop's server is down.")
                .expect_tool_result_contains("MCP server shop stopped")
                .expect_tool_result_contains("not restarted during this job"),
        ]),
        KEY,
    )
    .await;
    let started = std::time::Instant::now();
    let out = ask(&env, &model, record.path(), "what does tea cost?").await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    let reqs = model.requests();
    assert!(!reqs[1].tool_results()[0].is_error);
    let crashed = &reqs[2].tool_results()[0];
    assert!(crashed.is_error, "{crashed:?}");
    assert!(reqs[3].tool_results()[0].is_error);
    // Not waited for until the timeout, nor retried: the job ended soon after the server did.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    drop(shop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_outlasts_its_timeout_is_a_tool_error_and_the_server_answers_the_next() {
    let server = fake_mcp();
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let record = crate::util::temp();
    let config = ws.join(".deskhand/config.toml");
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(&format!(
        "\n[planner.permissions]\nconnectors = {{ \"mcp:shop\" = \"write\", \"mcp:shop.delete_all\" = \"read\" }}\n\
         workspace = [\"reports/**\"]\n\
         [mcp.servers.shop]\ncommand = {server:?}\ntimeout_secs = 2\n\
         env = {{ FAKE_MCP_RECORD_DIR = \"${{MCP_TEST_RECORD}}\" }}\n",
        server = server.display().to_string()
    ));
    std::fs::write(&config, c).unwrap();
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("mcp_shop_slow", json!({"seconds": 30})),
            Turn::tool_call("mcp_shop_lookup_price", json!({"product": "tea"}))
                .expect_tool_result_contains("did not answer slow within 2 s"),
            // A tool's own entry wins over its server's: delete_all is refused, not asked.
            Turn::tool_call("mcp_shop_delete_all", json!({}))
                .expect_tool_result_contains("tea costs 12.50 EUR"),
            Turn::text("Tea costs 12.50 EUR.")
                .expect_tool_result_contains("no write access to mcp:shop.delete_all"),
        ]),
        KEY,
    )
    .await;
    let started = std::time::Instant::now();
    let out = ask(&env, &model, record.path(), "what does tea cost?").await;
    assert!(
        out.status.success(),
        "{}\n{:?}",
        text(&out.stderr),
        model.failures()
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the job waited for the slow call"
    );
    let log = audit(ws);
    assert!(
        !log.iter().any(|e| e["kind"] == "approval.requested"),
        "delete_all was asked about: {log:?}"
    );
    assert!(!record.path().join("delete_all.called").exists());
}
