//! Conditional GET/HEAD (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`) evaluated against cached object metadata, the way S3 does.
//!
//! The cache answers a conditional request from its metadata only when it can answer exactly as
//! the origin would; this module is the decision, the caller writes the response.

use std::time::{SystemTime, UNIX_EPOCH};

/// The outcome of the preconditions of a GET or HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Go on and serve the object (then apply `Range`).
    Proceed,
    /// `304 Not Modified` (GET/HEAD): no body; S3 still sends `ETag` and `Last-Modified`.
    NotModified,
    /// `412 Precondition Failed`; S3's code is `PreconditionFailed`.
    PreconditionFailed,
}

/// The raw values of the four precondition headers of a request, `None` when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Preconditions<'a> {
    /// `If-Match`: an entity-tag list or `*`.
    pub if_match: Option<&'a str>,
    /// `If-None-Match`: an entity-tag list or `*`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`: an HTTP date.
    pub if_modified_since: Option<&'a str>,
    /// `If-Unmodified-Since`: an HTTP date.
    pub if_unmodified_since: Option<&'a str>,
}

impl Preconditions<'_> {
    /// `true` when the request carries none of the four headers, so [`evaluate`] would say
    /// [`Condition::Proceed`] without looking at the object.
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }
}

/// Evaluates the preconditions of a GET/HEAD against the object's `etag` (quoted or not) and
/// `last_modified` (`None`: unknown, so the date conditions are ignored).
///
/// S3's order, which is RFC 9110 §13.2.2 with S3's documented pairings:
///
/// 1. `If-Match` present: no tag matches → `PreconditionFailed`; a match → go on, and
///    `If-Unmodified-Since` is ignored (S3: "If-Match true, If-Unmodified-Since false → 200").
/// 2. Else `If-Unmodified-Since` (a valid HTTP date) and the object was modified after it →
///    `PreconditionFailed`.
/// 3. `If-None-Match` present: a tag matches → `NotModified`; none matches → `Proceed`, and
///    `If-Modified-Since` is ignored.
/// 4. Else `If-Modified-Since` (a valid HTTP date) and the object was not modified after it →
///    `NotModified`.
///
/// Details:
/// - A date that does not parse as an HTTP date (IMF-fixdate, RFC 850 or asctime) is ignored,
///   as RFC 9110 requires; so is a list of dates.
/// - `Last-Modified` has one-second resolution on the wire, so `last_modified` is truncated to
///   whole seconds before comparing; an object written at `t.9` is "not modified since" `t`.
/// - Entity tags: a list separated by commas, each optionally `W/`-prefixed and optionally
///   quoted; `*` anywhere in the list matches any existing object. `W/` is stripped on both
///   sides (a weak comparison for both headers; S3 never issues weak tags, so this only decides
///   what a client's `W/"…"` means). Quotes are normalized, since clients send S3 ETags both
///   with and without them. Comparison is byte-exact otherwise (S3 ETags are lowercase hex).
/// - A header whose value is empty or only whitespace/commas is treated as absent: it names no
///   tag, and an always-failing `If-Match: ` is more likely a client bug than an intent.
pub fn evaluate(
    pre: &Preconditions<'_>,
    etag: &str,
    last_modified: Option<SystemTime>,
) -> Condition {
    let etag = normalize(etag);
    let last_modified = last_modified.map(unix_secs);

    match pre.if_match.filter(|v| names_any(v)) {
        Some(list) => {
            if !list_matches(list, etag) {
                return Condition::PreconditionFailed;
            }
        }
        None => {
            if let (Some(lm), Some(since)) = (last_modified, date(pre.if_unmodified_since)) {
                if lm > since {
                    return Condition::PreconditionFailed;
                }
            }
        }
    }

    match pre.if_none_match.filter(|v| names_any(v)) {
        Some(list) => {
            if list_matches(list, etag) {
                return Condition::NotModified;
            }
        }
        None => {
            if let (Some(lm), Some(since)) = (last_modified, date(pre.if_modified_since)) {
                if lm <= since {
                    return Condition::NotModified;
                }
            }
        }
    }
    Condition::Proceed
}

/// An HTTP date header as whole seconds since the epoch; `None` when absent or invalid.
fn date(value: Option<&str>) -> Option<i128> {
    httpdate::parse_http_date(value?.trim()).ok().map(unix_secs)
}

/// Seconds since the epoch, rounded toward minus infinity so that truncation to one-second
/// resolution is the same on both sides of 1970.
fn unix_secs(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => {
            let d = e.duration();
            -i128::from(d.as_secs()) - i128::from(d.subsec_nanos() > 0)
        }
    }
}

/// The opaque part of one entity tag: surrounding whitespace, a `W/` prefix and one pair of
/// surrounding quotes removed.
fn normalize(tag: &str) -> &str {
    let tag = tag.trim_matches([' ', '\t']);
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

/// `true` when the header names at least one tag (or `*`).
fn names_any(list: &str) -> bool {
    tags(list).next().is_some()
}

/// `true` when some element of the tag list is `*` or equals `etag` (already normalized).
fn list_matches(list: &str, etag: &str) -> bool {
    tags(list).any(|t| t == "*" || t == etag)
}

/// The normalized elements of an entity-tag list. Splitting is quote-aware: a comma inside a
/// quoted tag (legal in RFC 9110 `etagc`) does not split it.
fn tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let body = rest.strip_prefix("W/").unwrap_or(rest);
        let end = match body.strip_prefix('"') {
            // A quoted tag runs to its closing quote; an unterminated one to the next comma.
            Some(inner) => match inner.find('"') {
                Some(q) => rest.len() - inner.len() + q + 1,
                None => rest.find(',').unwrap_or(rest.len()),
            },
            None => rest.find(',').unwrap_or(rest.len()),
        };
        let (tag, tail) = rest.split_at(end);
        rest = tail;
        // `tag` starts with neither whitespace nor a comma, so it is a real element; `""` stays
        // an (empty) tag that matches nothing.
        Some(normalize(tag))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use Condition::{NotModified as Nm, PreconditionFailed as Pf, Proceed as Go};

    const ETAG: &str = "\"9b2cf535\"";
    const TAG: &str = "9b2cf535";
    const OTHER: &str = "\"d41d8cd9\"";
    /// Last-Modified of the object: Sat, 23 Nov 2024 02:06:00.500 GMT (a half second in).
    fn lm() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_732_327_560_500)
    }
    const AT: &str = "Sat, 23 Nov 2024 02:06:00 GMT"; // the same second
    const BEFORE: &str = "Sat, 23 Nov 2024 02:05:59 GMT";
    const AFTER: &str = "Sat, 23 Nov 2024 02:06:01 GMT";
    const AT_RFC850: &str = "Saturday, 23-Nov-24 02:06:00 GMT";
    const AT_ASCTIME: &str = "Sat Nov 23 02:06:00 2024";
    const BAD: &str = "yesterday";

    fn pre<'a>(
        im: Option<&'a str>,
        inm: Option<&'a str>,
        ims: Option<&'a str>,
        ius: Option<&'a str>,
    ) -> Preconditions<'a> {
        Preconditions {
            if_match: im,
            if_none_match: inm,
            if_modified_since: ims,
            if_unmodified_since: ius,
        }
    }

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&str, Preconditions<'_>, Condition)] = &[
            ("nothing", pre(None, None, None, None), Go),
            // If-Match
            ("im match", pre(Some(ETAG), None, None, None), Go),
            ("im match unquoted", pre(Some(TAG), None, None, None), Go),
            ("im no match", pre(Some(OTHER), None, None, None), Pf),
            ("im star", pre(Some("*"), None, None, None), Go),
            ("im list hit", pre(Some(r#""d41d8cd9", "9b2cf535""#), None, None, None), Go),
            ("im list miss", pre(Some(r#""d41d8cd9","x""#), None, None, None), Pf),
            ("im list with star", pre(Some(r#""d41d8cd9", *"#), None, None, None), Go),
            ("im weak", pre(Some(r#"W/"9b2cf535""#), None, None, None), Go),
            ("im weak unquoted", pre(Some("W/9b2cf535"), None, None, None), Go),
            ("im outer ows", pre(Some(" \"9b2cf535\"\t"), None, None, None), Go),
            ("im prefix is not a match", pre(Some("\"9b2cf\""), None, None, None), Pf),
            ("im case matters", pre(Some("9B2CF535"), None, None, None), Pf),
            ("im empty is absent", pre(Some(""), None, None, None), Go),
            ("im commas is absent", pre(Some(" , ,"), None, None, None), Go),
            ("im empty quotes", pre(Some("\"\""), None, None, None), Pf),
            // If-Match true makes If-Unmodified-Since irrelevant (S3's documented pairing).
            ("im match + ius false", pre(Some(ETAG), None, None, Some(BEFORE)), Go),
            ("im miss + ius true", pre(Some(OTHER), None, None, Some(AFTER)), Pf),
            // If-Unmodified-Since
            ("ius after", pre(None, None, None, Some(AFTER)), Go),
            ("ius same second", pre(None, None, None, Some(AT)), Go),
            ("ius before", pre(None, None, None, Some(BEFORE)), Pf),
            ("ius rfc850", pre(None, None, None, Some(AT_RFC850)), Go),
            ("ius asctime", pre(None, None, None, Some(AT_ASCTIME)), Go),
            ("ius invalid ignored", pre(None, None, None, Some(BAD)), Go),
            ("ius list ignored", pre(None, None, None, Some("Sat, 23 Nov 2024 02:05:59 GMT, Sat, 23 Nov 2024 02:05:59 GMT")), Go),
            // If-None-Match
            ("inm match", pre(None, Some(ETAG), None, None), Nm),
            ("inm match unquoted", pre(None, Some(TAG), None, None), Nm),
            ("inm no match", pre(None, Some(OTHER), None, None), Go),
            ("inm star", pre(None, Some("*"), None, None), Nm),
            ("inm list hit", pre(None, Some(r#""d41d8cd9","9b2cf535""#), None, None), Nm),
            ("inm weak", pre(None, Some(r#"W/"9b2cf535""#), None, None), Nm),
            ("inm empty is absent", pre(None, Some(" "), None, None), Go),
            // If-None-Match decides alone when present (S3's documented pairing).
            ("inm match + ims true", pre(None, Some(ETAG), Some(BEFORE), None), Nm),
            ("inm miss + ims false", pre(None, Some(OTHER), Some(AFTER), None), Go),
            // If-Modified-Since
            ("ims before", pre(None, None, Some(BEFORE), None), Go),
            ("ims same second", pre(None, None, Some(AT), None), Nm),
            ("ims after", pre(None, None, Some(AFTER), None), Nm),
            ("ims invalid ignored", pre(None, None, Some(BAD), None), Go),
            ("ims empty ignored", pre(None, None, Some(""), None), Go),
            ("ims rfc850", pre(None, None, Some(AT_RFC850), None), Nm),
            // 412 wins over 304: the failing precondition is evaluated first.
            ("im miss + inm match", pre(Some(OTHER), Some(ETAG), None, None), Pf),
            ("ius false + ims false", pre(None, None, Some(AFTER), Some(BEFORE)), Pf),
            ("im match + inm match", pre(Some(ETAG), Some(ETAG), None, None), Nm),
            ("im match + ims false", pre(Some(ETAG), None, Some(AFTER), None), Nm),
            ("all pass", pre(Some(ETAG), Some(OTHER), Some(AFTER), Some(BEFORE)), Go),
        ];
        for (name, p, want) in cases {
            assert_eq!(evaluate(p, ETAG, Some(lm())), *want, "{name}");
        }
    }

    #[test]
    fn stored_etag_without_quotes_or_weak() {
        let p = pre(Some(ETAG), None, None, None);
        assert_eq!(evaluate(&p, TAG, None), Go);
        assert_eq!(evaluate(&p, &format!("W/{ETAG}"), None), Go);
        let multipart = "\"3858f62230ac3c915f300c664312c11f-9\"";
        let p = pre(None, Some("3858f62230ac3c915f300c664312c11f-9"), None, None);
        assert_eq!(evaluate(&p, multipart, None), Nm);
    }

    #[test]
    fn quoted_tag_with_comma_is_one_tag() {
        let p = pre(Some("\"a,b\""), None, None, None);
        assert_eq!(evaluate(&p, "\"a,b\"", None), Go);
        assert_eq!(evaluate(&p, "\"a\"", None), Pf);
        assert_eq!(
            tags("\"a,b\", W/\"c\",d ,, \"e").collect::<Vec<_>>(),
            ["a,b", "c", "d", "\"e"]
        );
    }

    #[test]
    fn unknown_last_modified_ignores_dates() {
        let p = pre(None, None, Some(AFTER), Some(BEFORE));
        assert_eq!(evaluate(&p, ETAG, None), Go);
    }

    #[test]
    fn second_resolution() {
        // Modified at exactly 02:06:00.000 and at .999: both are "02:06:00" on the wire.
        let whole = UNIX_EPOCH + Duration::from_secs(1_732_327_560);
        for t in [whole, whole + Duration::from_millis(999)] {
            assert_eq!(
                evaluate(&pre(None, None, Some(AT), None), ETAG, Some(t)),
                Nm
            );
            assert_eq!(
                evaluate(&pre(None, None, None, Some(AT)), ETAG, Some(t)),
                Go
            );
        }
        let next = whole + Duration::from_secs(1);
        assert_eq!(
            evaluate(&pre(None, None, Some(AT), None), ETAG, Some(next)),
            Go
        );
        assert_eq!(
            evaluate(&pre(None, None, None, Some(AT)), ETAG, Some(next)),
            Pf
        );
    }

    #[test]
    fn before_epoch_truncates_toward_minus_infinity() {
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_millis(1)), -1);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), -1);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1)), 0);
        let p = pre(None, None, Some("Thu, 01 Jan 1970 00:00:00 GMT"), None);
        assert_eq!(
            evaluate(&p, ETAG, Some(UNIX_EPOCH - Duration::from_millis(1))),
            Nm
        );
    }

    #[test]
    fn is_empty() {
        assert!(Preconditions::default().is_empty());
        assert!(!pre(None, None, None, Some(BAD)).is_empty());
        assert!(!pre(Some(""), None, None, None).is_empty());
    }
}
