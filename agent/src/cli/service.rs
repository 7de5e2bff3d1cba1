//! `deskhand service install|uninstall|status`: the agent as a service of the person's session
//! (systemd user unit, launchd agent; see [`crate::service`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::service::{self, Manager, Service};
use crate::{errln, outln};

/// `deskhand service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    cmd: ServiceCmd,
}

#[derive(Debug, Subcommand)]
enum ServiceCmd {
    /// Write the unit for this workspace and start it at login (systemd user unit, launchd agent).
    Install {
        /// Only write the unit; do not ask the service manager to start it.
        #[arg(long)]
        no_start: bool,
        /// The local API's port (`serve --port`).
        #[arg(long)]
        port: Option<u16>,
        /// Print the unit instead of writing it.
        #[arg(long)]
        print: bool,
    },
    /// Stop the service and remove its unit.
    Uninstall,
    /// Whether the unit is installed and running.
    Status,
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set; it says where the service unit goes")
}

fn unit_path(manager: Manager) -> anyhow::Result<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    Ok(service::unit_path(manager, &home()?, xdg.as_deref()))
}

/// Run a service manager command; what it said when it failed.
fn manage(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program).args(args).output() {
        Err(e) => Err(format!("cannot run {program}: {e}")),
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// Run `deskhand service …`.
pub fn run(a: ServiceArgs, ws: &Path) -> anyhow::Result<()> {
    let manager = Manager::here();
    match a.cmd {
        ServiceCmd::Install {
            no_start,
            port,
            print,
        } => {
            std::fs::create_dir_all(ws).with_context(|| format!("creating {}", ws.display()))?;
            let s = Service {
                binary: std::env::current_exe()
                    .and_then(|p| p.canonicalize())
                    .context("finding this program's path")?,
                workspace: ws.canonicalize()?,
                serve_args: port
                    .map(|p| vec!["--port".to_string(), p.to_string()])
                    .unwrap_or_default(),
            };
            let text = service::unit_text(manager, &s);
            if print {
                outln!("{text}")?;
                return Ok(());
            }
            let path = unit_path(manager)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            deskhand_workspace::write::atomic_write(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            outln!("wrote {}", path.display())?;
            if no_start {
                outln!("not started (--no-start); {}", start_hint(manager, &path))?;
                return Ok(());
            }
            let started = match manager {
                Manager::Systemd => {
                    manage("systemctl", &["--user", "daemon-reload"]).and_then(|_| {
                        manage("systemctl", &["--user", "enable", "--now", service::UNIT])
                    })
                }
                Manager::Launchd => {
                    let domain = format!("gui/{}", uid());
                    manage(
                        "launchctl",
                        &["bootstrap", &domain, &path.display().to_string()],
                    )
                }
            };
            match started {
                Ok(_) => outln!("started; it starts again at login and after a failure")?,
                Err(why) => {
                    errln!("the unit is written but could not be started: {why}");
                    errln!("{}", start_hint(manager, &path));
                }
            }
            if manager == Manager::Systemd {
                outln!(
                    "to keep it running while you are logged out: loginctl enable-linger {}",
                    std::env::var("USER").unwrap_or_else(|_| "$USER".into())
                )?;
            }
            Ok(())
        }
        ServiceCmd::Uninstall => {
            let path = unit_path(manager)?;
            let stopped = match manager {
                Manager::Systemd => {
                    manage("systemctl", &["--user", "disable", "--now", service::UNIT])
                }
                Manager::Launchd => manage(
                    "launchctl",
                    &["bootout", &format!("gui/{}/{}", uid(), service::LABEL)],
                ),
            };
            if let Err(why) = stopped {
                errln!("(stopping it: {why})");
            }
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                if manager == Manager::Systemd {
                    let _ = manage("systemctl", &["--user", "daemon-reload"]);
                }
                outln!("removed {}", path.display())?;
            } else {
                outln!("no unit at {}; nothing to remove", path.display())?;
            }
            Ok(())
        }
        ServiceCmd::Status => {
            let path = unit_path(manager)?;
            if !path.exists() {
                outln!(
                    "not installed ({} is missing); `deskhand service install`",
                    path.display()
                )?;
                return Ok(());
            }
            outln!("installed: {}", path.display())?;
            let state = match manager {
                Manager::Systemd => manage("systemctl", &["--user", "is-active", service::UNIT]),
                Manager::Launchd => manage(
                    "launchctl",
                    &["print", &format!("gui/{}/{}", uid(), service::LABEL)],
                )
                .map(|_| "loaded".to_string()),
            };
            match state {
                Ok(s) => outln!("state: {s}")?,
                Err(why) => outln!("state: unknown ({why})")?,
            }
            Ok(())
        }
    }
}

fn start_hint(manager: Manager, path: &Path) -> String {
    match manager {
        Manager::Systemd => format!(
            "start it with: systemctl --user daemon-reload && systemctl --user enable --now {}",
            service::UNIT
        ),
        Manager::Launchd => format!(
            "start it with: launchctl bootstrap gui/$(id -u) {}",
            path.display()
        ),
    }
}

/// The person's user id (launchd's `gui/UID` domain): the owner of their home folder.
fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    home()
        .ok()
        .and_then(|h| std::fs::metadata(h).ok())
        .map(|m| m.uid())
        .unwrap_or(0)
}
