//! `credentials = "static" | "chain" | "oidc"` and `[origin.oidc]`, validated into the
//! [`RefreshedCredentials`] of an origin (static keys stay in [`super::validate`]).

use std::path::PathBuf;
use std::sync::Arc;

use super::raw::{RawBucket, RawOidc, RawOrigin};
use super::raw_credentials::DEFAULT_CREDENTIALS;
use super::settings::OriginConfig;
use super::units::{format_duration, parse_duration};
use super::validate::{invalid, parse_endpoint};
use crate::credentials::{CredentialSource, OidcKeys, OidcSettings, RefreshedCredentials};
use crate::error::StartupError;

/// Shortest `oidc.token_lifetime`: a token must survive the STS round trip.
const MIN_TOKEN_LIFETIME_SECS: u64 = 60;

/// Longest `oidc.token_lifetime`: tokens are minted per refresh, so they need not live long.
const MAX_TOKEN_LIFETIME_SECS: u64 = 3600;

/// How a `[[bucket]]` gets its credentials.
#[derive(Debug)]
pub enum BucketSource {
    /// It names no credential key: the default origin's credentials (a refreshed default is
    /// shared, one refresher for both).
    Inherit,
    /// Static keys (its own, or the default origin's static ones).
    Static,
    /// Its own refreshed credentials.
    Refreshed(RefreshedCredentials),
}

/// `[origin]`'s refreshed credentials; `None` for `static`.
pub fn default_source(raw: &RawOrigin) -> Result<Option<RefreshedCredentials>, StartupError> {
    let has_keys = !raw.access_key_id.is_empty() || !raw.secret_access_key.is_empty();
    source("origin", &raw.credentials, has_keys, || raw.oidc.clone())
}

/// A `[[bucket]]`'s credential source; `key` is its `bucket[name]` prefix.
pub fn bucket_source(
    key: &str,
    b: &RawBucket,
    base: &RawOrigin,
) -> Result<BucketSource, StartupError> {
    // Keys written empty say "unsigned" for a static bucket; beside a refreshed source (the
    // effective view writes them so) they are no keys at all.
    let has_keys = b.access_key_id.is_some() || b.secret_access_key.is_some();
    let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    let nonempty_keys = set(&b.access_key_id) || set(&b.secret_access_key);
    let kind = match (&b.credentials, &b.oidc) {
        (Some(kind), _) => kind.as_str(),
        (None, Some(_)) => "oidc",
        (None, None) if has_keys || b.session_token.is_some() => return Ok(BucketSource::Static),
        (None, None) => return Ok(BucketSource::Inherit),
    };
    let merged = || merge(b.oidc.as_ref(), &base.oidc);
    Ok(match source(key, kind, nonempty_keys, merged)? {
        Some(r) => BucketSource::Refreshed(r),
        None => BucketSource::Static,
    })
}

fn source(
    key: &str,
    kind: &str,
    has_keys: bool,
    oidc: impl FnOnce() -> RawOidc,
) -> Result<Option<RefreshedCredentials>, StartupError> {
    let source = match kind.trim() {
        "static" | "" => return Ok(None),
        "chain" => CredentialSource::Chain,
        "oidc" => CredentialSource::Oidc(Arc::new(oidc_settings(&format!("{key}.oidc"), &oidc())?)),
        other => {
            return Err(invalid(
                &format!("{key}.credentials"),
                format_args!("expected \"static\", \"chain\" or \"oidc\", got '{other}'"),
            ))
        }
    };
    if has_keys {
        return Err(invalid(
            &format!("{key}.access_key_id"),
            format_args!(
                "is set, but {key}.credentials = \"{}\" fetches credentials itself; remove the \
                 keys or use credentials = \"static\"",
                source.name()
            ),
        ));
    }
    Ok(Some(RefreshedCredentials::new(source)))
}

/// A bucket's `oidc` fields over `[origin.oidc]`'s (empty = inherited).
fn merge(over: Option<&RawOidc>, base: &RawOidc) -> RawOidc {
    let Some(over) = over else {
        return base.clone();
    };
    let pick = |a: &String, b: &String| if a.is_empty() { b.clone() } else { a.clone() };
    RawOidc {
        key_file: pick(&over.key_file, &base.key_file),
        issuer: pick(&over.issuer, &base.issuer),
        audience: pick(&over.audience, &base.audience),
        role_arn: pick(&over.role_arn, &base.role_arn),
        sts_endpoint: pick(&over.sts_endpoint, &base.sts_endpoint),
        token_lifetime: pick(&over.token_lifetime, &base.token_lifetime),
    }
}

fn oidc_settings(key: &str, raw: &RawOidc) -> Result<OidcSettings, StartupError> {
    let required = |field: &str, value: &str| {
        if value.trim().is_empty() {
            Err(invalid(
                &format!("{key}.{field}"),
                "is required with credentials = \"oidc\"",
            ))
        } else {
            Ok(value.trim().to_owned())
        }
    };
    let key_file = PathBuf::from(required("key_file", &raw.key_file)?);
    let keys = OidcKeys::load(&key_file).map_err(|e| {
        invalid(
            &format!("{key}.key_file"),
            format_args!("{}: {e}", key_file.display()),
        )
    })?;
    let issuer = required("issuer", &raw.issuer)?;
    let issuer_uri: http::Uri = issuer.parse().map_err(|e| {
        invalid(
            &format!("{key}.issuer"),
            format_args!("invalid URL '{issuer}': {e}"),
        )
    })?;
    if !matches!(issuer_uri.scheme_str(), Some("http" | "https")) || issuer_uri.host().is_none() {
        return Err(invalid(
            &format!("{key}.issuer"),
            "must be an http(s):// URL (relying parties fetch its discovery document)",
        ));
    }
    let sts_endpoint = required("sts_endpoint", &raw.sts_endpoint)?;
    parse_endpoint(&format!("{key}.sts_endpoint"), &sts_endpoint)?;
    let lifetime_key = format!("{key}.token_lifetime");
    let token_lifetime = parse_duration(&raw.token_lifetime).map_err(|e| {
        invalid(
            &lifetime_key,
            format_args!("invalid duration '{}': {e}", raw.token_lifetime),
        )
    })?;
    if !(MIN_TOKEN_LIFETIME_SECS..=MAX_TOKEN_LIFETIME_SECS).contains(&token_lifetime.as_secs()) {
        return Err(invalid(
            &lifetime_key,
            format_args!("must be between 1m and 1h, got '{}'", raw.token_lifetime),
        ));
    }
    Ok(OidcSettings {
        key_file,
        keys: Arc::new(keys),
        issuer,
        audience: required("audience", &raw.audience)?,
        role_arn: required("role_arn", &raw.role_arn)?,
        sts_endpoint,
        token_lifetime,
    })
}

/// rangecache serves one OIDC identity: every `oidc` origin must use the same issuer and key
/// file (audience, role and STS may differ).
pub fn one_identity<'a>(
    mut origins: impl Iterator<Item = &'a OriginConfig>,
) -> Result<(), StartupError> {
    let mut first: Option<(&str, &OidcSettings)> = None;
    origins.try_for_each(|o| {
        let Some(CredentialSource::Oidc(oidc)) = o.refresh.as_ref().map(|r| &r.source) else {
            return Ok(());
        };
        match first {
            None => first = Some((&o.name, oidc)),
            Some((name, f)) if f.issuer != oidc.issuer || f.key_file != oidc.key_file => {
                return Err(invalid(
                    &format!("bucket[{}].oidc", o.name),
                    format_args!(
                        "issuer and key_file must be those of origin '{name}': rangecache \
                         serves one OIDC identity"
                    ),
                ))
            }
            Some(_) => {}
        }
        Ok(())
    })
}

/// `(credentials, oidc)` of an origin in file form.
pub fn view(o: &OriginConfig) -> (String, RawOidc) {
    match o.refresh.as_ref().map(|r| &r.source) {
        None => (DEFAULT_CREDENTIALS.to_owned(), RawOidc::default()),
        Some(CredentialSource::Chain) => ("chain".to_owned(), RawOidc::default()),
        Some(CredentialSource::Oidc(oidc)) => (
            "oidc".to_owned(),
            RawOidc {
                key_file: oidc.key_file.display().to_string(),
                issuer: oidc.issuer.clone(),
                audience: oidc.audience.clone(),
                role_arn: oidc.role_arn.clone(),
                sts_endpoint: oidc.sts_endpoint.clone(),
                token_lifetime: format_duration(oidc.token_lifetime),
            },
        ),
    }
}
