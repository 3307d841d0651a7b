//! A per-request timeline for diagnosis, off unless `RANGECACHE_LOADTEST_TRACE` names a file.
//!
//! Each line is appended as the event ends, with wall-clock microseconds since the Unix epoch:
//! - `C conn path range start_us first_byte_us total_us`: a client request (through the
//!   target), its range (`first-last`, or `-`), when it was sent, and its first-byte and whole
//!   times;
//! - `A path range arrive_us delay_us`: a GET reaching the origin simulator (its `Range`
//!   without `bytes=`, or `-`), and the first-byte delay it drew;
//! - `S key first end body_start_us body_end_us`: the simulator sending a GET's body, bytes
//!   `first..end`.
//!
//! `loadtest/scripts/timeline.py` turns a trace into a per-request timeline and the origin's
//! streams and bandwidth in 10 ms steps. Tracing costs a lock and a write per request: leave
//! it off for measured runs.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "RANGECACHE_LOADTEST_TRACE";

static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn file() -> Option<&'static Mutex<std::fs::File>> {
    FILE.get_or_init(|| {
        let path = std::env::var_os(TRACE_ENV)?;
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!("{TRACE_ENV}={}: {e}; not tracing", path.to_string_lossy());
                None
            }
        }
    })
    .as_ref()
}

/// Append `line` to the trace, if one is being written.
pub fn line(line: impl FnOnce() -> String) {
    if let Some(f) = file() {
        let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{}", line());
    }
}
