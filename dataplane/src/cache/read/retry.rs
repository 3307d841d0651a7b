//! How often and how soon the read pipeline asks an origin again after a transient failure.

use std::time::Duration;

use rand::Rng;

/// Attempts (first try included) at one origin request before its failure is final: a fill
/// or lookup that fails four times in a row without progress gives up.
pub const MAX_ATTEMPTS: u32 = 4;

/// Backoff before retry `attempt` (1 for the first retry): "full jitter" over an exponential
/// ceiling of 25 ms, 50 ms, 100 ms, ..., at most 1 s, so that many fills failing together do
/// not come back together.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling_ms = (25u64 << attempt.saturating_sub(1).min(6)).min(1000);
    let ms = rand::thread_rng().gen_range(ceiling_ms / 2..=ceiling_ms);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(12) && first <= Duration::from_millis(25));
            let late = backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }
}
