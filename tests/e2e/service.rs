//! `deskhand service` (issue 18): the systemd user unit it writes is one systemd accepts.

use std::process::Command;

use crate::util::temp;

fn run(home: &std::path::Path, ws: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let cfg = home.join("cfg");
    crate::util::run_cli_with(
        ws,
        args,
        &[
            ("HOME", home.as_os_str()),
            ("XDG_CONFIG_HOME", cfg.as_os_str()),
        ],
    )
}

#[test]
fn the_service_unit_is_written_verified_and_removed() {
    let home = temp();
    // A workspace whose path has a space and a percent sign, which systemd would otherwise split
    // or read as a specifier.
    let ws = home.path().join("My 100% Work");
    let (ok, out, err) = run(
        home.path(),
        &ws,
        &["service", "install", "--no-start", "--port", "7999"],
    );
    assert!(ok, "{err}");
    let unit = home.path().join("cfg/systemd/user/deskhand.service");
    assert!(out.contains(&unit.display().to_string()), "{out}");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("serve \"--port\" \"7999\""), "{text}");
    assert!(text.contains("My 100%% Work"), "{text}");

    // systemd's own check, where systemd is installed: no complaint about the unit.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let v = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&v.stderr);
        assert!(v.status.success(), "{said}");
        assert!(
            !said.contains("deskhand.service"),
            "systemd-analyze: {said}"
        );
    }

    let (ok, out, _) = run(home.path(), &ws, &["service", "status"]);
    assert!(ok && out.contains("installed:"), "{out}");
    let (ok, out, err) = run(home.path(), &ws, &["service", "uninstall"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed"), "{out}");
    assert!(!unit.exists());
    let (ok, out, _) = run(home.path(), &ws, &["service", "status"]);
    assert!(ok && out.contains("not installed"), "{out}");
}
