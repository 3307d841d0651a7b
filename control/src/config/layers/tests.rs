//! Layer precedence, file merging, each profile's defaults and requirements, and the `--check`
//! listing with provenance and redaction. Files live in per-test temp directories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::provenance::render;
use crate::config::Overrides;
use crate::test_support::{TempDir, TempFile};

fn env(pairs: &[(&str, &str)]) -> EnvVars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tls_data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

/// Sources reading `dir` explicitly, with `profile`.
fn in_dir(dir: &TempDir, profile: &str) -> Sources {
    Sources {
        profile: Some(profile.to_owned()),
        config_dir: ConfigDir::Explicit(dir.0.clone()),
        ..Sources::default()
    }
}

/// The `[validate_config]` detail of a configuration that must be refused.
fn refused(sources: &Sources, e: &EnvVars) -> String {
    let err = load(sources, e).unwrap_err();
    assert_eq!(err.phase(), Phase::ValidateConfig, "{err}");
    err.detail().to_owned()
}

fn file_layer(p: PathBuf) -> Layer {
    Layer::File(p)
}

#[test]
fn each_layer_overrides_the_ones_below() {
    let dir = TempDir::empty();
    let base = dir.write(
        "default.toml",
        "[server]\nidle_timeout = \"1s\"\nbody_timeout = \"1s\"\nworkers = 1\n\
         listen = \"127.0.0.1:1001\"\n[log]\naccess = \"off\"\n[cache]\nmemory = \"128MiB\"\n",
    );
    let own = dir.write(
        "dev.toml",
        "[server]\nidle_timeout = \"2s\"\nbody_timeout = \"2s\"\nworkers = 2\n\
         listen = \"127.0.0.1:1002\"\n[cache]\nmemory = \"64MiB\"\n",
    );
    let local = dir.write(
        "local.toml",
        "[server]\nidle_timeout = \"3s\"\nbody_timeout = \"3s\"\nworkers = 3\n\
         listen = \"127.0.0.1:1003\"\n",
    );
    let file = TempFile::new(
        "[server]\nbody_timeout = \"4s\"\nworkers = 4\nlisten = \"127.0.0.1:1004\"\n",
    );
    let mut sources = in_dir(&dir, "dev");
    sources.file = Some(file.0.clone());
    sources.overrides = Overrides {
        listen: Some("127.0.0.1:1006".into()),
        ..Overrides::default()
    };
    let e = env(&[
        ("RANGECACHE_SERVER__WORKERS", "5"),
        ("RANGECACHE_SERVER__LISTEN", "127.0.0.1:1005"),
    ]);
    let loaded = load(&sources, &e).unwrap();
    let (s, p) = (&loaded.settings, &loaded.provenance);

    assert_eq!(s.server.send_timeout, Duration::from_secs(30));
    assert_eq!(p.layer_of("server.send_timeout"), &Layer::Builtin);
    assert!(!s.server.pin_cores);
    assert_eq!(
        p.layer_of("server.pin_cores"),
        &Layer::Profile(Profile::Dev)
    );
    assert_eq!(s.log.access, None, "default.toml beats the profile");
    assert_eq!(p.layer_of("log.access"), &file_layer(base));
    assert_eq!(s.cache.memory, 64 << 20, "dev.toml beats default.toml");
    assert_eq!(p.layer_of("cache.memory"), &file_layer(own));
    assert_eq!(s.server.idle_timeout, Duration::from_secs(3));
    assert_eq!(p.layer_of("server.idle_timeout"), &file_layer(local));
    assert_eq!(s.server.body_timeout, Duration::from_secs(4));
    assert_eq!(
        p.layer_of("server.body_timeout"),
        &file_layer(file.0.clone())
    );
    assert_eq!(s.server.workers, 5);
    assert_eq!(
        p.layer_of("server.workers"),
        &Layer::Env("RANGECACHE_SERVER__WORKERS".into())
    );
    assert_eq!(s.server.listen.port(), 1006);
    assert_eq!(p.layer_of("server.listen"), &Layer::Flag("--listen"));
    assert_eq!(s.source.as_deref(), Some(file.0.as_path()));
}

#[test]
fn tables_merge_key_by_key_and_arrays_replace_whole() {
    let dir = TempDir::empty();
    dir.write(
        "default.toml",
        "[server.tls]\nhandshake_timeout = \"3s\"\n[server]\nmax_headers = 50\n\
         [[bucket]]\nname = \"alpha\"\nregion = \"eu-west-1\"\n\
         [[bucket]]\nname = \"beta\"\n",
    );
    let local = dir.write(
        "local.toml",
        "[server]\nmax_headers = 60\n[[bucket]]\nname = \"gamma\"\n",
    );
    let loaded = load(&in_dir(&dir, "default"), &EnvVars::new()).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.server.max_headers, 60);
    assert_eq!(
        s.server.tls_handshake_timeout,
        Duration::from_secs(3),
        "a sibling table set lower survives"
    );
    let names: Vec<&str> = s.buckets.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["gamma"], "[[bucket]] is replaced whole");
    assert_eq!(loaded.provenance.layer_of("bucket"), &file_layer(local));
    // The default profile reads default.toml once.
    let files: Vec<_> = loaded
        .provenance
        .dir_files
        .iter()
        .map(|f| f.found)
        .collect();
    assert_eq!(files, [Found::Read, Found::Read]);
}

#[test]
fn missing_files_are_skipped_and_bad_ones_name_the_file() {
    let dir = TempDir::empty();
    let loaded = load(&in_dir(&dir, "prod"), &EnvVars::new()).unwrap();
    let found: Vec<_> = loaded
        .provenance
        .dir_files
        .iter()
        .map(|f| f.found)
        .collect();
    assert_eq!(found, [Found::Missing; 3]);
    assert_eq!(
        loaded.provenance.dir_files[1].path,
        dir.0.join("prod.toml"),
        "the profile's own file comes second"
    );

    let bad = dir.write("prod.toml", "[server]\n\nlisen = \"x\"\n");
    let err = load(&in_dir(&dir, "prod"), &EnvVars::new()).unwrap_err();
    assert_eq!(err.phase(), Phase::ParseConfig);
    assert!(
        err.detail()
            .starts_with(&format!("{}: line 3: unknown field 'lisen'", bad.display())),
        "{err}"
    );
    std::fs::remove_file(&bad).unwrap();

    // A file that exists but cannot be read (here: a directory) is a load error naming it.
    std::fs::create_dir(dir.0.join("local.toml")).unwrap();
    let err = load(&in_dir(&dir, "prod"), &EnvVars::new()).unwrap_err();
    assert_eq!(err.phase(), Phase::LoadConfig);
    assert!(
        err.detail()
            .starts_with(&format!("{}:", dir.0.join("local.toml").display())),
        "{err}"
    );

    // An explicit directory must exist; the implicit default need not.
    let gone = dir.0.join("nope");
    let mut sources = Sources {
        config_dir: ConfigDir::Explicit(gone.clone()),
        ..Sources::default()
    };
    let err = load(&sources, &EnvVars::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "[load_config] --config-dir {}: No such file or directory",
            gone.display()
        )
    );
    sources.config_dir = ConfigDir::Implicit(gone);
    assert!(load(&sources, &EnvVars::new()).is_ok());
}

#[test]
fn the_profile_comes_from_the_flag_then_the_environment() {
    let none = Sources::default();
    let loaded = load(&none, &env(&[(PROFILE_ENV, "prod")])).unwrap();
    assert_eq!(loaded.provenance.profile, Profile::Prod);
    assert_eq!(
        loaded.provenance.profile_from,
        Some(Layer::Env(PROFILE_ENV.into()))
    );
    assert!(loaded.settings.log.access.is_some());

    let flag = Sources {
        profile: Some("default".into()),
        ..Sources::default()
    };
    let loaded = load(&flag, &env(&[(PROFILE_ENV, "prod")])).unwrap();
    assert_eq!(loaded.provenance.profile, Profile::Default);
    assert!(loaded.settings.log.access.is_none());

    let typo = Sources {
        profile: Some("prdo".into()),
        ..Sources::default()
    };
    assert_eq!(
        refused(&typo, &EnvVars::new()),
        "--profile: unknown profile 'prdo' (expected default, dev, prod, prod-tls or prod-mtls)"
    );
    let err = load(&none, &env(&[(PROFILE_ENV, "staging")])).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("[validate_config] RANGECACHE_PROFILE: unknown profile 'staging'"));
}

#[test]
fn every_profile_s_defaults_are_configuration_keys() {
    for p in Profile::ALL {
        let raw = parse(p.defaults_toml()).unwrap_or_else(|e| panic!("profile {p}: {e}"));
        assert_eq!(Profile::from_name(p.name()), Some(p));
        if p == Profile::Default {
            assert_eq!(raw, RawConfig::default());
        } else {
            assert_ne!(raw, RawConfig::default(), "profile {p} sets something");
        }
    }
}

#[test]
fn the_default_profile_is_the_built_in_defaults() {
    let dir = TempDir::empty();
    let loaded = load(&in_dir(&dir, "default"), &EnvVars::new()).unwrap();
    assert_eq!(loaded.raw, RawConfig::default());
    let plain = load(&Sources::default(), &EnvVars::new()).unwrap();
    assert_eq!(plain.settings.effective(), loaded.settings.effective());
}

#[test]
fn dev_is_permissive_and_loopback_only() {
    let dir = TempDir::empty();
    let s = load(&in_dir(&dir, "dev"), &EnvVars::new())
        .unwrap()
        .settings;
    assert_eq!(s.auth.mode, rangecache_dataplane::auth::AuthMode::None);
    assert!(s.log.access.is_some());
    assert!(!s.server.pin_cores);
    assert_eq!(s.cache.memory, 256 << 20);

    let e = env(&[("RANGECACHE_SERVER__LISTEN", "0.0.0.0:0")]);
    assert!(refused(&in_dir(&dir, "dev"), &e)
        .starts_with("server.listen: profile dev listens on loopback addresses only"));
    let e = env(&[("RANGECACHE_SERVER__ADMIN_LISTEN", "[::]:0")]);
    assert!(refused(&in_dir(&dir, "dev"), &e).starts_with("server.admin_listen: profile dev"));
}

#[test]
fn prod_is_default_deny_with_the_access_log_on() {
    let dir = TempDir::empty();
    let s = load(&in_dir(&dir, "prod"), &EnvVars::new())
        .unwrap()
        .settings;
    assert_eq!(s.auth.mode, rangecache_dataplane::auth::AuthMode::SigV4);
    assert_eq!(s.log.access_text(), "stdout");

    // A file may turn the access log off, but not authentication.
    dir.write("prod.toml", "[log]\naccess = \"off\"\n");
    let s = load(&in_dir(&dir, "prod"), &EnvVars::new())
        .unwrap()
        .settings;
    assert!(s.log.access.is_none());
    dir.write("local.toml", "[auth]\nmode = \"none\"\n");
    assert!(refused(&in_dir(&dir, "prod"), &EnvVars::new())
        .starts_with("auth.mode: profile prod requires \"sigv4\""));
    std::fs::remove_file(dir.0.join("local.toml")).unwrap();

    // An admin endpoint other hosts can reach needs a token.
    let open = env(&[("RANGECACHE_SERVER__ADMIN_LISTEN", "0.0.0.0:0")]);
    assert!(refused(&in_dir(&dir, "prod"), &open).starts_with(
        "admin.token_file: profile prod requires an admin token when server.admin_listen \
         (0.0.0.0:0) is not a loopback address"
    ));
    let token = TempFile::new("s3cr3t-admin-token\n");
    let mut with_token = open.clone();
    with_token.insert("RANGECACHE_ADMIN__TOKEN_FILE".into(), token.path());
    assert!(load(&in_dir(&dir, "prod"), &with_token).is_ok());
}

#[test]
fn prod_tls_and_prod_mtls_require_their_keys() {
    let dir = TempDir::empty();
    assert!(refused(&in_dir(&dir, "prod-tls"), &EnvVars::new())
        .starts_with("server.tls.cert_file: profile prod-tls requires TLS on the client listener"));
    dir.write(
        "prod-tls.toml",
        &format!(
            "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            tls_data("server-ec.pem"),
            tls_data("server-ec.key")
        ),
    );
    let s = load(&in_dir(&dir, "prod-tls"), &EnvVars::new())
        .unwrap()
        .settings;
    assert!(s.server.tls.is_some());
    assert_eq!(s.log.access_text(), "stdout", "prod's defaults hold too");

    // prod-mtls reads prod-mtls.toml, not prod-tls.toml.
    assert!(refused(&in_dir(&dir, "prod-mtls"), &EnvVars::new())
        .starts_with("server.tls.cert_file: profile prod-mtls"));
    std::fs::rename(dir.0.join("prod-tls.toml"), dir.0.join("default.toml")).unwrap();
    assert!(refused(&in_dir(&dir, "prod-mtls"), &EnvVars::new())
        .starts_with("server.tls.client_ca_file: profile prod-mtls requires client certificates"));
    dir.write(
        "prod-mtls.toml",
        &format!(
            "[server.tls]\nclient_ca_file = \"{}\"\n",
            tls_data("ca.pem")
        ),
    );
    let loaded = load(&in_dir(&dir, "prod-mtls"), &EnvVars::new()).unwrap();
    let tls = loaded.settings.server.tls.as_ref().unwrap();
    assert!(tls.client_ca_file.is_some());
    assert_eq!(
        loaded.provenance.layer_of("server.tls.cert_file"),
        &file_layer(dir.0.join("default.toml"))
    );
    assert_eq!(
        loaded.provenance.layer_of("server.tls.client_ca_file"),
        &file_layer(dir.0.join("prod-mtls.toml"))
    );
}

#[test]
fn the_shipped_default_toml_leaves_profile_keys_to_the_profiles() {
    fn leaves(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let key = crate::config::provenance::join(prefix, k);
            match v {
                toml::Value::Table(t) => leaves(&key, t, out),
                _ => out.push(key),
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/default.toml");
    let shipped: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut pinned = Vec::new();
    leaves("", &shipped, &mut pinned);
    for p in Profile::ALL {
        let mut set = Vec::new();
        leaves("", &toml::from_str(p.defaults_toml()).unwrap(), &mut set);
        for key in set {
            assert!(
                !pinned.contains(&key),
                "config/default.toml sets {key}, which profile {p} sets: comment it out there"
            );
        }
    }
}

#[test]
fn check_lists_every_value_with_its_layer_and_no_secret() {
    let dir = TempDir::empty();
    let prod = dir.write(
        "prod.toml",
        "[server]\nlisten = \"127.0.0.1:9000\"\n[origin]\naccess_key_id = \"AKIDFILE\"\n\
         secret_access_key = \"file-secret-value\"\n\
         [[auth.keys]]\naccess_key_id = \"AKIDCLIENT\"\nsecret_access_key = \"inline-client-secret\"\n\
         grants = [{ bucket = \"*\", access = \"read\" }]\n\
         [[bucket]]\nname = \"other\"\naccess_key_id = \"AKIDB\"\nsecret_access_key = \"bucket-secret\"\n\
         session_token = \"bucket-session-token\"\n",
    );
    let token = TempFile::new("admin-token-value\n");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let e = env(&[
        ("RANGECACHE_ADMIN__TOKEN_FILE", &token.path()),
        ("RANGECACHE_ORIGIN__SESSION_TOKEN", "env-session-token"),
        ("SESSION_TOKEN_KEY", key),
    ]);
    let mut sources = in_dir(&dir, "prod");
    sources.overrides.workers = Some(3);
    let loaded = load(&sources, &e).unwrap();
    let out = render(&loaded.settings, &loaded.raw, &loaded.provenance);

    for secret in [
        "file-secret-value",
        "inline-client-secret",
        "bucket-secret",
        "bucket-session-token",
        "admin-token-value",
        "env-session-token",
        key,
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{out}"))
            .to_owned()
    };
    let from = |l: String| l.rsplit_once("   # from ").unwrap().1.to_owned();
    assert!(line("server.listen").starts_with("server.listen = \"127.0.0.1:9000\" "));
    assert_eq!(from(line("server.listen")), prod.display().to_string());
    assert_eq!(
        from(line("origin.secret_access_key")),
        prod.display().to_string()
    );
    assert!(line("origin.secret_access_key").contains("\"<redacted>\""));
    assert_eq!(
        from(line("origin.session_token")),
        "RANGECACHE_ORIGIN__SESSION_TOKEN"
    );
    assert_eq!(from(line("server.workers")), "--workers");
    assert_eq!(from(line("log.access")), "profile prod");
    assert_eq!(from(line("server.idle_timeout")), "built-in defaults");
    assert_eq!(
        from(line("admin.token_file")),
        "RANGECACHE_ADMIN__TOKEN_FILE"
    );
    assert_eq!(from(line("bucket")), prod.display().to_string());
    assert_eq!(
        from(line("auth.session_token_keys")),
        "SESSION_TOKEN_KEY",
        "{out}"
    );
    assert!(out.contains("# profile: prod (--profile)"), "{out}");
    assert!(out.contains(&format!(
        "{} (not found)",
        dir.0.join("local.toml").display()
    )));

    // Every key of the effective configuration is listed, and the listing is a configuration.
    let back = parse(&out).unwrap();
    assert_eq!(back, loaded.settings.effective());
}

#[test]
fn check_names_the_aws_fallback() {
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
    ]);
    let loaded = load(&Sources::default(), &e).unwrap();
    let out = render(&loaded.settings, &loaded.raw, &loaded.provenance);
    assert!(!out.contains("env-secret"));
    assert!(
        out.lines()
            .any(|l| l.starts_with("origin.access_key_id = \"AKIDENV\"")
                && l.ends_with("# from AWS_ACCESS_KEY_ID (the configuration leaves it empty)")),
        "{out}"
    );
}
