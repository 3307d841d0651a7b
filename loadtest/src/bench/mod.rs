//! Running workloads against targets: the targets ([`TargetKind`]), the processes behind
//! them ([`rangecache`], [`nginx`]), one measured round ([`round`]) and the interleaved
//! rounds of a whole comparison ([`suite`]); the memory bound run ([`memory`]).

pub mod disk;
pub mod memory;
pub mod nginx;
pub mod proc;
pub mod progress;
pub mod rangecache;
pub mod round;
pub mod suite;
pub mod tally;

use anyhow::{bail, Result};

/// What a round sends its requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// The origin itself, requests signed.
    Direct,
    /// rangecache, cache empty for the data read (a fresh bucket, or purged).
    RangecacheCold,
    /// rangecache after a warm-up pass read every byte the workload touches.
    RangecacheWarm,
    /// nginx slice cache, cold.
    NginxCold,
    /// nginx slice cache, warm.
    NginxWarm,
    /// rangecache warm, read with unsigned requests (an `[[auth.anonymous]]` read grant), as
    /// nginx is: the like-for-like hit path.
    RangecacheAnon,
    /// nginx serving the workload's bytes from local files, no proxying: the ceiling of a
    /// hit path on this machine.
    NginxFile,
}

impl TargetKind {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Direct => "direct",
            TargetKind::RangecacheCold => "rangecache-cold",
            TargetKind::RangecacheWarm => "rangecache-warm",
            TargetKind::NginxCold => "nginx-cold",
            TargetKind::NginxWarm => "nginx-warm",
            TargetKind::RangecacheAnon => "rangecache-anon",
            TargetKind::NginxFile => "nginx-file",
        }
    }

    /// Reads a warmed cache.
    pub fn is_warm(self) -> bool {
        matches!(
            self,
            TargetKind::RangecacheWarm
                | TargetKind::NginxWarm
                | TargetKind::RangecacheAnon
                | TargetKind::NginxFile
        )
    }

    /// Needs rangecache running.
    pub fn is_rangecache(self) -> bool {
        matches!(
            self,
            TargetKind::RangecacheCold | TargetKind::RangecacheWarm | TargetKind::RangecacheAnon
        )
    }

    /// Needs nginx running.
    pub fn is_nginx(self) -> bool {
        matches!(
            self,
            TargetKind::NginxCold | TargetKind::NginxWarm | TargetKind::NginxFile
        )
    }

    /// Parse a comma-separated list: `direct`, `rangecache` (= cold and warm), `nginx` (= cold
    /// and warm), or the explicit `rangecache-cold`, `rangecache-warm`, `rangecache-anon`,
    /// `nginx-cold`, `nginx-warm`, `nginx-file`. Duplicates are dropped; order is kept.
    pub fn parse_list(s: &str) -> Result<Vec<TargetKind>> {
        let mut out: Vec<TargetKind> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let add: &[TargetKind] = match item {
                "direct" => &[TargetKind::Direct],
                "rangecache" => &[TargetKind::RangecacheCold, TargetKind::RangecacheWarm],
                "rangecache-cold" => &[TargetKind::RangecacheCold],
                "rangecache-warm" => &[TargetKind::RangecacheWarm],
                "nginx" => &[TargetKind::NginxCold, TargetKind::NginxWarm],
                "nginx-cold" => &[TargetKind::NginxCold],
                "nginx-warm" => &[TargetKind::NginxWarm],
                "rangecache-anon" => &[TargetKind::RangecacheAnon],
                "nginx-file" => &[TargetKind::NginxFile],
                other => bail!(
                    "unknown target {other:?}: use direct, rangecache, rangecache-cold, rangecache-warm, rangecache-anon, nginx, nginx-cold, nginx-warm, nginx-file"
                ),
            };
            for t in add {
                if !out.contains(t) {
                    out.push(*t);
                }
            }
        }
        if out.is_empty() {
            bail!("no targets given");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_lists() {
        use TargetKind::*;
        assert_eq!(
            TargetKind::parse_list("direct,rangecache").unwrap(),
            vec![Direct, RangecacheCold, RangecacheWarm]
        );
        assert_eq!(
            TargetKind::parse_list("nginx-warm, rangecache-warm,nginx").unwrap(),
            vec![NginxWarm, RangecacheWarm, NginxCold]
        );
        assert_eq!(
            TargetKind::parse_list("rangecache-anon,nginx-file").unwrap(),
            vec![RangecacheAnon, NginxFile]
        );
        assert!(RangecacheAnon.is_warm() && RangecacheAnon.is_rangecache());
        assert!(NginxFile.is_warm() && NginxFile.is_nginx());
        assert!(TargetKind::parse_list("varnish").is_err());
        assert!(TargetKind::parse_list("").is_err());
    }
}
