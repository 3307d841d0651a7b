//! A socket the listener just accepted: TLS handshake when the client listener speaks TLS,
//! then the connection loop.

use std::net::SocketAddr;
use std::rc::Rc;

use monoio::net::TcpStream;

use super::{serve_connection, WorkerCtx};
use crate::net::ClientStream;
use crate::{ErrorKind, WorkerMetrics};

/// Serve one accepted socket: handshake with the TLS settings of the current snapshot (if
/// any), then [`serve_connection`]. A failed or timed-out handshake closes the socket and is
/// counted; it never reaches request handling.
pub async fn serve_accepted(tcp: TcpStream, peer: SocketAddr, ctx: Rc<WorkerCtx>) {
    let tls = ctx.snapshot.load().server.tls.clone();
    match ClientStream::accept(tcp, tls.as_ref()).await {
        Ok(stream) => {
            if tls.is_some() {
                WorkerMetrics::add(&ctx.metrics().tls_handshakes, 1);
            }
            serve_connection(stream, peer, ctx).await;
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
