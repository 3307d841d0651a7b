//! Range planning: what the cache does with a client's `Range` header before it touches a block.
//!
//! Run: `cargo bench -p rangecache-benches --bench range`
//!
//! A 1 MiB read at a 4 MiB offset of a 1 GiB object with 1 MiB blocks (`bytes=4194304-5242879`,
//! the shape of a Parquet column-chunk read): parse the header, resolve it against the size, find
//! the blocks, group the (here all missing) blocks into origin requests. Each step is also
//! measured alone.

use std::hint::black_box;

use criterion::Criterion;
use rangecache_dataplane::cache::range::{
    block_span, parse_range, resolve, slice_in_block, ByteRange, ParsedRange, Resolved,
};

const HEADER: &[u8] = b"bytes=4194304-5242879";
const SIZE: u64 = 1 << 30;
const BLOCK: u64 = 1 << 20;

fn plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("range_plan");

    group.bench_function("parse+resolve+span", |b| {
        b.iter(|| {
            let ParsedRange::Single(spec) = parse_range(Some(black_box(HEADER))) else {
                unreachable!("a single range");
            };
            let resolved = resolve(Some(spec), black_box(SIZE));
            let Resolved::Partial(r) = resolved else {
                unreachable!("satisfiable");
            };
            black_box(block_span(r, black_box(BLOCK)))
        })
    });

    group.bench_function("parse_range", |b| {
        b.iter(|| parse_range(Some(black_box(HEADER))))
    });

    let ParsedRange::Single(spec) = parse_range(Some(HEADER)) else {
        unreachable!("a single range");
    };
    group.bench_function("resolve", |b| {
        b.iter(|| resolve(Some(black_box(spec)), black_box(SIZE)))
    });

    let r = ByteRange::new(4_194_304, 5_242_879);
    group.bench_function("block_span+slice_in_block", |b| {
        b.iter(|| {
            let span = block_span(black_box(r), black_box(BLOCK));
            black_box(slice_in_block(r, span.first_block, BLOCK))
        })
    });

    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    plan(&mut c);
    c.final_summary();
}
