//! rangecache-loadtest: the whole-system load harness (S3 origin simulator, analytics
//! workloads, side-by-side reports). The simulator and workloads arrive with the load-test
//! issue; until then this binary only says so.

fn main() -> anyhow::Result<()> {
    eprintln!(
        "rangecache-loadtest: the origin simulator and workloads are not built yet; \
         use scripts/run-local.sh to run rangecache in front of a local SeaweedFS"
    );
    std::process::exit(2)
}
