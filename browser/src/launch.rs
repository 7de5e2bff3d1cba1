//! Finding and starting Chromium: flags, profiles, and cleaning up after earlier crashes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{pid_alive, ChildGuard};
use crate::{Error, Result};

/// Which protocol drives the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Chrome DevTools Protocol through chromiumoxide (default: fastest, one round trip per form).
    #[default]
    Cdp,
    /// W3C WebDriver through chromedriver and fantoccini.
    #[serde(rename = "webdriver")]
    WebDriver,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cdp" => Ok(Backend::Cdp),
            "webdriver" | "wd" => Ok(Backend::WebDriver),
            other => Err(Error::Invalid(format!(
                "unknown backend {other:?}; expected cdp or webdriver"
            ))),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Cdp => "cdp",
            Backend::WebDriver => "webdriver",
        })
    }
}

/// How to start a browser. `Default` gives a headless Chromium with a fresh temp profile.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// CDP (default) or WebDriver.
    pub backend: Backend,
    /// Chromium binary from config; `$DESKHAND_CHROME` wins over it, `/usr/bin/chromium` is the fallback.
    pub chrome: Option<PathBuf>,
    /// Chromium binary named on the command line: beats `$DESKHAND_CHROME` and config.
    pub chrome_override: Option<PathBuf>,
    /// chromedriver binary; `$DESKHAND_CHROMEDRIVER` wins, `/usr/bin/chromedriver` is the fallback.
    pub chromedriver: Option<PathBuf>,
    /// A persistent profile folder (keeps cookies and logins between runs); `None` = fresh temp profile.
    pub profile: Option<PathBuf>,
    /// Run without a window (default true).
    pub headless: bool,
    /// Window size in CSS pixels.
    pub window: (u32, u32),
    /// Extra Chromium flags, with leading dashes.
    pub extra_args: Vec<String>,
    /// How long an action waits for its element to be ready.
    pub action_timeout: Duration,
    /// How long a navigation may take.
    pub navigation_timeout: Duration,
    /// How long Chromium (and chromedriver) may take to start.
    pub launch_timeout: Duration,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            backend: Backend::Cdp,
            chrome: None,
            chrome_override: None,
            chromedriver: None,
            profile: None,
            headless: true,
            window: (1280, 900),
            extra_args: Vec::new(),
            action_timeout: Duration::from_secs(10),
            navigation_timeout: Duration::from_secs(30),
            launch_timeout: Duration::from_secs(30),
        }
    }
}

/// The flags we always pass. They keep Chromium quiet on a closed network. `--no-sandbox` is not
/// among them: [`chromium_flags`] adds it only when [`sandbox_disabled`] gives a reason.
pub const BASE_FLAGS: &[&str] = &[
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--disable-breakpad",
    // A headless tab counts as hidden: without these, timers and rendering are throttled.
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-crash-reporter",
    // Measured ~7% off a form fill (two navigations): a page left is not frozen into the
    // back/forward cache, and a new page paints as soon as it can instead of holding the old one.
    "--disable-back-forward-cache",
    "--disable-features=Translate,MediaRouter,OptimizationHints,PaintHolding,BackForwardCache",
];

/// Why Chromium runs without its sandbox when Deskhand runs as root (issue 15).
const REASON_ROOT: &str = "Deskhand runs as root and Chromium refuses its sandbox for root; \
     run Deskhand as an ordinary user to keep the renderer sandbox";
/// Why Chromium runs without its sandbox when the person asked for it.
const REASON_OPT_OUT: &str = "DESKHAND_CHROMIUM_NO_SANDBOX is set";

/// Why Chromium runs without its renderer sandbox in this process, or `None` when it keeps it.
/// It runs sandboxed unless Deskhand runs as root (Chromium will not start sandboxed as root) or
/// `$DESKHAND_CHROMIUM_NO_SANDBOX` is set to a non-empty value other than `0` (for systems that
/// cannot sandbox an ordinary user). `deskhand doctor` reports this.
pub fn sandbox_disabled() -> Option<&'static str> {
    let opted_out =
        std::env::var_os("DESKHAND_CHROMIUM_NO_SANDBOX").is_some_and(|v| !v.is_empty() && v != "0");
    sandbox_rule(effective_uid_is_root(), opted_out)
}

/// The sandbox rule as a pure function of who we are and what was asked.
fn sandbox_rule(root: bool, opted_out: bool) -> Option<&'static str> {
    if root {
        Some(REASON_ROOT)
    } else if opted_out {
        Some(REASON_OPT_OUT)
    } else {
        None
    }
}

/// Every flag a launch passes before its own: [`BASE_FLAGS`], and `--no-sandbox` only when
/// `no_sandbox` gives a reason (see [`sandbox_disabled`]).
pub fn chromium_flags(no_sandbox: Option<&str>) -> Vec<&'static str> {
    let mut flags = BASE_FLAGS.to_vec();
    if no_sandbox.is_some() {
        flags.insert(0, "--no-sandbox");
    }
    flags
}

#[allow(unsafe_code)]
fn effective_uid_is_root() -> bool {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// Say once per process that Chromium runs unsandboxed, and why.
fn warn_unsandboxed(reason: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            reason,
            "Chromium runs without its renderer sandbox (--no-sandbox)"
        );
    });
}

/// What to do when Chromium cannot set up its sandbox for an ordinary user.
const NO_SANDBOX_ADVICE: &str = "Chromium cannot start its renderer sandbox on this system: it \
     needs unprivileged user namespaces (sysctl user.max_user_namespaces > 0, and on Debian \
     kernel.unprivileged_userns_clone=1; on Ubuntu 23.10+ an AppArmor profile for Chromium or \
     kernel.apparmor_restrict_unprivileged_userns=0) or the setuid chrome-sandbox helper; to run \
     without the sandbox instead, set DESKHAND_CHROMIUM_NO_SANDBOX=1";

/// Whether Chromium's output says its sandbox could not be set up.
fn sandbox_failed(stderr: &str) -> bool {
    stderr.contains("No usable sandbox")
        || stderr.contains("Failed to move to new namespace")
        || stderr.contains("setuid sandbox")
}

const PROFILE_PREFIX: &str = "deskhand-chromium-";
const OWNER_FILE: &str = "deskhand-owner.pid";

/// Where Chromium is, by the documented order: `$DESKHAND_CHROME`, config, `/usr/bin/chromium`.
pub fn find_chrome(configured: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os("DESKHAND_CHROME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    find_binary(
        env,
        configured,
        "/usr/bin/chromium",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .map_err(|path| Error::ChromiumMissing { path })
}

/// Where chromedriver is: `$DESKHAND_CHROMEDRIVER`, config, `/usr/bin/chromedriver`.
pub fn find_chromedriver(configured: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os("DESKHAND_CHROMEDRIVER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    find_binary(env, configured, "/usr/bin/chromedriver", &["chromedriver"])
        .map_err(|path| Error::DriverMissing { path })
}

fn find_binary(
    env: Option<PathBuf>,
    configured: Option<&Path>,
    default: &str,
    path_names: &[&str],
) -> std::result::Result<PathBuf, PathBuf> {
    // An explicit choice that is wrong is an error, not a reason to silently use something else.
    if let Some(p) = env.or_else(|| configured.map(Path::to_path_buf)) {
        return if is_executable(&p) { Ok(p) } else { Err(p) };
    }
    let default = PathBuf::from(default);
    if is_executable(&default) {
        return Ok(default);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in path_names {
            let p = dir.join(name);
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    Err(default)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The profile folder a browser runs with.
#[derive(Debug)]
pub(crate) enum Profile {
    /// Removed when the browser is dropped.
    Temp(tempfile::TempDir),
    /// The person's own folder; kept.
    Persistent(PathBuf),
}

impl Profile {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Profile::Temp(t) => t.path(),
            Profile::Persistent(p) => p,
        }
    }
}

/// A started Chromium with its DevTools endpoint. Field order matters: the process dies before
/// its temp profile is removed.
#[derive(Debug)]
pub(crate) struct ChromiumProcess {
    pub(crate) child: ChildGuard,
    pub(crate) ws_url: String,
    pub(crate) profile: Profile,
}

impl ChromiumProcess {
    /// "127.0.0.1:PORT" of the DevTools endpoint (for chromedriver's `debuggerAddress`).
    pub(crate) fn debugger_address(&self) -> String {
        self.ws_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// Start Chromium with remote debugging on a free loopback port and wait for its DevTools URL.
pub(crate) fn start_chromium(opts: &LaunchOptions) -> Result<ChromiumProcess> {
    reap_stale_profiles();
    let chrome = match &opts.chrome_override {
        Some(p) => find_binary(Some(p.clone()), None, "", &[])
            .map_err(|path| Error::ChromiumMissing { path })?,
        None => find_chrome(opts.chrome.as_deref())?,
    };
    let profile = match &opts.profile {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            Profile::Persistent(dir.clone())
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix(PROFILE_PREFIX)
                .tempdir()
                .map_err(|e| Error::io(std::env::temp_dir(), e))?;
            let owner = dir.path().join(OWNER_FILE);
            std::fs::write(&owner, std::process::id().to_string())
                .map_err(|e| Error::io(&owner, e))?;
            Profile::Temp(dir)
        }
    };
    let no_sandbox = sandbox_disabled();
    if let Some(reason) = no_sandbox {
        warn_unsandboxed(reason);
    }
    let mut cmd = Command::new(&chrome);
    if opts.headless {
        cmd.arg("--headless=new");
    }
    cmd.args(chromium_flags(no_sandbox))
        .arg("--remote-debugging-port=0")
        .arg("--remote-debugging-address=127.0.0.1")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},{}", opts.window.0, opts.window.1))
        .args(&opts.extra_args)
        .arg("about:blank");
    tracing::debug!(
        program = %chrome.display(),
        args = ?cmd.get_args().collect::<Vec<_>>(),
        "starting chromium"
    );
    let started = Instant::now();
    let (mut child, lines) =
        ChildGuard::spawn("chromium", cmd).map_err(|e| Error::LaunchFailed {
            program: format!("chromium ({})", chrome.display()),
            reason: e.to_string(),
            stderr: String::new(),
        })?;
    let fail = |child: &ChildGuard, reason: String| {
        let stderr = child.output_tail();
        let reason = if stderr.contains("SingletonLock")
            || stderr.contains("profile appears to be in use")
        {
            format!(
                "the profile {} is in use by another Chromium; close that browser or choose another --profile",
                profile.path().display()
            )
        } else if sandbox_failed(&stderr) {
            NO_SANDBOX_ADVICE.to_string()
        } else {
            reason
        };
        Error::LaunchFailed {
            program: format!("chromium ({})", chrome.display()),
            reason,
            stderr,
        }
    };
    loop {
        let left = opts.launch_timeout.saturating_sub(started.elapsed());
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    tracing::debug!(
                        pid = child.pid(),
                        ms = started.elapsed().as_millis() as u64,
                        "chromium ready"
                    );
                    return Ok(ChromiumProcess {
                        child,
                        ws_url: url.trim().to_string(),
                        profile,
                    });
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.exited() {
                    return Err(fail(
                        &child,
                        format!("it exited with {status} before opening DevTools"),
                    ));
                }
                if started.elapsed() >= opts.launch_timeout {
                    return Err(fail(
                        &child,
                        format!("no DevTools endpoint within {:?}", opts.launch_timeout),
                    ));
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                child.shutdown(Duration::from_millis(500));
                return Err(fail(&child, "it exited before opening DevTools".into()));
            }
        }
    }
}

/// Remove temp profiles left by Deskhand processes that died without cleaning up (e.g. SIGKILL).
pub fn reap_stale_profiles() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(PROFILE_PREFIX) {
                continue;
            }
            let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let stale = match owner {
                Some(pid) => !pid_alive(pid),
                // No owner file: only remove if it is old (another process may be creating it now).
                None => entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600))
                    .unwrap_or(false),
            };
            if stale {
                tracing::info!(path = %entry.path().display(), "removing stale Chromium profile");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_binary_that_is_missing_is_an_error_with_install_advice() {
        let err = find_binary(
            Some("/nope/chromium".into()),
            None,
            "/usr/bin/chromium",
            &[],
        )
        .unwrap_err();
        assert_eq!(err, PathBuf::from("/nope/chromium"));
        let msg = Error::ChromiumMissing { path: err }.to_string();
        assert!(msg.contains("apt-get install -y chromium"), "{msg}");
        assert!(msg.contains("DESKHAND_CHROME"), "{msg}");
    }

    #[test]
    fn configured_binary_is_used_when_env_is_unset() {
        let found = find_binary(None, Some(Path::new("/bin/sh")), "/nonexistent", &[]).unwrap();
        assert_eq!(found, PathBuf::from("/bin/sh"));
    }

    #[test]
    fn no_sandbox_only_as_root_or_when_asked() {
        assert!(!chromium_flags(sandbox_rule(false, false)).contains(&"--no-sandbox"));
        let root = sandbox_rule(true, false);
        assert!(root.unwrap().contains("root"));
        assert!(chromium_flags(root).contains(&"--no-sandbox"));
        assert!(chromium_flags(sandbox_rule(false, true)).contains(&"--no-sandbox"));
        assert!(!BASE_FLAGS.contains(&"--no-sandbox"));
    }

    #[test]
    fn a_sandbox_that_cannot_start_fails_fast_with_advice() {
        use std::os::unix::fs::PermissionsExt;
        // A stand-in for Chromium on a kernel without user namespaces: it says so and exits.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("chromium");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho '[1:1:FATAL:zygote_host_impl_linux.cc(128)] No usable sandbox! \
             Update your kernel or see suid_sandbox_development.md' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let opts = LaunchOptions {
            chrome_override: Some(fake),
            ..LaunchOptions::default()
        };
        let msg = start_chromium(&opts).unwrap_err().to_string();
        assert!(
            msg.contains("user namespaces") && msg.contains("DESKHAND_CHROMIUM_NO_SANDBOX"),
            "{msg}"
        );
    }

    #[test]
    fn backend_parses() {
        assert_eq!("CDP".parse::<Backend>().unwrap(), Backend::Cdp);
        assert_eq!("webdriver".parse::<Backend>().unwrap(), Backend::WebDriver);
        assert!("selenium".parse::<Backend>().is_err());
    }
}
