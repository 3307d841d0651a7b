//! ListObjects (V1 and V2) from List Blobs: the S3 query turned into List Blobs parameters,
//! and the `EnumerationResults` answer turned into S3's `ListBucketResult`.
//!
//! A continuation token (V2) and a marker (V1) are the Blob service's own opaque `NextMarker`.
//! `start-after` has no Blob equivalent: names up to it are dropped from each page.

use std::time::SystemTime;

use quick_xml::events::Event;

use crate::auth::AmzDate;
use crate::s3::error::escape_xml;
use crate::s3::{uri, S3Error};

/// Largest List Blobs answer read (a page of 1,000 blobs is well under 1 MiB).
pub const MAX_LIST_BODY: usize = 8 << 20;

/// Most keys one page holds, as in S3.
const MAX_KEYS: u32 = 1000;

/// What the client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// ListObjectsV2 (`list-type=2`) or V1.
    pub v2: bool,
    /// `prefix`, decoded.
    pub prefix: String,
    /// `delimiter`, decoded.
    pub delimiter: String,
    /// `max-keys` (at most 1,000).
    pub max_keys: u32,
    /// `continuation-token` (V2) or `marker` (V1), decoded: a Blob service marker.
    pub marker: String,
    /// `start-after` (V2), decoded.
    pub start_after: String,
    /// `encoding-type=url`: names in the answer are URL-encoded.
    pub url_encoded: bool,
    /// `fetch-owner` is ignored: blobs have no S3 owner.
    pub bucket: String,
}

impl ListQuery {
    /// Parse the client's raw query for `bucket` (the client-side name, echoed as `Name`).
    pub fn parse(raw_query: &str, bucket: &str, v2: bool) -> Result<Self, S3Error> {
        let mut q = ListQuery {
            v2,
            max_keys: MAX_KEYS,
            bucket: bucket.to_owned(),
            ..ListQuery::default()
        };
        for (k, v) in uri::query_pairs(raw_query) {
            let v = percent_encoding::percent_decode_str(&v.replace('+', "%20"))
                .decode_utf8()
                .map_err(|_| S3Error::invalid_argument("query value is not UTF-8"))?
                .into_owned();
            match k {
                "prefix" => q.prefix = v,
                "delimiter" => q.delimiter = v,
                "max-keys" => {
                    q.max_keys = v
                        .parse::<u32>()
                        .map_err(|_| {
                            S3Error::invalid_argument(
                                "Provided max-keys not an integer or within integer range",
                            )
                        })?
                        .min(MAX_KEYS)
                }
                "continuation-token" if v2 => q.marker = v,
                "marker" if !v2 => q.marker = v,
                "start-after" if v2 => q.start_after = v,
                "encoding-type" => {
                    if v != "url" {
                        return Err(S3Error::invalid_argument(
                            "Invalid Encoding Method specified in Request",
                        ));
                    }
                    q.url_encoded = true;
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// The List Blobs request path and query for `container` (before authorization).
    pub fn blob_request(&self, container: &str) -> String {
        let mut out = uri::origin_path(container, None);
        out.push_str("?restype=container&comp=list");
        let mut param = |name: &str, value: &str| {
            if !value.is_empty() {
                out.push('&');
                out.push_str(name);
                out.push('=');
                uri::aws_uri_encode(value, false, &mut out);
            }
        };
        param("prefix", &self.prefix);
        param("delimiter", &self.delimiter);
        param("marker", &self.marker);
        // maxresults=0 is an error at the Blob service; S3 answers max-keys=0 with nothing.
        param("maxresults", &self.max_keys.max(1).to_string());
        out
    }
}

/// One blob or prefix of a List Blobs page.
#[derive(Debug, Default)]
struct Blob {
    name: String,
    etag: String,
    size: String,
    last_modified: String,
}

/// A List Blobs page, parsed.
#[derive(Debug, Default)]
struct Page {
    blobs: Vec<Blob>,
    prefixes: Vec<String>,
    next_marker: String,
}

fn parse_page(body: &[u8]) -> Result<Page, S3Error> {
    let bad = || S3Error::bad_gateway("the Azure Blob service sent a list that does not parse");
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut page = Page::default();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut blob = Blob::default();
    loop {
        match reader.read_event().map_err(|_| bad())? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if name == b"Blob" {
                    blob = Blob::default();
                }
                path.push(name);
            }
            Event::End(_) => {
                if let Some(name) = path.pop() {
                    if name == b"Blob" {
                        page.blobs.push(std::mem::take(&mut blob));
                    }
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| bad())?.into_owned();
                let at = |names: &[&[u8]]| {
                    path.len() >= names.len()
                        && path[path.len() - names.len()..]
                            .iter()
                            .zip(names)
                            .all(|(a, b)| a.as_slice() == *b)
                };
                if at(&[b"Blob", b"Name"]) {
                    blob.name.push_str(&text);
                } else if at(&[b"BlobPrefix", b"Name"]) {
                    page.prefixes.push(text);
                } else if at(&[b"Properties", b"Etag"]) {
                    blob.etag = text;
                } else if at(&[b"Properties", b"Content-Length"]) {
                    blob.size = text;
                } else if at(&[b"Properties", b"Last-Modified"]) {
                    blob.last_modified = text;
                } else if at(&[b"EnumerationResults", b"NextMarker"]) {
                    page.next_marker = text;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(page)
}

/// S3's `ListBucketResult` for a List Blobs answer `body` to `q`.
pub fn translate(q: &ListQuery, body: &[u8]) -> Result<String, S3Error> {
    let page = parse_page(body)?;
    let after = |name: &str| q.start_after.is_empty() || name > q.start_after.as_str();
    let max = if q.max_keys == 0 { 0 } else { usize::MAX };
    let blobs: Vec<&Blob> = page
        .blobs
        .iter()
        .filter(|b| after(&b.name))
        .take(max)
        .collect();
    let prefixes: Vec<&String> = page
        .prefixes
        .iter()
        .filter(|p| after(p))
        .take(max)
        .collect();
    let truncated = q.max_keys > 0 && !page.next_marker.is_empty();
    let mut out = String::with_capacity(512 + blobs.len() * 300);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    let element = |out: &mut String, name: &str, value: &str, encode: bool| {
        out.push('<');
        out.push_str(name);
        out.push('>');
        if encode && q.url_encoded {
            let mut enc = String::with_capacity(value.len());
            uri::aws_uri_encode(value, true, &mut enc);
            escape_xml(&enc, out);
        } else {
            escape_xml(value, out);
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    };
    element(&mut out, "Name", &q.bucket, false);
    element(&mut out, "Prefix", &q.prefix, true);
    if q.v2 {
        element(
            &mut out,
            "KeyCount",
            &(blobs.len() + prefixes.len()).to_string(),
            false,
        );
        if !q.marker.is_empty() {
            element(&mut out, "ContinuationToken", &q.marker, false);
        }
        if truncated {
            element(&mut out, "NextContinuationToken", &page.next_marker, false);
        }
        if !q.start_after.is_empty() {
            element(&mut out, "StartAfter", &q.start_after, true);
        }
    } else {
        element(&mut out, "Marker", &q.marker, false);
        if truncated {
            element(&mut out, "NextMarker", &page.next_marker, false);
        }
    }
    element(&mut out, "MaxKeys", &q.max_keys.to_string(), false);
    if !q.delimiter.is_empty() {
        element(&mut out, "Delimiter", &q.delimiter, true);
    }
    if q.url_encoded {
        element(&mut out, "EncodingType", "url", false);
    }
    element(
        &mut out,
        "IsTruncated",
        if truncated { "true" } else { "false" },
        false,
    );
    for b in blobs {
        out.push_str("<Contents>");
        element(&mut out, "Key", &b.name, true);
        element(&mut out, "LastModified", &iso8601(&b.last_modified), false);
        element(&mut out, "ETag", &quoted(&b.etag), false);
        element(
            &mut out,
            "Size",
            if b.size.is_empty() { "0" } else { &b.size },
            false,
        );
        element(&mut out, "StorageClass", "STANDARD", false);
        out.push_str("</Contents>");
    }
    for p in prefixes {
        out.push_str("<CommonPrefixes>");
        element(&mut out, "Prefix", p, true);
        out.push_str("</CommonPrefixes>");
    }
    out.push_str("</ListBucketResult>");
    Ok(out)
}

/// An ETag in S3's quoted form (List Blobs sends it bare).
fn quoted(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

/// An HTTP date (`Sun, 29 Nov 2026 19:00:00 GMT`) as S3's `2026-11-29T19:00:00.000Z`.
fn iso8601(http_date: &str) -> String {
    let time = httpdate::parse_http_date(http_date.trim()).unwrap_or(SystemTime::UNIX_EPOCH);
    let text = AmzDate::from_system_time(time).map_or_else(
        || "1970-01-01T00:00:00Z".to_owned(),
        |d| d.rfc3339().to_string(),
    );
    format!("{}.000Z", text.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="data">
<Prefix>d/</Prefix><MaxResults>2</MaxResults><Delimiter>/</Delimiter><Blobs>
<Blob><Name>d/a b.txt</Name><Properties><Creation-Time>Sun, 29 Nov 2026 18:00:00 GMT</Creation-Time>
<Last-Modified>Sun, 29 Nov 2026 19:00:01 GMT</Last-Modified><Etag>0x8DD1</Etag>
<Content-Length>12</Content-Length><BlobType>BlockBlob</BlobType></Properties><Metadata/></Blob>
<BlobPrefix><Name>d/sub/</Name></BlobPrefix>
</Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>"#;

    #[test]
    fn a_page_becomes_a_list_bucket_result() {
        let q = ListQuery::parse(
            "list-type=2&prefix=d%2F&delimiter=%2F&max-keys=2&encoding-type=url",
            "lake",
            true,
        )
        .unwrap();
        assert_eq!(
            q.blob_request("data"),
            "/data?restype=container&comp=list&prefix=d%2F&delimiter=%2F&maxresults=2"
        );
        let xml = translate(&q, PAGE).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Name>lake</Name><Prefix>d/</Prefix><KeyCount>2</KeyCount>\
             <NextContinuationToken>2!abc</NextContinuationToken><MaxKeys>2</MaxKeys>\
             <Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>\
             <Contents><Key>d/a%20b.txt</Key><LastModified>2026-11-29T19:00:01.000Z</LastModified>\
             <ETag>&quot;0x8DD1&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>\
             <CommonPrefixes><Prefix>d/sub/</Prefix></CommonPrefixes></ListBucketResult>"
        );
    }

    #[test]
    fn continuation_and_start_after() {
        let q = ListQuery::parse(
            "list-type=2&continuation-token=2%21abc&start-after=d%2Fa%20b.txt",
            "lake",
            true,
        )
        .unwrap();
        assert_eq!(q.marker, "2!abc");
        assert!(q.blob_request("data").contains("&marker=2%21abc"));
        let xml = translate(&q, PAGE).unwrap();
        assert!(
            xml.contains("<ContinuationToken>2!abc</ContinuationToken>"),
            "{xml}"
        );
        assert!(!xml.contains("<Contents>"), "{xml}");
        assert!(xml.contains("<KeyCount>1</KeyCount>"), "{xml}");
    }

    #[test]
    fn v1_uses_markers() {
        let q = ListQuery::parse("marker=2%21x", "lake", false).unwrap();
        let xml = translate(&q, PAGE).unwrap();
        assert!(
            xml.contains("<Marker>2!x</Marker><NextMarker>2!abc</NextMarker>"),
            "{xml}"
        );
        assert!(xml.contains("<Key>d/a b.txt</Key>"), "{xml}");
    }

    #[test]
    fn bad_parameters_are_s3_errors() {
        assert_eq!(
            ListQuery::parse("max-keys=x", "b", true)
                .unwrap_err()
                .code(),
            "InvalidArgument"
        );
        assert_eq!(
            ListQuery::parse("encoding-type=zip", "b", true)
                .unwrap_err()
                .code(),
            "InvalidArgument"
        );
        assert_eq!(
            translate(&ListQuery::default(), b"<a><b></a>")
                .unwrap_err()
                .status(),
            502
        );
    }
}
