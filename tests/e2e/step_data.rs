//! Steps that pass data, and outputs that never overwrite each other (issue 15): the real
//! `deskhand` binary runs a workspace skill whose two extract steps run in parallel on two pages
//! of the fixture site, then a third step mails both files' paths and counts through the fake
//! Gmail. What Gmail received is what the templates said, built from the earlier steps' results.

use deskhand_fake_providers::FakeData;

use crate::util::fixture_dir;

use crate::connectors::Env;

const SEND_SCOPE: &str = "https://www.googleapis.com/auth/gmail.send";

const SKILL_YAML: &str = r#"params:
  site:
    type: url
    required: true
    description: The fixture shop.
permissions:
  browser: ["param:site"]
  connectors:
    gmail: write
  workspace: ["reports/**"]
  without-asking: [send]
steps:
  - id: first
    uses: browser.extract
    with:
      url: "{{ params.site }}products/page-1.html"
      schema:
        items: li.product
        fields: {name: a.title, sku: .sku}
      max_pages: 1
  - id: second
    uses: browser.extract
    with:
      url: "{{ params.site }}products/page-2.html"
      schema:
        items: li.product
        fields: {name: a.title, sku: .sku}
      max_pages: 1
      format: jsonl
  - id: tell
    uses: gmail.send
    needs: [first, second]
    with:
      to: grace@example.com
      subject: "{{ steps.first.count + steps.second.count }} products from {{ steps.first.records | length }} and {{ steps.second.records | length }}"
      body: |
        First page: {{ steps.first.path }}
        Second page: {{ steps.second.path }}
        First product: {{ steps.first.records[0].name }}
"#;

fn write_skill(ws: &std::path::Path, name: &str, yaml: &str) {
    let d = ws.join("skills").join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: Two pages, then a mail.\n---\n# {name}\n"),
    )
    .unwrap();
    std::fs::write(d.join("skill.yaml"), yaml).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_parallel_extracts_keep_both_outputs_and_a_later_step_mails_their_paths() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let site = deskhand_agent::site::StaticSite::serve(&fixture_dir())
        .await
        .unwrap();
    let (ok, out, err) = env.connect("google", &["--scope", SEND_SCOPE]).await;
    assert!(ok, "{out}{err}");
    write_skill(ws, "two-pages", SKILL_YAML);
    let (ok, out, err) = env.run(&["skills", "trust", "two-pages", "--yes"]).await;
    assert!(ok, "{out}{err}");
    let sent_before = env.h().sent_messages().len();

    let (ok, out, err) = env
        .run(&[
            "skills",
            "run",
            "two-pages",
            "-p",
            &format!("site={}", site.url("")),
        ])
        .await;
    assert!(ok, "{out}\n{err}");

    // Two files, one per step, both whole: nothing replaced the other.
    let reports: Vec<String> = std::fs::read_dir(ws.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let first = reports
        .iter()
        .find(|f| f.starts_with("two-pages-first-") && f.ends_with(".csv"))
        .unwrap_or_else(|| panic!("no first-step file in {reports:?}"));
    let second = reports
        .iter()
        .find(|f| f.starts_with("two-pages-second-") && f.ends_with(".jsonl"))
        .unwrap_or_else(|| panic!("no second-step file in {reports:?}"));
    let csv = std::fs::read_to_string(ws.join("reports").join(first)).unwrap();
    let jsonl = std::fs::read_to_string(ws.join("reports").join(second)).unwrap();
    assert_eq!(csv.lines().count(), 11, "header and ten products:\n{csv}");
    assert_eq!(jsonl.lines().count(), 10, "{jsonl}");
    assert_ne!(csv.lines().nth(1), None);
    assert!(
        !jsonl.contains(csv.lines().nth(1).unwrap().split(',').next().unwrap()),
        "page 2 holds other products than page 1"
    );

    // The mail was built from both steps' results.
    let sent = env.h().sent_messages();
    assert_eq!(sent.len(), sent_before + 1);
    let mail = mail_parser::MessageParser::default()
        .parse(sent.last().unwrap().as_bytes())
        .unwrap();
    assert_eq!(mail.subject(), Some("20 products from 10 and 10"));
    let body = mail.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        body.contains(&format!("First page: reports/{first}"))
            && body.contains(&format!("Second page: reports/{second}")),
        "{body}"
    );
    let name = csv.lines().nth(1).unwrap().split(',').next().unwrap();
    assert!(
        body.contains(&format!("First product: {name}")),
        "{body}\n{csv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actions_schemas_come_from_its_types() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let v = env
        .json(&["skills", "show", "browser.extract", "--schema"])
        .await;
    let args = &v["arguments"];
    assert_eq!(args["type"], "object", "{v}");
    assert_eq!(args["properties"]["url"]["format"], "uri", "{v}");
    assert!(args["required"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "schema"));
    assert_eq!(args["properties"]["max_pages"]["default"], 10, "{v}");
    assert!(args["properties"]["target"]["description"]
        .as_str()
        .unwrap()
        .contains("tab:active"));
    for field in ["path", "count", "columns", "records"] {
        assert!(v["result"]["properties"][field].is_object(), "{field}: {v}");
    }
    let (ok, _, err) = env.run(&["skills", "show", "extract", "--schema"]).await;
    assert!(!ok && err.contains("browser.extract"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_to_an_unknown_step_is_refused_at_load_with_file_and_line() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    let broken = SKILL_YAML.replace("steps.second.path", "steps.third.path");
    write_skill(ws, "two-pages", &broken);
    let (ok, out, err) = env.run(&["skills", "list"]).await;
    let line = broken.lines().position(|l| l.contains("body:")).unwrap() + 1;
    let all = format!("{out}{err}");
    assert!(
        all.contains(&format!("two-pages/skill.yaml:{line}:"))
            && all.contains("unknown step \"third\""),
        "{ok} {all}"
    );
    let (ok, _, err) = env.run(&["/two-pages", "site=http://127.0.0.1:9/"]).await;
    assert!(
        !ok && err.contains("did not load") && err.contains("third"),
        "{err}"
    );
}
