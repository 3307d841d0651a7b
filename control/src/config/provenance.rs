//! Where each effective value came from, and the `--check` listing that shows it.
//!
//! Every layer that sets a key records itself against the key's dotted path (`server.listen`,
//! `server.tls.cert_file`; an array such as `bucket` or `auth.keys` is one value, replaced
//! whole). The listing prints every effective value, secrets already redacted by
//! [`Settings::effective`], one `key = value   # layer` line each: valid TOML that parses
//! back into the same configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::profile::Profile;
use super::raw::RawConfig;
use super::settings::Settings;

/// One source of configuration values, lowest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The built-in defaults (`config/default.toml` documents them).
    Builtin,
    /// A built-in profile's defaults.
    Profile(Profile),
    /// A TOML file: one of the config directory's, or `--config`.
    File(PathBuf),
    /// A `RANGECACHE_*` variable, or a variable a value falls back to (`AWS_ACCESS_KEY_ID`).
    Env(String),
    /// A command-line flag (`--listen`).
    Flag(&'static str),
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin => f.write_str("built-in defaults"),
            Self::Profile(p) => write!(f, "profile {p}"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(var) => f.write_str(var),
            Self::Flag(flag) => f.write_str(flag),
        }
    }
}

/// A file the config directory could hold, and whether it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFile {
    /// The file's path (the directory joined with its name).
    pub path: PathBuf,
    /// It existed and was read.
    pub found: Found,
}

/// Whether a config-directory file existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Read and merged.
    Read,
    /// Absent: skipped.
    Missing,
}

/// The layer that last set each key, plus what the listing's header says about the layers.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    by_key: BTreeMap<String, Layer>,
    /// The profile in effect.
    pub profile: Profile,
    /// `--profile` or `RANGECACHE_PROFILE`, when one chose the profile.
    pub profile_from: Option<Layer>,
    /// The config directory's candidate files, in merge order.
    pub dir_files: Vec<DirFile>,
    /// `--config FILE`, when given.
    pub file: Option<PathBuf>,
}

impl Provenance {
    /// Record that `layer` set `key` (overriding any earlier layer).
    pub fn set(&mut self, key: impl Into<String>, layer: Layer) {
        let key = key.into();
        // A value set whole replaces whatever lower layers set inside it.
        let inner = format!("{key}.");
        self.by_key.retain(|k, _| !k.starts_with(&inner));
        self.by_key.insert(key, layer);
    }

    /// The layer `key`'s value came from: the last layer that set it or a table holding it.
    pub fn layer_of(&self, key: &str) -> &Layer {
        let mut k = key;
        loop {
            if let Some(layer) = self.by_key.get(k) {
                return layer;
            }
            match k.rsplit_once('.') {
                Some((parent, _)) => k = parent,
                None => return &Layer::Builtin,
            }
        }
    }
}

/// `prefix.key`, or `key` at the top.
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Values that fall back to a variable outside the `RANGECACHE_*` scheme when the merged
/// configuration leaves them empty.
const FALLBACKS: [(&str, &str); 3] = [
    ("origin.access_key_id", "AWS_ACCESS_KEY_ID"),
    ("origin.secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ("origin.session_token", "AWS_SESSION_TOKEN"),
];

/// Longest `key = value` part before the comment column (longer lines just run past it).
const ALIGN: usize = 48;

/// The `--check` listing: a header naming the profile and the layers, then every effective
/// value (secrets redacted) with the layer it came from. `raw` is the merged configuration
/// before validation (to tell a value that fell back to `AWS_*` from one that was set).
pub fn render(settings: &Settings, raw: &RawConfig, prov: &Provenance) -> String {
    let mut out = String::new();
    out.push_str("# rangecache effective configuration; secrets redacted.\n");
    let chosen_by = prov.profile_from.as_ref().map_or_else(
        || "no --profile or RANGECACHE_PROFILE".to_owned(),
        Layer::to_string,
    );
    out.push_str(&format!("# profile: {} ({chosen_by})\n", prov.profile));
    out.push_str("# layers, lowest first: built-in defaults < profile ");
    out.push_str(prov.profile.name());
    for f in &prov.dir_files {
        let note = match f.found {
            Found::Read => "",
            Found::Missing => " (not found)",
        };
        out.push_str(&format!(" < {}{note}", f.path.display()));
    }
    if let Some(file) = &prov.file {
        out.push_str(&format!(" < --config {}", file.display()));
    }
    out.push_str(" < RANGECACHE_* environment < flags\n");

    let tree = match toml::Value::try_from(settings.effective()) {
        Ok(toml::Value::Table(t)) => t,
        Ok(_) | Err(_) => return out + "# cannot render the configuration\n",
    };
    let raw_tree = toml::Value::try_from(raw).ok();
    let mut lines = Vec::new();
    flatten("", &tree, &mut lines);
    for (key, value) in lines {
        let layer = match fallback(&key, &value, raw_tree.as_ref()) {
            Some(var) => format!("{var} (the configuration leaves it empty)"),
            None => prov.layer_of(&key).to_string(),
        };
        let assignment = format!("{key} = {value}");
        let pad = ALIGN.saturating_sub(assignment.len());
        out.push_str(&format!("{assignment}{:pad$}   # from {layer}\n", ""));
    }
    out
}

/// Leaves of `table` as `(dotted key, inline TOML value)`, in table order.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = join(prefix, k);
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            v => out.push((key, v.to_string())),
        }
    }
}

/// The variable `key` fell back to: the merged configuration left it empty, yet it has a value.
fn fallback(key: &str, value: &str, raw: Option<&toml::Value>) -> Option<&'static str> {
    let (_, var) = FALLBACKS.iter().find(|(k, _)| *k == key)?;
    let raw_value = key
        .split('.')
        .try_fold(raw?, |v, part| v.get(part))?
        .as_str()?;
    (raw_value.is_empty() && value != "\"\"").then_some(*var)
}
