//! Environment overrides: `RANGECACHE_<SECTION>__<FIELD>=value` replaces `[section] field`.
//!
//! The value is parsed as the field's type (string, integer or boolean; durations and sizes
//! are strings until validation), and a bad value is an error naming the variable. Overrides
//! are applied through the TOML value tree, so every `[server]`, `[origin]` and `[cache]`
//! field, and `auth.mode`, can be overridden without a hand-kept list of names. Lists
//! (`auth.session_token_keys`, `[[auth.keys]]`, ...) cannot; session token keys have their own
//! variable, `SESSION_TOKEN_KEY`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::raw::RawConfig;
use crate::error::{Phase, StartupError};

/// A snapshot of the process environment (or a test's stand-in for it).
pub type EnvVars = BTreeMap<String, String>;

/// Prefix of every override variable.
pub const PREFIX: &str = "RANGECACHE_";

/// Variables with the prefix that configure something other than the TOML tree.
const NOT_OVERRIDES: &[&str] = &["RANGECACHE_LOG", super::profile::PROFILE_ENV];

/// What the environment changed.
#[derive(Debug, Default)]
pub struct EnvApplied {
    /// Warnings for prefixed variables that are not in the override form.
    pub warnings: Vec<String>,
    /// `(dotted key, variable)` for each override applied, in the order applied.
    pub set: Vec<(String, String)>,
}

/// Capture the process environment (variables that are not valid UTF-8 are skipped).
pub fn process_env() -> EnvVars {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Apply every `RANGECACHE_<SECTION>__<FIELD>` variable in `env`, in name order, to `tree`: a
/// [`RawConfig`] as a TOML value, every field present. After each variable the tree must still
/// be a valid configuration, or the error names the variable.
pub fn apply_env(tree: &mut toml::Value, env: &EnvVars) -> Result<EnvApplied, StartupError> {
    let mut applied = EnvApplied::default();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if NOT_OVERRIDES.contains(&name.as_str()) {
            continue;
        }
        let Some((section, field)) = rest.split_once("__") else {
            applied.warnings.push(format!(
                "ignoring environment variable {name}: overrides are named \
                 {PREFIX}<SECTION>__<FIELD>"
            ));
            continue;
        };
        let section = section.to_ascii_lowercase();
        let field = field.to_ascii_lowercase();
        override_one(tree, name, &section, &field, value)?;
        let key = format!("{section}.{}", field.replace("__", "."));
        applied.set.push((key, name.clone()));
    }
    Ok(applied)
}

/// Set `[section] field` of `tree` from the variable `var`'s `value`.
fn override_one(
    tree: &mut toml::Value,
    var: &str,
    section: &str,
    field: &str,
    value: &str,
) -> Result<(), StartupError> {
    let fail = |detail: String| StartupError::new(Phase::ParseConfig, format!("{var}: {detail}"));
    if section == "bucket" {
        return Err(fail(
            "per-bucket overrides cannot be set from the environment; use [[bucket]] in the \
             config file"
                .into(),
        ));
    }
    let slot = tree
        .get_mut(section)
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| {
            fail(format!(
                "unknown section '{section}' (expected server, origin, cache, prefetch, auth, log, admin or fleet)"
            ))
        })?
        .get_mut(section_field(field))
        .ok_or_else(|| fail(format!("unknown field '{field}' in [{section}]")))?;
    // `TLS__CERT_FILE` names `cert_file` of the nested table `[server.tls]`.
    let slot = match field.split_once("__") {
        Some((table, inner)) => slot
            .as_table_mut()
            .and_then(|t| t.get_mut(inner))
            .ok_or_else(|| fail(format!("unknown field '{inner}' in [{section}.{table}]")))?,
        None => slot,
    };
    *slot = typed_like(slot, value).map_err(fail)?;
    RawConfig::deserialize(tree.clone()).map_err(|e| fail(e.message().replace('`', "'")))?;
    Ok(())
}

/// The field of the section a (possibly nested, `table__field`) override starts at.
fn section_field(field: &str) -> &str {
    field.split_once("__").map_or(field, |(table, _)| table)
}

/// Parse `value` as the same TOML type as `current`.
fn typed_like(current: &toml::Value, value: &str) -> Result<toml::Value, String> {
    match current {
        toml::Value::String(_) => Ok(toml::Value::String(value.to_owned())),
        toml::Value::Integer(_) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected an integer, got '{value}'")),
        toml::Value::Boolean(_) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(toml::Value::Boolean(true)),
            "false" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got '{value}'")),
        },
        other => Err(format!(
            "cannot override {} {} from the environment; set it in the config file",
            if other.is_array() { "an" } else { "a" },
            other.type_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvVars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The built-in defaults with `pairs` applied, and what was applied.
    fn applied(pairs: &[(&str, &str)]) -> Result<(RawConfig, EnvApplied), StartupError> {
        let mut tree = toml::Value::try_from(RawConfig::default()).unwrap();
        let applied = apply_env(&mut tree, &env(pairs))?;
        Ok((RawConfig::deserialize(tree).unwrap(), applied))
    }

    #[test]
    fn overrides_map_to_fields_of_their_type() {
        let (raw, applied) = applied(&[
            ("RANGECACHE_SERVER__LISTEN", "0.0.0.0:80"),
            ("RANGECACHE_SERVER__WORKERS", "4"),
            ("RANGECACHE_SERVER__PIN_CORES", "false"),
            ("RANGECACHE_SERVER__MAX_HEAD_SIZE", "32KiB"),
            (
                "RANGECACHE_SERVER__TLS__CERT_FILE",
                "/etc/rangecache/cert.pem",
            ),
            ("RANGECACHE_ORIGIN__ENDPOINT", "https://s3.example.com"),
            ("RANGECACHE_ORIGIN__POOL_MAX_IDLE", "8"),
            ("RANGECACHE_CACHE__MEMORY", "0"),
            ("RANGECACHE_CACHE__BLOCK_SIZE", "4MiB"),
            ("RANGECACHE_CACHE__METADATA_TTL", "5s"),
            ("RANGECACHE_CACHE__METADATA_ENTRIES", "10"),
            ("RANGECACHE_LOG", "debug"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert!(applied.warnings.is_empty());
        assert_eq!(applied.set.len(), 11);
        assert!(applied.set.contains(&(
            "server.tls.cert_file".to_owned(),
            "RANGECACHE_SERVER__TLS__CERT_FILE".to_owned()
        )));
        assert_eq!(raw.server.listen, "0.0.0.0:80");
        assert_eq!(raw.server.workers, 4);
        assert!(!raw.server.pin_cores);
        assert_eq!(raw.server.max_head_size, "32KiB");
        assert_eq!(raw.server.tls.cert_file, "/etc/rangecache/cert.pem");
        assert_eq!(raw.origin.endpoint, "https://s3.example.com");
        assert_eq!(raw.origin.pool_max_idle, 8);
        assert_eq!(raw.cache.memory, "0");
        assert_eq!(raw.cache.block_size, "4MiB");
        assert_eq!(raw.cache.metadata_ttl, "5s");
        assert_eq!(raw.cache.metadata_entries, 10);
    }

    #[test]
    fn type_errors_name_the_variable() {
        let err = applied(&[("RANGECACHE_SERVER__WORKERS", "four")]).unwrap_err();
        assert_eq!(err.phase(), Phase::ParseConfig);
        assert_eq!(
            err.detail(),
            "RANGECACHE_SERVER__WORKERS: expected an integer, got 'four'"
        );

        let err = applied(&[("RANGECACHE_SERVER__WORKERS", "-2")]).unwrap_err();
        assert!(
            err.detail().starts_with("RANGECACHE_SERVER__WORKERS: "),
            "{err}"
        );

        let err = applied(&[("RANGECACHE_SERVER__PIN_CORES", "maybe")]).unwrap_err();
        assert!(
            err.detail().contains("RANGECACHE_SERVER__PIN_CORES"),
            "{err}"
        );
        assert!(err.detail().contains("true or false"), "{err}");
    }

    #[test]
    fn unknown_sections_and_fields_are_errors() {
        let err = applied(&[("RANGECACHE_SERVER__LISEN", "x")]).unwrap_err();
        assert!(err.detail().contains("unknown field 'lisen'"), "{err}");
        let err = applied(&[("RANGECACHE_CACHE__SIZE", "1")]).unwrap_err();
        assert!(
            err.detail().contains("unknown field 'size' in [cache]"),
            "{err}"
        );
        let err = applied(&[("RANGECACHE_CASH__MEMORY", "1")]).unwrap_err();
        assert!(err.detail().contains("unknown section 'cash'"), "{err}");
        let err = applied(&[("RANGECACHE_CACHE__METADATA_ENTRIES", "lots")]).unwrap_err();
        assert_eq!(
            err.detail(),
            "RANGECACHE_CACHE__METADATA_ENTRIES: expected an integer, got 'lots'"
        );
        let err = applied(&[("RANGECACHE_BUCKET__NAME", "x")]).unwrap_err();
        assert!(err.detail().contains("[[bucket]]"), "{err}");
    }

    #[test]
    fn malformed_names_are_warned_about() {
        let (raw, applied) = applied(&[
            ("RANGECACHE_SERVER_LISTEN", "x"),
            ("RANGECACHE_PROFILE", "prod"),
        ])
        .unwrap();
        assert_eq!(applied.warnings.len(), 1);
        assert!(applied.warnings[0].contains("RANGECACHE_SERVER_LISTEN"));
        assert!(applied.set.is_empty());
        assert_eq!(raw, RawConfig::default());
    }
}
