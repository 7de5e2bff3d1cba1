//! Running the agent as a service of the person's session (issue 18): a systemd user unit on
//! Linux, a launchd agent on macOS. This file writes the unit text (pure, tested here); the
//! CLI (`deskhand service install|uninstall|status`) puts it in place and asks the service
//! manager to start it.

use std::path::{Path, PathBuf};

/// The unit's name (systemd) and label (launchd).
pub const UNIT: &str = "deskhand.service";
/// The launchd label.
pub const LABEL: &str = "dev.deskhand.agent";

/// Which service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// systemd, user instance.
    Systemd,
    /// launchd, per-user agent.
    Launchd,
}

impl Manager {
    /// The one this system uses.
    pub fn here() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// What the service runs.
#[derive(Debug, Clone)]
pub struct Service {
    /// The `deskhand` binary (absolute).
    pub binary: PathBuf,
    /// The workspace (absolute).
    pub workspace: PathBuf,
    /// Extra arguments to `serve` (`--port 7878`).
    pub serve_args: Vec<String>,
}

/// Where the unit file goes for `manager`, under the person's home or config folder.
pub fn unit_path(manager: Manager, home: &Path, xdg_config: Option<&Path>) -> PathBuf {
    match manager {
        Manager::Systemd => xdg_config
            .map(Path::to_path_buf)
            .unwrap_or_else(|| home.join(".config"))
            .join("systemd/user")
            .join(UNIT),
        Manager::Launchd => home
            .join("Library/LaunchAgents")
            .join(format!("{LABEL}.plist")),
    }
}

/// One word of a systemd command line or assignment: quoted, with `\`, `"` and `%` (a
/// specifier) escaped, so a path with spaces or percent signs stays one word as written.
fn systemd_word(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    format!("\"{escaped}\"")
}

/// The systemd user unit: restarted on failure, the whole control group (Chromium too)
/// stopped with it.
pub fn systemd_unit(s: &Service) -> String {
    let mut exec = vec![
        systemd_word(&s.binary.display().to_string()),
        "--workspace".to_string(),
        systemd_word(&s.workspace.display().to_string()),
        "serve".to_string(),
    ];
    exec.extend(s.serve_args.iter().map(|a| systemd_word(a)));
    format!(
        "# Written by `deskhand service install`; `deskhand service uninstall` removes it.\n\
         [Unit]\n\
         Description=Deskhand agent (jobs, schedules, the local API)\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         Environment={}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         KillMode=control-group\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec.join(" "),
        systemd_word(&format!("DESKHAND_WORKSPACE={}", s.workspace.display())),
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd agent: started at login, restarted when it exits with a failure, its output in
/// the workspace's `.deskhand/logs/`.
pub fn launchd_plist(s: &Service) -> String {
    let mut args = vec![
        s.binary.display().to_string(),
        "--workspace".into(),
        s.workspace.display().to_string(),
        "serve".into(),
    ];
    args.extend(s.serve_args.iter().cloned());
    let args: String = args
        .iter()
        .map(|a| format!("    <string>{}</string>\n", xml(a)))
        .collect();
    let logs = s.workspace.join(".deskhand/logs");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \x20 <key>Label</key>\n  <string>{LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n{args}  </array>\n\
         \x20 <key>EnvironmentVariables</key>\n  <dict>\n    <key>DESKHAND_WORKSPACE</key>\n    <string>{ws}</string>\n  </dict>\n\
         \x20 <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
         \x20 <key>ThrottleInterval</key>\n  <integer>5</integer>\n\
         \x20 <key>StandardOutPath</key>\n  <string>{out}</string>\n\
         \x20 <key>StandardErrorPath</key>\n  <string>{err}</string>\n\
         </dict>\n\
         </plist>\n",
        ws = xml(&s.workspace.display().to_string()),
        out = xml(&logs.join("agent.out.log").display().to_string()),
        err = xml(&logs.join("agent.err.log").display().to_string()),
    )
}

/// The unit text for `manager`.
pub fn unit_text(manager: Manager, s: &Service) -> String {
    match manager {
        Manager::Systemd => systemd_unit(s),
        Manager::Launchd => launchd_plist(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        Service {
            binary: "/opt/desk hand/deskhand".into(),
            workspace: "/home/ann/My 100% Work".into(),
            serve_args: vec!["--port".into(), "7878".into()],
        }
    }

    #[test]
    fn the_systemd_unit_keeps_odd_paths_whole() {
        let u = systemd_unit(&service());
        assert!(
            u.contains(
                "ExecStart=\"/opt/desk hand/deskhand\" --workspace \"/home/ann/My 100%% Work\" serve \"--port\" \"7878\"\n"
            ),
            "{u}"
        );
        assert!(u.contains("Environment=\"DESKHAND_WORKSPACE=/home/ann/My 100%% Work\"\n"));
        assert!(u.contains("Restart=on-failure\n") && u.contains("WantedBy=default.target\n"));
    }

    #[test]
    fn the_launchd_plist_is_well_formed_and_escaped() {
        let mut s = service();
        s.workspace = "/Users/ann/R&D <new>".into();
        let p = launchd_plist(&s);
        assert!(
            p.contains("<string>/Users/ann/R&amp;D &lt;new&gt;</string>"),
            "{p}"
        );
        assert!(p.contains("<key>KeepAlive</key>"));
        // Every opened element is closed (a cheap well-formedness check).
        for tag in ["dict", "array", "plist"] {
            assert_eq!(
                p.matches(&format!("<{tag}")).count(),
                p.matches(&format!("</{tag}>")).count(),
                "{tag}"
            );
        }
    }

    #[test]
    fn units_go_where_the_managers_look() {
        let home = Path::new("/home/ann");
        assert_eq!(
            unit_path(Manager::Systemd, home, None),
            Path::new("/home/ann/.config/systemd/user/deskhand.service")
        );
        assert_eq!(
            unit_path(Manager::Systemd, home, Some(Path::new("/x/cfg"))),
            Path::new("/x/cfg/systemd/user/deskhand.service")
        );
        assert_eq!(
            unit_path(Manager::Launchd, Path::new("/Users/ann"), None),
            Path::new("/Users/ann/Library/LaunchAgents/dev.deskhand.agent.plist")
        );
    }
}
