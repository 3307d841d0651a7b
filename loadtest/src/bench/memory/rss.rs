//! A process's resident memory, sampled from `/proc/PID/status` on a thread of its own (so a
//! busy load generator never delays a sample), with a safety stop: a process that passes
//! `abort_above` is killed at once, so a run that breaks the bound cannot take the machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => n.checked_mul(1024),
        _ => None,
    }
}

/// Why sampling ended early.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// RSS passed the safety stop at this many seconds; the process was killed.
    Aborted {
        /// Seconds since sampling started.
        at_s: f64,
        /// The sample that passed the stop, in bytes.
        rss: u64,
    },
    /// The process was gone (exited or crashed) at this many seconds.
    Gone {
        /// Seconds since sampling started.
        at_s: f64,
    },
}

/// What the samples showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RssTrace {
    /// Largest sample, bytes.
    pub peak: u64,
    /// Last sample, bytes.
    pub last: u64,
    /// (seconds, bytes) for every sample.
    pub samples: Vec<(f64, u64)>,
    /// Set when sampling ended before it was asked to.
    pub stop: Option<Stop>,
}

/// What to do after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep sampling.
    Continue,
    /// The stop was passed: kill the process.
    Kill,
}

impl RssTrace {
    /// Record one sample taken at `at_s` and say whether the process must be stopped.
    pub fn observe(&mut self, at_s: f64, rss: u64, abort_above: u64) -> Next {
        self.samples.push((at_s, rss));
        self.peak = self.peak.max(rss);
        self.last = rss;
        if rss > abort_above {
            self.stop = Some(Stop::Aborted { at_s, rss });
            Next::Kill
        } else {
            Next::Continue
        }
    }

    /// One point per `every_s` seconds (the largest sample in each slot), for reports.
    pub fn series(&self, every_s: f64) -> Vec<[f64; 2]> {
        let mut out: Vec<[f64; 2]> = Vec::new();
        for &(t, rss) in &self.samples {
            let slot = (t / every_s).floor() * every_s;
            match out.last_mut() {
                Some(p) if p[0] == slot => p[1] = p[1].max(rss as f64),
                _ => out.push([slot, rss as f64]),
            }
        }
        out
    }
}

/// A sampling thread; dropping it stops and joins the thread (so it never outlives the
/// process it may kill).
#[derive(Debug)]
pub struct RssSampler {
    done: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    thread: Option<JoinHandle<RssTrace>>,
}

impl RssSampler {
    /// Sample process `pid` every `every`; SIGKILL it if its RSS passes `abort_above` bytes.
    ///
    /// The caller guarantees that `pid` is its own child and is not waited for (reaped) until
    /// [`RssSampler::finish`] has returned, so the PID cannot name another process meanwhile.
    pub fn start(pid: u32, every: Duration, abort_above: u64) -> std::io::Result<RssSampler> {
        let done = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let (d, s) = (done.clone(), stopped.clone());
        let path = format!("/proc/{pid}/status");
        let thread = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let t0 = Instant::now();
                let mut trace = RssTrace::default();
                // Sample first, then look at `done`: a trace always has at least one sample.
                loop {
                    let at_s = t0.elapsed().as_secs_f64();
                    // A zombie (exited, not yet reaped) has no VmRSS line.
                    let Some(rss) = std::fs::read_to_string(&path)
                        .ok()
                        .as_deref()
                        .and_then(parse_vm_rss)
                    else {
                        trace.stop = Some(Stop::Gone { at_s });
                        s.store(true, Ordering::Relaxed);
                        break;
                    };
                    if trace.observe(at_s, rss, abort_above) == Next::Kill {
                        if let Ok(p) = libc::pid_t::try_from(pid) {
                            // SAFETY: kill(2) only sends a signal; `pid` is the caller's
                            // unreaped child (the contract of `start`), so it names that
                            // process and no other.
                            unsafe {
                                libc::kill(p, libc::SIGKILL);
                            }
                        }
                        s.store(true, Ordering::Relaxed);
                        break;
                    }
                    if d.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(every);
                }
                trace
            })?;
        Ok(RssSampler {
            done,
            stopped,
            thread: Some(thread),
        })
    }

    /// True once sampling ended on its own (the stop was passed, or the process is gone).
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Stop sampling and return the trace.
    pub fn finish(mut self) -> RssTrace {
        self.join()
    }

    fn join(&mut self) -> RssTrace {
        self.done.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\trangecache\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tzombie\nState:\tZ\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn trace_keeps_the_peak_and_asks_for_a_kill_past_the_stop() {
        let mut t = RssTrace::default();
        assert_eq!(t.observe(0.0, 100, 1000), Next::Continue);
        assert_eq!(t.observe(0.1, 700, 1000), Next::Continue);
        assert_eq!(t.observe(0.2, 300, 1000), Next::Continue);
        assert_eq!((t.peak, t.last, t.stop), (700, 300, None));
        assert_eq!(t.observe(0.3, 1001, 1000), Next::Kill);
        assert_eq!(
            t.stop,
            Some(Stop::Aborted {
                at_s: 0.3,
                rss: 1001
            })
        );
        assert_eq!(t.series(0.2), vec![[0.0, 700.0], [0.2, 1001.0]]);
    }

    #[test]
    fn samples_this_process() {
        let s = RssSampler::start(std::process::id(), Duration::from_millis(5), u64::MAX).unwrap();
        assert!(!s.stopped());
        let t = s.finish();
        assert!(!t.samples.is_empty());
        assert!(t.peak > 1 << 20, "{}", t.peak);
        assert_eq!(t.stop, None);
    }
}
