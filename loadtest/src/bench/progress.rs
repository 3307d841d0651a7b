//! A one-line progress bar on stderr while a round runs (only when stderr is a terminal;
//! otherwise the suite prints one line per finished round).

use std::io::{IsTerminal, Write};

/// What a progress line shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tick {
    /// Fraction done, 0..=1.
    pub fraction: f64,
    /// Seconds since the round started.
    pub elapsed: f64,
    /// Requests completed.
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// Draws the bar.
#[derive(Debug, Clone)]
pub struct Progress {
    enabled: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl Progress {
    /// A bar that draws only when stderr is a terminal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Redraw for `label`.
    pub fn draw(&self, label: &str, t: Tick) {
        if !self.enabled {
            return;
        }
        const W: usize = 24;
        let filled = ((t.fraction.clamp(0.0, 1.0) * W as f64) as usize).min(W);
        let rate = if t.elapsed > 0.0 {
            t.bytes as f64 / t.elapsed / 1e6
        } else {
            0.0
        };
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K  {label:<28} [{}{}] {:5.1}s {:>8} req {:>8.1} MB/s",
            "#".repeat(filled),
            ".".repeat(W - filled),
            t.elapsed,
            t.requests,
            rate
        );
        let _ = e.flush();
    }

    /// Erase the bar.
    pub fn clear(&self) {
        if self.enabled {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
