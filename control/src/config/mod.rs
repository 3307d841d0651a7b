//! Configuration: built-in defaults < TOML file < `RANGECACHE_<SECTION>__<FIELD>` environment
//! variables < command-line flags, validated into typed [`Settings`].
//!
//! Two tiers: [`raw`] mirrors what users write (serde, unknown keys rejected); [`validate`]
//! turns it into [`Settings`], the only form the rest of the control plane reads.

pub mod auth;
pub mod edge;
pub mod env;
pub mod fleet;
pub mod raw;
pub mod raw_auth;
pub mod raw_fleet;
pub mod raw_proxy;
pub mod server_tls;
pub mod settings;
pub mod tls;
pub mod units;
pub mod validate;

use std::path::PathBuf;

pub use env::{process_env, EnvVars};
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
    fn apply(&self, raw: &mut RawConfig) {
        let set = |slot: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                slot.clone_from(v);
            }
        };
        set(&mut raw.server.listen, &self.listen);
        set(&mut raw.server.admin_listen, &self.admin_listen);
        set(&mut raw.server.domain, &self.domain);
        set(&mut raw.origin.endpoint, &self.origin);
        if let Some(w) = self.workers {
            raw.server.workers = w;
        }
    }
}

/// Where a configuration comes from: an optional file and the command-line overrides.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config FILE`; without it, the built-in defaults are the base.
    pub file: Option<PathBuf>,
    /// Flags that override file and environment.
    pub overrides: Overrides,
}

/// Load, merge and validate a configuration. `env` is the process environment (or a test's).
pub fn load(sources: &Sources, env: &EnvVars) -> Result<Settings, StartupError> {
    let mut raw = match &sources.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                let detail = format!("{}: {}", path.display(), tls::io_text(&e));
                StartupError::new(Phase::LoadConfig, detail).with_cause(e)
            })?;
            parse(&text)?
        }
        None => RawConfig::default(),
    };
    let env_warnings = env::apply_env(&mut raw, env)?;
    sources.overrides.apply(&mut raw);
    let mut settings = validate::validate(&raw, env, sources.file.clone())?;
    settings.warnings.splice(0..0, env_warnings);
    Ok(settings)
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

/// The effective configuration as TOML, secrets redacted (what `--check` prints).
pub fn effective_toml(settings: &Settings) -> String {
    toml::to_string(&settings.effective())
        .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
}

#[cfg(test)]
mod tests;
