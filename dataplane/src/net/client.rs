//! A client connection's transport: plain TCP, or TLS over TCP (rustls through monoio-rustls),
//! and the TLS handshake that turns an accepted socket into one.
//!
//! The handshake runs on the accepting worker under a deadline, so a client that opens a
//! socket and stalls (or trickles its ClientHello) holds nothing past
//! [`TlsSettings::handshake_timeout`]. The rustls configuration comes from the snapshot at
//! accept time: a reload that rotates the certificate applies to the next handshake, and
//! established connections keep the session they negotiated.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::{ServerTlsStream, TlsAcceptor};

use crate::error::{Error, ErrorKind, Side};

/// The client listener's TLS settings, as published in the snapshot.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The rustls server configuration: certificate chain, key, protocol versions (1.2, 1.3),
    /// ALPN `http/1.1`, and the client-certificate verifier when mTLS is on.
    pub config: Arc<rustls::ServerConfig>,
    /// Longest time from accept to a finished handshake.
    pub handshake_timeout: Duration,
}

/// A client connection's transport as accepted by a worker's listener.
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the rustls state is large next to a socket).
    Tls(Box<ServerTlsStream<TcpStream>>),
}

impl ClientStream {
    /// Turn an accepted socket into a client stream: plain when `tls` is `None`, otherwise
    /// after a TLS handshake that must finish within its timeout.
    ///
    /// Errors: [`ErrorKind::Timeout`] when the handshake did not finish in time,
    /// [`ErrorKind::Tls`] when it failed (no shared protocol or cipher, a missing or untrusted
    /// client certificate under mTLS, a peer that is not speaking TLS, a reset). Either way the
    /// socket is closed.
    pub async fn accept(tcp: TcpStream, tls: Option<&TlsSettings>) -> Result<Self, Error> {
        let _ = tcp.set_nodelay(true);
        let Some(tls) = tls else {
            return Ok(Self::Plain(tcp));
        };
        let acceptor = TlsAcceptor::from(tls.config.clone());
        match monoio::time::timeout(tls.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => Ok(Self::Tls(Box::new(stream))),
            // monoio-rustls's error hides its cause in Display; its io form shows it.
            Ok(Err(e)) => {
                Err(
                    Error::new(ErrorKind::Tls, Side::Client, "TLS handshake with client")
                        .with_cause(io::Error::from(e)),
                )
            }
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                Side::Client,
                "TLS handshake with client timed out",
            )),
        }
    }
}

impl AsyncReadRent for ClientStream {
    #[allow(clippy::manual_async_fn)]
    fn read<T: IoBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                Self::Plain(s) => s.read(buf).await,
                Self::Tls(s) => s.read(buf).await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn readv<T: IoVecBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                Self::Plain(s) => s.readv(buf).await,
                Self::Tls(s) => s.readv(buf).await,
            }
        }
    }
}

impl AsyncWriteRent for ClientStream {
    #[allow(clippy::manual_async_fn)]
    fn write<T: IoBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                Self::Plain(s) => s.write(buf).await,
                Self::Tls(s) => s.write(buf).await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn writev<T: IoVecBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                Self::Plain(s) => s.writev(buf).await,
                Self::Tls(s) => s.writev(buf).await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        async move {
            match self {
                Self::Plain(s) => s.flush().await,
                Self::Tls(s) => s.flush().await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        async move {
            match self {
                Self::Plain(s) => s.shutdown().await,
                Self::Tls(s) => s.shutdown().await,
            }
        }
    }
}
