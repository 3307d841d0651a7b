//! The control plane's one error type: what phase failed, a one-line detail, and the cause.
//!
//! Startup prints it as `rangecache: [phase] detail` and exits non-zero; a failed reload logs
//! it and keeps the old snapshot.

use std::fmt;

/// The phase of startup (or reload) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the configuration file.
    LoadConfig,
    /// Parsing TOML, or an environment override.
    ParseConfig,
    /// Checking values and building typed settings (addresses, endpoints, TLS roots).
    ValidateConfig,
    /// Resolving origin host names.
    ResolveOrigin,
    /// Binding the admin listener.
    BindAdmin,
    /// Opening the access log (`log.access`).
    OpenAccessLog,
    /// Opening the disk tier (`cache.disk.path`) and rebuilding its index.
    OpenDiskCache,
    /// Building the Tokio runtime or installing signal handlers.
    Runtime,
    /// A data-plane startup phase, named by the data plane (`bind_listener`, ...).
    DataPlane(&'static str),
}

impl Phase {
    /// The phase's name as printed between brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoadConfig => "load_config",
            Self::ParseConfig => "parse_config",
            Self::ValidateConfig => "validate_config",
            Self::ResolveOrigin => "resolve_origin",
            Self::BindAdmin => "bind_admin",
            Self::OpenAccessLog => "open_access_log",
            Self::OpenDiskCache => "open_disk_cache",
            Self::Runtime => "runtime",
            Self::DataPlane(phase) => phase,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of one phase: `[phase] detail`, always one line.
#[derive(Debug)]
pub struct StartupError {
    phase: Phase,
    detail: String,
    cause: Option<Cause>,
}

impl StartupError {
    /// An error of `phase` described by `detail` (newlines are folded into spaces).
    pub fn new(phase: Phase, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.contains('\n') {
            detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        Self {
            phase,
            detail,
            cause: None,
        }
    }

    /// Attach the underlying cause (kept for `source()`; the detail already describes it).
    pub fn with_cause(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// The same error with `context: ` before its detail (which file a parse error is in).
    pub fn in_context(mut self, context: impl fmt::Display) -> Self {
        self.detail = format!("{context}: {}", self.detail);
        self
    }

    /// The phase that failed.
    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The one-line description, without the phase.
    #[cfg(test)]
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.phase, self.detail)
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_phase_and_one_line() {
        let e = StartupError::new(Phase::ParseConfig, "line 3:\n  unknown field");
        assert_eq!(e.to_string(), "[parse_config] line 3: unknown field");
        let e = StartupError::new(Phase::DataPlane("bind_listener"), "x");
        assert_eq!(e.to_string(), "[bind_listener] x");
    }
}
