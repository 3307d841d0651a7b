//! A byte-rate limiter for async streams.

use std::time::Duration;

use tokio::time::Instant;

/// Paces a byte stream to a rate: before the next piece, wait until the bytes already counted
/// are due. Deadlines are absolute, so timer rounding never accumulates. The simulator paces
/// response bodies with it; the memory run paces its slow readers.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    rate: u64,
    sent: u64,
}

impl Pacer {
    /// A pacer starting now at `rate` bytes/s (0 = never waits).
    pub fn new(rate: u64) -> Self {
        Pacer {
            start: Instant::now(),
            rate,
            sent: 0,
        }
    }

    /// Wait until the bytes counted so far are due; then count `n` more.
    pub async fn pace(&mut self, n: usize) {
        if self.rate > 0 && self.sent > 0 {
            let due = self.start + Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
        }
        self.sent += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_holds_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000_000);
        for _ in 0..10 {
            p.pace(100_000).await;
        }
        // 10 pieces of 100 kB at 1 MB/s: the 10th may start after 0.9 s.
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(900) && e < Duration::from_millis(950),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits_and_the_first_piece_is_free() {
        let t0 = Instant::now();
        let mut p = Pacer::new(0);
        for _ in 0..100 {
            p.pace(1 << 20).await;
        }
        let mut q = Pacer::new(1);
        q.pace(1 << 20).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }
}
