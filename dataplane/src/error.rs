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
    /// The origin answered a status other than the one asked for ([`Error::status`] says
    /// which).
    Status,
    /// The object changed under a request: the origin answered 412 to `If-Match`, or a fill
    /// saw another ETag.
    Changed,
    /// An origin body ended before the bytes it promised.
    Truncated,
    /// The party doing the work went away without finishing it (a filler or lookup leader whose
    /// worker stopped).
    Abandoned,
    /// A bounded resource (the in-flight fill budget) stayed exhausted past its wait bound.
    Busy,
    /// The origin's refreshed credentials are missing or expired: the request is not sent.
    NoCredentials,
}

/// The data plane's error: kind, side and an optional cause.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    side: Side,
    context: &'static str,
    status: u16,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error without an underlying cause.
    pub fn new(kind: ErrorKind, side: Side, context: &'static str) -> Self {
        Self {
            kind,
            side,
            context,
            status: 0,
            cause: None,
        }
    }

    /// The origin answered `status` where another was expected (kind [`ErrorKind::Status`]).
    pub fn origin_status(status: u16, context: &'static str) -> Self {
        let mut e = Self::new(ErrorKind::Status, Side::Origin, context);
        e.status = status;
        e
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

    /// The origin's status for [`ErrorKind::Status`] errors, `None` otherwise.
    pub fn status(&self) -> Option<u16> {
        (self.kind == ErrorKind::Status).then_some(self.status)
    }

    /// True when asking the origin again may succeed: it could not be reached, timed out,
    /// reset or cut the connection, or answered a server error (500, 502, 503 SlowDown, 504).
    /// Client-side failures, changed objects and configuration problems are final.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Io
            | ErrorKind::Timeout
            | ErrorKind::Connect
            | ErrorKind::Tls
            | ErrorKind::Closed
            | ErrorKind::Truncated
            | ErrorKind::Protocol => self.side == Side::Origin,
            ErrorKind::Status => matches!(self.status, 500 | 502 | 503 | 504),
            _ => false,
        }
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
        if self.kind == ErrorKind::Status {
            write!(f, " (status {})", self.status)?;
        }
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
