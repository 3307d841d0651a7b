//! How the simulator imitates S3's timing: a first-byte latency drawn per request, a
//! per-connection bandwidth cap (paced by [`crate::pace::Pacer`]), and injected failures.

use std::time::Duration;

use crate::rng::Rng;

/// Timing and failure model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Least time from request to first response byte.
    pub ttfb: Duration,
    /// Mean of the exponential tail added to `ttfb` (S3's latency has a long right tail);
    /// draws are capped at `ttfb + 20 × jitter`.
    pub ttfb_jitter: Duration,
    /// Bytes per second per response stream; 0 = unlimited.
    pub stream_bandwidth: u64,
    /// Probability that a request is answered 503 SlowDown.
    pub error_rate: f64,
    /// Probability that a GET's connection is reset part-way through the body.
    pub reset_rate: f64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            ttfb: Duration::from_millis(20),
            ttfb_jitter: Duration::from_millis(5),
            stream_bandwidth: 80_000_000,
            error_rate: 0.0,
            reset_rate: 0.0,
        }
    }
}

impl Model {
    /// The first-byte delay for one request.
    pub fn first_byte_delay(&self, rng: &mut Rng) -> Duration {
        if self.ttfb_jitter.is_zero() {
            return self.ttfb;
        }
        let mean = self.ttfb_jitter.as_secs_f64();
        let extra = rng.exp(mean).min(20.0 * mean);
        self.ttfb + Duration::from_secs_f64(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_delay_has_a_floor_and_a_tail() {
        let m = Model::default();
        let mut rng = Rng::new(3);
        let d: Vec<f64> = (0..10_000)
            .map(|_| m.first_byte_delay(&mut rng).as_secs_f64() * 1e3)
            .collect();
        assert!(d.iter().all(|&x| (20.0..=120.0).contains(&x)));
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        assert!((24.0..26.0).contains(&mean), "{mean}");
        let fixed = Model {
            ttfb_jitter: Duration::ZERO,
            ..Model::default()
        };
        assert_eq!(fixed.first_byte_delay(&mut rng), Duration::from_millis(20));
    }
}
