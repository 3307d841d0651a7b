//! `[[bucket]] backend = "azure" | "gcs"`: buckets served from Azure Blob Storage or from
//! Google Cloud Storage's S3-interoperable XML API.
//!
//! ```toml
//! [[bucket]]
//! name = "lake"                  # the bucket clients use
//! backend = "azure"
//! [bucket.azure]
//! account = "mystorageacct"
//! container = "lake"             # default: origin_bucket, else name
//! shared_key_env = "AZURE_STORAGE_KEY"   # or shared_key_file, sas_env, sas_file
//! # endpoint = "https://mystorageacct.blob.core.windows.net"   (the default)
//! ```

use std::sync::Arc;

use base64::Engine;
use rangecache_dataplane::origin::azure::{AzureAuth, AzureOrigin};
use rangecache_dataplane::{Backend, Credentials};
use serde::{Deserialize, Serialize};

use super::env::EnvVars;
use super::raw::{RawBucket, RawOrigin};
use super::settings::BucketConfig;
use super::tls::TlsBuilder;
use super::validate::{credentials, invalid, origin, parse_endpoint, OriginKeys};
use crate::error::StartupError;

/// The GCS XML API endpoint a `backend = "gcs"` bucket uses unless it names another.
pub const GCS_ENDPOINT: &str = "https://storage.googleapis.com";

/// The SigV4 region GCS expects from HMAC-signed requests.
pub const GCS_REGION: &str = "auto";

/// `[bucket.azure]` as written. The key or SAS is read from a file or an environment
/// variable (exactly one of the four), never written in the configuration itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAzure {
    /// Storage account name.
    pub account: String,
    /// Container; empty = the bucket's `origin_bucket`, else its `name`.
    pub container: String,
    /// Blob endpoint; empty = `https://{account}.blob.core.windows.net`. May carry a path
    /// (Azurite: `http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: String,
    /// File holding the base64 account key (Shared Key).
    pub shared_key_file: String,
    /// Environment variable holding the base64 account key (Shared Key).
    pub shared_key_env: String,
    /// File holding a SAS token (`sv=...&sig=...`).
    pub sas_file: String,
    /// Environment variable holding a SAS token.
    pub sas_env: String,
}

/// The backends a bucket may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An S3-compatible origin (the default).
    S3,
    /// Azure Blob Storage.
    Azure,
    /// Google Cloud Storage (XML API, HMAC keys).
    Gcs,
}

/// The backend `b` names.
pub fn kind(key: &str, b: &RawBucket) -> Result<Kind, StartupError> {
    let kind = match b.backend.as_deref().map(str::trim) {
        None | Some("s3") => Kind::S3,
        Some("azure") => Kind::Azure,
        Some("gcs") => Kind::Gcs,
        Some(other) => {
            return Err(invalid(
                &format!("{key}.backend"),
                format_args!("'{other}' is not one of s3, azure, gcs"),
            ))
        }
    };
    if b.azure.is_some() && kind != Kind::Azure {
        return Err(invalid(
            &format!("{key}.azure"),
            "is set but backend is not \"azure\"",
        ));
    }
    Ok(kind)
}

/// A `backend = "azure"` bucket.
pub fn azure_bucket(
    key: &str,
    b: &RawBucket,
    base: &RawOrigin,
    env: &EnvVars,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<BucketConfig, StartupError> {
    let Some(az) = &b.azure else {
        return Err(invalid(
            &format!("{key}.azure"),
            "backend = \"azure\" needs a [bucket.azure] table with account and a key or SAS",
        ));
    };
    for (set, name) in [
        (b.endpoint.is_some(), "endpoint"),
        (b.region.is_some(), "region"),
        (b.access_key_id.is_some(), "access_key_id"),
        (b.secret_access_key.is_some(), "secret_access_key"),
        (b.session_token.is_some(), "session_token"),
    ] {
        if set {
            return Err(invalid(
                &format!("{key}.{name}"),
                "is not used with backend = \"azure\" (set azure.endpoint and azure's key or SAS)",
            ));
        }
    }
    let k = format!("{key}.azure");
    let account = az.account.trim();
    if account.is_empty() || !account.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            &format!("{k}.account"),
            "must be the storage account name (letters and digits)",
        ));
    }
    let container = match az.container.trim() {
        "" => b.origin_bucket.clone().unwrap_or_else(|| b.name.clone()),
        c => c.to_owned(),
    };
    let endpoint = match az.endpoint.trim() {
        "" => format!("https://{account}.blob.core.windows.net"),
        e => e.trim_end_matches('/').to_owned(),
    };
    let (root, path_prefix) = split_path(&endpoint);
    // Checks scheme, host and port, and that no query is left.
    parse_endpoint(&format!("{k}.endpoint"), root)?;
    let auth = azure_auth(&k, az, env)?;
    let keys = OriginKeys {
        key,
        name: &b.name,
        endpoint: root,
        region: "azure",
        credentials: None,
        refresh: None,
        ca_file: b.ca_file.as_deref().unwrap_or(&base.ca_file),
        backend: Backend::Azure(Arc::new(AzureOrigin {
            account: account.to_owned(),
            path_prefix: path_prefix.to_owned(),
            auth,
        })),
    };
    let mut o = origin(keys, base, tls, warnings)?;
    o.endpoint = endpoint;
    Ok(BucketConfig {
        name: b.name.clone(),
        origin_bucket: container,
        origin: Some(o),
        backend: b.backend.clone(),
        azure: Some(az.clone()),
    })
}

/// `scheme://authority` and the path after it (`""` when none).
fn split_path(endpoint: &str) -> (&str, &str) {
    let after_scheme = endpoint.find("://").map_or(0, |i| i + 3);
    match endpoint[after_scheme..].find('/') {
        Some(i) => endpoint.split_at(after_scheme + i),
        None => (endpoint, ""),
    }
}

fn azure_auth(k: &str, az: &RawAzure, env: &EnvVars) -> Result<AzureAuth, StartupError> {
    let given: Vec<(&str, &str)> = [
        ("shared_key_file", az.shared_key_file.as_str()),
        ("shared_key_env", az.shared_key_env.as_str()),
        ("sas_file", az.sas_file.as_str()),
        ("sas_env", az.sas_env.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .collect();
    let [(field, source)] = given.as_slice() else {
        return Err(invalid(
            k,
            "set exactly one of shared_key_file, shared_key_env, sas_file, sas_env",
        ));
    };
    let at = format!("{k}.{field}");
    let value = if field.ends_with("_file") {
        std::fs::read_to_string(source.trim())
            .map_err(|e| invalid(&at, format_args!("{}: {e}", source.trim())))?
    } else {
        env.get(source.trim()).cloned().ok_or_else(|| {
            invalid(
                &at,
                format_args!("environment variable {} is not set", source.trim()),
            )
        })?
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(&at, "is empty"));
    }
    if field.starts_with("shared_key") {
        let key = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| invalid(&at, "the account key is not base64"))?;
        Ok(AzureAuth::SharedKey(key))
    } else {
        Ok(AzureAuth::Sas(value.trim_start_matches('?').to_owned()))
    }
}

/// A `backend = "gcs"` bucket: an S3 origin at GCS's XML API, SigV4 with an HMAC key in
/// region `auto`, and the request headers GCS does not take removed (`origin::gcs`).
pub fn gcs_bucket(
    key: &str,
    b: &RawBucket,
    base: &RawOrigin,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<BucketConfig, StartupError> {
    let (Some(ak), Some(sk)) = (&b.access_key_id, &b.secret_access_key) else {
        return Err(invalid(
            &format!("{key}.access_key_id"),
            "backend = \"gcs\" needs access_key_id and secret_access_key (a GCS HMAC key)",
        ));
    };
    let creds: Option<Credentials> = credentials(key, ak, sk, "")?;
    let keys = OriginKeys {
        key,
        name: &b.name,
        endpoint: b.endpoint.as_deref().unwrap_or(GCS_ENDPOINT),
        region: b.region.as_deref().unwrap_or(GCS_REGION),
        credentials: creds,
        refresh: None,
        ca_file: b.ca_file.as_deref().unwrap_or(&base.ca_file),
        backend: Backend::Gcs,
    };
    Ok(BucketConfig {
        name: b.name.clone(),
        origin_bucket: b.origin_bucket.clone().unwrap_or_else(|| b.name.clone()),
        origin: Some(origin(keys, base, tls, warnings)?),
        backend: b.backend.clone(),
        azure: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::validate::validate;

    fn settings(text: &str, env: &[(&str, &str)]) -> Result<crate::config::Settings, String> {
        let raw = crate::config::parse(text).map_err(|e| e.to_string())?;
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        validate(&raw, &env, None).map_err(|e| e.to_string())
    }

    const AZ: &str = "[[bucket]]\nname = \"lake\"\nbackend = \"azure\"\n[bucket.azure]\n\
        account = \"devstoreaccount1\"\ncontainer = \"data\"\n\
        endpoint = \"http://127.0.0.1:10000/devstoreaccount1\"\nshared_key_env = \"AZ_KEY\"\n";

    #[test]
    fn azure_buckets_validate_into_an_azure_origin() {
        let s = settings(AZ, &[("AZ_KEY", "a2V5")]).unwrap();
        let b = &s.buckets[0];
        assert_eq!(b.origin_bucket, "data");
        let o = b.origin.as_ref().unwrap();
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 10000));
        let rangecache_dataplane::Backend::Azure(az) = &o.backend else {
            panic!()
        };
        assert_eq!(az.path_prefix, "/devstoreaccount1");
        assert_eq!(format!("{:?}", az.auth), "SharedKey(<redacted>)");
        assert!(
            !s.warnings.iter().any(|w| w.contains("'lake'")),
            "{:?}",
            s.warnings
        );
        let text = crate::config::effective_toml(&s);
        assert!(
            text.contains("shared_key_env = \"AZ_KEY\"") && !text.contains("a2V5"),
            "{text}"
        );
        crate::config::parse(&text).unwrap();
    }

    #[test]
    fn azure_errors_name_the_key() {
        let e = settings(AZ, &[]).unwrap_err();
        assert!(
            e.contains("bucket[lake].azure.shared_key_env: environment variable AZ_KEY is not set"),
            "{e}"
        );
        let e = settings(AZ, &[("AZ_KEY", "not base64!")]).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let two = AZ.replace(
            "shared_key_env = \"AZ_KEY\"",
            "shared_key_env = \"AZ_KEY\"\nsas_env = \"S\"",
        );
        assert!(settings(&two, &[("AZ_KEY", "a2V5")])
            .unwrap_err()
            .contains("exactly one"));
        let e = settings("[[bucket]]\nname = \"x\"\nbackend = \"azure\"\n", &[]).unwrap_err();
        assert!(e.contains("bucket[x].azure"), "{e}");
        let e = settings("[[bucket]]\nname = \"x\"\nbackend = \"blob\"\n", &[]).unwrap_err();
        assert!(e.contains("bucket[x].backend"), "{e}");
    }

    #[test]
    fn azure_endpoint_defaults_to_the_account_host() {
        let text = AZ.replace(
            "endpoint = \"http://127.0.0.1:10000/devstoreaccount1\"\n",
            "",
        );
        let s = settings(&text, &[("AZ_KEY", "a2V5")]).unwrap();
        let o = s.buckets[0].origin.as_ref().unwrap();
        assert_eq!(
            (o.host.as_str(), o.port),
            ("devstoreaccount1.blob.core.windows.net", 443)
        );
    }

    #[test]
    fn gcs_is_an_s3_origin_at_google_in_region_auto() {
        let text = "[[bucket]]\nname = \"g\"\nbackend = \"gcs\"\naccess_key_id = \"GOOG1\"\nsecret_access_key = \"s\"\n";
        let s = settings(text, &[]).unwrap();
        let o = s.buckets[0].origin.as_ref().unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.region.as_str()),
            ("storage.googleapis.com", 443, "auto")
        );
        assert_eq!(o.backend, rangecache_dataplane::Backend::Gcs);
        let e = settings("[[bucket]]\nname = \"g\"\nbackend = \"gcs\"\n", &[]).unwrap_err();
        assert!(e.contains("HMAC"), "{e}");
    }
}
