//! The tier's file, opened for direct I/O where the file system allows it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How the tier's file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// `O_DIRECT`: reads and writes bypass the page cache.
    Direct,
    /// The file system refused `O_DIRECT` (tmpfs, some network file systems): buffered I/O
    /// through the page cache, same format and checks.
    Buffered,
}

/// Open (creating it if missing) `path` for reading and writing, directly when the file system
/// allows it.
pub fn open(path: &Path) -> io::Result<(File, IoMode)> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    match opts.clone().custom_flags(libc::O_DIRECT).open(path) {
        Ok(f) => Ok((f, IoMode::Direct)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Ok((opts.open(path)?, IoMode::Buffered))
        }
        Err(e) => Err(e),
    }
}

/// Open `path` again, read-only, as `mode` says (a worker's own handle).
pub fn open_mode(path: &Path, mode: IoMode) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    if mode == IoMode::Direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    opts.open(path)
}

/// Take an exclusive advisory lock on `file` without waiting: two processes never share one
/// tier.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` on a valid open descriptor has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
