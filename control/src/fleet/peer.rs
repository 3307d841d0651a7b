//! One fleet peer: its admin URL, its counters and a small pool of HTTP/1.1 connections to it
//! (hyper's client connection over Tokio TCP).

use std::sync::Mutex;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::stats::PeerStats;
use crate::config::fleet::PeerUrl;

/// Idle connections kept per peer; more are closed after use.
const MAX_IDLE: usize = 16;

/// Largest answer body read from a peer (it is a small JSON document).
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// Why a call to a peer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// TCP connect (or name resolution) failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// HTTP-level failure (handshake, write, read).
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
    /// The request could not be built.
    #[error("cannot build the request: {0}")]
    Request(#[source] http::Error),
    /// The answer body broke off or was too large.
    #[error("cannot read the answer: {0}")]
    Body(String),
}

/// One peer of the fleet.
#[derive(Debug)]
pub struct Peer {
    /// Its admin endpoint.
    pub url: PeerUrl,
    /// Its invalidation counters (kept across reloads while it stays listed).
    pub stats: PeerStats,
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
}

impl Peer {
    /// A peer at `url` with zeroed counters and no connection yet.
    pub fn new(url: PeerUrl) -> Self {
        Self {
            url,
            stats: PeerStats::default(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// `POST target` (path and query) with the admin token and this node's name; the status
    /// of the answer. A pooled connection that fails before answering (the peer restarted or
    /// closed it) is replaced by a new one, once. The caller bounds the time: a call cut short
    /// drops its connection.
    pub async fn post(
        &self,
        target: &str,
        token: Option<&str>,
        node: &str,
    ) -> Result<StatusCode, PeerError> {
        if let Some(sender) = self.pooled().await {
            match self.send(sender, target, token, node).await {
                Err(PeerError::Http(e)) => {
                    tracing::debug!(
                        "fleet peer {}: pooled connection failed: {e}",
                        self.url.base
                    );
                }
                done => return done,
            }
        }
        let sender = self.connect().await?;
        self.send(sender, target, token, node).await
    }

    async fn send(
        &self,
        mut sender: SendRequest<Empty<Bytes>>,
        target: &str,
        token: Option<&str>,
        node: &str,
    ) -> Result<StatusCode, PeerError> {
        let authority = format!("{}:{}", bracketed(&self.url.host), self.url.port);
        let mut req = Request::post(target)
            .header(header::HOST, authority)
            .header(header::USER_AGENT, "rangecache-fleet")
            .header("x-rangecache-node", node);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::new()).map_err(PeerError::Request)?;
        let resp = sender.send_request(req).await.map_err(PeerError::Http)?;
        let status = resp.status();
        // Read the answer whole so the connection can carry the next call.
        Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| PeerError::Body(e.to_string()))?;
        self.put_back(sender);
        Ok(status)
    }

    /// An idle pooled connection that is still open, if any.
    async fn pooled(&self) -> Option<SendRequest<Empty<Bytes>>> {
        loop {
            let mut sender = self.idle.lock().ok()?.pop()?;
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// A new connection.
    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, PeerError> {
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(PeerError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(PeerError::Http)?;
        // Ends when the peer closes or every sender of this connection is dropped.
        tokio::spawn(conn);
        Ok(sender)
    }

    fn put_back(&self, sender: SendRequest<Empty<Bytes>>) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
