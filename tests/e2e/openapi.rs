//! The local API against its document: Schemathesis (property-based, driven by
//! `docs/openapi.yaml`) sends generated requests, valid and invalid, to a real `deskhand serve`
//! and checks every answer against the document: no 5xx, only documented statuses, content
//! types, headers and bodies, invalid input refused, authentication enforced.
//!
//! Needs Schemathesis 4.32.5 (`python3 -m pip install schemathesis==4.32.5`, as `.ci/run` does);
//! without it the test fails and says so, rather than passing without having checked anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{temp, Daemon};

/// The version the checks below were written for (their names and CLI flags change between
/// versions).
const VERSION: &str = "4.32.5";

/// Every check of this version but those that need two identities (`object_level_authorization`),
/// a DELETE (`use_after_free`) or that every valid-looking request succeed
/// (`positive_data_acceptance`: a well-formed job naming a skill this agent lacks is rightly a
/// 400).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,unsupported_method,allow_header_conformance,ignored_auth,\
ensure_resource_availability";

/// `$DESKHAND_SCHEMATHESIS`, then `st` in Python's scripts folder, then on PATH.
fn schemathesis() -> PathBuf {
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("st"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::var_os("DESKHAND_SCHEMATHESIS")
        .map(PathBuf::from)
        .into_iter()
        .chain(scripts)
        .chain(std::env::split_paths(&path).map(|d| d.join("st")));
    for c in candidates {
        let Ok(out) = Command::new(&c).arg("--version").output() else {
            continue;
        };
        let v = String::from_utf8_lossy(&out.stdout);
        if v.contains(VERSION) {
            return c;
        }
    }
    panic!(
        "Schemathesis {VERSION} not found: install it with \
         `python3 -m pip install schemathesis=={VERSION}` (its `st` goes into Python's scripts \
         folder), or point DESKHAND_SCHEMATHESIS at its `st`"
    );
}

#[test]
fn the_api_follows_its_document() {
    let st = schemathesis();
    let ws = temp();
    // Generated jobs (the document's own example names `browser.fill`) must not start a
    // browser: a Chromium that does not exist fails them at once.
    let no_chromium = ws.path().join("no-chromium-here");
    let daemon = Daemon::start_with(ws.path(), &[("DESKHAND_CHROME", no_chromium.as_os_str())]);
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml");
    let reports = temp();
    let out = Command::new(&st)
        .arg("run")
        .arg(&spec)
        .args(["--url", &daemon.api])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", daemon.token),
        ])
        .args(["--checks", CHECKS])
        // Reproducible: the same seed, no example database carried between runs.
        .args(["--seed", "20250101", "--generation-database", "none"])
        .args(["--max-examples", "100", "--workers", "2"])
        // Bounded: a stream that never ends would be a failure, not a hang.
        .args(["--request-timeout", "10"])
        .args(["--no-color", "--output-truncate", "false"])
        .arg("--report")
        .arg("junit")
        .arg("--report-dir")
        .arg(reports.path())
        // Schemathesis keeps a cache of past failures in `.schemathesis/` under its working
        // folder and replays them first: a fresh folder keeps each run the same, and the tree clean.
        .current_dir(reports.path())
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture: what ran, for the record.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found the API and its document disagree ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // A run that tested nothing (a wrong URL, every operation skipped) must not pass.
    let junit = std::fs::read_dir(reports.path())
        .expect("report dir")
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "xml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_else(|| panic!("no JUnit report from schemathesis:\n{stdout}\n{stderr}"));
    let cases = junit.matches("<testcase").count();
    let skipped = junit.matches("<skipped").count();
    assert!(
        cases >= 12 && skipped == 0,
        "expected every documented operation tested, got {cases} test cases, {skipped} skipped:\n{stdout}"
    );
}
