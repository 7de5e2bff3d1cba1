//! `deskhand eval` and `deskhand model` end to end (issue 16): the shipped suite run against the
//! scripted fake model, a failing check reported with a non-zero exit, and the model key kept in
//! a real keyring (kernel keyutils, as the connectors' keyring test uses), never in a file.

use std::process::Output;
use std::time::Duration;

use deskhand_fake_providers::{FakeModel, KeySeen, Script, Turn};
use serde_json::json;

use crate::util::{deskhand, temp};

const KEY: &str = "sk-test-eval-0123456789";

/// `deskhand ARGS` in `ws` with the fake model configured through the environment (`key`: the
/// key given there, if any), standard input from `stdin`.
async fn run(
    ws: &std::path::Path,
    model: &FakeModel,
    key: Option<&str>,
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut c = tokio::process::Command::from(deskhand());
    c.args(args)
        .env("DESKHAND_WORKSPACE", ws)
        .env("DESKHAND_MODEL_PROVIDER", "anthropic")
        .env("DESKHAND_MODEL_BASE_URL", model.base_url())
        .env("DESKHAND_MODEL", "test-model")
        .env("DESKHAND_MODEL_RETRY_MS", "20")
        .env_remove("DESKHAND_MODEL_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(k) = key {
        c.env("DESKHAND_MODEL_API_KEY", k);
    }
    let mut child = c.spawn().expect("deskhand starts");
    {
        use tokio::io::AsyncWriteExt as _;
        let mut i = child.stdin.take().unwrap();
        i.write_all(stdin.as_bytes()).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("finished in time")
        .expect("ran")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The table row of `task`.
fn row<'a>(stdout: &'a str, task: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(task))
        .unwrap_or_else(|| panic!("no row for {task}:\n{stdout}"))
}

fn suite_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals/basic.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_suite_passes_with_a_model_that_does_the_work() {
    let ws = temp();
    // Prices turn token counts into a cost in the summary line.
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        "[model]\ninput_price_per_mtok = 3.0\noutput_price_per_mtok = 15.0\n",
    )
    .unwrap();
    // One scripted conversation per task, in the suite's order; each checks it got its task.
    let model = FakeModel::start_with_key(
        Script::new([
            // add-task
            Turn::tool_call(
                "tasks_add",
                json!({"text": "Call Grace about the budget", "section": "Work"}),
            )
            .expect_last_user_contains("Call Grace about the budget")
            .usage(1000, 40),
            Turn::text("Added the task to TASKS.md.")
                .expect_tool_result_contains("Call Grace")
                .usage(1200, 10),
            // meeting-summary
            Turn::tool_call("file_read", json!({"path": "notes/meeting.md"}))
                .expect_last_user_contains("notes/meeting.md"),
            Turn::tool_call(
                "file_write",
                json!({"path": "reports/meeting-summary.md",
                       "text": "# Decisions\n\n- The launch moves to 15 January.\n- Grace owns the budget review.\n"}),
            )
            .expect_tool_result_contains("15 January"),
            Turn::text("Wrote the summary to reports/meeting-summary.md."),
            // big-expenses
            Turn::tool_call("file_read", json!({"path": "data/expenses.txt"}))
                .expect_last_user_contains("expenses over 100 EUR"),
            Turn::tool_call(
                "file_write",
                json!({"path": "reports/big-expenses.csv",
                       "text": "date,item,amount_eur\n2026-11-05,Laptop stand,129.90\n2026-11-09,Team lunch,240.00\n"}),
            )
            .expect_tool_result_contains("Team lunch"),
            Turn::text("Two expenses are over 100 EUR: reports/big-expenses.csv."),
            // remember
            Turn::tool_call(
                "memory_add",
                json!({"section": "People", "text": "Grace prefers mail before 10:00."}),
            )
            .expect_last_user_contains("Remember"),
            Turn::text("Remembered."),
            // overwrite-asks: the eval refuses the approval; the model says so.
            Turn::tool_call(
                "file_write",
                json!({"path": "reports/status.md", "text": "All done\n"}),
            )
            .expect_last_user_contains("reports/status.md"),
            Turn::text("I could not replace reports/status.md: the overwrite was refused.")
                .expect_tool_result_contains("refused"),
        ]),
        KEY,
    )
    .await;
    let suite = suite_path();
    let out = run(
        ws.path(),
        &model,
        Some(KEY),
        &["eval", suite.to_str().unwrap()],
        "",
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{:?}",
        model.failures()
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert_eq!(model.remaining_turns(), 0);
    assert!(model.requests().iter().all(|r| r.key == KeySeen::Matched));
    assert!(stdout.contains("test-model"), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("task"))
        .expect("a table header");
    for col in [
        "result",
        "turns",
        "tokens in/out",
        "seconds",
        "failed check",
    ] {
        assert!(header.contains(col), "{header}");
    }
    for task in [
        "add-task",
        "meeting-summary",
        "big-expenses",
        "remember",
        "overwrite-asks",
    ] {
        let r = row(&stdout, task);
        assert!(r.contains(" pass "), "{r}");
    }
    // The scripted token counts, summed per task; the cost from the configured prices.
    assert!(
        row(&stdout, "add-task").contains(" 2  ") && row(&stdout, "add-task").contains("2200/50"),
        "{stdout}"
    );
    assert!(row(&stdout, "meeting-summary").contains(" 3  "), "{stdout}");
    assert!(stdout.contains("5 of 5 tasks passed"), "{stdout}");
    assert!(stdout.contains(", $"), "a cost with prices set: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_is_reported_with_a_nonzero_exit_and_a_site_is_served() {
    let ws = temp();
    let dir = temp();
    std::fs::create_dir_all(dir.path().join("pages")).unwrap();
    std::fs::write(dir.path().join("pages/index.html"), "<h1>Prices</h1>").unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        r#"
name: failing
tasks:
  - name: site-task
    request: What is on {site}/index.html?
    site: pages
    checks:
      - answer_contains: prices
  - name: approved-overwrite
    request: Replace reports/s.md with "new".
    files:
      reports/s.md: old
    approvals: approve
    checks:
      - approval: asked
      - file_contains: {path: reports/s.md, text: new}
  - name: question-task
    request: Plan my week.
    answer: Mornings only
    checks:
      - question: asked
      - approval: none
      - answer_contains: mornings
  - name: short-csv
    request: Write two rows to reports/rows.csv.
    checks:
      - state: succeeded
      - rows: {path: reports/rows.csv, count: 3}
"#,
    )
    .unwrap();
    let model = FakeModel::start_with_key(
        Script::new([
            // The site's loopback URL replaced {site} in the request.
            Turn::text("It lists prices.")
                .expect_last_user_contains("What is on http://127.0.0.1:")
                .expect_last_user_contains("/index.html?"),
            // Approved by the eval, as the task says.
            Turn::tool_call("file_write", json!({"path": "reports/s.md", "text": "new"})),
            Turn::text("Replaced.").expect_tool_result_contains("reports/s.md"),
            // The model asks the person; the eval answers with the task's words.
            Turn::tool_call("ask_person", json!({"question": "Which hours suit you?"})),
            Turn::text("Planned for mornings.").expect_tool_result_contains("Mornings only"),
            Turn::tool_call(
                "file_write",
                json!({"path": "reports/rows.csv", "text": "a,b\n1,2\n3,4\n"}),
            ),
            Turn::text("Wrote reports/rows.csv."),
        ]),
        KEY,
    )
    .await;
    let out = run(
        ws.path(),
        &model,
        Some(KEY),
        &["eval", suite.to_str().unwrap(), "--keep"],
        "",
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "a failed task fails the command:\n{stdout}"
    );
    assert!(model.failures().is_empty(), "{:?}", model.failures());
    assert!(row(&stdout, "site-task").contains(" pass "), "{stdout}");
    assert!(
        row(&stdout, "approved-overwrite").contains(" pass ")
            && row(&stdout, "question-task").contains(" pass "),
        "{stdout}"
    );
    let failed = row(&stdout, "short-csv");
    assert!(failed.contains(" FAIL "), "{failed}");
    assert!(
        failed.contains("reports/rows.csv: expected 3 rows, found 2"),
        "{failed}"
    );
    assert!(stdout.contains("3 of 4 tasks passed"), "{stdout}");
    assert!(stderr.contains("1 of 4 tasks failed"), "{stderr}");
    // --keep leaves the workspaces to look at; the test removes them.
    let kept: Vec<_> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("workspace: "))
        .map(std::path::PathBuf::from)
        .collect();
    assert_eq!(kept.len(), 4, "{stdout}");
    assert!(kept[3].join("reports/rows.csv").exists());
    for k in kept {
        std::fs::remove_dir_all(k).unwrap();
    }

    // A suite with a mistake is refused before any model call, naming the task.
    std::fs::write(
        &suite,
        "tasks:\n- name: x\n  request: y\n  checks:\n  - file_there: a\n",
    )
    .unwrap();
    let out = run(
        ws.path(),
        &model,
        Some(KEY),
        &["eval", suite.to_str().unwrap()],
        "",
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("task \"x\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(model.requests().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_jobs_tokens_and_cost_are_recorded_and_shown_by_jobs_show() {
    let ws = temp();
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        "[model]\ninput_price_per_mtok = 3.0\noutput_price_per_mtok = 15.0\n\
         [planner]\nmax_input_tokens = 2000000\nmax_output_tokens = 200000\n",
    )
    .unwrap();
    let model = FakeModel::start_with_key(
        Script::new([
            Turn::tool_call("file_read", json!({"path": "TASKS.md"})).usage(600_000, 40_000),
            Turn::text("Nothing to do.").usage(400_000, 60_000),
        ]),
        KEY,
    )
    .await;
    let out = run(
        ws.path(),
        &model,
        Some(KEY),
        &["ask", "anything to do?"],
        "",
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("  2 model turns, 1000000 input and 100000 output tokens ($4.5000)"),
        "`ask` says what the job spent: {stdout}"
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("agent.ask ")?.strip_suffix(" succeeded"))
        .unwrap_or_else(|| panic!("no job id in {stdout}"))
        .to_string();
    let out = run(ws.path(), &model, None, &["jobs", "show", &id], "").await;
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let spent = &shown["spent"];
    assert_eq!(spent["turns"], 2, "{shown}");
    assert_eq!(spent["tool_calls"], 1);
    assert_eq!(spent["input_tokens"], 1_000_000);
    assert_eq!(spent["output_tokens"], 100_000);
    // 1 M input at $3 and 0.1 M output at $15.
    let cost = spent["cost_usd"].as_f64().expect("a cost with prices set");
    assert!((cost - 4.5).abs() < 1e-9, "{cost}");
    // The readable transcript says it too.
    let md = std::fs::read_to_string(ws.path().join(format!("reports/agent.ask-{id}.md"))).unwrap();
    assert!(
        md.contains("2 model turns, 1000000 input and 100000 output tokens ($4.5000)"),
        "{md}"
    );
}

/// Runs `sh -c script` under `wrapper` (a fresh keyring session) with the fake model in the
/// environment but no key, a private HOME and XDG dirs, and no inherited session bus.
async fn in_keyring_session(
    ws: &std::path::Path,
    model: &FakeModel,
    wrapper: &[&str],
    script: &str,
) -> (bool, String, String) {
    let home = ws.join("home");
    let run = home.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut c = tokio::process::Command::new(wrapper[0]);
    c.args(&wrapper[1..])
        .args(["sh", "-c", script])
        .env("DESKHAND", env!("CARGO_BIN_EXE_deskhand"))
        .env("DESKHAND_WORKSPACE", ws)
        .env("DESKHAND_MODEL_PROVIDER", "anthropic")
        .env("DESKHAND_MODEL_BASE_URL", model.base_url())
        .env("DESKHAND_MODEL", "test-model")
        .env("KEY", KEY)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", &run)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DESKHAND_SECRETS_KEY")
        .env_remove("DESKHAND_MODEL_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), c.output())
        .await
        .expect("keyring session finished in time")
        .unwrap();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Stored from standard input (never argv), shown by source only, used by a planned job; then
/// the environment's key wins; then forgotten. `prelude` starts the keyring where one is needed.
async fn the_key_lives_in(store: &str, wrapper: &[&str], prelude: &str, described: &str) {
    let ws = temp();
    std::fs::create_dir_all(ws.path().join(".deskhand")).unwrap();
    std::fs::write(
        ws.path().join(".deskhand/config.toml"),
        format!("[secrets]\nstore = \"{store}\"\n"),
    )
    .unwrap();
    let model = FakeModel::start_with_key(
        Script::new([Turn::text("Hello from the keyring key.")]),
        KEY,
    )
    .await;
    let script = format!(
        "{prelude}printf %s \"$KEY\" | \"$DESKHAND\" model set-key && \"$DESKHAND\" model status && \
         \"$DESKHAND\" ask hello && echo ---env && DESKHAND_MODEL_API_KEY=sk-other \"$DESKHAND\" model status && \
         echo ---forgot && \"$DESKHAND\" model forget-key && \"$DESKHAND\" model status"
    );
    let (ok, out, err) = in_keyring_session(ws.path(), &model, wrapper, &script).await;
    assert!(ok, "{out}\n{err}\n{:?}", model.failures());
    let (stored, rest) = out.split_once("---env").unwrap();
    let (env_wins, forgot) = rest.split_once("---forgot").unwrap();
    assert!(
        stored.contains(&format!("stored the anthropic key in {described}")),
        "{stored}"
    );
    assert!(stored.contains("key       OS keyring"), "{stored}");
    assert!(stored.contains("Hello from the keyring key."), "{stored}");
    assert!(
        env_wins.contains("key       environment variable DESKHAND_MODEL_API_KEY"),
        "{env_wins}"
    );
    assert!(forgot.contains("key       none"), "{forgot}");
    assert!(stored.contains("provider  anthropic") && stored.contains("model     test-model"));
    let reqs = model.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].key, KeySeen::Matched, "the keyring's key was sent");
    // The key is in no output and no file of the workspace (nor the keyring's own files there).
    assert!(!out.contains(KEY) && !err.contains(KEY));
    let mut dirs = vec![ws.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(KEY),
                    "{} holds the key",
                    p.display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_with_set_key_lives_in_kernel_keyutils_is_used_and_the_environment_wins() {
    the_key_lives_in(
        "keyutils",
        &["keyctl", "session", "-"],
        "",
        "kernel keyutils",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_with_set_key_lives_in_the_secret_service_is_used_and_the_environment_wins() {
    let prelude = format!("{}; ", crate::secrets::UNLOCK);
    the_key_lives_in(
        "auto",
        &crate::secrets::KEYRING_SESSION,
        &prelude,
        "Secret Service",
    )
    .await;
}
