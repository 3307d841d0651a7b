//! The data plane's one error type: a kind (what happened), a side (whose fault) and a cause.
//!
//! Errors are cheap to clone (the cause sits behind an `Arc`) so that several waiters can share
//! one failure. Code asks questions of the kind; it never matches on message strings.

use std::fmt;
use std::sync::Arc;

/// Which party an error is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The downstream client sent something wrong or went away.
    Client,
    /// The upstream S3 origin failed or answered something unusable.
    Origin,
    /// rangecache itself (configuration, resources, bugs).
    Internal,
}

/// What went wrong, independent of where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading or writing a socket failed.
    Io,
    /// A peer sent bytes that are not valid HTTP/1.1 (or aws-chunked) framing.
    Protocol,
    /// A deadline passed (header read, idle, origin connect or first byte).
    Timeout,
    /// Connecting to the origin failed.
    Connect,
    /// The TLS handshake with the origin failed.
    Tls,
    /// The peer closed the connection before the message was complete.
    Closed,
    /// Signing the upstream request failed.
    Signing,
    /// Configuration does not allow this (unknown origin, no address, ...).
    Config,
}

/// The data plane's error: kind, side and an optional cause.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    side: Side,
    context: &'static str,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error without an underlying cause.
    pub fn new(kind: ErrorKind, side: Side, context: &'static str) -> Self {
        Self {
            kind,
            side,
            context,
            cause: None,
        }
    }

    /// Attach the underlying cause.
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// An I/O error on the given side.
    pub fn io(side: Side, context: &'static str, cause: std::io::Error) -> Self {
        let kind = match cause.kind() {
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => ErrorKind::Closed,
            _ => ErrorKind::Io,
        };
        Self::new(kind, side, context).with_cause(cause)
    }

    /// What happened.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// True when a deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} error ({:?} side): {}",
            self.kind, self.side, self.context
        )?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// The data plane's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
