//! S3 operations as Blob service requests: which request to send (or what to answer without
//! one), with which headers, and how its answer is read back.

use super::blocks::{self, UploadId};
use super::list::ListQuery;
use crate::origin::{OriginRequest, RequestBody};
use crate::s3::{uri, Operation, S3Error};

/// What an S3 request becomes.
#[derive(Debug)]
pub enum Plan {
    /// Send `req` to the Blob service and read its answer as `reply` says.
    Send {
        /// The Blob request, before authorization.
        req: OriginRequest,
        /// How its answer becomes S3's.
        reply: Reply,
    },
    /// Answer with this S3 XML body (status 200) and send nothing.
    Local(String),
    /// Answer 204 No Content and send nothing (AbortMultipartUpload).
    NoContent,
    /// Read the client's CompleteMultipartUpload body, then send Put Block List (see
    /// [`complete_request`]).
    Complete(UploadId),
}

/// How a Blob answer becomes the S3 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// GetObject / HeadObject / HeadBucket: the head translated, the body streamed as is.
    Stream,
    /// PutObject: 201 → 200 with the blob's ETag.
    Put,
    /// UploadPart: 201 → 200 with the part's ETag (from the block's MD5).
    Part {
        /// The block id (for an ETag when the service sent no MD5).
        block_id: String,
    },
    /// DeleteObject: 202 (and 404: S3 deletes are idempotent) → 204.
    Delete,
    /// ListObjects: the XML translated.
    List(ListQuery),
    /// CompleteMultipartUpload: 201 → 200 with a CompleteMultipartUploadResult.
    Complete,
}

/// The S3 request being translated.
pub struct S3Request<'a> {
    /// The operation.
    pub op: Operation,
    /// The client-side bucket name (echoed in XML answers).
    pub bucket: &'a str,
    /// The container.
    pub container: &'a str,
    /// The object key, decoded.
    pub key: Option<&'a str>,
    /// The client's raw query.
    pub query: &'a str,
    /// The request as it would go to an S3 origin (forwarded headers, body framing).
    pub s3: &'a OriginRequest,
}

/// Request headers that keep their name on the way to the Blob service.
const READ_HEADERS: &[&str] = &[
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Object headers of a PutObject, and the Blob header each becomes (Put Blob takes the
/// standard ones as the blob's properties).
const PUT_HEADERS: &[(&str, &str)] = &[
    ("content-type", "content-type"),
    ("content-md5", "content-md5"),
    ("content-encoding", "content-encoding"),
    ("content-language", "content-language"),
    ("cache-control", "x-ms-blob-cache-control"),
    ("content-disposition", "x-ms-blob-content-disposition"),
    ("if-match", "if-match"),
    ("if-none-match", "if-none-match"),
];

/// The same object headers as Put Block List sets them on the committed blob.
const COMMIT_HEADERS: &[(&str, &str)] = &[
    ("content-type", "x-ms-blob-content-type"),
    ("content-encoding", "x-ms-blob-content-encoding"),
    ("content-language", "x-ms-blob-content-language"),
    ("cache-control", "x-ms-blob-cache-control"),
    ("content-disposition", "x-ms-blob-content-disposition"),
];

/// Translate one S3 request. Operations the Blob service has no counterpart for are
/// `NotImplemented`.
pub fn plan(r: &S3Request<'_>) -> Result<Plan, S3Error> {
    let blob_path = |query: &str| {
        let mut p = uri::origin_path(r.container, Some(r.key.unwrap_or("")));
        p.push_str(query);
        p
    };
    let send = |method: &str, path: String, headers, body, reply| {
        Ok(Plan::Send {
            req: OriginRequest {
                method: method.to_owned(),
                path_and_query: path,
                headers,
                body,
            },
            reply,
        })
    };
    let param = |name: &str| {
        uri::query_pairs(r.query)
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    match r.op {
        Operation::GetObject | Operation::HeadObject => {
            if param("versionId").is_some() || param("partNumber").is_some() {
                return Err(unsupported("versionId and partNumber reads"));
            }
            let method = if r.op == Operation::GetObject {
                "GET"
            } else {
                "HEAD"
            };
            send(
                method,
                blob_path(""),
                pick(&r.s3.headers, READ_HEADERS),
                RequestBody::None,
                Reply::Stream,
            )
        }
        Operation::HeadBucket => {
            let mut p = uri::origin_path(r.container, None);
            p.push_str("?restype=container");
            send("HEAD", p, Vec::new(), RequestBody::None, Reply::Stream)
        }
        Operation::ListObjectsV1 | Operation::ListObjectsV2 => {
            let q = ListQuery::parse(r.query, r.bucket, r.op == Operation::ListObjectsV2)?;
            send(
                "GET",
                q.blob_request(r.container),
                Vec::new(),
                RequestBody::None,
                Reply::List(q),
            )
        }
        Operation::GetBucketLocation => Ok(Plan::Local(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"
                .to_owned(),
        )),
        Operation::PutObject => {
            let body = match r.s3.body {
                RequestBody::Chunked => return Err(S3Error::missing_content_length()),
                RequestBody::None => RequestBody::Length(0),
                b => b,
            };
            let mut headers = renamed(&r.s3.headers, PUT_HEADERS);
            headers.push(("x-ms-blob-type".to_owned(), "BlockBlob".to_owned()));
            headers.extend(metadata(&r.s3.headers));
            send("PUT", blob_path(""), headers, body, Reply::Put)
        }
        Operation::DeleteObject => {
            if param("versionId").is_some() {
                return Err(unsupported("versionId deletes"));
            }
            send(
                "DELETE",
                blob_path(""),
                Vec::new(),
                RequestBody::None,
                Reply::Delete,
            )
        }
        Operation::CreateMultipartUpload => {
            let id = UploadId::create(&r.s3.headers)?;
            let mut xml = String::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult \
                 xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>",
            );
            crate::s3::escape_xml(r.bucket, &mut xml);
            xml.push_str("</Bucket><Key>");
            crate::s3::escape_xml(r.key.unwrap_or(""), &mut xml);
            xml.push_str("</Key><UploadId>");
            xml.push_str(&id);
            xml.push_str("</UploadId></InitiateMultipartUploadResult>");
            Ok(Plan::Local(xml))
        }
        Operation::UploadPart => {
            let upload = UploadId::parse(&decoded(param("uploadId").unwrap_or("")))?;
            let part = blocks::part_number(param("partNumber").unwrap_or(""))?;
            let body = match r.s3.body {
                RequestBody::Chunked => return Err(S3Error::missing_content_length()),
                RequestBody::None => RequestBody::Length(0),
                b => b,
            };
            let block_id = upload.block_id(part);
            let mut query = String::from("?comp=block&blockid=");
            uri::aws_uri_encode(&block_id, false, &mut query);
            let headers = pick(&r.s3.headers, &["content-md5"]);
            send(
                "PUT",
                blob_path(&query),
                headers,
                body,
                Reply::Part { block_id },
            )
        }
        Operation::CompleteMultipartUpload => Ok(Plan::Complete(UploadId::parse(&decoded(
            param("uploadId").unwrap_or(""),
        ))?)),
        Operation::AbortMultipartUpload => {
            UploadId::parse(&decoded(param("uploadId").unwrap_or("")))?;
            Ok(Plan::NoContent)
        }
        other => Err(unsupported(other.name())),
    }
}

/// The Put Block List request that completes `upload` with `parts` (from the client's body).
pub fn complete_request(
    container: &str,
    key: &str,
    upload: &UploadId,
    parts: &[u32],
) -> (OriginRequest, String) {
    let body = blocks::block_list(upload, parts);
    let mut path = uri::origin_path(container, Some(key));
    path.push_str("?comp=blocklist");
    let mut headers = renamed(&upload.headers, COMMIT_HEADERS);
    headers.extend(metadata(&upload.headers));
    let req = OriginRequest {
        method: "PUT".to_owned(),
        path_and_query: path,
        headers,
        body: RequestBody::Length(body.len() as u64),
    };
    (req, body)
}

/// The CompleteMultipartUploadResult for a committed blob.
pub fn complete_result(bucket: &str, key: &str, etag: &str) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult \
         xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/",
    );
    let mut loc = String::new();
    uri::aws_uri_encode(bucket, false, &mut loc);
    loc.push('/');
    uri::aws_uri_encode(key, true, &mut loc);
    crate::s3::escape_xml(&loc, &mut xml);
    xml.push_str("</Location><Bucket>");
    crate::s3::escape_xml(bucket, &mut xml);
    xml.push_str("</Bucket><Key>");
    crate::s3::escape_xml(key, &mut xml);
    xml.push_str("</Key><ETag>");
    crate::s3::escape_xml(etag, &mut xml);
    xml.push_str("</ETag></CompleteMultipartUploadResult>");
    xml
}

fn unsupported(what: &str) -> S3Error {
    S3Error::new(
        "NotImplemented",
        501,
        format!("{what} is not supported for buckets on an Azure Blob Storage origin"),
    )
}

fn decoded(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

/// The headers among `headers` named in `names`.
fn pick(headers: &[(String, String)], names: &[&str]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .cloned()
        .collect()
}

/// The headers among `headers` named on the left of `map`, renamed to its right.
fn renamed(headers: &[(String, String)], map: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            map.iter()
                .find(|(s3, _)| k.eq_ignore_ascii_case(s3))
                .map(|(_, az)| ((*az).to_owned(), v.clone()))
        })
        .collect()
}

/// `x-amz-meta-*` headers as `x-ms-meta-*`.
fn metadata(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            k.get(..11)
                .filter(|p| p.eq_ignore_ascii_case("x-amz-meta-"))
                .map(|_| (format!("x-ms-meta-{}", &k[11..]), v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(headers: &[(&str, &str)], body: RequestBody) -> OriginRequest {
        OriginRequest {
            method: String::new(),
            path_and_query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    fn plan_for(
        op: Operation,
        key: Option<&str>,
        query: &str,
        req: &OriginRequest,
    ) -> Result<Plan, S3Error> {
        plan(&S3Request {
            op,
            bucket: "lake",
            container: "data",
            key,
            query,
            s3: req,
        })
    }

    #[test]
    fn reads_keep_range_and_conditions_only() {
        let req = s3(
            &[
                ("range", "bytes=0-9"),
                ("if-match", "\"0x1\""),
                ("x-amz-checksum-mode", "ENABLED"),
            ],
            RequestBody::None,
        );
        let Ok(Plan::Send { req, reply }) = plan_for(Operation::GetObject, Some("a b/c"), "", &req)
        else {
            panic!()
        };
        assert_eq!(req.method, "GET");
        assert_eq!(req.path_and_query, "/data/a%20b/c");
        assert_eq!(req.headers.len(), 2);
        assert_eq!(reply, Reply::Stream);
    }

    #[test]
    fn puts_become_block_blobs_with_metadata() {
        let req = s3(
            &[
                ("content-type", "text/csv"),
                ("x-amz-meta-owner", "ana"),
                ("cache-control", "no-cache"),
                ("x-amz-acl", "x"),
            ],
            RequestBody::Length(5),
        );
        let Ok(Plan::Send { req, reply }) = plan_for(Operation::PutObject, Some("k"), "", &req)
        else {
            panic!()
        };
        assert_eq!(
            (req.method.as_str(), req.body, reply),
            ("PUT", RequestBody::Length(5), Reply::Put)
        );
        let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "x-ms-blob-cache-control",
                "x-ms-blob-type",
                "x-ms-meta-owner"
            ]
        );
        let chunked = s3(&[], RequestBody::Chunked);
        assert_eq!(
            plan_for(Operation::PutObject, Some("k"), "", &chunked)
                .unwrap_err()
                .code(),
            "MissingContentLength"
        );
    }

    #[test]
    fn multipart_maps_to_blocks() {
        let Ok(Plan::Local(xml)) = plan_for(
            Operation::CreateMultipartUpload,
            Some("k"),
            "uploads",
            &s3(&[("content-type", "a/b")], RequestBody::None),
        ) else {
            panic!()
        };
        let id = xml
            .split("<UploadId>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned();
        let up = UploadId::parse(&id).unwrap();
        let q = format!("partNumber=7&uploadId={id}");
        let Ok(Plan::Send { req, reply }) = plan_for(
            Operation::UploadPart,
            Some("k"),
            &q,
            &s3(&[], RequestBody::Length(9)),
        ) else {
            panic!()
        };
        let mut enc = String::new();
        uri::aws_uri_encode(&up.block_id(7), false, &mut enc);
        assert_eq!(
            req.path_and_query,
            format!("/data/k?comp=block&blockid={enc}")
        );
        assert_eq!(
            reply,
            Reply::Part {
                block_id: up.block_id(7)
            }
        );
        let (req, body) = complete_request("data", "k", &up, &[7]);
        assert_eq!(req.path_and_query, "/data/k?comp=blocklist");
        assert_eq!(
            req.headers,
            vec![("x-ms-blob-content-type".to_owned(), "a/b".to_owned())]
        );
        assert_eq!(req.body, RequestBody::Length(body.len() as u64));
        let bad = plan_for(
            Operation::UploadPart,
            Some("k"),
            "partNumber=1&uploadId=nope",
            &s3(&[], RequestBody::Length(1)),
        );
        assert_eq!(bad.unwrap_err().code(), "NoSuchUpload");
        assert!(matches!(
            plan_for(
                Operation::AbortMultipartUpload,
                Some("k"),
                &format!("uploadId={id}"),
                &s3(&[], RequestBody::None)
            ),
            Ok(Plan::NoContent)
        ));
    }

    #[test]
    fn unsupported_operations_are_not_implemented() {
        let e = plan_for(
            Operation::CopyObject,
            Some("k"),
            "",
            &s3(&[], RequestBody::None),
        )
        .unwrap_err();
        assert_eq!((e.code(), e.status()), ("NotImplemented", 501));
    }
}
