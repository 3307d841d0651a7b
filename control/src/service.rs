//! Telling a service manager how the process is doing: systemd's `sd_notify` (`READY=1` once
//! serving, `STOPPING=1` when draining, `RELOADING=1` around a reload) and a pid file written
//! once ready, for scripts that hand over from one process to the next.

use std::path::{Path, PathBuf};

use sd_notify::NotifyState;
use tracing::{info, warn};

/// Where `net.ipv4.tcp_migrate_req` lives.
const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// Readiness reporting for one process run.
#[derive(Debug)]
pub struct Service {
    pid_file: Option<PathBuf>,
    wrote_pid: bool,
}

impl Service {
    /// Report to systemd (when started with `NOTIFY_SOCKET`) and to `pid_file`, if given.
    pub fn new(pid_file: Option<PathBuf>) -> Self {
        Self {
            pid_file,
            wrote_pid: false,
        }
    }

    /// The process serves: `READY=1` with a status line, then the pid file.
    pub fn ready(&mut self, status: &str) {
        notify(&[NotifyState::Ready, NotifyState::Status(status)]);
        if let Some(path) = &self.pid_file {
            match write_pid(path) {
                Ok(()) => self.wrote_pid = true,
                Err(e) => warn!("cannot write the pid file {}: {e}", path.display()),
            }
        }
    }

    /// A configuration reload starts (`RELOADING=1`); [`Service::reloaded`] ends it.
    pub fn reloading(&self) {
        notify(&[NotifyState::Reloading]);
    }

    /// A reload ended, accepted or not: `READY=1` again.
    pub fn reloaded(&self, status: &str) {
        notify(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// The process stops accepting and drains: `STOPPING=1`.
    pub fn stopping(&self) {
        notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let (Some(path), true) = (&self.pid_file, self.wrote_pid) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn notify(state: &[NotifyState<'_>]) {
    // Without NOTIFY_SOCKET this does nothing; the variable stays set for later messages.
    if let Err(e) = sd_notify::notify(false, state) {
        warn!("sd_notify failed: {e}");
    }
}

/// Write the pid atomically (a temporary file renamed over `path`), so a reader never sees
/// a partial number.
fn write_pid(path: &Path) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path)
}

/// Log whether a hand-over to a new process (SO_REUSEPORT) keeps the connections queued at
/// this one when it stops: only with `net.ipv4.tcp_migrate_req = 1` (Linux 5.14+) does the
/// kernel move them to the new listeners instead of resetting them.
pub fn log_handover_support() {
    match std::fs::read_to_string(MIGRATE_REQ) {
        Ok(v) if v.trim() == "1" => {
            info!("restart hand-over: net.ipv4.tcp_migrate_req = 1 (queued connections move to the next process)")
        }
        Ok(_) => info!(
            "restart hand-over: net.ipv4.tcp_migrate_req = 0; connections queued at this \
             process when it stops are reset (set it to 1 for restarts without failed \
             connections; see README, Operations)"
        ),
        Err(_) => info!(
            "restart hand-over: {MIGRATE_REQ} is missing (Linux before 5.14); connections \
             queued at this process when it stops are reset"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_written_once_ready_and_removed() {
        let dir = std::env::temp_dir().join(format!("rc-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rangecache.pid");
        {
            let mut s = Service::new(Some(path.clone()));
            assert!(!path.exists());
            s.ready("serving");
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.trim(), std::process::id().to_string());
        }
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
