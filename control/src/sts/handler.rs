//! The STS endpoint: one request in, one XML document out.
//!
//! The role comes from the current settings and the sealing key from the current snapshot,
//! both read per request, so a SIGHUP that changes roles or rotates session token keys takes
//! effect on the next request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, Method, Response};
use http_body_util::Full;
use rangecache_dataplane::auth::SessionClaims;
use rangecache_dataplane::SharedSnapshot;
use tracing::{debug, info};

use super::error::{StsCode, StsError};
use super::issuer_keys::IssuerKeys;
use super::jwt::{ClaimRules, Token};
use super::params::{self, AssumeRole};
use super::xml::{self, Assumed};
use super::{ids, FORM_CONTENT_TYPE};
use crate::admin::query;
use crate::config::auth::JwksSource;
use crate::config::Settings;

/// The session length when the request names none (capped by the role's `max_duration`).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

/// An STS reply.
pub type Reply = Response<Full<Bytes>>;

/// One received STS request.
#[derive(Debug, Clone, Copy)]
pub struct StsRequest<'a> {
    /// `GET` (parameters in the query) or `POST` (parameters in a form body).
    pub method: &'a Method,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// The STS service: what it reads to answer, the JWKS cache and its counters.
pub struct Sts {
    settings: Arc<ArcSwap<Settings>>,
    snapshot: SharedSnapshot,
    issuer_keys: IssuerKeys,
    /// ok, denied, invalid, error.
    counters: [AtomicU64; 4],
}

const RESULTS: [&str; 4] = ["ok", "denied", "invalid", "error"];

impl Sts {
    /// A service answering from the published `settings` and `snapshot`.
    pub fn new(settings: Arc<ArcSwap<Settings>>, snapshot: SharedSnapshot) -> Self {
        Self::with_issuer_keys(settings, snapshot, IssuerKeys::default())
    }

    /// [`Self::new`] with a given JWKS cache.
    pub fn with_issuer_keys(
        settings: Arc<ArcSwap<Settings>>,
        snapshot: SharedSnapshot,
        issuer_keys: IssuerKeys,
    ) -> Self {
        Self {
            settings,
            snapshot,
            issuer_keys,
            counters: Default::default(),
        }
    }

    /// Answer `req` now.
    pub async fn handle(&self, req: StsRequest<'_>) -> Reply {
        self.handle_at(req, SystemTime::now()).await
    }

    /// Answer `req` as if the time were `now`.
    pub async fn handle_at(&self, req: StsRequest<'_>, now: SystemTime) -> Reply {
        let request_id = ids::request_id().unwrap_or_else(|| "00000000".into());
        let result = match parameters(&req) {
            Ok(pairs) => self.assume(&pairs, now).await,
            Err(e) => Err(e),
        };
        let (label, status, body) = match result {
            Ok(a) => {
                info!(
                    "sts: {:?} from {} assumed role {} as session {} ({}) until {}",
                    a.subject,
                    a.provider,
                    a.role,
                    a.session_name,
                    a.access_key_id,
                    xml::rfc3339(a.expires_at)
                );
                ("ok", http::StatusCode::OK, xml::success(&a, &request_id))
            }
            Err(e) => {
                debug!("sts: request {request_id} refused: {e}");
                (
                    e.code.result_label(),
                    e.code.status(),
                    xml::error(&e, &request_id),
                )
            }
        };
        if let Some(i) = RESULTS.iter().position(|r| *r == label) {
            self.counters[i].fetch_add(1, Relaxed);
        }
        let mut reply = Response::new(Full::new(Bytes::from(body)));
        *reply.status_mut() = status;
        reply.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/xml"),
        );
        reply
    }

    async fn assume(
        &self,
        pairs: &[(String, String)],
        now: SystemTime,
    ) -> Result<Assumed, StsError> {
        let p = params::parse(pairs)?;
        let settings = self.settings.load_full();
        let snapshot = self.snapshot.load_full();
        let session_keys = &snapshot.auth.session_keys;
        if session_keys.is_empty() {
            return Err(not_configured());
        }
        let Some(role) = settings.auth.role(&p.role) else {
            debug!("sts: no role named {:?}", p.role);
            return Err(StsError::access_denied());
        };
        let duration = duration(&p, role.max_duration)?;
        let token = Token::decode(&p.token)?;
        token.check_issuer(&role.issuer)?;
        let keys = match &role.jwks {
            JwksSource::File { keys, .. } => keys.clone(),
            JwksSource::Url(url) => self.issuer_keys.get(url, token.kid()).await?,
        };
        token.verify_signature(&keys)?;
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let identity = token.check_claims(
            now_secs,
            &ClaimRules {
                audiences: &role.audiences,
                subjects: &role.subjects,
            },
        )?;

        let unavailable = || StsError::new(StsCode::ServiceUnavailable, "no random source");
        let access_key_id = ids::access_key_id().ok_or_else(unavailable)?;
        let secret_access_key = ids::secret_access_key().ok_or_else(unavailable)?;
        let expires_at = now_secs + duration.as_secs();
        let claims = SessionClaims {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            expires_at,
            role: role.name.clone(),
            subject: identity.subject.clone(),
            grants: role.grants.clone(),
        };
        let session_token = session_keys.seal(&claims).ok_or_else(not_configured)?;
        Ok(Assumed {
            subject: identity.subject,
            audience: identity.audience,
            role: role.name.clone(),
            session_name: p.session_name,
            role_id: ids::role_id(&role.name),
            access_key_id,
            secret_access_key,
            session_token,
            expires_at,
            provider: role.issuer.clone(),
        })
    }

    /// `rangecache_sts_requests_total` in Prometheus text.
    pub fn render_metrics(&self, out: &mut String) {
        let name = "rangecache_sts_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} STS AssumeRoleWithWebIdentity requests, by result.\n\
             # TYPE {name} counter"
        );
        for (result, n) in RESULTS.iter().zip(&self.counters) {
            let _ = writeln!(out, "{name}{{result=\"{result}\"}} {}", n.load(Relaxed));
        }
    }
}

fn not_configured() -> StsError {
    StsError::new(
        StsCode::ServiceUnavailable,
        "STS is not configured: SESSION_TOKEN_KEY is not set",
    )
}

/// `DurationSeconds`, or the default, within the role's `max_duration`.
fn duration(p: &AssumeRole, max: Duration) -> Result<Duration, StsError> {
    match p.duration_secs {
        None => Ok(DEFAULT_DURATION.min(max)),
        Some(secs) if secs <= max.as_secs() => Ok(Duration::from_secs(secs)),
        Some(secs) => Err(StsError::validation(format!(
            "The requested DurationSeconds ({secs}) exceeds the MaxSessionDuration set for \
             this role ({})",
            max.as_secs()
        ))),
    }
}

/// The request's parameters: the query's, then a POST's form body's.
fn parameters(req: &StsRequest<'_>) -> Result<Vec<(String, String)>, StsError> {
    let bad = |e: query::QueryError| StsError::validation(e.to_string());
    let mut pairs = query::parse(req.query.unwrap_or_default()).map_err(bad)?;
    if *req.method == Method::POST {
        let form = req
            .content_type
            .map(|ct| ct.split(';').next().unwrap_or_default().trim())
            .is_none_or(|ct| ct.eq_ignore_ascii_case(FORM_CONTENT_TYPE));
        if !form {
            return Err(StsError::validation(format!(
                "Content-Type must be {FORM_CONTENT_TYPE}"
            )));
        }
        let body = std::str::from_utf8(req.body)
            .map_err(|_| StsError::validation("the form body is not UTF-8"))?;
        pairs.extend(query::parse(body.trim_end()).map_err(bad)?);
    }
    Ok(pairs)
}
