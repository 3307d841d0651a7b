//! The S3 operations rangecache recognises, decided from method, path shape and query.

/// An S3 API operation. Unrecognised sub-resources map to [`Operation::OtherBucket`] or
/// [`Operation::OtherObject`] and are still streamed through to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET /`
    ListBuckets,
    /// `GET /bucket` (no `list-type=2`)
    ListObjectsV1,
    /// `GET /bucket?list-type=2`
    ListObjectsV2,
    /// `GET /bucket?uploads`
    ListMultipartUploads,
    /// `HEAD /bucket`
    HeadBucket,
    /// `PUT /bucket`
    CreateBucket,
    /// `DELETE /bucket`
    DeleteBucket,
    /// `GET /bucket?location`
    GetBucketLocation,
    /// `POST /bucket?delete`
    DeleteObjects,
    /// Any other bucket-level request (`?versioning`, `?policy`, ...).
    OtherBucket,
    /// `GET /bucket/key`
    GetObject,
    /// `HEAD /bucket/key`
    HeadObject,
    /// `PUT /bucket/key`
    PutObject,
    /// `PUT /bucket/key` with `x-amz-copy-source`
    CopyObject,
    /// `DELETE /bucket/key`
    DeleteObject,
    /// `POST /bucket/key?uploads`
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber&uploadId`
    UploadPart,
    /// `PUT /bucket/key?partNumber&uploadId` with `x-amz-copy-source`
    UploadPartCopy,
    /// `POST /bucket/key?uploadId`
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId`
    AbortMultipartUpload,
    /// `GET /bucket/key?uploadId`
    ListParts,
    /// Any other object-level request (`?tagging`, `?acl`, ...).
    OtherObject,
}

impl Operation {
    /// Every operation, in [`Operation::index`] order.
    pub const ALL: [Operation; 22] = [
        Operation::ListBuckets,
        Operation::ListObjectsV1,
        Operation::ListObjectsV2,
        Operation::ListMultipartUploads,
        Operation::HeadBucket,
        Operation::CreateBucket,
        Operation::DeleteBucket,
        Operation::GetBucketLocation,
        Operation::DeleteObjects,
        Operation::OtherBucket,
        Operation::GetObject,
        Operation::HeadObject,
        Operation::PutObject,
        Operation::CopyObject,
        Operation::DeleteObject,
        Operation::CreateMultipartUpload,
        Operation::UploadPart,
        Operation::UploadPartCopy,
        Operation::CompleteMultipartUpload,
        Operation::AbortMultipartUpload,
        Operation::ListParts,
        Operation::OtherObject,
    ];

    /// Number of distinct operations (size of per-operation metric arrays).
    pub const COUNT: usize = Self::ALL.len();

    /// A dense index in `0..COUNT`, stable for the life of the process.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The S3 API name, used as the `op` metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::ListObjectsV1 => "ListObjects",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::HeadBucket => "HeadBucket",
            Operation::CreateBucket => "CreateBucket",
            Operation::DeleteBucket => "DeleteBucket",
            Operation::GetBucketLocation => "GetBucketLocation",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::OtherBucket => "OtherBucket",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::PutObject => "PutObject",
            Operation::CopyObject => "CopyObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::UploadPartCopy => "UploadPartCopy",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListParts => "ListParts",
            Operation::OtherObject => "OtherObject",
        }
    }

    /// True for the operations that read an `x-amz-copy-source` object.
    pub fn is_copy(self) -> bool {
        matches!(self, Operation::CopyObject | Operation::UploadPartCopy)
    }

    /// True when the operation changes what a later read of the key would return; the cache
    /// invalidates the key after such a request succeeds.
    pub fn writes_object(self) -> bool {
        matches!(
            self,
            Operation::PutObject
                | Operation::CopyObject
                | Operation::DeleteObject
                | Operation::DeleteObjects
                | Operation::CompleteMultipartUpload
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Operation;

    #[test]
    fn index_matches_position_in_all() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{op:?}");
        }
    }
}
