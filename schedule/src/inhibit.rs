//! Keeping the machine awake while a scheduled skill is about to be due.
//!
//! On Linux this is `systemd-inhibit --what=sleep --who=Deskhand --why=<why> --mode=block cat`,
//! with our end of a pipe on `cat`'s standard input. The lock lasts as long as `cat` runs,
//! and `cat` runs until that pipe closes: on [`Inhibitor::release`], on drop, and also when
//! Deskhand itself dies, even by SIGKILL, because the kernel closes the pipe then. With
//! `sleep infinity` in its place a crashed agent would leave systemd-inhibit and its `sleep`
//! running, and the machine unable to sleep until someone killed them.
//!
//! Where the program is not on `PATH` (macOS, Windows, a container) holding is a no-op,
//! noted once at debug level.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Result, ScheduleError};

/// The program used when none is given.
pub const DEFAULT_INHIBITOR: &str = "systemd-inhibit";

/// A sleep inhibitor that is either held (one child process) or not.
#[derive(Debug)]
pub struct Inhibitor {
    program: PathBuf,
    state: Mutex<State>,
    /// How long after a hold died by itself before starting it again.
    retry_after: Duration,
}

/// A hold that ends by itself (systemd-inhibit without logind: a container, a session without
/// D-Bus) is not started again for this long, so a stream of short jobs does not start one
/// process per job.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct State {
    held: Option<Held>,
    said_missing: bool,
    /// When a hold last ended by itself.
    died_at: Option<Instant>,
}

#[derive(Debug)]
struct Held {
    child: Child,
    /// Our end of the pipe on the blocking command's stdin; closing it ends the lock.
    lifeline: Option<ChildStdin>,
}

impl Held {
    fn stop(mut self) {
        drop(self.lifeline.take());
        // Killing the inhibitor drops its lock at once; `cat` ends on its own at EOF.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Inhibitor {
    /// An inhibitor that runs `command` (a path, or a name looked up on `PATH`), by default
    /// `systemd-inhibit`. Nothing starts until [`Inhibitor::hold`].
    pub fn new(command: Option<PathBuf>) -> Inhibitor {
        Inhibitor {
            program: command.unwrap_or_else(|| PathBuf::from(DEFAULT_INHIBITOR)),
            state: Mutex::new(State::default()),
            retry_after: RETRY_AFTER,
        }
    }

    /// Blocks sleep, saying `why`, unless already held (a running hold keeps its first
    /// reason). Does nothing where the program is absent; restarts a hold whose process died,
    /// but not within [`RETRY_AFTER`] of it dying.
    pub fn hold(&self, why: &str) -> Result<()> {
        let mut state = self.lock();
        if let Some(held) = state.held.as_mut() {
            match held.child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => {
                    tracing::debug!(%status, "sleep inhibitor ended by itself; trying again later");
                    state.died_at = Some(Instant::now());
                }
                Err(error) => {
                    tracing::debug!(%error, "cannot check the sleep inhibitor; restarting it")
                }
            }
            if let Some(held) = state.held.take() {
                held.stop();
            }
        }
        if state
            .died_at
            .is_some_and(|t| t.elapsed() < self.retry_after)
        {
            return Ok(());
        }
        let program = match which::which(&self.program) {
            Ok(program) => program,
            Err(error) => {
                if !state.said_missing {
                    state.said_missing = true;
                    tracing::debug!(
                        program = %self.program.display(),
                        %error,
                        "no sleep inhibitor here; the machine may sleep through due schedules"
                    );
                }
                return Ok(());
            }
        };
        let mut child = Command::new(&program)
            .args([
                "--what=sleep",
                "--who=Deskhand",
                &format!("--why={why}"),
                "--mode=block",
                "cat",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ScheduleError::Inhibitor {
                program: program.clone(),
                source,
            })?;
        tracing::debug!(pid = child.id(), why, "holding a sleep inhibitor");
        let lifeline = child.stdin.take();
        state.held = Some(Held { child, lifeline });
        Ok(())
    }

    /// Lets the machine sleep again: ends and reaps the inhibitor process, if any.
    pub fn release(&self) {
        if let Some(held) = self.lock().held.take() {
            tracing::debug!(pid = held.child.id(), "releasing the sleep inhibitor");
            held.stop();
        }
    }

    /// Whether an inhibitor process is running now.
    pub fn is_held(&self) -> bool {
        let mut state = self.lock();
        match state.held.as_mut().map(|held| held.child.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                state.died_at = Some(Instant::now());
                if let Some(held) = state.held.take() {
                    held.stop();
                }
                false
            }
            None => false,
        }
    }

    /// The inhibitor process id while held, for logs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().held.as_ref().map(|held| held.child.id())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Inhibitor {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    /// Writing a script while another test forks can leave it "text file busy" when run;
    /// the tests that write and start scripts take turns.
    static SPAWNING: Mutex<()> = Mutex::new(());

    /// A stand-in for systemd-inhibit: records its arguments and each start, then runs the
    /// blocking command as a child with our stdin, as the real one does. (sh gives a
    /// background command /dev/null as stdin before its own redirections, so stdin is
    /// passed on through fd 3.)
    fn fake_inhibitor(dir: &Path, body_end: &str) -> PathBuf {
        let d = dir.display();
        let script = format!(
            "#!/bin/sh\n\
             echo started >> '{d}/starts'\n\
             printf '%s\\n' \"$@\" > '{d}/args'\n\
             {body_end}\n\
             while [ $# -gt 0 ]; do case \"$1\" in --*) shift ;; *) break ;; esac; done\n\
             exec 3<&0\n\
             \"$@\" <&3 3<&- &\n\
             echo $! > '{d}/child.tmp' && mv '{d}/child.tmp' '{d}/child'\n\
             wait\n"
        );
        let path = dir.join("fake-inhibit");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Whether a process exists and is not a zombie (an orphan's parent may never reap it).
    fn alive(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => {
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|rest| rest.trim_start().chars().next());
                !matches!(state, Some('Z' | 'X'))
            }
            Err(_) => false,
        }
    }

    /// Waits for an event, failing after a generous deadline rather than hanging.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read_pid(path: &Path) -> u32 {
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn line_count(path: &Path) -> usize {
        std::fs::read_to_string(path)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    #[test]
    fn hold_starts_one_inhibitor_and_release_ends_it_and_its_child() {
        let _turn = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let inhibitor = Inhibitor::new(Some(fake_inhibitor(dir.path(), "")));
        assert!(!inhibitor.is_held());

        inhibitor.hold("daily brief due at 09:00").unwrap();
        assert!(inhibitor.is_held());
        let pid = inhibitor.pid().unwrap();
        wait_until("the fake to start its blocking command", || {
            dir.path().join("child").exists()
        });
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.lines().collect::<Vec<_>>(),
            [
                "--what=sleep",
                "--who=Deskhand",
                "--why=daily brief due at 09:00",
                "--mode=block",
                "cat"
            ]
        );
        let blocker = read_pid(&dir.path().join("child"));
        assert!(alive(pid) && alive(blocker));

        inhibitor.hold("another reason").unwrap();
        assert_eq!(inhibitor.pid(), Some(pid));
        assert_eq!(line_count(&dir.path().join("starts")), 1);

        inhibitor.release();
        assert!(!inhibitor.is_held());
        assert_eq!(inhibitor.pid(), None);
        assert!(!alive(pid), "the inhibitor was reaped");
        // Nothing killed `cat`: it ends because its stdin closed, as it would if we crashed.
        wait_until("the blocking command to see end of input", || {
            !alive(blocker)
        });
    }

    #[test]
    fn drop_releases() {
        let _turn = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let inhibitor = Inhibitor::new(Some(fake_inhibitor(dir.path(), "")));
        inhibitor.hold("due soon").unwrap();
        let pid = inhibitor.pid().unwrap();
        wait_until("the fake to start its blocking command", || {
            dir.path().join("child").exists()
        });
        let blocker = read_pid(&dir.path().join("child"));
        drop(inhibitor);
        assert!(!alive(pid));
        wait_until("the blocking command to see end of input", || {
            !alive(blocker)
        });
    }

    #[test]
    fn a_hold_that_died_is_started_again() {
        let _turn = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        // Like systemd-inhibit without logind: it gives up at once.
        let mut inhibitor = Inhibitor::new(Some(fake_inhibitor(dir.path(), "exit 1")));
        inhibitor.retry_after = Duration::from_millis(300);
        inhibitor.hold("due soon").unwrap();
        wait_until("the first start", || {
            line_count(&dir.path().join("starts")) == 1
        });
        // It dies; holding again is not a restart at once (that would be one process per job).
        wait_until("the failing inhibitor to exit", || !inhibitor.is_held());
        inhibitor.hold("due soon").unwrap();
        inhibitor.hold("due soon").unwrap();
        assert_eq!(line_count(&dir.path().join("starts")), 1);
        std::thread::sleep(Duration::from_millis(350));
        inhibitor.hold("due soon").unwrap();
        wait_until("a second start after the pause", || {
            line_count(&dir.path().join("starts")) == 2
        });
    }

    #[test]
    fn a_missing_program_is_a_no_op() {
        for missing in [
            "/nonexistent/deskhand-inhibit",
            "deskhand-no-such-inhibitor",
        ] {
            let inhibitor = Inhibitor::new(Some(PathBuf::from(missing)));
            inhibitor.hold("due soon").unwrap();
            inhibitor.hold("due soon").unwrap();
            assert!(!inhibitor.is_held());
            assert_eq!(inhibitor.pid(), None);
            inhibitor.release();
        }
    }
}
