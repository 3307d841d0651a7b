//! The `Date` header value, formatted once per second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

thread_local! {
    /// The second last formatted and its text.
    static DATE: RefCell<(u64, Bytes)> = const { RefCell::new((u64::MAX, Bytes::new())) };
}

/// The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`). A worker formats it at
/// most once a second; every other call is a clock read and a `Bytes` clone.
pub fn http_date() -> Bytes {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            *cached = (second, Bytes::from(httpdate::fmt_http_date(now)));
        }
        cached.1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_now_and_reuses_the_text_within_a_second() {
        let a = http_date();
        let parsed = httpdate::parse_http_date(std::str::from_utf8(&a).unwrap()).unwrap();
        let age = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(age.as_secs() <= 2);
        let b = http_date();
        // The same second gives the same buffer (or the next second's text).
        assert!(a.as_ptr() == b.as_ptr() || a != b);
    }
}
