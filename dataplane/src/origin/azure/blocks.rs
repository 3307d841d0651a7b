//! Multipart uploads as block blobs: an upload id rangecache makes up (no state kept), block
//! ids derived from the upload id and part number, and the block list that commits them.
//!
//! CreateMultipartUpload sends nothing to Azure: its id is 32 random hex digits, followed,
//! when the client gave any, by `.` and the object's headers (content type, `x-amz-meta-*`,
//! ...) base64url-encoded, so CompleteMultipartUpload can set them on the blob. UploadPart is
//! Put Block with block id `base64(<32 hex><part number, 5 digits>)`: ids of one upload never
//! collide with another's, and all have the Blob service's required equal length.
//! CompleteMultipartUpload is Put Block List naming those ids. Uncommitted blocks of an
//! aborted upload are discarded by the Blob service (after a week), so Abort sends nothing.

use base64::Engine;
use quick_xml::events::Event;

use crate::s3::S3Error;

/// Largest CompleteMultipartUpload body read (10,000 parts take about 1 MiB).
pub const MAX_COMPLETE_BODY: usize = 2 << 20;

/// Longest upload id accepted (the object headers it carries are bounded like S3's 2 KiB of
/// user metadata, plus a little for the standard headers).
const MAX_UPLOAD_ID: usize = 4096;

/// Highest part number S3 allows.
const MAX_PART: u32 = 10_000;

/// Object headers a multipart upload carries from its creation to its completion.
const CARRIED: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-language",
    "content-disposition",
    "cache-control",
];

/// A parsed upload id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadId {
    nonce: String,
    /// Object headers (S3 names, lower case) to set at completion.
    pub headers: Vec<(String, String)>,
}

impl UploadId {
    /// A new upload carrying the object headers among `headers` (S3 names).
    pub fn create(headers: &[(String, String)]) -> Result<String, S3Error> {
        let nonce: [u8; 16] = rand::random();
        let mut id = hex(&nonce);
        let mut carried = String::new();
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            if CARRIED.contains(&k.as_str()) || k.starts_with("x-amz-meta-") {
                carried.push_str(&k);
                carried.push(':');
                carried.push_str(v);
                carried.push('\n');
            }
        }
        if !carried.is_empty() {
            id.push('.');
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&carried, &mut id);
        }
        if id.len() > MAX_UPLOAD_ID {
            return Err(S3Error::new(
                "MetadataTooLarge",
                400,
                "Your metadata headers exceed the maximum allowed metadata size.",
            ));
        }
        Ok(id)
    }

    /// Parse an id made by [`UploadId::create`]; anything else is `NoSuchUpload`.
    pub fn parse(id: &str) -> Result<Self, S3Error> {
        let (nonce, carried) = id.split_once('.').unwrap_or((id, ""));
        let ok = nonce.len() == 32
            && nonce.bytes().all(|b| b.is_ascii_hexdigit())
            && id.len() <= MAX_UPLOAD_ID;
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(carried)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let (true, Some(decoded)) = (ok, decoded) else {
            return Err(no_such_upload());
        };
        let headers = decoded
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self {
            nonce: nonce.to_ascii_lowercase(),
            headers,
        })
    }

    /// The block id of part `part` (base64, not yet URL-encoded).
    pub fn block_id(&self, part: u32) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}{part:05}", self.nonce))
    }
}

/// `NoSuchUpload`, as S3 answers an unknown upload id.
pub fn no_such_upload() -> S3Error {
    S3Error::new(
        "NoSuchUpload",
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may \
         have been aborted or completed.",
    )
}

/// A part number from a query value: 1 to 10,000.
pub fn part_number(value: &str) -> Result<u32, S3Error> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_PART).contains(&n) => Ok(n),
        _ => Err(S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// The part numbers a CompleteMultipartUpload body lists, in order. S3's rules: at least one
/// part, ascending (`InvalidPartOrder`), well-formed XML (`MalformedXML`).
pub fn completed_parts(body: &[u8]) -> Result<Vec<u32>, S3Error> {
    let malformed = || {
        S3Error::new(
            "MalformedXML",
            400,
            "The XML you provided was not well-formed or did not validate against our \
             published schema.",
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut parts = Vec::new();
    let mut in_number = false;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => in_number = e.local_name().as_ref() == b"PartNumber",
            Event::End(_) => in_number = false,
            Event::Text(t) if in_number => {
                let text = t.unescape().map_err(|_| malformed())?;
                let n = part_number(text.trim()).map_err(|_| malformed())?;
                if parts.last().is_some_and(|&last| last >= n) {
                    return Err(S3Error::new(
                        "InvalidPartOrder",
                        400,
                        "The list of parts was not in ascending order. Parts must be ordered \
                         by part number.",
                    ));
                }
                parts.push(n);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err(malformed());
    }
    Ok(parts)
}

/// The Put Block List body committing `parts` of `upload`.
pub fn block_list(upload: &UploadId, parts: &[u32]) -> String {
    let mut out = String::with_capacity(64 + parts.len() * 80);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for &p in parts {
        out.push_str("<Latest>");
        out.push_str(&upload.block_id(p));
        out.push_str("</Latest>");
    }
    out.push_str("</BlockList>");
    out
}

/// The ETag of an uploaded part: the hex of the MD5 the Blob service returns
/// (`Content-MD5`, base64), quoted as S3 quotes it; the block id's hex when it sent none.
pub fn part_etag(content_md5: Option<&str>, block_id: &str) -> String {
    let raw = content_md5
        .and_then(|m| {
            base64::engine::general_purpose::STANDARD
                .decode(m.trim())
                .ok()
        })
        .unwrap_or_else(|| block_id.as_bytes().to_vec());
    format!("\"{}\"", hex(&raw))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_carry_object_headers_and_give_equal_length_block_ids() {
        let h = vec![
            ("content-type".to_owned(), "text/csv".to_owned()),
            ("x-amz-meta-owner".to_owned(), "ana".to_owned()),
            ("x-amz-acl".to_owned(), "private".to_owned()),
        ];
        let id = UploadId::create(&h).unwrap();
        let up = UploadId::parse(&id).unwrap();
        assert_eq!(
            up.headers,
            vec![
                ("content-type".to_owned(), "text/csv".to_owned()),
                ("x-amz-meta-owner".to_owned(), "ana".to_owned()),
            ]
        );
        assert_eq!(up.block_id(1).len(), up.block_id(10_000).len());
        assert_ne!(up.block_id(1), up.block_id(2));
        let other = UploadId::parse(&UploadId::create(&[]).unwrap()).unwrap();
        assert!(other.headers.is_empty());
        assert_ne!(other.block_id(1), up.block_id(1));
    }

    #[test]
    fn foreign_upload_ids_are_no_such_upload() {
        for id in [
            "",
            "abc",
            "zz000000000000000000000000000000",
            "0123456789abcdef0123456789abcdef.!!",
        ] {
            assert_eq!(
                UploadId::parse(id).unwrap_err().code(),
                "NoSuchUpload",
                "{id}"
            );
        }
    }

    #[test]
    fn complete_bodies_parse_in_order() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Part><ETag>"a"</ETag><PartNumber>1</PartNumber></Part>
<Part><PartNumber>2</PartNumber><ETag>"b"</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(completed_parts(body).unwrap(), vec![1, 2]);
        let swapped = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber></Part>\
            <Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(
            completed_parts(swapped).unwrap_err().code(),
            "InvalidPartOrder"
        );
        assert_eq!(completed_parts(b"<a>").unwrap_err().code(), "MalformedXML");
        assert_eq!(
            completed_parts(b"<CompleteMultipartUpload/>")
                .unwrap_err()
                .code(),
            "MalformedXML"
        );
    }

    #[test]
    fn block_list_names_each_part() {
        let up = UploadId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let body = block_list(&up, &[1, 3]);
        assert_eq!(
            body,
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>{}</Latest>\
                 <Latest>{}</Latest></BlockList>",
                up.block_id(1),
                up.block_id(3)
            )
        );
        assert_eq!(
            up.block_id(1),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMDAwMQ=="
        );
    }

    #[test]
    fn part_etags_are_the_md5_in_hex() {
        assert_eq!(
            part_etag(Some("1B2M2Y8AsgTpgAmY7PhCfg=="), "x"),
            "\"d41d8cd98f00b204e9800998ecf8427e\""
        );
    }
}
