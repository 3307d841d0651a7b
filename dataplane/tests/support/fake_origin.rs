//! An in-process S3 origin for the read pipeline's tests: objects in memory, answers built as
//! real HTTP heads (parsed by the data plane's own parser), and faults on demand.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::buf::{IoBuf, IoBufMut};
use rangecache_dataplane::cache::range::RangeSpec;
use rangecache_dataplane::cache::read::{FetchBody, OriginFetch};
use rangecache_dataplane::http::{parse_response, Limits, ResponseHead};
use rangecache_dataplane::{Error, ErrorKind, Side};

/// What the next GET does instead of a plain answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (e.g. 503 SlowDown) with an empty body.
    Status(u16),
    /// Fail before any response head (connection refused or reset).
    Refuse,
    /// Send the head, then this many body bytes, then reset.
    CutAfter(usize),
    /// Send the head, this many body bytes, then replace the object (a writer elsewhere)
    /// and reset: the resumed GET then meets the new version.
    ReplaceAfter(usize),
    /// Send the head and this many body bytes, then time out a read into place, keeping the
    /// caller's buffer as a kernel still writing into it would (then scribbling over it).
    LoseAfter(usize),
}

/// A GET as the origin saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenGet {
    pub key: String,
    pub range: RangeSpec,
    pub if_match: Option<String>,
}

#[derive(Default)]
struct Objects {
    data: HashMap<String, (Bytes, String)>,
    version: u64,
}

/// The origin: shared by every worker thread of a test.
pub struct FakeOrigin {
    objects: Mutex<Objects>,
    faults: Mutex<VecDeque<Fault>>,
    gets: Mutex<Vec<SeenGet>>,
    heads: AtomicU64,
    /// Body bytes sent, all requests.
    pub bytes_sent: AtomicU64,
    /// 206 bodies open now (sent, not yet dropped), and the most open at once.
    open_bodies: AtomicU64,
    max_open_bodies: AtomicU64,
    /// Bytes per body piece, and the pause before each piece (a bandwidth).
    chunk: AtomicUsize,
    chunk_delay: Mutex<Duration>,
    /// Bodies can be read into place (a Content-Length body), else only as pieces (like a
    /// chunked one).
    in_place: AtomicBool,
    /// How long each GET's answer takes to arrive: the answer is made (the object's version
    /// chosen) when the GET is sent, and handed over this much later.
    first_byte: Mutex<Duration>,
}

impl FakeOrigin {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            objects: Mutex::new(Objects::default()),
            faults: Mutex::new(VecDeque::new()),
            gets: Mutex::new(Vec::new()),
            heads: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            open_bodies: AtomicU64::new(0),
            max_open_bodies: AtomicU64::new(0),
            chunk: AtomicUsize::new(64 * 1024),
            chunk_delay: Mutex::new(Duration::ZERO),
            in_place: AtomicBool::new(true),
            first_byte: Mutex::new(Duration::ZERO),
        })
    }

    /// Store `data` under `key` with a new ETag; returns the ETag.
    pub fn put(&self, key: &str, data: Bytes) -> String {
        let mut o = self.objects.lock().unwrap();
        o.version += 1;
        let etag = format!("\"etag-{}\"", o.version);
        o.data.insert(key.to_owned(), (data, etag.clone()));
        etag
    }

    /// Deterministic bytes: `seed` picks the pattern.
    pub fn pattern(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u64 * 31 + seed as u64 * 7 + (i as u64 >> 12)) as u8)
            .collect()
    }

    pub fn push_fault(&self, fault: Fault) {
        self.faults.lock().unwrap().push_back(fault);
    }

    pub fn set_chunk(&self, n: usize) {
        self.chunk.store(n, Relaxed);
    }

    /// Whether bodies can be read into place (default yes).
    pub fn set_in_place(&self, yes: bool) {
        self.in_place.store(yes, Relaxed);
    }

    /// Delay every GET's answer by `d` (S3's first-byte latency); the version it serves is
    /// the one current when the GET was sent.
    pub fn set_first_byte(&self, d: Duration) {
        *self.first_byte.lock().unwrap() = d;
    }

    pub fn set_chunk_delay(&self, d: Duration) {
        *self.chunk_delay.lock().unwrap() = d;
    }

    pub fn gets(&self) -> Vec<SeenGet> {
        self.gets.lock().unwrap().clone()
    }

    /// The byte spans (first, last as asked) of every GET so far, sorted; each must be a
    /// closed range.
    pub fn get_spans(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<_> = self
            .gets()
            .iter()
            .map(|g| match g.range {
                RangeSpec::FromTo { first, last } => (first, last),
                r => panic!("not a closed range: {r:?}"),
            })
            .collect();
        v.sort();
        v
    }

    pub fn heads(&self) -> u64 {
        self.heads.load(Relaxed)
    }

    /// The most GET bodies that were open at once (answered 206 and not yet dropped).
    pub fn max_open_bodies(&self) -> u64 {
        self.max_open_bodies.load(Relaxed)
    }

    /// A fetcher of `key` for one request.
    pub fn fetch(self: &Arc<Self>, key: &str) -> FakeFetch {
        FakeFetch {
            origin: self.clone(),
            key: key.to_owned(),
        }
    }

    fn current(&self, key: &str) -> Option<(Bytes, String)> {
        self.objects.lock().unwrap().data.get(key).cloned()
    }
}

fn head_of(text: String) -> ResponseHead {
    let mut buf = BytesMut::from(text.as_bytes());
    let limits = Limits {
        max_head_bytes: 64 * 1024,
        max_headers: 64,
        max_uri_bytes: 8192,
    };
    parse_response(&mut buf, &limits, false)
        .expect("fake head parses")
        .expect("fake head is complete")
}

fn refused() -> Error {
    Error::new(ErrorKind::Connect, Side::Origin, "fake origin refused")
}

/// The read pipeline's handle on one object of a [`FakeOrigin`].
pub struct FakeFetch {
    origin: Arc<FakeOrigin>,
    key: String,
}

/// A body being sent by the fake origin.
pub struct FakeBody {
    origin: Arc<FakeOrigin>,
    key: String,
    data: Bytes,
    pos: usize,
    end: usize,
    cut_at: Option<usize>,
    replace: bool,
    lose: bool,
    /// Counted in `open_bodies` until dropped.
    counted: bool,
}

impl Drop for FakeBody {
    fn drop(&mut self) {
        if self.counted {
            self.origin.open_bodies.fetch_sub(1, Relaxed);
        }
    }
}

impl OriginFetch for FakeFetch {
    type Body = FakeBody;

    async fn head(&self) -> Result<ResponseHead, Error> {
        self.origin.heads.fetch_add(1, Relaxed);
        Ok(match self.origin.current(&self.key) {
            Some((data, etag)) => head_of(format!(
                "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {}\r\n\
                 Content-Type: application/octet-stream\r\n\r\n",
                data.len()
            )),
            None => head_of("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into()),
        })
    }

    async fn get(
        &self,
        range: RangeSpec,
        if_match: Option<&str>,
    ) -> Result<(ResponseHead, FakeBody), Error> {
        let answer = self.answer(range, if_match);
        let delay = *self.origin.first_byte.lock().unwrap();
        if !delay.is_zero() {
            monoio::time::sleep(delay).await;
        }
        answer
    }
}

impl FakeFetch {
    /// The answer to a GET sent now.
    fn answer(
        &self,
        range: RangeSpec,
        if_match: Option<&str>,
    ) -> Result<(ResponseHead, FakeBody), Error> {
        let o = &self.origin;
        o.gets.lock().unwrap().push(SeenGet {
            key: self.key.clone(),
            range,
            if_match: if_match.map(str::to_owned),
        });
        let fault = o.faults.lock().unwrap().pop_front();
        let empty = || FakeBody {
            origin: o.clone(),
            key: self.key.clone(),
            data: Bytes::new(),
            pos: 0,
            end: 0,
            cut_at: None,
            replace: false,
            lose: false,
            counted: false,
        };
        match fault {
            Some(Fault::Refuse) => return Err(refused()),
            Some(Fault::Status(s)) => {
                let head = head_of(format!("HTTP/1.1 {s} Oops\r\nContent-Length: 0\r\n\r\n"));
                return Ok((head, empty()));
            }
            _ => {}
        }
        let Some((data, etag)) = o.current(&self.key) else {
            let head = head_of("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into());
            return Ok((head, empty()));
        };
        if if_match.is_some_and(|m| m != etag) {
            let head =
                head_of("HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n".into());
            return Ok((head, empty()));
        }
        let size = data.len() as u64;
        let (first, last) = match range {
            RangeSpec::FromTo { first, last } => (first, last.min(size - 1)),
            RangeSpec::From { first } => (first, size - 1),
            RangeSpec::Suffix { len } => (size.saturating_sub(len), size - 1),
        };
        if first >= size {
            let head = head_of(format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\n\
                 Content-Length: 0\r\n\r\n"
            ));
            return Ok((head, empty()));
        }
        let head = head_of(format!(
            "HTTP/1.1 206 Partial Content\r\nETag: {etag}\r\nContent-Range: bytes {first}-{last}/{size}\r\n\
             Content-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            last - first + 1
        ));
        let (cut_at, replace, lose) = match fault {
            Some(Fault::CutAfter(n)) => (Some(first as usize + n), false, false),
            Some(Fault::ReplaceAfter(n)) => (Some(first as usize + n), true, false),
            Some(Fault::LoseAfter(n)) => (Some(first as usize + n), false, true),
            _ => (None, false, false),
        };
        let open = o.open_bodies.fetch_add(1, Relaxed) + 1;
        o.max_open_bodies.fetch_max(open, Relaxed);
        Ok((
            head,
            FakeBody {
                origin: o.clone(),
                key: self.key.clone(),
                data,
                pos: first as usize,
                end: last as usize + 1,
                cut_at,
                replace,
                lose,
                counted: true,
            },
        ))
    }
}

impl FakeBody {
    /// The next piece's range in `data`, at most `max` bytes, after the pause; `Err` at the
    /// cut.
    async fn advance(&mut self, max: usize) -> Result<Option<std::ops::Range<usize>>, Error> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.cut_at.is_some_and(|c| self.pos >= c) {
            if self.replace {
                let new = FakeOrigin::pattern(self.data.len(), 99);
                self.origin.put(&self.key, new);
            }
            return Err(Error::new(ErrorKind::Closed, Side::Origin, "fake reset"));
        }
        let delay = *self.origin.chunk_delay.lock().unwrap();
        if !delay.is_zero() {
            monoio::time::sleep(delay).await;
        }
        let mut n = self
            .origin
            .chunk
            .load(Relaxed)
            .min(self.end - self.pos)
            .min(max);
        if let Some(c) = self.cut_at {
            n = n.min(c - self.pos).max(1);
        }
        let range = self.pos..self.pos + n;
        self.pos += n;
        self.origin.bytes_sent.fetch_add(n as u64, Relaxed);
        Ok(Some(range))
    }
}

impl FetchBody for FakeBody {
    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        let range = self.advance(usize::MAX).await?;
        Ok(range.map(|r| Bytes::slice(&self.data, r)))
    }

    fn reads_into(&self) -> bool {
        self.origin.in_place.load(Relaxed)
    }

    async fn read_into<T: IoBuf + IoBufMut>(
        &mut self,
        mut dst: T,
    ) -> (Result<usize, Error>, Option<T>) {
        if self.lose && self.cut_at.is_some_and(|c| self.pos >= c) {
            // The read timed out with `dst` still in the kernel's hands, which writes into
            // it later: garbage that must never be served.
            // SAFETY: within `bytes_total` at `write_ptr`, as `IoBufMut` allows.
            unsafe { std::ptr::write_bytes(dst.write_ptr(), 0xEE, dst.bytes_total()) };
            drop(dst);
            let e = Error::new(ErrorKind::Timeout, Side::Origin, "fake read timed out");
            return (Err(e), None);
        }
        match self.advance(dst.bytes_total()).await {
            Ok(Some(r)) => {
                let n = r.len();
                // SAFETY: `n` is at most `bytes_total`, at `write_ptr`; the source is ours.
                unsafe {
                    std::ptr::copy_nonoverlapping(self.data[r].as_ptr(), dst.write_ptr(), n);
                    dst.set_init(n);
                }
                (Ok(n), Some(dst))
            }
            Ok(None) => (Ok(0), Some(dst)),
            Err(e) => (Err(e), Some(dst)),
        }
    }

    fn finish(self) {}
}
