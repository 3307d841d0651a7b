use std::sync::Mutex as StdMutex;

use rangecache_dataplane::cache::ObjectId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::test_support::TempFile;

/// How a fake peer behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answer every request with this status.
    Answer(u16),
    /// Accept, read, never answer.
    Silent,
    /// Answer 200 without announcing it, then close the connection (a peer that restarts
    /// between two calls).
    AnswerThenClose,
}

/// A fake peer on loopback recording the request heads it got.
struct FakePeer {
    base: String,
    heads: Arc<StdMutex<Vec<String>>>,
}

async fn fake_peer(behaviour: Behaviour) -> FakePeer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(StdMutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        seen.lock().unwrap().push(head);
                        let status = match behaviour {
                            Behaviour::Answer(status) => status,
                            Behaviour::AnswerThenClose => 200,
                            Behaviour::Silent => continue,
                        };
                        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\n{{}}");
                        if sock.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                        if matches!(behaviour, Behaviour::AnswerThenClose) {
                            return;
                        }
                    }
                }
            });
        }
    });
    FakePeer { base, heads }
}

fn settings(peers: &[&str], token: Option<&TempFile>, timeout: &str) -> Arc<ArcSwap<Settings>> {
    let list: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    let mut text = format!(
        "[fleet]\nnode_id = \"node-a\"\npeers = [{}]\ninvalidation_timeout = \"{timeout}\"\n",
        list.join(", ")
    );
    if let Some(file) = token {
        text.push_str(&format!("[admin]\ntoken_file = \"{}\"\n", file.path()));
    }
    let raw = crate::config::parse(&text).unwrap();
    let s = crate::config::validate::validate(&raw, &Default::default(), None).unwrap();
    Arc::new(ArcSwap::from_pointee(s))
}

fn object() -> Invalidation {
    Invalidation::Object(ObjectId::new("default", "bkt", "dir/a b.parquet"))
}

async fn run(fleet: &Fleet, what: Invalidation) {
    let pending = fleet.invalidate(what).expect("peers to wait for");
    pending.done.await.expect("the fan-out reports back");
}

#[tokio::test]
async fn fans_out_with_the_token_and_skips_this_node() {
    let a = fake_peer(Behaviour::Answer(200)).await;
    let b = fake_peer(Behaviour::Answer(200)).await;
    let own: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let token = TempFile::new("tok-123\n");
    let s = settings(
        &[&a.base, "http://127.0.0.1:9", &b.base],
        Some(&token),
        "2s",
    );
    let fleet = Fleet::new(Handle::current(), s, own);
    fleet.refresh().await;
    let bases: Vec<String> = fleet.peers().iter().map(|p| p.url.base.clone()).collect();
    assert_eq!(
        bases,
        [a.base.clone(), b.base.clone()],
        "this node is skipped"
    );

    run(&fleet, object()).await;
    run(
        &fleet,
        Invalidation::Bucket {
            origin: "default".into(),
            bucket: "bkt".into(),
        },
    )
    .await;
    for peer in [&a, &b] {
        let heads = peer.heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 2, "{heads:?}");
        let first = heads[0].to_ascii_lowercase();
        assert!(
            first.starts_with(
                "post /cache/invalidate?origin=default&bucket=bkt&key=dir%2fa%20b.parquet http/1.1"
            ),
            "{first}"
        );
        assert!(first.contains("authorization: bearer tok-123"), "{first}");
        assert!(first.contains("x-rangecache-node: node-a"), "{first}");
        assert!(heads[1].starts_with("POST /cache/invalidate?origin=default&bucket=bkt HTTP/1.1"));
    }
    for p in fleet.peers().iter() {
        assert_eq!(p.stats.count(Outcome::Ok), 2);
    }
    let mut out = String::new();
    fleet.render_metrics(&mut out);
    assert!(out.contains("rangecache_fleet_peers 2"), "{out}");
    let line = format!(
        "rangecache_fleet_invalidations_total{{peer=\"{}\",result=\"ok\"}} 2",
        a.base
    );
    assert!(out.lines().any(|l| l == line), "{out}");
}

#[tokio::test]
async fn silent_refusing_and_unreachable_peers_are_counted() {
    let silent = fake_peer(Behaviour::Silent).await;
    let refusing = fake_peer(Behaviour::Answer(401)).await;
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let s = settings(&[&silent.base, &refusing.base, &closed], None, "200ms");
    let fleet = Fleet::new(Handle::current(), s, "127.0.0.1:9".parse().unwrap());
    fleet.refresh().await;
    let pending = fleet.invalidate(object()).unwrap();
    assert_eq!(pending.bound, Duration::from_millis(200) + WAIT_GRACE);
    pending.done.await.unwrap();
    let peers = fleet.peers();
    assert_eq!(peers[0].stats.count(Outcome::Timeout), 1);
    assert_eq!(peers[1].stats.count(Outcome::Rejected), 1);
    assert_eq!(peers[2].stats.count(Outcome::Error), 1);
    assert_eq!(fleet.inflight.load(Relaxed), 0);
}

#[tokio::test]
async fn no_peers_means_no_wait_and_reload_keeps_counters() {
    let a = fake_peer(Behaviour::Answer(204)).await;
    let s = settings(&[], None, "1s");
    let fleet = Fleet::new(Handle::current(), s.clone(), "127.0.0.1:9".parse().unwrap());
    fleet.refresh().await;
    assert!(fleet.invalidate(object()).is_none());

    let next = settings(&[&a.base], None, "1s");
    s.store(next.load_full());
    fleet.refresh().await;
    run(&fleet, object()).await;
    let before = fleet.peers()[0].clone();
    fleet.refresh().await;
    assert!(Arc::ptr_eq(&before, &fleet.peers()[0]), "counters survive");
    assert_eq!(before.stats.count(Outcome::Ok), 1);
}

#[tokio::test]
async fn a_peer_that_closed_its_connection_is_called_again() {
    let a = fake_peer(Behaviour::AnswerThenClose).await;
    let s = settings(&[&a.base], None, "2s");
    let fleet = Fleet::new(Handle::current(), s, "127.0.0.1:9".parse().unwrap());
    fleet.refresh().await;
    for _ in 0..3 {
        run(&fleet, object()).await;
    }
    let peer = fleet.peers()[0].clone();
    assert_eq!(peer.stats.count(Outcome::Ok), 3);
    assert_eq!(peer.stats.count(Outcome::Error), 0);
    assert_eq!(a.heads.lock().unwrap().len(), 3);
}

#[test]
fn own_addresses() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    assert!(is_own(lo, lo));
    assert!(is_own(lo, "0.0.0.0".parse().unwrap()));
    assert!(!is_own(lo, "127.0.0.2".parse().unwrap()));
    // TEST-NET-3: never an address of this host.
    assert!(!is_own(
        "203.0.113.7".parse().unwrap(),
        "0.0.0.0".parse().unwrap()
    ));
}
