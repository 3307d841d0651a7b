//! The admin HTTP endpoint (hyper 1, HTTP/1.1): `/healthz`, `/readyz`, `/metrics`, `/config`,
//! the block cache's `/cache/stats` and `/cache/purge` ([`cache`]), fleet peers'
//! `/cache/invalidate` ([`invalidate`]), and STS
//! `AssumeRoleWithWebIdentity` at `POST /` (or `GET /?Action=...`, see [`crate::sts`]). Errors
//! are `application/problem+json`, except STS's, which are STS XML. With `admin.token_file`
//! set, everything but health, readiness, (by default) metrics and STS needs the bearer token
//! ([`auth`]). With `credentials = "oidc"`, the OIDC discovery document and JWKS are served
//! openly at `/.well-known/...` ([`crate::credentials::discovery`]).

mod auth;
mod cache;
mod disk;
mod invalidate;
pub(crate) mod query;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rangecache_dataplane::cache::Cache;
use rangecache_dataplane::{Metrics, SharedSnapshot};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{tls::io_text, Settings};
use crate::credentials::discovery::{self, Document};
use crate::credentials::CredentialManager;
use crate::error::{Phase, StartupError};
use crate::fleet::Fleet;
use crate::snapshot_build::{all_origins_resolved, origins};
use crate::sts::{self, Sts, StsRequest};

/// Time an admin client gets to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time open admin connections get to finish when the server stops.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Everything the admin endpoints read.
pub struct AdminState {
    /// The published snapshot.
    pub snapshot: SharedSnapshot,
    /// The settings it was built from.
    pub settings: Arc<ArcSwap<Settings>>,
    /// The data plane's counters.
    pub metrics: Arc<Metrics>,
    /// The block cache all workers share.
    pub cache: Arc<Cache>,
    /// The io driver of each worker.
    pub drivers: Vec<&'static str>,
    /// Set once the data plane runs; cleared when it starts draining.
    pub serving: AtomicBool,
    /// Successful configuration reloads.
    pub reloads_ok: AtomicU64,
    /// Rejected configuration reloads.
    pub reloads_failed: AtomicU64,
    /// STS `AssumeRoleWithWebIdentity`.
    pub sts: Sts,
    /// Fleet invalidation: this node's peers and their counters.
    pub fleet: Arc<Fleet>,
    /// Admin requests refused for a missing or wrong bearer token.
    pub unauthorized: AtomicU64,
    /// The refreshers of `credentials = "chain" | "oidc"` origins.
    pub credentials: Arc<CredentialManager>,
}

type Reply = Response<Full<Bytes>>;

/// Bind the admin listener (a `[bind_admin]` error on failure). Like the client listeners it
/// uses SO_REUSEPORT, so that a new process can bind it while the old one still runs (restart
/// hand-over); the old one closes it first when it drains.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    let bind = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    };
    bind().map_err(|e| {
        StartupError::new(Phase::BindAdmin, format!("{addr}: {}", io_text(&e))).with_cause(e)
    })
}

/// Serve admin requests on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        while conns.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        let mut stop = stop.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(state, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(CLOSE_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        conns.abort_all();
    }
}

/// Resolves once `stop` turns true (or its sender is gone); holds no borrow of the value.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Every admin endpoint and the methods it answers (the `Allow` header of a 405).
const ENDPOINTS: [(&str, &str); 7] = [
    ("/healthz", "GET, HEAD"),
    ("/readyz", "GET, HEAD"),
    ("/metrics", "GET, HEAD"),
    ("/config", "GET, HEAD"),
    ("/cache/stats", "GET, HEAD"),
    ("/cache/purge", "POST"),
    ("/cache/invalidate", "POST"),
];

/// STS requests to [`Sts`], the rest to [`respond`].
async fn route(state: Arc<AdminState>, req: http::Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let uri = req.uri();
    let has_query = uri.query().is_some_and(|q| !q.is_empty());
    if uri.path() == "/" && (method == Method::POST || (method == Method::GET && has_query)) {
        return sts_reply(&state, req).await;
    }
    if let Some(doc) = Document::at(uri.path()) {
        return oidc_document(&state, &method, doc);
    }
    // The settings guard is dropped here: it must not be held across the awaits below.
    let refused = {
        let admin = &state.settings.load().admin;
        auth::required(admin, uri.path())
            .then(|| auth::check(admin, req.headers()).err())
            .flatten()
    };
    if let Some(refusal) = refused {
        state.unauthorized.fetch_add(1, Relaxed);
        return auth::refused(refusal, uri.path());
    }
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    respond_async(state, method, target).await
}

async fn sts_reply(state: &AdminState, req: http::Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, sts::MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "cannot read the STS request body (at most {} bytes): {e}",
                    sts::MAX_BODY_BYTES
                ),
            )
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let req = StsRequest {
        method: &parts.method,
        query: parts.uri.query(),
        content_type,
        body: &body,
    };
    state.sts.handle(req).await
}

/// [`respond`] off the async thread when the work is not bounded: a purge walks every cached
/// block, and the control loop (signals, reloads) shares this runtime's one worker.
async fn respond_async(state: Arc<AdminState>, method: Method, target: String) -> Reply {
    if method != Method::POST {
        return respond(&state, &method, &target);
    }
    tokio::task::spawn_blocking(move || respond(&state, &method, &target))
        .await
        .unwrap_or_else(|e| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("admin request failed: {e}"),
            )
        })
}

/// The reply to `method target`, where `target` is the path with an optional `?query`.
pub fn respond(state: &AdminState, method: &Method, target: &str) -> Reply {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let Some(&(_, allow)) = ENDPOINTS.iter().find(|(p, _)| *p == path) else {
        let mut known: Vec<String> = ENDPOINTS
            .iter()
            .map(|(p, allow)| match *allow {
                "GET, HEAD" => (*p).to_owned(),
                other => format!("{other} {p}"),
            })
            .collect();
        known.push("POST / (STS AssumeRoleWithWebIdentity)".to_owned());
        return problem(
            StatusCode::NOT_FOUND,
            &format!("no admin endpoint at {path}; try {}", known.join(", ")),
        );
    };
    if !allow.split(", ").any(|m| m == method.as_str()) {
        let mut reply = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} answers {allow} only"),
        );
        reply
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        return reply;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        "/readyz" => readiness(state),
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render_metrics(state),
        ),
        "/cache/stats" => cache::stats(state),
        "/cache/purge" => cache::purge(state, query),
        "/cache/invalidate" => invalidate::invalidate(state, query),
        _ => config_json(state),
    }
}

/// The OIDC discovery document or JWKS: public, like any identity provider's.
fn oidc_document(state: &AdminState, method: &Method, doc: Document) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        let mut reply = problem(StatusCode::METHOD_NOT_ALLOWED, "answers GET, HEAD only");
        reply
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return reply;
    }
    let settings = state.settings.load();
    match discovery::identity(&settings) {
        Some(oidc) => json(StatusCode::OK, &discovery::render(doc, oidc)),
        None => problem(
            StatusCode::NOT_FOUND,
            "no origin uses credentials = \"oidc\": rangecache is no OIDC issuer here",
        ),
    }
}

fn readiness(state: &AdminState) -> Reply {
    let serving = state.serving.load(Relaxed);
    let resolved = all_origins_resolved(&state.snapshot.load());
    let invalid = state
        .credentials
        .invalid_origins(std::time::SystemTime::now());
    if let Some((origin, error)) = invalid.first().filter(|_| serving && resolved) {
        let why = match error {
            Some(e) => format!("origin '{origin}' has no valid credentials: {e}"),
            None => format!("origin '{origin}' has no valid credentials yet"),
        };
        return problem(StatusCode::SERVICE_UNAVAILABLE, &why);
    }
    if serving && resolved {
        return text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ready\n".into(),
        );
    }
    let why = if serving {
        "an origin has no resolved address"
    } else {
        "the data plane is not serving"
    };
    problem(StatusCode::SERVICE_UNAVAILABLE, why)
}

fn config_json(state: &AdminState) -> Reply {
    json(StatusCode::OK, &state.settings.load().effective())
}

/// `value` as pretty-printed JSON with a final newline.
fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    match serde_json::to_string_pretty(value) {
        Ok(mut body) => {
            body.push('\n');
            text(status, "application/json", body)
        }
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot render the reply: {e}"),
        ),
    }
}

/// Prometheus text: the data plane's counters, the shared cache's gauges, then the control
/// plane's gauges.
pub fn render_metrics(state: &AdminState) -> String {
    let mut out = String::with_capacity(8 * 1024);
    state.metrics.render_prometheus(&mut out);
    cache::render_metrics(&state.cache, &mut out);
    disk::render_metrics(state.cache.disk.as_deref(), &mut out);
    let snapshot = state.snapshot.load();
    let gauge = crate::prom::head;
    gauge(
        &mut out,
        "rangecache_config_generation",
        "Generation of the published configuration snapshot.",
        "gauge",
    );
    let _ = writeln!(out, "rangecache_config_generation {}", snapshot.generation);
    gauge(
        &mut out,
        "rangecache_workers",
        "Data-plane worker threads.",
        "gauge",
    );
    let _ = writeln!(out, "rangecache_workers {}", state.metrics.len());
    gauge(
        &mut out,
        "rangecache_worker_info",
        "The io driver each worker runs on.",
        "gauge",
    );
    for (i, driver) in state.drivers.iter().enumerate() {
        let _ = writeln!(
            out,
            "rangecache_worker_info{{worker=\"{i}\",driver=\"{}\"}} 1",
            label(driver)
        );
    }
    gauge(
        &mut out,
        "rangecache_origin_addresses",
        "Resolved addresses of each origin.",
        "gauge",
    );
    for o in origins(&snapshot) {
        let _ = writeln!(
            out,
            "rangecache_origin_addresses{{origin=\"{}\"}} {}",
            label(&o.name),
            o.addrs.len()
        );
    }
    gauge(
        &mut out,
        "rangecache_config_reloads_total",
        "Configuration reloads, by result.",
        "counter",
    );
    for (result, n) in [
        ("success", &state.reloads_ok),
        ("failure", &state.reloads_failed),
    ] {
        let _ = writeln!(
            out,
            "rangecache_config_reloads_total{{result=\"{result}\"}} {}",
            n.load(Relaxed)
        );
    }
    gauge(
        &mut out,
        "rangecache_admin_unauthorized_total",
        "Admin requests refused for a missing or wrong bearer token.",
        "counter",
    );
    let _ = writeln!(
        out,
        "rangecache_admin_unauthorized_total {}",
        state.unauthorized.load(Relaxed)
    );
    state.sts.render_metrics(&mut out);
    state.fleet.render_metrics(&mut out);
    state.credentials.render_metrics(&mut out);
    out
}

/// A Prometheus label value with `\`, `"` and newlines escaped.
pub(crate) fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    reply
}

/// An RFC 9457 problem document.
fn problem(status: StatusCode, detail: &str) -> Reply {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    text(status, "application/problem+json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::AddrMap;
    use crate::snapshot_build::Publisher;
    use rangecache_dataplane::cache::CacheConfig;

    /// Bucket `a` has its own origin (named `a`); `renamed` is `prod-renamed` at the default
    /// origin; any other bucket is itself at the default origin.
    const CONFIG: &str = "[origin]\nendpoint = \"http://minio:9000\"\naccess_key_id = \"AK\"\n\
        secret_access_key = \"SKSECRET\"\n[[bucket]]\nname = \"a\"\nregion = \"eu-west-1\"\n\
        [[bucket]]\nname = \"renamed\"\norigin_bucket = \"prod-renamed\"\n";

    /// Admin state over [`CONFIG`] with `cache` as the shared cache.
    pub(in crate::admin) fn state_with_cache(addrs: AddrMap, cache: Cache) -> AdminState {
        let raw = crate::config::parse(CONFIG).unwrap();
        let settings = crate::config::validate::validate(&raw, &Default::default(), None).unwrap();
        let publisher = Publisher::new(settings, addrs);
        let metrics = Arc::new(Metrics::new(2));
        rangecache_dataplane::WorkerMetrics::add(&metrics.worker(1).bytes_out, 7);
        AdminState {
            sts: Sts::new(publisher.settings_handle(), publisher.shared()),
            snapshot: publisher.shared(),
            settings: publisher.settings_handle(),
            metrics,
            cache: Arc::new(cache),
            drivers: vec!["io_uring", "epoll"],
            serving: AtomicBool::new(true),
            reloads_ok: AtomicU64::new(1),
            reloads_failed: AtomicU64::new(0),
            credentials: Arc::new(CredentialManager::new(
                test_fleet_runtime().handle().clone(),
            )),
            fleet: test_fleet(publisher.settings_handle()),
            unauthorized: AtomicU64::new(0),
        }
    }

    /// A fleet hook on a runtime that lives as long as the test process.
    pub(crate) fn test_fleet(settings: Arc<ArcSwap<Settings>>) -> Arc<Fleet> {
        let own = "127.0.0.1:9090".parse().unwrap();
        Arc::new(Fleet::new(
            test_fleet_runtime().handle().clone(),
            settings,
            own,
        ))
    }

    /// A runtime that lives as long as the test process.
    fn test_fleet_runtime() -> &'static tokio::runtime::Runtime {
        static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        })
    }

    fn state(addrs: AddrMap) -> AdminState {
        state_with_cache(addrs, Cache::new(CacheConfig::default()))
    }

    pub(in crate::admin) fn resolved() -> AddrMap {
        AddrMap::from([(
            ("minio".to_owned(), 9000),
            vec!["10.0.0.1:9000".parse().unwrap()],
        )])
    }

    pub(in crate::admin) fn body(reply: &Reply) -> String {
        use http_body_util::BodyExt;
        let bytes = futures_now(reply.body().clone().collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Poll a future that is ready at once (a `Full` body).
    fn futures_now<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    pub(in crate::admin) fn content_type(reply: &Reply) -> &str {
        reply.headers()[header::CONTENT_TYPE].to_str().unwrap()
    }

    #[test]
    fn health_and_readiness() {
        let s = state(resolved());
        let r = respond(&s, &Method::GET, "/healthz");
        assert_eq!((r.status(), body(&r).as_str()), (StatusCode::OK, "ok\n"));
        let r = respond(&s, &Method::GET, "/readyz");
        assert_eq!((r.status(), body(&r).as_str()), (StatusCode::OK, "ready\n"));

        s.serving.store(false, Relaxed);
        let r = respond(&s, &Method::GET, "/readyz");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type(&r), "application/problem+json");

        let unresolved = state(AddrMap::new());
        let r = respond(&unresolved, &Method::GET, "/readyz");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(&r).contains("no resolved address"));
    }

    #[test]
    fn metrics_include_control_plane_gauges() {
        let s = state(resolved());
        let r = respond(&s, &Method::GET, "/metrics");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(content_type(&r).starts_with("text/plain; version=0.0.4"));
        let text = body(&r);
        for line in [
            "rangecache_bytes_out_total{worker=\"1\"} 7",
            "rangecache_config_generation 1",
            "rangecache_workers 2",
            "rangecache_worker_info{worker=\"0\",driver=\"io_uring\"} 1",
            "rangecache_worker_info{worker=\"1\",driver=\"epoll\"} 1",
            "rangecache_origin_addresses{origin=\"default\"} 1",
            "rangecache_origin_addresses{origin=\"a\"} 1",
            "rangecache_config_reloads_total{result=\"success\"} 1",
            "rangecache_sts_requests_total{result=\"ok\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn config_is_json_without_secrets() {
        let s = state(resolved());
        let r = respond(&s, &Method::GET, "/config");
        assert_eq!(content_type(&r), "application/json");
        let text = body(&r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["origin"]["access_key_id"], "AK");
        assert_eq!(v["origin"]["secret_access_key"], crate::config::REDACTED);
        assert_eq!(v["bucket"][0]["name"], "a");
        assert_eq!(v["cache"]["memory"], "1GiB");
        assert_eq!(v["cache"]["block_size"], "1MiB");
        assert_eq!(v["cache"]["metadata_ttl"], "60s");
        assert_eq!(v["cache"]["metadata_entries"], 100_000);
        assert!(!text.contains("SKSECRET"));
    }

    #[test]
    fn errors_are_problem_json() {
        let s = state(resolved());
        let r = respond(&s, &Method::GET, "/nope");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(content_type(&r), "application/problem+json");
        let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["title"], "Not Found");
        assert_eq!(v["status"], 404);
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains("/nope"), "{detail}");
        assert!(
            detail.contains("/cache/stats, POST /cache/purge"),
            "{detail}"
        );

        for (method, path, allow) in [
            (Method::POST, "/metrics", "GET, HEAD"),
            (Method::DELETE, "/cache/stats", "GET, HEAD"),
            (Method::GET, "/cache/purge?bucket=b", "POST"),
            (Method::PUT, "/cache/purge", "POST"),
        ] {
            let r = respond(&s, &method, path);
            assert_eq!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(r.headers()[header::ALLOW], allow, "{method} {path}");
            assert_eq!(content_type(&r), "application/problem+json");
        }
    }

    #[test]
    fn queries_do_not_change_the_route() {
        let s = state(resolved());
        let r = respond(&s, &Method::GET, "/healthz?verbose=1");
        assert_eq!((r.status(), body(&r).as_str()), (StatusCode::OK, "ok\n"));
        let r = respond(&s, &Method::GET, "/healthz/?x");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
