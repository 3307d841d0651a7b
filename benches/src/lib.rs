//! criterion micro-benchmarks of rangecache's hot paths; see `benches/` (run with
//! `cargo bench -p rangecache-benches`).
