//! One reader of one large object, as the memory run needs it: a GET of the whole object on
//! a socket with a small receive buffer, read at a limited rate, as fast as possible, or with
//! a stall (stop reading entirely, then see whether the server cut the connection). Every
//! byte is checked against the object's content.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio::time::Instant;

use crate::client::{read_response_head, write_request_head, Endpoint, RequestLine};
use crate::content;
use crate::http1::BufConn;
use crate::pace::Pacer;

/// What to read.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// The server.
    pub endpoint: Rc<Endpoint>,
    /// Percent-encoded `/bucket/key`.
    pub path: String,
    /// The object's size.
    pub size: u64,
    /// Content seed to check bytes against (`None`: count only).
    pub seed: Option<u64>,
    /// `SO_RCVBUF` to ask for before connecting (the kernel doubles it and has a floor).
    pub recv_buffer: u32,
    /// Largest read: the read buffer size.
    pub piece: usize,
}

/// How the reader takes bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// At most this many bytes per second until the deadline.
    Limited(u64),
    /// As fast as it can until the deadline.
    Unlimited,
    /// Read `after` bytes, stop reading for `stall`, then read for at most `resume_for`.
    Stall {
        /// Bytes read before the stall.
        after: u64,
        /// How long it takes nothing.
        stall: Duration,
        /// How long it reads afterwards to see whether the connection is still there.
        resume_for: Duration,
    },
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The reader stopped at its deadline with the connection still delivering.
    Deadline,
    /// Every byte of the object arrived.
    Complete,
    /// The server closed the connection before the end of the body.
    Closed,
    /// The connection failed (reset, refused, ...).
    Failed(io::ErrorKind),
    /// The response was not 200.
    Status(u16),
}

impl StreamEnd {
    /// The server ended the response before it was whole (what a send timeout does to a
    /// stalled reader).
    pub fn is_cut(self) -> bool {
        matches!(self, StreamEnd::Closed | StreamEnd::Failed(_))
    }
}

/// What one reader saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamOutcome {
    /// Body bytes received.
    pub bytes: u64,
    /// Body bytes that differed from the object's content.
    pub bad_bytes: u64,
    /// Seconds from connect to the end.
    pub elapsed_s: f64,
    /// How it ended.
    pub end: StreamEnd,
}

/// Body bytes read and checked so far.
struct Tally {
    pos: u64,
    bad: u64,
    seed: Option<u64>,
}

impl Tally {
    fn take(&mut self, conn: &mut BufConn, limit: u64) -> usize {
        let n = conn
            .buffered()
            .len()
            .min(usize::try_from(limit).unwrap_or(usize::MAX));
        if let Some(seed) = self.seed {
            self.bad += content::verify(seed, self.pos, &conn.buffered()[..n]);
        }
        conn.consume(n);
        self.pos += n as u64;
        n
    }
}

/// Read `spec` as `pace` says, stopping at `deadline` at the latest.
pub async fn read_stream(spec: &StreamSpec, pace: Pace, deadline: Instant) -> StreamOutcome {
    let t0 = Instant::now();
    let mut tally = Tally {
        pos: 0,
        bad: 0,
        seed: spec.seed,
    };
    let end = match run(spec, pace, deadline, &mut tally).await {
        Ok(end) => end,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => StreamEnd::Closed,
        Err(e) => StreamEnd::Failed(e.kind()),
    };
    StreamOutcome {
        bytes: tally.pos,
        bad_bytes: tally.bad,
        elapsed_s: t0.elapsed().as_secs_f64(),
        end,
    }
}

async fn run(
    spec: &StreamSpec,
    pace: Pace,
    deadline: Instant,
    tally: &mut Tally,
) -> io::Result<StreamEnd> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(spec.recv_buffer)?;
    let stream = socket.connect(spec.endpoint.addr).await?;
    stream.set_nodelay(true)?;
    let mut conn = BufConn::new(stream, spec.piece);
    let (mut head, mut scratch) = (Vec::with_capacity(1024), Vec::new());
    write_request_head(
        &spec.endpoint,
        RequestLine {
            method: "GET",
            path: &spec.path,
            range: None,
        },
        &[],
        &mut head,
        &mut scratch,
    )?;
    conn.write_all(&head).await?;
    let h = tokio::time::timeout_at(deadline, read_response_head(&mut conn))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    if h.status != 200 {
        return Ok(StreamEnd::Status(h.status));
    }
    let len = h.content_length.unwrap_or(spec.size);
    let (rate, stall) = match pace {
        Pace::Limited(r) => (r, None),
        Pace::Unlimited => (0, None),
        Pace::Stall {
            after,
            stall,
            resume_for,
        } => (0, Some((after, stall, resume_for))),
    };
    let mut pacer = Pacer::new(rate);
    let mut deadline = deadline;
    let mut stalled = false;
    loop {
        if tally.pos >= len {
            return Ok(StreamEnd::Complete);
        }
        if let Some((after, stall, resume_for)) = stall {
            if !stalled && tally.pos >= after {
                // Take nothing: the socket buffers fill and the server's writes block.
                tokio::time::sleep(stall).await;
                stalled = true;
                deadline = Instant::now() + resume_for;
            }
        }
        if conn.buffered().is_empty() {
            match tokio::time::timeout_at(deadline, conn.fill()).await {
                Err(_) => return Ok(StreamEnd::Deadline),
                Ok(Ok(0)) => return Ok(StreamEnd::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
        let limit = match stall {
            Some((after, _, _)) if !stalled => after - tally.pos,
            _ => len - tally.pos,
        };
        let n = tally.take(&mut conn, limit.max(1).min(len - tally.pos));
        if rate > 0 {
            if tokio::time::timeout_at(deadline, pacer.pace(n))
                .await
                .is_err()
            {
                return Ok(StreamEnd::Deadline);
            }
        } else if Instant::now() >= deadline {
            return Ok(StreamEnd::Deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// What the fake server does once the body's socket buffers are full.
    #[derive(Clone, Copy, PartialEq)]
    enum Server {
        /// Close the connection after this long without progress (a send timeout).
        CutAfter(Duration),
        /// Keep writing as the client reads.
        Keep,
    }

    /// A loopback server answering one GET with a 1 TiB body of zeros.
    async fn serve_one(behaviour: Server) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).await.unwrap();
                head.extend_from_slice(&b[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n")
                .await
                .unwrap();
            let chunk = vec![0u8; 64 << 10];
            loop {
                let write = s.write_all(&chunk);
                match behaviour {
                    Server::CutAfter(d) => match tokio::time::timeout(d, write).await {
                        Ok(Ok(())) => {}
                        _ => return, // dropping the socket closes it
                    },
                    Server::Keep => {
                        if write.await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        addr
    }

    fn spec(addr: std::net::SocketAddr) -> StreamSpec {
        StreamSpec {
            endpoint: Rc::new(Endpoint {
                addr,
                host: addr.to_string(),
                signer: None,
            }),
            path: "/b/k".into(),
            size: 1 << 40,
            seed: None,
            recv_buffer: 16 << 10,
            piece: 16 << 10,
        }
    }

    const STALL: Pace = Pace::Stall {
        after: 64 << 10,
        stall: Duration::from_millis(600),
        resume_for: Duration::from_millis(300),
    };

    #[tokio::test]
    async fn a_server_that_gives_up_on_a_stalled_reader_is_seen_as_a_cut() {
        let addr = serve_one(Server::CutAfter(Duration::from_millis(200))).await;
        let o = read_stream(&spec(addr), STALL, Instant::now() + Duration::from_secs(10)).await;
        assert_eq!(o.end, StreamEnd::Closed, "{o:?}");
        assert!(o.end.is_cut());
        assert!(o.bytes >= 64 << 10, "{o:?}");
    }

    #[tokio::test]
    async fn a_server_that_waits_keeps_the_stalled_reader() {
        let addr = serve_one(Server::Keep).await;
        let o = read_stream(&spec(addr), STALL, Instant::now() + Duration::from_secs(10)).await;
        assert_eq!(o.end, StreamEnd::Deadline, "{o:?}");
        assert!(!o.end.is_cut());
    }

    #[test]
    fn only_a_server_side_end_counts_as_cut() {
        assert!(StreamEnd::Closed.is_cut());
        assert!(StreamEnd::Failed(io::ErrorKind::ConnectionReset).is_cut());
        assert!(!StreamEnd::Deadline.is_cut());
        assert!(!StreamEnd::Complete.is_cut());
        assert!(!StreamEnd::Status(503).is_cut());
    }
}
