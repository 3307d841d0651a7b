//! The admin HTTP endpoint (hyper 1, HTTP/1.1): `/healthz`, `/readyz`, `/metrics`, `/config`.
//! Errors are `application/problem+json`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rangecache_dataplane::{Metrics, SharedSnapshot};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{tls::io_text, Settings};
use crate::error::{Phase, StartupError};
use crate::snapshot_build::{all_origins_resolved, origins};

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
    /// The io driver of each worker.
    pub drivers: Vec<&'static str>,
    /// Set once the data plane runs; cleared when it starts draining.
    pub serving: AtomicBool,
    /// Successful configuration reloads.
    pub reloads_ok: AtomicU64,
    /// Rejected configuration reloads.
    pub reloads_failed: AtomicU64,
}

type Reply = Response<Full<Bytes>>;

/// Bind the admin listener (a `[bind_admin]` error on failure).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).await.map_err(|e| {
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
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let reply = respond(&state, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(reply) }
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

/// The reply to `method path`.
pub fn respond(state: &AdminState, method: &Method, path: &str) -> Reply {
    const KNOWN: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/config"];
    if !KNOWN.contains(&path) {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("no admin endpoint at {path}; try /healthz, /readyz, /metrics or /config"),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut reply = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} answers GET and HEAD only"),
        );
        reply
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
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
        _ => config_json(state),
    }
}

fn readiness(state: &AdminState) -> Reply {
    let serving = state.serving.load(Relaxed);
    let resolved = all_origins_resolved(&state.snapshot.load());
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
    match serde_json::to_string_pretty(&state.settings.load().effective()) {
        Ok(mut body) => {
            body.push('\n');
            text(StatusCode::OK, "application/json", body)
        }
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot render the configuration: {e}"),
        ),
    }
}

/// Prometheus text: the data plane's counters, then the control plane's gauges.
pub fn render_metrics(state: &AdminState) -> String {
    let mut out = String::with_capacity(8 * 1024);
    state.metrics.render_prometheus(&mut out);
    let snapshot = state.snapshot.load();
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
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
    out
}

/// A Prometheus label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
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

    fn state(addrs: AddrMap) -> AdminState {
        let raw = crate::config::parse(
            "[origin]\nendpoint = \"http://minio:9000\"\naccess_key_id = \"AK\"\n\
             secret_access_key = \"SKSECRET\"\n[[bucket]]\nname = \"a\"\nregion = \"eu-west-1\"\n",
        )
        .unwrap();
        let settings = crate::config::validate::validate(&raw, &Default::default(), None).unwrap();
        let publisher = Publisher::new(settings, addrs);
        let metrics = Arc::new(Metrics::new(2));
        rangecache_dataplane::WorkerMetrics::add(&metrics.worker(1).bytes_out, 7);
        AdminState {
            snapshot: publisher.shared(),
            settings: publisher.settings_handle(),
            metrics,
            drivers: vec!["io_uring", "epoll"],
            serving: AtomicBool::new(true),
            reloads_ok: AtomicU64::new(1),
            reloads_failed: AtomicU64::new(0),
        }
    }

    fn resolved() -> AddrMap {
        AddrMap::from([(
            ("minio".to_owned(), 9000),
            vec!["10.0.0.1:9000".parse().unwrap()],
        )])
    }

    fn body(reply: &Reply) -> String {
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

    fn content_type(reply: &Reply) -> &str {
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
        assert!(v["detail"].as_str().unwrap().contains("/nope"));

        let r = respond(&s, &Method::POST, "/metrics");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
