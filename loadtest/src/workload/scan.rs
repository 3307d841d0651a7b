//! Large sequential ranges, each file read once front to back; clients share one cursor, so
//! together they stream the files in order (a full-table scan).

use super::{Op, Read, Workload};
use crate::object::{synthetic_key, ObjectRef};
use crate::range::ByteRange;
use crate::units::fmt_bytes;

/// Parameters of the scan workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanSpec {
    /// Number of files.
    pub files: usize,
    /// Size of each file.
    pub file_size: u64,
    /// Size of each sequential range.
    pub range_size: u64,
}

impl Default for ScanSpec {
    fn default() -> Self {
        ScanSpec {
            files: 8,
            file_size: 128 << 20,
            range_size: 8 << 20,
        }
    }
}

/// The scan workload.
#[derive(Debug)]
pub struct Scan {
    spec: ScanSpec,
    objects: Vec<ObjectRef>,
    file: usize,
    offset: u64,
}

impl Scan {
    /// The files to scan.
    pub fn new(spec: ScanSpec) -> Self {
        assert!(spec.files > 0 && spec.file_size > 0 && spec.range_size > 0);
        let objects = (0..spec.files)
            .map(|i| ObjectRef {
                key: synthetic_key("scan", i, spec.file_size),
                size: spec.file_size,
            })
            .collect();
        Scan {
            spec,
            objects,
            file: 0,
            offset: 0,
        }
    }
}

impl Workload for Scan {
    fn name(&self) -> &'static str {
        "scan"
    }

    fn describe(&self) -> String {
        format!(
            "{} files of {} read once in {} sequential ranges",
            self.spec.files,
            fmt_bytes(self.spec.file_size),
            fmt_bytes(self.spec.range_size)
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, _client: usize) -> Option<Read> {
        if self.offset >= self.spec.file_size {
            self.file += 1;
            self.offset = 0;
        }
        if self.file >= self.spec.files {
            return None;
        }
        let len = self.spec.range_size.min(self.spec.file_size - self.offset);
        let r = Read {
            object: self.file,
            range: Some(ByteRange::span(self.offset, len)),
            op: Op::Get,
        };
        self.offset += len;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_byte_once_in_order() {
        let mut s = Scan::new(ScanSpec {
            files: 2,
            file_size: 10,
            range_size: 4,
        });
        let mut got = Vec::new();
        while let Some(r) = s.next(0) {
            got.push((r.object, r.range.unwrap().resolve(10).unwrap()));
        }
        assert_eq!(
            got,
            vec![
                (0, (0, 4)),
                (0, (4, 8)),
                (0, (8, 10)),
                (1, (0, 4)),
                (1, (4, 8)),
                (1, (8, 10))
            ]
        );
    }
}
