//! One connection to an origin: plain TCP or TLS over TCP.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::TlsConnector;
use rustls::pki_types::ServerName;

use crate::error::{Error, ErrorKind, Side};
use crate::snapshot::{Origin, Scheme};

/// A connected origin stream.
pub enum OriginStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>, RawFd),
}

impl OriginStream {
    /// Connect to the first of `origin.addrs` that answers within the connect timeout, then
    /// handshake TLS for `https` origins (SNI and certificate check against `origin.host`).
    pub async fn connect(origin: &Origin) -> Result<Self, Error> {
        let mut last = Error::new(
            ErrorKind::Config,
            Side::Internal,
            "origin has no resolved address",
        );
        for addr in &origin.addrs {
            let tcp =
                match monoio::time::timeout(origin.connect_timeout, TcpStream::connect_addr(*addr))
                    .await
                {
                    Ok(Ok(tcp)) => tcp,
                    Ok(Err(e)) => {
                        last = Error::new(ErrorKind::Connect, Side::Origin, "connect to origin")
                            .with_cause(e);
                        continue;
                    }
                    Err(_) => {
                        last = Error::new(
                            ErrorKind::Timeout,
                            Side::Origin,
                            "connect to origin timed out",
                        );
                        continue;
                    }
                };
            let _ = tcp.set_nodelay(true);
            return match (origin.scheme, &origin.tls) {
                (Scheme::Http, _) => Ok(OriginStream::Plain(tcp)),
                (Scheme::Https, Some(tls)) => {
                    let fd = tcp.as_raw_fd();
                    let name = ServerName::try_from(origin.host.clone()).map_err(|e| {
                        Error::new(
                            ErrorKind::Config,
                            Side::Internal,
                            "origin host is not a valid TLS name",
                        )
                        .with_cause(e)
                    })?;
                    let connector = TlsConnector::from(tls.clone());
                    let handshake = connector.connect(name, tcp);
                    match monoio::time::timeout(origin.connect_timeout, handshake).await {
                        Ok(Ok(stream)) => Ok(OriginStream::Tls(Box::new(stream), fd)),
                        // monoio-rustls's error hides its cause in Display; its io form shows it.
                        Ok(Err(e)) => Err(Error::new(
                            ErrorKind::Tls,
                            Side::Origin,
                            "TLS handshake with origin",
                        )
                        .with_cause(std::io::Error::from(e))),
                        Err(_) => Err(Error::new(
                            ErrorKind::Timeout,
                            Side::Origin,
                            "TLS handshake with origin timed out",
                        )),
                    }
                }
                (Scheme::Https, None) => Err(Error::new(
                    ErrorKind::Config,
                    Side::Internal,
                    "https origin without TLS configuration",
                )),
            };
        }
        Err(last)
    }

    /// True when an idle pooled connection looks usable: nothing to read and not closed.
    ///
    /// An idle HTTP/1.1 connection must have no pending bytes; pending bytes or EOF mean the
    /// origin closed it (or sent a TLS close_notify) and a request on it would fail.
    pub fn is_idle_usable(&self) -> bool {
        let fd = self.as_raw_fd();
        let mut byte = 0u8;
        // SAFETY: `fd` is the open socket this value owns; `byte` is a valid, writable one-byte
        // buffer for the duration of the call; MSG_PEEK leaves the socket's data untouched and
        // MSG_DONTWAIT makes the call return at once.
        let n = unsafe {
            libc::recv(
                fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}

impl AsRawFd for OriginStream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            OriginStream::Plain(s) => s.as_raw_fd(),
            OriginStream::Tls(_, fd) => *fd,
        }
    }
}

impl AsyncReadRent for OriginStream {
    #[allow(clippy::manual_async_fn)]
    fn read<T: IoBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                OriginStream::Plain(s) => s.read(buf).await,
                OriginStream::Tls(s, _) => s.read(buf).await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn readv<T: IoVecBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                OriginStream::Plain(s) => s.readv(buf).await,
                OriginStream::Tls(s, _) => s.readv(buf).await,
            }
        }
    }
}

impl AsyncWriteRent for OriginStream {
    #[allow(clippy::manual_async_fn)]
    fn write<T: IoBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                OriginStream::Plain(s) => s.write(buf).await,
                OriginStream::Tls(s, _) => s.write(buf).await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn writev<T: IoVecBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        async move {
            match self {
                OriginStream::Plain(s) => s.writev(buf).await,
                OriginStream::Tls(s, _) => s.writev(buf).await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        async move {
            match self {
                OriginStream::Plain(s) => s.flush().await,
                OriginStream::Tls(s, _) => s.flush().await,
            }
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        async move {
            match self {
                OriginStream::Plain(s) => s.shutdown().await,
                OriginStream::Tls(s, _) => s.shutdown().await,
            }
        }
    }
}
