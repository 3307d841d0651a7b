//! Layered loading: built-in defaults < built-in profile defaults < the config directory's
//! `default.toml`, `<profile>.toml`, `local.toml` < `--config FILE` < `RANGECACHE_*`
//! environment < flags, recording which layer set each key.
//!
//! Files are merged as TOML value trees before anything is deserialized, so every section
//! (including ones added later) layers the same way: tables merge key by key, a later layer
//! overriding only the keys it sets; any other value, arrays and arrays of tables
//! (`[[bucket]]`, `[[auth.keys]]`) included, is replaced whole by the last layer that sets it.
//! Each file is first parsed on its own, so a bad key is reported with its file and line.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::auth::SESSION_TOKEN_KEY_ENV;
use super::env::{self, EnvVars};
use super::profile::{Profile, PROFILE_ENV};
use super::provenance::{DirFile, Found, Layer, Provenance};
use super::raw::RawConfig;
use super::settings::Settings;
use super::{parse, tls, validate, Sources};
use crate::error::{Phase, StartupError};

/// The config directory used when `--config-dir` is not given, relative to the working
/// directory.
pub const DEFAULT_CONFIG_DIR: &str = "config";

/// The config directory's file for every profile, merged first.
pub const BASE_FILE: &str = "default.toml";

/// The config directory's file for this machine, merged last.
pub const LOCAL_FILE: &str = "local.toml";

/// Where the config directory's files come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConfigDir {
    /// No directory layer (what tests and embedders start from).
    #[default]
    Off,
    /// The default, `config/` under the working directory: used when it exists.
    Implicit(PathBuf),
    /// `--config-dir DIR`: it must exist.
    Explicit(PathBuf),
}

impl ConfigDir {
    /// The directory to read, if any; an explicit one that is not a directory is an error.
    fn dir(&self) -> Result<Option<&Path>, StartupError> {
        match self {
            Self::Off => Ok(None),
            Self::Implicit(dir) => Ok(Some(dir.as_path())),
            Self::Explicit(dir) => match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(Some(dir.as_path())),
                Ok(_) => Err(StartupError::new(
                    Phase::LoadConfig,
                    format!("--config-dir {}: not a directory", dir.display()),
                )),
                Err(e) => {
                    let detail = format!("--config-dir {}: {}", dir.display(), tls::io_text(&e));
                    Err(StartupError::new(Phase::LoadConfig, detail).with_cause(e))
                }
            },
        }
    }
}

impl std::fmt::Display for ConfigDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("no config directory"),
            Self::Implicit(dir) | Self::Explicit(dir) => {
                write!(f, "config directory {}", dir.display())
            }
        }
    }
}

/// A loaded configuration and how it was put together.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub settings: Settings,
    /// The merged configuration as written, before validation.
    pub raw: RawConfig,
    /// Which layer set each key.
    pub provenance: Provenance,
}

/// Load every layer, validate, and check the profile's requirements.
pub fn load(sources: &Sources, env: &EnvVars) -> Result<Loaded, StartupError> {
    let mut prov = Provenance::default();
    let profile = choose_profile(sources, env, &mut prov)?;

    let mut tree = toml_table(&RawConfig::default())?;
    let profile_layer = Layer::Profile(profile);
    merge(
        &mut tree,
        table_of(profile.defaults_toml(), &profile_layer)?,
        &profile_layer,
        &mut prov,
    );
    if let Some(dir) = sources.config_dir.dir()? {
        for name in dir_file_names(profile) {
            let path = dir.join(name);
            let found = match read(&path, Missing::Skip)? {
                Some(text) => {
                    let layer = Layer::File(path.clone());
                    merge(&mut tree, table_of(&text, &layer)?, &layer, &mut prov);
                    Found::Read
                }
                None => Found::Missing,
            };
            prov.dir_files.push(DirFile { path, found });
        }
    }
    if let Some(path) = &sources.file {
        let layer = Layer::File(path.clone());
        let text = read(path, Missing::Fail)?.unwrap_or_default();
        merge(&mut tree, table_of(&text, &layer)?, &layer, &mut prov);
        prov.file = Some(path.clone());
    }

    // Normalized through the raw structs, so the environment sees every field with its type.
    let merged = from_tree(toml::Value::Table(tree))?;
    let mut tree = toml::Value::Table(toml_table(&merged)?);
    let applied = env::apply_env(&mut tree, env)?;
    for (key, var) in applied.set {
        prov.set(key, Layer::Env(var));
    }
    let mut raw = from_tree(tree)?;
    for (key, flag) in sources.overrides.apply(&mut raw) {
        prov.set(key, Layer::Flag(flag));
    }
    // Session token keys from the environment go before the configured ones.
    if env
        .get(SESSION_TOKEN_KEY_ENV)
        .is_some_and(|v| !v.trim().is_empty())
    {
        let key = "auth.session_token_keys";
        let layer = match prov.layer_of(key) {
            Layer::Builtin => SESSION_TOKEN_KEY_ENV.to_owned(),
            configured => format!("{SESSION_TOKEN_KEY_ENV}, then {configured}"),
        };
        prov.set(key, Layer::Env(layer));
    }

    let mut settings = validate::validate(&raw, env, sources.file.clone())?;
    settings.warnings.splice(0..0, applied.warnings);
    profile.check(&settings)?;
    Ok(Loaded {
        settings,
        raw,
        provenance: prov,
    })
}

/// `--profile`, else `RANGECACHE_PROFILE`, else `default`; an unknown name is an error.
fn choose_profile(
    sources: &Sources,
    env: &EnvVars,
    prov: &mut Provenance,
) -> Result<Profile, StartupError> {
    let (name, from) = match (&sources.profile, env.get(PROFILE_ENV)) {
        (Some(name), _) => (name.as_str(), Layer::Flag("--profile")),
        (None, Some(name)) if !name.trim().is_empty() => {
            (name.trim(), Layer::Env(PROFILE_ENV.to_owned()))
        }
        (None, _) => return Ok(Profile::Default),
    };
    let profile = Profile::from_name(name).ok_or_else(|| {
        StartupError::new(
            Phase::ValidateConfig,
            format!(
                "{from}: unknown profile '{name}' (expected {})",
                Profile::names()
            ),
        )
    })?;
    prov.profile = profile;
    prov.profile_from = Some(from);
    Ok(profile)
}

/// The config directory's files for `profile`, in merge order (`default.toml` once for the
/// `default` profile).
fn dir_file_names(profile: Profile) -> Vec<String> {
    let own = format!("{}.toml", profile.name());
    let mut names = vec![BASE_FILE.to_owned()];
    if own != BASE_FILE {
        names.push(own);
    }
    names.push(LOCAL_FILE.to_owned());
    names
}

/// What a file that does not exist means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Nothing: the layer is skipped.
    Skip,
    /// A `[load_config]` error.
    Fail,
}

/// The file's text; `None` when it does not exist and `missing` is [`Missing::Skip`].
fn read(path: &Path, missing: Missing) -> Result<Option<String>, StartupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound && missing == Missing::Skip => Ok(None),
        Err(e) => {
            let detail = format!("{}: {}", path.display(), tls::io_text(&e));
            Err(StartupError::new(Phase::LoadConfig, detail).with_cause(e))
        }
    }
}

/// `text` as a TOML table, after checking it as a configuration on its own (unknown keys and
/// wrong types are errors naming the layer and the line).
fn table_of(text: &str, layer: &Layer) -> Result<toml::Table, StartupError> {
    parse(text).map_err(|e| e.in_context(layer))?;
    toml::from_str(text).map_err(|e| {
        let detail = format!("{layer}: {}", e.message());
        StartupError::new(Phase::ParseConfig, detail).with_cause(e)
    })
}

/// Merge `over` into `base`: tables key by key, anything else replaced whole; every value
/// `over` sets is recorded as set by `layer`.
fn merge(base: &mut toml::Table, over: toml::Table, layer: &Layer, prov: &mut Provenance) {
    merge_at("", base, over, layer, prov);
}

fn merge_at(
    prefix: &str,
    base: &mut toml::Table,
    over: toml::Table,
    layer: &Layer,
    prov: &mut Provenance,
) {
    for (k, v) in over {
        let key = super::provenance::join(prefix, &k);
        match v {
            toml::Value::Table(t) => {
                let slot = base
                    .entry(k)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if !slot.is_table() {
                    *slot = toml::Value::Table(toml::Table::new());
                }
                if let toml::Value::Table(b) = slot {
                    merge_at(&key, b, t, layer, prov);
                }
            }
            v => {
                prov.set(key, layer.clone());
                base.insert(k, v);
            }
        }
    }
}

/// `raw` as a TOML table.
fn toml_table(raw: &RawConfig) -> Result<toml::Table, StartupError> {
    toml::Table::try_from(raw).map_err(|e| {
        StartupError::new(
            Phase::ParseConfig,
            format!("cannot represent the configuration: {e}"),
        )
    })
}

/// The raw configuration of a merged tree (each layer was checked alone, so this fails only
/// when layers disagree on a value's shape).
fn from_tree(tree: toml::Value) -> Result<RawConfig, StartupError> {
    RawConfig::deserialize(tree).map_err(|e| {
        let detail = format!("merged configuration: {}", e.message().replace('`', "'"));
        StartupError::new(Phase::ParseConfig, detail).with_cause(e)
    })
}

#[cfg(test)]
mod tests;
