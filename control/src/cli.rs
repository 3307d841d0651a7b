//! Command-line flags: the highest-precedence configuration tier, plus `--check`.

use std::path::PathBuf;

use clap::Parser;

use crate::config::layers::DEFAULT_CONFIG_DIR;
use crate::config::{ConfigDir, Overrides, Sources};

/// rangecache: an S3 caching proxy for analytics.
///
/// Configuration precedence, lowest first: built-in defaults < the profile's defaults <
/// DIR/default.toml < DIR/<profile>.toml < DIR/local.toml (DIR: --config-dir, default
/// ./config; missing files are skipped) < --config FILE < RANGECACHE_<SECTION>__<FIELD>
/// environment variables < these flags. Logging: RANGECACHE_LOG (default "info").
#[derive(Debug, Parser)]
#[command(name = "rangecache", version, about, long_about)]
pub struct Cli {
    /// Built-in profile: default, dev, prod, prod-tls or prod-mtls (README "Profiles").
    /// Default: RANGECACHE_PROFILE, else "default".
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Directory holding default.toml, <profile>.toml and local.toml, merged in that order
    /// (each optional). Default: ./config, used when it exists.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// TOML configuration file (keys: config/default.toml), merged over the config directory.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Client-facing S3 listen address (server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Admin listen address for /healthz, /readyz, /metrics, /config (server.admin_listen).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Base domain for virtual-hosted-style requests (server.domain).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Worker threads, 0 = one per core (server.workers).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Origin endpoint, http(s)://host[:port] (origin.endpoint).
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// Validate the configuration, print every effective value with the layer it came from
    /// (secrets redacted), and exit.
    #[arg(long)]
    pub check: bool,
    /// Write the process id to FILE once ready to serve (when systemd would get READY=1);
    /// removed on exit. The hand-over script waits for it (deploy/rangecache-handover).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

impl Cli {
    /// Where the configuration comes from.
    pub fn sources(&self) -> Sources {
        Sources {
            profile: self.profile.clone(),
            config_dir: match &self.config_dir {
                Some(dir) => ConfigDir::Explicit(dir.clone()),
                None => ConfigDir::Implicit(PathBuf::from(DEFAULT_CONFIG_DIR)),
            },
            file: self.config.clone(),
            overrides: Overrides {
                listen: self.listen.clone(),
                admin_listen: self.admin_listen.clone(),
                domain: self.domain.clone(),
                workers: self.workers,
                origin: self.origin.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_overrides() {
        let cli = Cli::try_parse_from([
            "rangecache",
            "--config",
            "/etc/rc.toml",
            "--listen",
            "0.0.0.0:80",
            "--admin-listen",
            "0.0.0.0:81",
            "--domain",
            "s3.local",
            "--workers",
            "4",
            "--origin",
            "http://minio:9000",
            "--check",
            "--profile",
            "prod-tls",
            "--config-dir",
            "/etc/rangecache",
        ])
        .unwrap();
        assert!(cli.check);
        let s = cli.sources();
        assert_eq!(s.profile.as_deref(), Some("prod-tls"));
        assert_eq!(
            s.config_dir,
            ConfigDir::Explicit(PathBuf::from("/etc/rangecache"))
        );
        assert_eq!(
            s.file.as_deref(),
            Some(std::path::Path::new("/etc/rc.toml"))
        );
        assert_eq!(s.overrides.listen.as_deref(), Some("0.0.0.0:80"));
        assert_eq!(s.overrides.admin_listen.as_deref(), Some("0.0.0.0:81"));
        assert_eq!(s.overrides.domain.as_deref(), Some("s3.local"));
        assert_eq!(s.overrides.workers, Some(4));
        assert_eq!(s.overrides.origin.as_deref(), Some("http://minio:9000"));
    }

    #[test]
    fn config_dir_defaults_to_the_working_directory_s_config() {
        let s = Cli::try_parse_from(["rangecache"]).unwrap().sources();
        assert_eq!(s.config_dir, ConfigDir::Implicit(PathBuf::from("config")));
        assert_eq!(s.profile, None);
        assert_eq!(s.file, None);
    }

    #[test]
    fn workers_must_be_a_number() {
        assert!(Cli::try_parse_from(["rangecache", "--workers", "many"]).is_err());
    }
}
