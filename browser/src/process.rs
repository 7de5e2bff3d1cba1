//! Child processes (Chromium, chromedriver) that cannot outlive us.
//!
//! Three layers, because each alone leaks in some case:
//! - every child starts in its own process group, and dropping its [`ChildGuard`] SIGKILLs the whole
//!   group (Chromium's zygote and renderers included) and reaps it — on error and on panic alike;
//! - `PR_SET_PDEATHSIG` makes the kernel kill the child if we are SIGKILLed. The signal fires when
//!   the *thread* that forked the child exits, so children are forked from one launcher thread that
//!   lives as long as the process;
//! - temp profiles carry the owner's pid, and [`crate::launch`] removes those whose owner is dead.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type SpawnReply = std::io::Result<Child>;
type SpawnRequest = (Command, mpsc::Sender<SpawnReply>);

/// The long-lived thread every child is forked from (see the module note on PDEATHSIG).
fn launcher() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("deskhand-launcher".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn launcher thread");
        Mutex::new(tx)
    })
}

/// A running child process in its own process group, killed with its group when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    pid: u32,
    output: Arc<Mutex<VecDeque<String>>>,
}

/// How many lines of a child's output we keep for error messages.
const TAIL_LINES: usize = 40;

impl ChildGuard {
    /// Start `cmd` (stdout and stderr captured) so that it dies with us.
    pub fn spawn(name: &str, mut cmd: Command) -> std::io::Result<(Self, mpsc::Receiver<String>)> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        set_die_with_parent(&mut cmd);
        let (tx, rx) = mpsc::channel();
        launcher()
            .lock()
            .expect("launcher lock")
            .send((cmd, tx))
            .map_err(|_| std::io::Error::other("launcher thread is gone"))?;
        let mut child = rx
            .recv()
            .map_err(|_| std::io::Error::other("launcher thread is gone"))??;
        let pid = child.id();
        let output = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        // Drain both pipes for the child's whole life: a full pipe would block Chromium.
        let (line_tx, line_rx) = mpsc::channel();
        let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for stream in streams {
            let output = Arc::clone(&output);
            let line_tx = line_tx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-output"))
                .spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        {
                            let mut out = output.lock().expect("output lock");
                            if out.len() == TAIL_LINES {
                                out.pop_front();
                            }
                            out.push_back(line.clone());
                        }
                        let _ = line_tx.send(line);
                    }
                })?;
        }
        Ok((
            ChildGuard {
                name: name.to_string(),
                child: Some(child),
                pid,
                output,
            },
            line_rx,
        ))
    }

    /// The child's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines the child printed, noise filtered out.
    pub fn output_tail(&self) -> String {
        let out = self.output.lock().expect("output lock");
        out.iter()
            .filter(|l| !is_noise(l))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Has the child exited? Returns its status if so.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait up to `grace` for the child to exit by itself, then kill its group.
    pub fn shutdown(&mut self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if self.exited().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }

    /// SIGKILL the whole process group and reap the child.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(self.pid);
            let _ = child.kill();
            let _ = child.wait();
            tracing::debug!(name = %self.name, pid = self.pid, "child process ended");
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lines Chromium prints on every start here that mean nothing (D-Bus, the Debian wrapper script).
fn is_noise(line: &str) -> bool {
    line.contains("dbus") || line.contains("D-Bus") || line.contains("unexpected operator")
}

#[allow(unsafe_code)]
fn set_die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe syscalls
    // (setpgid, prctl, getppid); it allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
/// SIGKILL a whole process group (ESRCH ignored).
pub fn kill_group(pgid: u32) {
    // SAFETY: killpg has no memory-safety preconditions; a stale pgid yields ESRCH, which we ignore.
    unsafe {
        libc::killpg(pgid as libc::pid_t, libc::SIGKILL);
    }
}

/// Is a process with this pid alive (and not a zombie)?
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // Field 3 (after the parenthesised name) is the state; Z means zombie.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_kills_the_whole_group() {
        // A shell that starts a grandchild; both must be gone after drop.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("sleep 30 & echo $!; wait");
        let (guard, lines) = ChildGuard::spawn("sh", cmd).unwrap();
        let grandchild: u32 = lines
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pid = guard.pid();
        assert!(pid_alive(pid) && pid_alive(grandchild));
        drop(guard);
        assert!(!pid_alive(pid), "child survived");
        // The grandchild is reparented and reaped by init; give it a moment to disappear.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while pid_alive(grandchild) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(grandchild), "grandchild survived");
    }

    #[test]
    fn output_tail_keeps_last_lines_without_noise() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("echo one; echo 'Failed to connect to the bus: dbus'; echo two >&2");
        let (mut guard, lines) = ChildGuard::spawn("sh", cmd).unwrap();
        // The channel closes once both pipes are drained, i.e. after the child exits.
        while lines.recv_timeout(Duration::from_secs(5)).is_ok() {}
        guard.shutdown(Duration::from_secs(2));
        let tail = guard.output_tail();
        assert!(tail.contains("one") && tail.contains("two"), "{tail}");
        assert!(!tail.contains("dbus"));
    }
}
