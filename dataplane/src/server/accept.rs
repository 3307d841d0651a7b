//! A socket the listener just accepted: the PROXY protocol header when `proxy.protocol` asks
//! for one, the TLS handshake when the client listener speaks TLS, then the connection loop.

use std::net::SocketAddr;
use std::rc::Rc;

use monoio::net::TcpStream;

use super::proxy_header::{read_preface, PrefaceError};
use super::{serve_connection, WorkerCtx};
use crate::edge::UntrustedKind;
use crate::net::ClientStream;
use crate::{ErrorKind, WorkerMetrics};

/// Serve one accepted socket: read its PROXY header (if configured; see
/// [`read_preface`]), handshake with the TLS settings of the current snapshot (if any), then
/// [`serve_connection`] with the client address the header named. A missing, malformed or
/// untrusted PROXY header, and a failed or timed-out handshake, close the socket and are
/// counted; they never reach request handling.
pub async fn serve_accepted(tcp: TcpStream, peer: SocketAddr, ctx: Rc<WorkerCtx>) {
    let snapshot = ctx.snapshot.load_full();
    let mut client = peer;
    if let Some(trust) = &snapshot.proxy {
        if let Some(version) = trust.protocol {
            let settings = &snapshot.server;
            let read = read_preface(
                &tcp,
                peer,
                trust,
                version,
                settings.header_read_timeout,
                settings.idle_timeout,
            );
            match read.await {
                Ok(source) => client = source,
                Err(e) => {
                    let edge = &ctx.metrics().edge;
                    match &e {
                        PrefaceError::Untrusted => edge.untrusted(UntrustedKind::ProxyProtocol),
                        PrefaceError::Header(_) => WorkerMetrics::add(&edge.proxy_header_errors, 1),
                        PrefaceError::Timeout if trust.trusts(peer.ip()) => {
                            WorkerMetrics::add(&edge.proxy_header_errors, 1)
                        }
                        PrefaceError::Timeout | PrefaceError::Closed(_) => {}
                    }
                    tracing::debug!(worker = ctx.id, %peer, error = %e, "connection closed before its PROXY header was accepted");
                    return;
                }
            }
        }
    }
    let tls = snapshot.server.tls.clone();
    drop(snapshot);
    match ClientStream::accept(tcp, tls.as_ref()).await {
        Ok(stream) => {
            if tls.is_some() {
                WorkerMetrics::add(&ctx.metrics().tls_handshakes, 1);
            }
            serve_connection(stream, client, ctx).await;
        }
        Err(e) => {
            let m = ctx.metrics();
            if e.kind() == ErrorKind::Timeout {
                WorkerMetrics::add(&m.tls_handshake_timeouts, 1);
            } else {
                WorkerMetrics::add(&m.tls_handshake_failures, 1);
            }
            tracing::debug!(worker = ctx.id, error = %e, "client TLS handshake failed");
        }
    }
}
