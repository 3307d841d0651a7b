//! TLS on rangecache's client listener, measured: cached range GETs over TLS against the same
//! over plain HTTP (interleaved rounds, one run), and TLS handshakes per second.
//!
//! `scripts/bench-tls.sh` starts the origin simulator and two single-worker rangecache
//! processes (plain and TLS) and runs this; by hand:
//!
//! ```text
//! tls-bench hit-path --plain 127.0.0.1:8080 --tls 127.0.0.1:8443 --ca ca.pem \
//!     --bucket bench --key hot-size-64MiB --range 64KiB --conns 16 --seconds 5 --rounds 3
//! tls-bench handshakes --tls 127.0.0.1:8443 --ca ca.pem --conns 8 --seconds 5
//! ```
//!
//! Requests are unsigned: the targets must grant anonymous reads on the bucket. Every body is
//! checked byte for byte against the simulator's deterministic content. The client runs on
//! one thread (one core) and shares the machine with the servers.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use rangecache_loadtest::content;
use rangecache_loadtest::rng::Rng;
use rangecache_loadtest::units::parse_size;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Cached range GETs over TLS vs plain, and TLS handshakes per second.
#[derive(Debug, Parser)]
#[command(name = "tls-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Random aligned ranges of one cached object, plain and TLS in alternating rounds.
    HitPath(HitArgs),
    /// Connect, full handshake (no resumption), close, as fast as `--conns` loops can.
    Handshakes(ShakeArgs),
}

#[derive(Debug, Args)]
struct HitArgs {
    /// Plain-HTTP rangecache address.
    #[arg(long)]
    plain: SocketAddr,
    /// TLS rangecache address.
    #[arg(long)]
    tls: SocketAddr,
    /// CA bundle the TLS listener's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    #[arg(long, default_value = "bench")]
    bucket: String,
    /// A simulator object (`<name>-size-<bytes>`); warmed into the cache first.
    #[arg(long, default_value = "hot-size-64MiB")]
    key: String,
    /// Range size; ranges start at multiples of it.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    range: u64,
    /// Concurrent keep-alive connections per target.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (A B A B ...).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Process id of the plain server: its CPU time per round is reported (Linux /proc).
    #[arg(long)]
    plain_pid: Option<u32>,
    /// Process id of the TLS server.
    #[arg(long)]
    tls_pid: Option<u32>,
}

#[derive(Debug, Args)]
struct ShakeArgs {
    /// TLS rangecache address.
    #[arg(long)]
    tls: SocketAddr,
    /// CA bundle the TLS listener's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// Concurrent connect-handshake-close loops.
    #[arg(long, default_value_t = 8)]
    conns: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Process id of the TLS server: its CPU time is reported (Linux /proc).
    #[arg(long)]
    tls_pid: Option<u32>,
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// A TLS client configuration trusting `ca`, ALPN `http/1.1`.
fn tls_config(ca: &PathBuf) -> Result<rustls::ClientConfig> {
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn connect(addr: SocketAddr, tls: Option<&TlsConnector>) -> io::Result<Box<dyn Stream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(match tls {
        None => Box::new(tcp),
        Some(connector) => {
            let name = ServerName::try_from("localhost").expect("a valid name");
            Box::new(connector.connect(name, tcp).await?)
        }
    })
}

/// One GET of `len` bytes at `offset`; returns the body bytes that differ from the content.
async fn get_range(
    s: &mut Box<dyn Stream>,
    buf: &mut Vec<u8>,
    path: &str,
    seed: u64,
    offset: u64,
    len: u64,
) -> Result<u64> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nRange: bytes={offset}-{}\r\n\r\n",
        offset + len - 1
    );
    s.write_all(req.as_bytes()).await?;
    buf.clear();
    let head_end = loop {
        if let Some(i) = memchr_head(buf) {
            break i;
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not text")?;
    if !head.starts_with("HTTP/1.1 206") {
        bail!("unexpected response: {}", head.lines().next().unwrap_or(""));
    }
    let body_len: u64 = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .context("no content-length")?;
    if body_len != len {
        bail!("content-length {body_len}, asked for {len}");
    }
    let total = head_end + len as usize;
    while buf.len() < total {
        let start = buf.len();
        buf.resize(total.min(start + 256 * 1024), 0);
        let n = s.read(&mut buf[start..]).await?;
        buf.truncate(start + n);
        if n == 0 {
            bail!("connection closed in the body");
        }
    }
    Ok(content::verify(seed, offset, &buf[head_end..total]))
}

fn memchr_head(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

struct Round {
    requests: u64,
    bytes: u64,
    bad: u64,
    secs: f64,
    /// CPU seconds the server used in the round, when its pid is known.
    server_cpu: Option<f64>,
    latency: Histogram<u64>,
}

async fn hit_round(
    args: &HitArgs,
    addr: SocketAddr,
    tls: Option<TlsConnector>,
    pid: Option<u32>,
    seed: u64,
    size: u64,
    round: u64,
) -> Result<Round> {
    let cpu_before = cpu_secs(pid);
    let path = format!("/{}/{}", args.bucket, args.key);
    let slots = (size / args.range).max(1);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.conns {
        let (path, tls, len) = (path.clone(), tls.clone(), args.range);
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = Rng::new(round * 1000 + c as u64 + 1);
            let mut s = connect(addr, tls.as_ref()).await?;
            let mut buf = Vec::with_capacity(len as usize + 4096);
            let mut hist = Histogram::<u64>::new(3)?;
            let (mut n, mut bad) = (0u64, 0u64);
            while Instant::now() < deadline {
                let offset = rng.below(slots) * len;
                let t = Instant::now();
                bad += get_range(&mut s, &mut buf, &path, seed, offset, len).await?;
                hist.record(t.elapsed().as_micros() as u64)?;
                n += 1;
            }
            anyhow::Ok((n, bad, hist))
        }));
    }
    let mut out = Round {
        requests: 0,
        bytes: 0,
        bad: 0,
        secs: 0.0,
        server_cpu: None,
        latency: Histogram::new(3)?,
    };
    for t in tasks {
        let (n, bad, hist) = t.await??;
        out.requests += n;
        out.bad += bad;
        out.latency.add(hist)?;
    }
    out.secs = started.elapsed().as_secs_f64();
    out.bytes = out.requests * args.range;
    out.server_cpu = cpu_before.zip(cpu_secs(pid)).map(|(a, b)| b - a);
    Ok(out)
}

async fn hit_path(args: HitArgs) -> Result<()> {
    let size = rangecache_loadtest::object::synthetic_size(&args.key)
        .context("--key must be a simulator object, <name>-size-<bytes>")?;
    let seed = content::object_seed(&args.bucket, &args.key, 0);
    let tls = TlsConnector::from(Arc::new(tls_config(&args.ca)?));
    // Warm both caches with whole blocks of the object, checked.
    for (addr, t) in [(args.plain, None), (args.tls, Some(&tls))] {
        let mut s = connect(addr, t).await?;
        let mut buf = Vec::new();
        let step = 1 << 20;
        let path = format!("/{}/{}", args.bucket, args.key);
        for off in (0..size).step_by(step as usize) {
            let bad = get_range(&mut s, &mut buf, &path, seed, off, step.min(size - off)).await?;
            if bad > 0 {
                bail!("warm-up read {bad} wrong bytes from {addr}");
            }
        }
    }
    println!(
        "hit path: {} ranges of {} ({} MiB object, cached), {} connections per target, {} s rounds; \
         client: 1 thread on the same 2 cores as the servers",
        rangecache_loadtest::units::fmt_bytes(args.range),
        args.key,
        size >> 20,
        args.conns,
        args.seconds
    );
    // Per target, summed over its rounds.
    let empty = || -> Result<Round> {
        Ok(Round {
            requests: 0,
            bytes: 0,
            bad: 0,
            secs: 0.0,
            server_cpu: Some(0.0),
            latency: Histogram::new(3)?,
        })
    };
    let mut totals = [empty()?, empty()?];
    let targets = [
        ("plain", args.plain, None, args.plain_pid),
        ("tls", args.tls, Some(tls.clone()), args.tls_pid),
    ];
    for round in 0..args.rounds {
        for (i, (name, addr, t, pid)) in targets.iter().cloned().enumerate() {
            let r = hit_round(&args, addr, t, pid, seed, size, (round * 2 + i) as u64).await?;
            println!("  round {} {name:5}: {}", round + 1, r.line());
            let tot = &mut totals[i];
            tot.secs += r.secs;
            tot.requests += r.requests;
            tot.bytes += r.bytes;
            tot.bad += r.bad;
            tot.server_cpu = tot.server_cpu.zip(r.server_cpu).map(|(a, b)| a + b);
            tot.latency.add(&r.latency)?;
        }
    }
    for (name, t) in [("plain", &totals[0]), ("tls", &totals[1])] {
        println!("  total {name:5}: {}", t.line());
    }
    let rate = |t: &Round| t.requests as f64 / t.secs;
    println!(
        "  tls / plain: throughput {:.2}",
        rate(&totals[1]) / rate(&totals[0])
    );
    if let (Some(p), Some(t)) = (totals[0].server_cpu, totals[1].server_cpu) {
        if p > 0.0 && t > 0.0 {
            println!(
                "  tls / plain: requests per server CPU-second {:.2}",
                (totals[1].requests as f64 / t) / (totals[0].requests as f64 / p)
            );
        }
    }
    if totals[0].bad + totals[1].bad > 0 {
        bail!("bytes failed verification");
    }
    Ok(())
}

impl Round {
    /// Rates, latency percentiles, server CPU rates (when known) and failed bytes, one line.
    fn line(&self) -> String {
        let server = match self.server_cpu {
            Some(cpu) if cpu > 0.0 => format!(
                "server {:6.0} req/s/core {:7.1} MB/s/core  ",
                self.requests as f64 / cpu,
                self.bytes as f64 / cpu / 1e6
            ),
            _ => String::new(),
        };
        format!(
            "{:7.0} req/s {:7.1} MB/s  p50 {:6} us  p99 {:6} us  {server}bad bytes {}",
            self.requests as f64 / self.secs,
            self.bytes as f64 / self.secs / 1e6,
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.bad
        )
    }
}

async fn handshakes(args: ShakeArgs) -> Result<()> {
    println!(
        "TLS handshakes against {} ({} loops of connect + handshake + close, {} s each; \
         client: 1 thread on the same cores)",
        args.tls, args.conns, args.seconds
    );
    {
        let label = "full";
        let mut config = tls_config(&args.ca)?;
        config.resumption = rustls::client::Resumption::disabled();
        let connector = TlsConnector::from(Arc::new(config));
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        let cpu_before = cpu_secs(args.tls_pid);
        let mut tasks = Vec::new();
        for _ in 0..args.conns {
            let connector = connector.clone();
            let addr = args.tls;
            tasks.push(tokio::task::spawn_local(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let mut s = connect(addr, Some(&connector)).await?;
                    let _ = s.shutdown().await;
                    n += 1;
                }
                anyhow::Ok(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_before.zip(cpu_secs(args.tls_pid)).map(|(a, b)| b - a);
        println!(
            "  {label:7}: {total} handshakes in {secs:.1} s = {:.0} per second{}",
            total as f64 / secs,
            match cpu {
                Some(c) if c > 0.0 => format!(
                    "; server CPU {c:.2} s = {:.0} handshakes per server core-second",
                    total as f64 / c
                ),
                _ => String::new(),
            }
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        match cli.command {
            Command::HitPath(a) => hit_path(a).await,
            Command::Handshakes(a) => handshakes(a).await,
        }
    })
}
