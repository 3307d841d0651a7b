//! `[server.tls]` validation, and the client listener over TLS on both io drivers: protocol
//! versions, ALPN, mTLS, the handshake deadline, and certificate rotation through the snapshot
//! while a connection stays open.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::{DataPlane, DataPlaneConfig, IoDriver, Metrics};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::*;
use crate::config::{parse, validate::validate as validate_config, Settings};
use crate::resolve::AddrMap;
use crate::snapshot_build::Publisher;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

fn raw(cert: &str, key: &str, ca: &str) -> RawServerTls {
    let path = |n: &str| {
        if n.is_empty() {
            String::new()
        } else {
            data(n).display().to_string()
        }
    };
    RawServerTls {
        cert_file: path(cert),
        key_file: path(key),
        client_ca_file: path(ca),
        ..RawServerTls::default()
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn no_files_is_plain_http() {
    assert!(validate(&RawServerTls::default(), SECOND)
        .unwrap()
        .is_none());
}

#[test]
fn loads_rsa_and_ecdsa_chains_with_alpn() {
    for (cert, key) in [
        ("server-rsa.pem", "server-rsa.key"),
        ("server-ec.pem", "server-ec.key"),
    ] {
        let tls = validate(&raw(cert, key, ""), SECOND).unwrap().unwrap();
        assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(tls.handshake_timeout, SECOND);
    }
    let mtls = validate(&raw("server-ec.pem", "server-ec.key", "ca.pem"), SECOND)
        .unwrap()
        .unwrap();
    assert_eq!(mtls.client_ca_file, Some(data("ca.pem")));
}

#[test]
fn bad_files_name_the_key_and_the_file() {
    let err = |r: RawServerTls| {
        let e = validate(&r, SECOND).unwrap_err();
        assert_eq!(e.phase(), Phase::ValidateConfig);
        e.detail().to_owned()
    };
    assert_eq!(
        err(raw("server-rsa.pem", "", "")),
        "server.tls.key_file: must be set when server.tls.cert_file is"
    );
    assert!(err(raw("", "server-rsa.key", "")).starts_with("server.tls.cert_file: must be set"));
    assert!(err(raw("", "", "ca.pem")).starts_with("server.tls.cert_file: must be set"));
    let mut missing = raw("server-rsa.pem", "server-rsa.key", "");
    missing.cert_file = "/nonexistent/cert.pem".into();
    assert_eq!(
        err(missing),
        "server.tls.cert_file: /nonexistent/cert.pem: No such file or directory"
    );
    let d = err(raw("server-rsa.key", "server-rsa.key", ""));
    assert!(
        d.starts_with("server.tls.cert_file: ") && d.ends_with("contains no PEM certificates"),
        "{d}"
    );
    let d = err(raw("server-rsa.pem", "server-rsa.pem", ""));
    assert!(
        d.starts_with("server.tls.key_file: ") && d.ends_with("contains no PEM private key"),
        "{d}"
    );
    let d = err(raw("server-rsa.pem", "server-ec.key", ""));
    assert!(
        d.starts_with("server.tls.key_file: ") && d.contains("does not fit the certificate"),
        "{d}"
    );
    let garbage = crate::test_support::TempFile::new(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    );
    let mut bad = raw("", "server-rsa.key", "");
    bad.cert_file = garbage.path();
    let d = err(bad);
    assert!(
        d.starts_with("server.tls.cert_file: ") && d.contains("unusable certificate"),
        "{d}"
    );
    let d = err(raw("server-rsa.pem", "server-rsa.key", "server-rsa.key"));
    assert!(d.starts_with("server.tls.client_ca_file: "), "{d}");
}

#[test]
fn reload_may_rotate_files_but_not_switch_tls() {
    let file = |body: &str| settings(&format!("[server.tls]\n{body}"));
    let running = file(&files("server-rsa", ""));
    let mut next = file(&files("server-ec", ""));
    assert!(next.keep_restart_only(&running).is_empty());
    assert_eq!(
        next.server.tls.as_ref().unwrap().cert_file,
        data("server-ec.pem")
    );
    let mut plain = settings("");
    assert_eq!(plain.keep_restart_only(&running), ["server.tls"]);
    assert!(plain.server.tls.is_some());
    // The effective view shows the files and parses back.
    let text = crate::config::effective_toml(&running);
    let back = parse(&text).unwrap();
    assert_eq!(
        back.server.tls.cert_file,
        data("server-rsa.pem").display().to_string()
    );
}

fn files(name: &str, ca: &str) -> String {
    let ca = if ca.is_empty() {
        String::new()
    } else {
        format!("client_ca_file = {:?}\n", data(ca))
    };
    format!(
        "cert_file = {:?}\nkey_file = {:?}\nhandshake_timeout = \"300ms\"\n{ca}",
        data(&format!("{name}.pem")),
        data(&format!("{name}.key")),
    )
}

fn settings(text: &str) -> Settings {
    let text =
        format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{text}");
    validate_config(&parse(&text).unwrap(), &Default::default(), None).unwrap()
}

/// A data plane with one worker on `driver`, serving `settings` on a free loopback port.
fn start(driver: IoDriver, settings: Settings) -> (DataPlane, Publisher, Arc<Metrics>) {
    let publisher = Publisher::new(settings, AddrMap::new());
    let metrics = Arc::new(Metrics::new(1));
    let config = DataPlaneConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        driver,
        pin_cores: false,
        backlog: 64,
        cache: Default::default(),
        disk: None,
        max_connections: 0,
        access_log: None,
    };
    let plane = DataPlane::start(config, publisher.shared(), metrics.clone()).unwrap();
    (plane, publisher, metrics)
}

fn pem_certs(name: &str) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(data(name)).unwrap();
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pem_key(name: &str) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(data(name)).unwrap();
    rustls_pemfile::private_key(&mut pem.as_slice())
        .unwrap()
        .unwrap()
}

/// A client trusting `ca.pem`, offering ALPN `http/1.1`, at one protocol version, with the
/// client certificate `client` (`"client"`, `"other-client"`) or none.
fn client_config(version: &'static rustls::SupportedProtocolVersion, client: &str) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(pem_certs("ca.pem"));
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots);
    let mut config = if client.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder
            .with_client_auth_cert(
                pem_certs(&format!("{client}.pem")),
                pem_key(&format!("{client}.key")),
            )
            .unwrap()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Connect and finish the handshake (or fail it).
fn connect(addr: SocketAddr, config: ClientConfig) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// One request on `tls`, its whole response read; returns the status line. Unsigned, so the
/// default-deny policy answers 403 AccessDenied: enough to show HTTP flows over the session.
fn status_line(tls: &mut Tls) -> std::io::Result<String> {
    tls.write_all(b"GET /bucket/key HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    tls.flush()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while got.len() < head_end + length {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(head.lines().next().unwrap_or_default().to_owned())
}

fn leaf(tls: &Tls) -> CertificateDer<'static> {
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn drivers() -> [IoDriver; 2] {
    [IoDriver::IoUring, IoDriver::Epoll]
}

#[test]
fn serves_http_over_tls_12_and_13_with_alpn() {
    for driver in drivers() {
        let (plane, _publisher, metrics) = start(
            driver,
            settings(&format!("[server.tls]\n{}", files("server-rsa", ""))),
        );
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut tls = connect(plane.local_addr(), client_config(version, "")).unwrap();
            assert_eq!(tls.conn.protocol_version(), Some(version.version));
            assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_eq!(leaf(&tls), pem_certs("server-rsa.pem")[0]);
            assert_eq!(status_line(&mut tls).unwrap(), "HTTP/1.1 403 Forbidden");
            // Keep-alive over the same session.
            assert_eq!(status_line(&mut tls).unwrap(), "HTTP/1.1 403 Forbidden");
        }
        // A plain-HTTP client gets no HTTP answer, only a closed connection.
        let mut plain = TcpStream::connect(plane.local_addr()).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);
        assert!(!answer.starts_with(b"HTTP/"), "{driver:?}");
        plane.shutdown(Duration::ZERO);
        let m = metrics.worker(0);
        assert_eq!(m.tls_handshakes.load(Relaxed), 2, "{driver:?}");
        assert_eq!(m.tls_handshake_failures.load(Relaxed), 1, "{driver:?}");
    }
}

#[test]
fn mtls_refuses_clients_without_a_trusted_certificate() {
    for driver in drivers() {
        let (plane, _publisher, metrics) = start(
            driver,
            settings(&format!("[server.tls]\n{}", files("server-ec", "ca.pem"))),
        );
        let addr = plane.local_addr();
        let v13 = &rustls::version::TLS13;
        let mut ok = connect(addr, client_config(v13, "client")).unwrap();
        assert_eq!(status_line(&mut ok).unwrap(), "HTTP/1.1 403 Forbidden");
        for (version, client) in [
            (v13, ""),
            (v13, "other-client"),
            (&rustls::version::TLS12, ""),
        ] {
            // TLS 1.3 clients finish their side before the server's verdict arrives; the
            // refusal shows at the first read either way.
            let refused = connect(addr, client_config(version, client))
                .and_then(|mut tls| status_line(&mut tls));
            assert!(refused.is_err(), "{driver:?} {client:?}: {refused:?}");
        }
        plane.shutdown(Duration::ZERO);
        let m = metrics.worker(0);
        assert_eq!(m.tls_handshakes.load(Relaxed), 1, "{driver:?}");
        assert_eq!(m.tls_handshake_failures.load(Relaxed), 3, "{driver:?}");
    }
}

#[test]
fn a_stalled_handshake_is_cut_at_the_deadline() {
    for driver in drivers() {
        let (plane, _publisher, metrics) = start(
            driver,
            settings(&format!("[server.tls]\n{}", files("server-rsa", ""))),
        );
        // Connect, send nothing: the server must close the socket (300ms deadline) rather
        // than wait; the client's own 10 s read timeout is only a guard.
        let mut idle = TcpStream::connect(plane.local_addr()).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16];
        let read = idle.read(&mut buf);
        assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
        plane.shutdown(Duration::ZERO);
        assert_eq!(
            metrics.worker(0).tls_handshake_timeouts.load(Relaxed),
            1,
            "{driver:?}"
        );
    }
}

#[test]
fn rotation_applies_to_new_connections_and_keeps_open_ones() {
    for driver in drivers() {
        let (plane, mut publisher, _metrics) = start(
            driver,
            settings(&format!("[server.tls]\n{}", files("server-rsa", ""))),
        );
        let v13 = &rustls::version::TLS13;
        let mut before = connect(plane.local_addr(), client_config(v13, "")).unwrap();
        assert_eq!(leaf(&before), pem_certs("server-rsa.pem")[0]);
        let rotated = settings(&format!("[server.tls]\n{}", files("server-ec", "")));
        publisher.replace(rotated, AddrMap::new());
        let mut after = connect(plane.local_addr(), client_config(v13, "")).unwrap();
        assert_eq!(leaf(&after), pem_certs("server-ec.pem")[0]);
        assert_eq!(status_line(&mut after).unwrap(), "HTTP/1.1 403 Forbidden");
        // The connection made before the rotation still serves requests.
        assert_eq!(status_line(&mut before).unwrap(), "HTTP/1.1 403 Forbidden");
        plane.shutdown(Duration::ZERO);
    }
}
