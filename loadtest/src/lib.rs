//! rangecache-loadtest: the whole-system load harness of rangecache.
//!
//! - [`sim`]: an S3 origin simulator with S3's timing, SigV4 verification and synthetic,
//!   verifiable content ([`content`], [`object`], real-shaped Parquet files in
//!   [`parquet_file`]).
//! - [`workload`]: analytics access patterns (parquet, zipf, scan, herd, first-touch).
//! - [`client`]: a lean HTTP/1.1 load generator that checks every byte it receives.
//! - [`bench`]: targets (direct, rangecache, nginx), interleaved rounds, the suite, and the
//!   memory bound run.
//! - [`report`]: tables, JSON and an SVG of the results.

pub mod bench;
pub mod client;
pub mod content;
pub mod http1;
pub mod object;
pub mod pace;
pub mod parquet_file;
pub mod range;
pub mod report;
pub mod rng;
pub mod sim;
pub mod trace;
pub mod units;
pub mod workload;
pub mod zipf;
