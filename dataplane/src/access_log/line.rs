//! One access-log record and its JSON line.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::AmzDate;
use crate::metrics::CacheResult;
use crate::s3::Operation;

/// What the access log says about one request. Absent fields are written as `null`.
#[derive(Debug, Clone)]
pub struct AccessRecord<'a> {
    /// When the request finished.
    pub time: SystemTime,
    /// The `x-amz-request-id` the client got.
    pub request_id: &'a str,
    /// The client's address: the effective one when `[proxy]` trusts the peer (a PROXY
    /// header's source, or the forwarded header's trust walk). Port 0 = not known (an
    /// `X-Forwarded-For` entry without one); written as the bare IP then.
    pub client: Option<SocketAddr>,
    /// The access key id the request was signed with.
    pub access_key: Option<&'a str>,
    /// The S3 operation; `None` when the head could not be parsed.
    pub op: Option<Operation>,
    /// The bucket as the client named it.
    pub bucket: Option<&'a str>,
    /// The object key (decoded).
    pub key: Option<&'a str>,
    /// The client's `Range` header.
    pub range: Option<&'a str>,
    /// The response status (0 when no response could be written).
    pub status: u16,
    /// Bytes written to the client (head and body).
    pub bytes_sent: u64,
    /// How the cache took part.
    pub cache: CacheResult,
    /// From request head received to response written.
    pub duration: Duration,
    /// From request head received to the first origin byte this request used.
    pub origin_first_byte: Option<Duration>,
}

impl AccessRecord<'_> {
    /// Append the record as one JSON object and a newline.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut s = String::with_capacity(320);
        s.push_str("{\"time\":\"");
        push_time(&mut s, self.time);
        s.push_str("\",\"request_id\":");
        push_str(&mut s, Some(self.request_id));
        s.push_str(",\"client\":");
        match self.client {
            Some(a) if a.port() == 0 => {
                let _ = write!(s, "\"{}\"", a.ip());
            }
            Some(a) => {
                let _ = write!(s, "\"{a}\"");
            }
            None => s.push_str("null"),
        }
        s.push_str(",\"access_key\":");
        push_str(&mut s, self.access_key);
        s.push_str(",\"op\":");
        push_str(&mut s, self.op.map(Operation::name));
        s.push_str(",\"bucket\":");
        push_str(&mut s, self.bucket);
        s.push_str(",\"key\":");
        push_str(&mut s, self.key);
        s.push_str(",\"range\":");
        push_str(&mut s, self.range);
        let _ = write!(
            s,
            ",\"status\":{},\"bytes_sent\":{},\"cache\":\"{}\",\"duration_ms\":{:.3},\"origin_first_byte_ms\":",
            self.status,
            self.bytes_sent,
            self.cache.name(),
            millis(self.duration),
        );
        match self.origin_first_byte {
            Some(d) => {
                let _ = write!(s, "{:.3}", millis(d));
            }
            None => s.push_str("null"),
        }
        s.push_str("}\n");
        out.extend_from_slice(s.as_bytes());
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// RFC 3339 UTC with milliseconds: `2026-11-29T16:40:20.123Z`.
fn push_time(s: &mut String, time: SystemTime) {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    match AmzDate::from_system_time(time) {
        Some(d) => {
            let text = d.rfc3339();
            s.push_str(text.trim_end_matches('Z'));
            let _ = write!(s, ".{ms:03}Z");
        }
        None => s.push_str("1970-01-01T00:00:00.000Z"),
    }
}

/// A JSON string (escaped per RFC 8259), or `null`.
fn push_str(s: &mut String, v: Option<&str>) {
    let Some(v) = v else {
        s.push_str("null");
        return;
    };
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_escaped_json_line() {
        let r = AccessRecord {
            time: UNIX_EPOCH + Duration::from_millis(1_764_434_420_123),
            request_id: "ABC",
            client: Some("127.0.0.1:5000".parse().unwrap()),
            access_key: None,
            op: Some(Operation::GetObject),
            bucket: Some("b"),
            key: Some("dir/\"odd\"\n\u{1}key"),
            range: Some("bytes=0-9"),
            status: 206,
            bytes_sent: 310,
            cache: CacheResult::Partial,
            duration: Duration::from_micros(1500),
            origin_first_byte: Some(Duration::from_micros(250)),
        };
        let mut out = Vec::new();
        r.write_json(&mut out);
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"time\":\"2025-11-29T16:40:20.123Z\",\"request_id\":\"ABC\",\
             \"client\":\"127.0.0.1:5000\",\"access_key\":null,\"op\":\"GetObject\",\
             \"bucket\":\"b\",\"key\":\"dir/\\\"odd\\\"\\n\\u0001key\",\"range\":\"bytes=0-9\",\
             \"status\":206,\"bytes_sent\":310,\"cache\":\"partial\",\"duration_ms\":1.500,\
             \"origin_first_byte_ms\":0.250}\n"
        );
        // A forwarded address without a port (X-Forwarded-For) is the bare IP.
        let mut out = Vec::new();
        AccessRecord {
            client: Some("[2001:db8::1]:0".parse().unwrap()),
            ..r
        }
        .write_json(&mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(line.contains("\"client\":\"2001:db8::1\","), "{line}");
    }
}
