//! The binary as a person installs and runs it (issue 15): copied away from the build, started
//! from another folder with the source tree out of reach, and run as an ordinary user, where
//! Chromium keeps its renderer sandbox.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{fixture_dir, temp, StaticSite};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_root() -> bool {
    // /proc/self belongs to our effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A copy of the built `deskhand` in its own world-readable folder, as `cargo install` leaves it.
fn installed_copy(dir: &Path) -> PathBuf {
    chmod(dir, 0o755);
    let bin = dir.join("deskhand");
    std::fs::copy(env!("CARGO_BIN_EXE_deskhand"), &bin).unwrap();
    chmod(&bin, 0o755);
    bin
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn an_installed_binary_runs_the_demo_from_another_folder() {
    let (bin_dir, cwd, ws) = (temp(), temp(), temp());
    let bin = installed_copy(bin_dir.path());
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new("unshare");
    // As root, an empty tmpfs over the source tree in a private mount namespace makes it truly
    // absent for the demo; the script first checks it is gone.
    let hidden = is_root() && available("unshare");
    if hidden {
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"mount -t tmpfs deskhand-hidden "$1" && test ! -e "$1/Cargo.toml" || exit 97
                   shift; exec "$@""#,
            )
            .arg("sh")
            .arg(source_tree)
            .arg(&bin);
    } else {
        eprintln!(
            "not root (or no unshare): the source tree stays visible; running from elsewhere only"
        );
        cmd = Command::new(&bin);
    }
    let out = cmd
        .arg("demo")
        .current_dir(cwd.path())
        .env("DESKHAND_WORKSPACE", ws.path())
        .env_remove("DESKHAND_BACKEND")
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(97),
        "could not hide the source tree"
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for skill in ["status-report", "fill-form", "extract"] {
        assert!(
            stdout.contains(&format!("{skill:<14} succeeded")),
            "{stdout}"
        );
    }
    let reports: Vec<String> = std::fs::read_dir(ws.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for (prefix, ext) in [
        ("status-report-", ".md"),
        ("fill-form-fill-", ".png"),
        ("extract-", ".xlsx"),
    ] {
        assert!(
            reports
                .iter()
                .any(|n| n.starts_with(prefix) && n.ends_with(ext)),
            "no {prefix}*{ext} in {reports:?}"
        );
    }
    // The sample workspace came from the binary too.
    let tasks = std::fs::read_to_string(ws.path().join("TASKS.md")).unwrap();
    assert_eq!(
        tasks,
        std::fs::read_to_string(source_tree.join("fixtures/workspace/TASKS.md")).unwrap()
    );
    // Nothing was written where it was started.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

/// A folder the unprivileged user can use: the installed binary, a Chromium wrapper that records
/// its command line and pid, and a world-writable `out/` (home, temp, workspace, results).
struct AsUser {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    wrapper: PathBuf,
    out: PathBuf,
    /// `setpriv` to `nobody` when we are root; nothing when we already are an ordinary user.
    prefix: Vec<String>,
}

impl AsUser {
    fn new() -> Option<AsUser> {
        let prefix: Vec<String> = if !is_root() {
            Vec::new()
        } else if available("setpriv") {
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]
            .map(String::from)
            .to_vec()
        } else {
            eprintln!(
                "running as root without setpriv (util-linux): cannot check as an ordinary user"
            );
            return None;
        };
        let dir = temp();
        let bin = installed_copy(dir.path());
        let out = dir.path().join("out");
        for d in ["", "home", "tmp", "ws"] {
            std::fs::create_dir_all(out.join(d)).unwrap();
            chmod(&out.join(d), 0o777);
        }
        let chrome = deskhand_browser::find_chrome(None).expect("chromium for the e2e suite");
        let wrapper = dir.path().join("chromium");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho $$ > '{out}/chromium.pid'\nprintf '%s\\n' \"$@\" > '{out}/chromium.args'\nexec '{chrome}' \"$@\"\n",
                out = out.display(),
                chrome = chrome.display()
            ),
        )
        .unwrap();
        chmod(&wrapper, 0o755);
        Some(AsUser {
            _dir: dir,
            bin,
            wrapper,
            out,
            prefix,
        })
    }

    /// `deskhand ARGS` as the ordinary user (or as us, with `as_us`), with Chromium behind the wrapper.
    fn command(&self, as_us: bool, args: &[&str]) -> Command {
        let prefix: &[String] = if as_us { &[] } else { &self.prefix };
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.args(args)
            .current_dir(&self.out)
            .env("HOME", self.out.join("home"))
            .env("TMPDIR", self.out.join("tmp"))
            .env("DESKHAND_WORKSPACE", self.out.join("ws"))
            .env("DESKHAND_CHROME", &self.wrapper)
            .env_remove("DESKHAND_CHROMIUM_NO_SANDBOX")
            .env("RUST_LOG", "warn");
        cmd
    }

    /// The command line the wrapper saw last.
    fn chromium_args(&self) -> Vec<String> {
        std::fs::read_to_string(self.out.join("chromium.args"))
            .expect("chromium was started through the wrapper")
            .lines()
            .map(String::from)
            .collect()
    }
}

fn screenshot(user: &AsUser, as_us: bool, url: &str, png: &str) -> Output {
    user.command(as_us, &["browse", "screenshot", url, png])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_keeps_its_sandbox_when_not_root() {
    let Some(user) = AsUser::new() else { return };
    let site = StaticSite::serve(&fixture_dir()).await.unwrap();
    let url = site.url("index.html");

    let out = tokio::task::block_in_place(|| screenshot(&user, false, &url, "page.png"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let args = user.chromium_args();
    assert!(args.iter().any(|a| a == "--headless=new"), "{args:?}");
    assert!(
        !args.iter().any(|a| a == "--no-sandbox"),
        "an ordinary user's Chromium ran unsandboxed: {args:?}"
    );
    assert!(
        !text(&out.stderr).contains("sandbox"),
        "{}",
        text(&out.stderr)
    );
    let png = std::fs::read(user.out.join("page.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    // The sandbox is really on: while a page hangs, the renderers run under a seccomp filter in a
    // user namespace of their own.
    let _ = std::fs::remove_file(user.out.join("chromium.pid"));
    let mut child = user
        .command(
            false,
            &["browse", "screenshot", &site.url("never"), "x.png"],
        )
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let renderer = loop {
        let browser = std::fs::read_to_string(user.out.join("chromium.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = browser.and_then(|b| renderers_under(b).into_iter().next()) {
            break Some(pid);
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A renderer seen the instant it starts has not installed its filter yet: give it a moment.
    let status = match renderer {
        Some(pid) => {
            let read = || std::fs::read_to_string(format!("/proc/{pid}/status"));
            let until = std::time::Instant::now() + Duration::from_secs(10);
            let mut s = read();
            while s.as_ref().is_ok_and(|t| !t.contains("\nSeccomp:\t2"))
                && std::time::Instant::now() < until
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
                s = read();
            }
            Some(s)
        }
        None => None,
    };
    let user_ns = renderer.map(|pid| std::fs::read_link(format!("/proc/{pid}/ns/user")));
    let _ = child.kill();
    let _ = child.wait();
    let status = status
        .expect("no Chromium renderer seen while the page loaded")
        .expect("the renderer's status");
    assert!(status.contains("\nSeccomp:\t2"), "{status}");
    assert!(status.contains("\nNoNewPrivs:\t1"), "{status}");
    // (A renderer that is not dumpable hides its namespaces from a non-root reader.)
    if let Some(Ok(ns)) = user_ns {
        let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(ns, ours, "the renderer shares our user namespace");
    }

    // As root, Chromium cannot keep its sandbox: the flag is added and the log says why, once.
    if is_root() {
        let out = tokio::task::block_in_place(|| screenshot(&user, true, &url, "root.png"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(user.chromium_args().iter().any(|a| a == "--no-sandbox"));
        let stderr = text(&out.stderr);
        assert_eq!(
            stderr.matches("without its renderer sandbox").count(),
            1,
            "{stderr}"
        );
        assert!(stderr.contains("root"), "{stderr}");
    }
}

/// Renderer processes descending from `browser` (through Chromium's zygote).
fn renderers_under(browser: u32) -> Vec<u32> {
    let parent = |pid: u32| -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()
    };
    crate::util::processes_mentioning("--type=renderer")
        .into_iter()
        .filter(|&pid| {
            let mut p = pid;
            for _ in 0..8 {
                match parent(p) {
                    Some(pp) if pp == browser => return true,
                    Some(pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}
