//! Process limits at startup: the open-file limit and the connection limit derived from it.

use rangecache_dataplane::DataPlaneConfig;
use tracing::{info, warn};

/// The open-file limit before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFile {
    /// The soft limit the process started with.
    pub soft_before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the most the soft limit may be raised to without privileges).
    pub hard: u64,
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit and log both. Systems often start
/// services with a soft limit of 1024 although the hard limit allows far more.
pub fn raise_nofile() -> std::io::Result<NoFile> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit that only raises the soft limit to the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim = raised;
    }
    let nofile = NoFile {
        soft_before: before,
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    };
    info!(
        "open file limit: soft {} -> {} (hard {})",
        nofile.soft_before, nofile.soft, nofile.hard
    );
    Ok(nofile)
}

/// Descriptors kept for what is not a client connection: origin connections (one per
/// request in flight plus the idle pools), the admin endpoint, log files, io_uring.
pub fn reserved_descriptors(soft: u64) -> u64 {
    (soft / 4).max(64)
}

/// The connection limit to run with: `configured`, or when 0, the open-file limit less
/// [`reserved_descriptors`]. Warns when a configured limit leaves no room for the rest.
pub fn max_connections(configured: usize, nofile: Option<NoFile>) -> usize {
    let Some(nofile) = nofile else {
        return configured;
    };
    let room = nofile
        .soft
        .saturating_sub(reserved_descriptors(nofile.soft))
        .max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if configured == 0 {
        return room;
    }
    if configured > room {
        warn!(
            "server.max_connections = {configured} leaves fewer than {} of the {} file \
             descriptors for origin connections and files; expect accept failures",
            reserved_descriptors(nofile.soft),
            nofile.soft
        );
    }
    configured
}

/// Log the connection limit the data plane starts with.
pub fn log_max_connections(config: &DataPlaneConfig) {
    info!(
        "connection limit: {} (split across {} workers)",
        config.max_connections, config.workers
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_limit_leaves_a_reserve() {
        let nofile = NoFile {
            soft_before: 1024,
            soft: 20_000,
            hard: 20_000,
        };
        assert_eq!(max_connections(0, Some(nofile)), 15_000);
        assert_eq!(max_connections(500, Some(nofile)), 500);
        let tiny = NoFile {
            soft: 100,
            ..nofile
        };
        assert_eq!(max_connections(0, Some(tiny)), 36);
        assert_eq!(max_connections(0, None), 0);
    }

    #[test]
    fn raising_is_idempotent() {
        let first = raise_nofile().unwrap();
        assert_eq!(first.soft, first.hard);
        let again = raise_nofile().unwrap();
        assert_eq!(again.soft_before, again.soft);
    }
}
