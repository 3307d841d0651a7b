//! Configuration: built-in defaults < built-in profile defaults < the config directory's
//! `default.toml`, `<profile>.toml` and `local.toml` < `--config FILE` <
//! `RANGECACHE_<SECTION>__<FIELD>` environment variables < command-line flags (see [`layers`]),
//! validated into typed [`Settings`].
//!
//! Two tiers: [`raw`] mirrors what users write (serde, unknown keys rejected); [`validate`]
//! turns it into [`Settings`], the only form the rest of the control plane reads.

pub mod auth;
pub mod env;
pub mod fleet;
pub mod layers;
pub mod profile;
pub mod provenance;
pub mod raw;
pub mod raw_auth;
pub mod raw_fleet;
pub mod server_tls;
pub mod settings;
pub mod tls;
pub mod units;
pub mod validate;

use std::path::PathBuf;

pub use env::{process_env, EnvVars};
pub use layers::ConfigDir;
pub use raw::RawConfig;
#[cfg(test)]
pub use settings::REDACTED;
pub use settings::{OriginConfig, Settings};

use crate::error::{Phase, StartupError};

/// Command-line overrides: the highest-precedence tier. `None` leaves the value alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`: `server.listen`.
    pub listen: Option<String>,
    /// `--admin-listen`: `server.admin_listen`.
    pub admin_listen: Option<String>,
    /// `--domain`: `server.domain`.
    pub domain: Option<String>,
    /// `--workers`: `server.workers`.
    pub workers: Option<usize>,
    /// `--origin`: `origin.endpoint`.
    pub origin: Option<String>,
}

impl Overrides {
    /// Apply the flags given; returns `(key, flag)` for each.
    fn apply(&self, raw: &mut RawConfig) -> Vec<(&'static str, &'static str)> {
        let mut applied = Vec::new();
        let mut set = |slot: &mut String, v: &Option<String>, key, flag| {
            if let Some(v) = v {
                slot.clone_from(v);
                applied.push((key, flag));
            }
        };
        set(
            &mut raw.server.listen,
            &self.listen,
            "server.listen",
            "--listen",
        );
        set(
            &mut raw.server.admin_listen,
            &self.admin_listen,
            "server.admin_listen",
            "--admin-listen",
        );
        set(
            &mut raw.server.domain,
            &self.domain,
            "server.domain",
            "--domain",
        );
        set(
            &mut raw.origin.endpoint,
            &self.origin,
            "origin.endpoint",
            "--origin",
        );
        if let Some(w) = self.workers {
            raw.server.workers = w;
            applied.push(("server.workers", "--workers"));
        }
        applied
    }
}

/// Where a configuration comes from: the profile, the config directory, an optional file and
/// the command-line overrides. The default is the built-in defaults alone.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--profile NAME`; without it, `RANGECACHE_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// `--config-dir DIR` (or the working directory's `config/`).
    pub config_dir: ConfigDir,
    /// `--config FILE`, merged over the config directory's files.
    pub file: Option<PathBuf>,
    /// Flags that override files and environment.
    pub overrides: Overrides,
}

/// Load, merge and validate a configuration. `env` is the process environment (or a test's).
pub fn load(sources: &Sources, env: &EnvVars) -> Result<Settings, StartupError> {
    layers::load(sources, env).map(|loaded| loaded.settings)
}

/// Parse TOML text; errors read `line N: message`.
pub fn parse(text: &str) -> Result<RawConfig, StartupError> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().replace('`', "'");
        let detail = match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: {message}")
            }
            None => message,
        };
        StartupError::new(Phase::ParseConfig, detail).with_cause(e)
    })
}

/// The effective configuration as TOML, secrets redacted (what `GET /config` shows as JSON).
#[cfg(test)]
pub fn effective_toml(settings: &Settings) -> String {
    toml::to_string(&settings.effective())
        .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
}

#[cfg(test)]
mod tests;
