//! Tests of loading, merging and validating configurations. No network, no fixed ports.

use crate::test_support::TempFile;
use std::path::Path;
use std::time::Duration;

use rangecache_dataplane::{IoDriver, Scheme};

use super::*;

fn env(pairs: &[(&str, &str)]) -> EnvVars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ca_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/test-ca.pem")
        .display()
        .to_string()
}

/// Validate TOML text with no environment.
fn from_text(text: &str) -> Result<Settings, StartupError> {
    validate::validate(&parse(text)?, &EnvVars::new(), None)
}

/// The error detail for TOML text that must fail validation.
fn invalid(text: &str) -> String {
    let Err(err) = from_text(text) else {
        panic!("config {text:?} was accepted");
    };
    assert_eq!(err.phase(), Phase::ValidateConfig, "{err}");
    err.detail().to_owned()
}

#[test]
fn defaults_are_valid() {
    let s = load(&Sources::default(), &EnvVars::new()).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(s.server.admin_listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(s.server.workers, 0);
    assert!(s.server.worker_count() >= 1);
    assert_eq!(s.server.domain, None);
    assert_eq!(s.server.io_driver, IoDriver::Auto);
    assert!(s.server.pin_cores);
    assert_eq!(s.server.max_head_size, 64 * 1024);
    assert_eq!(s.server.max_headers, 128);
    assert_eq!(s.server.max_uri_length, 16 * 1024);
    assert_eq!(s.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.server.drain_timeout, Duration::from_secs(30));
    assert_eq!(s.origin.scheme, Scheme::Http);
    assert_eq!((s.origin.host.as_str(), s.origin.port), ("127.0.0.1", 8333));
    assert_eq!(s.origin.region, "us-east-1");
    assert!(s.origin.credentials.is_none());
    assert!(s.origin.tls.is_none());
    assert_eq!(s.origin.pool_max_idle, 64);
    assert_eq!(s.resolve_interval, Duration::from_secs(30));
    assert!(s.warnings.iter().any(|w| w.contains("no credentials")));
    assert_eq!(s.cache.memory, 1 << 30);
    assert_eq!(s.cache.block_size, 1 << 20);
    assert_eq!(s.cache.metadata_ttl, Duration::from_secs(60));
    assert_eq!(s.cache.metadata_entries, 100_000);
    let dp = s.cache.to_dataplane();
    assert_eq!((dp.memory, dp.block_size), (1 << 30, 1 << 20));
    assert_eq!(dp.metadata_ttl, Duration::from_secs(60));
    assert_eq!(dp.metadata_entries, 100_000);
}

#[test]
fn cache_values_parse() {
    let s = from_text(
        "[cache]\nmemory = \"8GiB\"\nblock_size = \"64KiB\"\nmetadata_ttl = \"250ms\"\n\
         metadata_entries = 1\n",
    )
    .unwrap();
    assert_eq!(s.cache.memory, 8 << 30);
    assert_eq!(s.cache.block_size, 64 << 10);
    assert_eq!(s.cache.metadata_ttl, Duration::from_millis(250));
    assert_eq!(s.cache.metadata_entries, 1);

    // 0 turns the cache off whatever the block size; a TTL of 0 keeps no metadata.
    let s =
        from_text("[cache]\nmemory = 0\nblock_size = \"64MiB\"\nmetadata_ttl = \"0s\"\n").unwrap();
    assert_eq!((s.cache.memory, s.cache.block_size), (0, 64 << 20));
    assert_eq!(s.cache.metadata_ttl, Duration::ZERO);

    // Plain integers are bytes; the smallest budget is two blocks.
    let s = from_text("[cache]\nmemory = 131072\nblock_size = 65536\n").unwrap();
    assert_eq!((s.cache.memory, s.cache.block_size), (128 << 10, 64 << 10));
}

#[test]
fn cache_env_overrides() {
    let file = TempFile::new("[cache]\nmemory = \"8GiB\"\nblock_size = \"4MiB\"\n");
    let sources = Sources {
        file: Some(file.0.clone()),
        ..Sources::default()
    };
    let s = load(
        &sources,
        &env(&[
            ("RANGECACHE_CACHE__MEMORY", "0"),
            ("RANGECACHE_CACHE__METADATA_TTL", "5s"),
            ("RANGECACHE_CACHE__METADATA_ENTRIES", "7"),
        ]),
    )
    .unwrap();
    assert_eq!(s.cache.memory, 0);
    assert_eq!(s.cache.block_size, 4 << 20, "file value survives");
    assert_eq!(s.cache.metadata_ttl, Duration::from_secs(5));
    assert_eq!(s.cache.metadata_entries, 7);

    let s = load(
        &sources,
        &env(&[("RANGECACHE_CACHE__BLOCK_SIZE", "128KiB")]),
    )
    .unwrap();
    assert_eq!(s.cache.block_size, 128 << 10);
    assert_eq!(s.cache.memory, 8 << 30);

    // A bad value from the environment fails validation naming the key.
    let err = load(
        &sources,
        &env(&[("RANGECACHE_CACHE__BLOCK_SIZE", "100KiB")]),
    )
    .unwrap_err();
    assert_eq!(err.phase(), Phase::ValidateConfig);
    assert!(err.detail().starts_with("cache.block_size: "), "{err}");
}

#[test]
fn cache_memory_above_physical_memory_is_a_warning() {
    let s = from_text("[cache]\nmemory = \"16000000GiB\"\n").unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("cache.memory (16000000GiB) is more than this machine's")),
        "{:?}",
        s.warnings
    );
    let s = from_text("[cache]\nmemory = \"64MiB\"\n").unwrap();
    assert!(!s.warnings.iter().any(|w| w.contains("cache.memory")));
}

#[test]
fn shipped_config_files_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let default_text = std::fs::read_to_string(root.join("default.toml")).unwrap();
    assert_eq!(parse(&default_text).unwrap(), RawConfig::default());
    let example = parse(&std::fs::read_to_string(root.join("example.toml")).unwrap()).unwrap();
    assert!(!example.buckets.is_empty());
    assert_eq!(example.cache.memory, "8GiB");
    // The example's bucket CA file exists only where it is deployed; every other key,
    // [cache] included, is checked before it.
    let settings = validate::validate(&example, &EnvVars::new(), None);
    assert!(
        settings
            .as_ref()
            .err()
            .is_none_or(|e| e.detail().contains("ca_file")),
        "{:?}",
        settings.err()
    );
}

#[test]
fn precedence_is_file_then_env_then_flags() {
    let file = TempFile::new(
        "[server]\nlisten = \"127.0.0.1:1001\"\nadmin_listen = \"127.0.0.1:2001\"\n\
         workers = 2\ndomain = \"file.example\"\n",
    );
    let mut sources = Sources {
        file: Some(file.0.clone()),
        ..Sources::default()
    };
    let s = load(&sources, &EnvVars::new()).unwrap();
    assert_eq!(s.server.listen.port(), 1001);
    assert_eq!(s.server.workers, 2);
    assert_eq!(s.source.as_deref(), Some(file.0.as_path()));

    let e = env(&[
        ("RANGECACHE_SERVER__LISTEN", "127.0.0.1:1002"),
        ("RANGECACHE_SERVER__WORKERS", "3"),
    ]);
    let s = load(&sources, &e).unwrap();
    assert_eq!(s.server.listen.port(), 1002);
    assert_eq!(s.server.admin_listen.port(), 2001, "file value survives");
    assert_eq!(s.server.workers, 3);

    sources.overrides = Overrides {
        listen: Some("127.0.0.1:1003".into()),
        workers: Some(4),
        domain: Some("flag.example".into()),
        origin: Some("https://s3.flag.example".into()),
        ..Overrides::default()
    };
    let e = env(&[
        ("RANGECACHE_SERVER__LISTEN", "127.0.0.1:1002"),
        ("RANGECACHE_ORIGIN__CA_FILE", &ca_file()),
    ]);
    let s = load(&sources, &e).unwrap();
    assert_eq!(s.server.listen.port(), 1003);
    assert_eq!(s.server.workers, 4);
    assert_eq!(s.server.domain.as_deref(), Some("flag.example"));
    assert_eq!(s.origin.host, "s3.flag.example");
    assert_eq!(s.origin.port, 443);
}

#[test]
fn load_and_parse_errors_name_their_phase() {
    let sources = Sources {
        file: Some("/nonexistent/rangecache.toml".into()),
        ..Sources::default()
    };
    let err = load(&sources, &EnvVars::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "[load_config] /nonexistent/rangecache.toml: No such file or directory"
    );

    let err = parse("# comment\n[server]\nlisen = \"x\"\n").unwrap_err();
    assert_eq!(err.phase(), Phase::ParseConfig);
    assert!(
        err.detail().starts_with("line 3: unknown field 'lisen'"),
        "{err}"
    );
    let err = parse("[server]\nworkers = \"many\"\n").unwrap_err();
    assert!(err.detail().starts_with("line 2: "), "{err}");
    let err = parse("[server\n").unwrap_err();
    assert!(err.detail().starts_with("line 1: "), "{err}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn validation_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[server]\nlisten = \"localhost\"",
            "server.listen: invalid socket address",
        ),
        (
            "[server]\nadmin_listen = \"x:1\"",
            "server.admin_listen: invalid socket address",
        ),
        (
            "[server]\nadmin_listen = \"127.0.0.1:8080\"",
            "server.admin_listen: must differ",
        ),
        (
            "[server]\nworkers = 1025",
            "server.workers: at most 1024, got 1025",
        ),
        (
            "[server]\nio_driver = \"kqueue\"",
            "server.io_driver: expected auto, io_uring",
        ),
        ("[server]\ndomain = \"http://x\"", "server.domain: "),
        (
            "[server]\nmax_head_size = \"big\"",
            "server.max_head_size: invalid size 'big'",
        ),
        (
            "[server]\nmax_head_size = 0",
            "server.max_head_size: must be greater than zero",
        ),
        (
            "[server]\nmax_uri_length = \"1TiB\"",
            "server.max_uri_length: invalid size",
        ),
        (
            "[server]\nmax_headers = 0",
            "server.max_headers: must be at least 1",
        ),
        (
            "[server]\nidle_timeout = \"10\"",
            "server.idle_timeout: invalid duration '10': missing unit",
        ),
        (
            "[server]\nbody_timeout = \"0s\"",
            "server.body_timeout: must be greater than zero",
        ),
        (
            "[server]\nheader_read_timeout = \"1d\"",
            "server.header_read_timeout: invalid duration",
        ),
        (
            "[server]\ndrain_timeout = \"soon\"",
            "server.drain_timeout: invalid duration",
        ),
        (
            "[origin]\nendpoint = \"ftp://x\"",
            "origin.endpoint: scheme must be http or https",
        ),
        (
            "[origin]\nendpoint = \"s3.example.com:9000\"",
            "origin.endpoint: scheme must be http or https",
        ),
        (
            "[origin]\nendpoint = \"http://s3.example.com/bucket\"",
            "origin.endpoint: must be scheme://host[:port]",
        ),
        (
            "[origin]\nendpoint = \"http://u:p@s3.example.com\"",
            "origin.endpoint: must not contain user info",
        ),
        (
            "[origin]\nendpoint = \"http://x:0\"",
            "origin.endpoint: port must not be 0",
        ),
        ("[origin]\nendpoint = \"\"", "origin.endpoint: "),
        (
            "[origin]\nregion = \" \"",
            "origin.region: must not be empty",
        ),
        (
            "[origin]\naccess_key_id = \"AK\"",
            "origin.secret_access_key: must be set together",
        ),
        (
            "[origin]\nsecret_access_key = \"SK\"",
            "origin.access_key_id: must be set together",
        ),
        (
            "[origin]\nsession_token = \"T\"",
            "origin.session_token: is set but",
        ),
        (
            "[origin]\nconnect_timeout = \"0s\"",
            "origin.connect_timeout: must be greater than zero",
        ),
        (
            "[origin]\nresponse_timeout = \"x\"",
            "origin.response_timeout: invalid duration",
        ),
        (
            "[origin]\npool_idle_timeout = \"1y\"",
            "origin.pool_idle_timeout: invalid duration",
        ),
        (
            "[origin]\nresolve_interval = \"30\"",
            "origin.resolve_interval: invalid duration",
        ),
        (
            "[origin]\nendpoint = \"https://x\"\nca_file = \"/nonexistent.pem\"",
            "origin.ca_file: /nonexistent.pem: No such file",
        ),
        (
            "[cache]\nmemory = \"lots\"",
            "cache.memory: invalid size 'lots'",
        ),
        (
            "[cache]\nmemory = \"1MiB\"",
            "cache.memory: must be 0 (cache off) or at least 2 blocks of cache.block_size \
             (2MiB), got '1MiB'",
        ),
        (
            "[cache]\nmemory = \"1MiB\"\nblock_size = \"1MiB\"",
            "cache.memory: must be 0 (cache off) or at least 2 blocks",
        ),
        (
            "[cache]\nblock_size = \"1MB\"",
            "cache.block_size: must be a power of two between 64KiB and 64MiB, got '1MB'",
        ),
        (
            "[cache]\nblock_size = \"32KiB\"",
            "cache.block_size: must be a power of two between 64KiB and 64MiB, got '32KiB'",
        ),
        (
            "[cache]\nblock_size = \"128MiB\"",
            "cache.block_size: must be a power of two between 64KiB and 64MiB",
        ),
        (
            "[cache]\nblock_size = 0",
            "cache.block_size: must be a power of two between 64KiB and 64MiB, got '0'",
        ),
        (
            "[cache]\nblock_size = \"1 GiB\"",
            "cache.block_size: must be a power of two",
        ),
        (
            "[cache]\nblock_size = \"big\"",
            "cache.block_size: invalid size 'big'",
        ),
        (
            "[cache]\nmetadata_ttl = \"60\"",
            "cache.metadata_ttl: invalid duration '60': missing unit",
        ),
        (
            "[cache]\nmetadata_entries = 0",
            "cache.metadata_entries: must be at least 1",
        ),
        (
            "[[bucket]]\nname = \"\"",
            "bucket[0].name: must not be empty",
        ),
        (
            "[[bucket]]\nname = \"a/b\"",
            "bucket[a/b].name: 'a/b' is not a valid bucket name",
        ),
        (
            "[[bucket]]\nname = \"a\"\n[[bucket]]\nname = \"a\"",
            "bucket[a].name: duplicate bucket name",
        ),
        (
            "[[bucket]]\nname = \"a\"\norigin_bucket = \"\"",
            "bucket[a].origin_bucket: must not be empty",
        ),
        (
            "[[bucket]]\nname = \"a\"\nendpoint = \"gopher://x\"",
            "bucket[a].endpoint: scheme must be http or https",
        ),
        (
            "[[bucket]]\nname = \"a\"\nregion = \"\"",
            "bucket[a].region: must not be empty",
        ),
        (
            "[[bucket]]\nname = \"a\"\naccess_key_id = \"AK\"",
            "bucket[a].secret_access_key: must be set together",
        ),
        (
            "[[bucket]]\nname = \"a\"\nsession_token = \"T\"",
            "bucket[a].session_token: is set but",
        ),
        (
            "[[bucket]]\nname = \"a\"\nendpoint = \"https://x\"\nca_file = \"/none.pem\"",
            "bucket[a].ca_file: /none.pem",
        ),
    ];
    for (text, want) in cases {
        let got = invalid(text);
        assert!(
            got.starts_with(want),
            "config {text:?}\n  got:  {got}\n  want: {want}..."
        );
    }
}

#[test]
fn typed_values_parse() {
    let s = from_text(&format!(
        "[server]\nlisten = \"[::1]:0\"\nworkers = 3\ndomain = \"S3.Example.COM.\"\n\
         io_driver = \"epoll\"\npin_cores = false\nmax_head_size = 8192\n\
         idle_timeout = \"250ms\"\n\
         [origin]\nendpoint = \"https://[fd00::1]:9443/\"\nca_file = \"{}\"\n\
         resolve_interval = \"0s\"\n",
        ca_file()
    ))
    .unwrap();
    assert_eq!(s.server.listen, "[::1]:0".parse().unwrap());
    assert_eq!(s.server.worker_count(), 3);
    assert_eq!(s.server.domain.as_deref(), Some("s3.example.com"));
    assert_eq!(s.server.io_driver, IoDriver::Epoll);
    assert!(!s.server.pin_cores);
    assert_eq!(s.server.max_head_size, 8192);
    assert_eq!(s.server.idle_timeout, Duration::from_millis(250));
    assert_eq!(s.origin.scheme, Scheme::Https);
    assert_eq!((s.origin.host.as_str(), s.origin.port), ("fd00::1", 9443));
    assert!(s.origin.tls.is_some());
    assert_eq!(s.resolve_interval, Duration::ZERO);
    let dp = s.server.to_dataplane();
    assert_eq!(dp.max_head_bytes, 8192);
    assert_eq!(dp.domain.as_deref(), Some("s3.example.com"));
}

#[test]
fn aws_variables_fill_empty_credentials() {
    let raw = RawConfig::default();
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "AKENV"),
        ("AWS_SECRET_ACCESS_KEY", "SKENV"),
        ("AWS_SESSION_TOKEN", "TOKENV"),
    ]);
    let s = validate::validate(&raw, &e, None).unwrap();
    let c = s.origin.credentials.as_ref().unwrap();
    assert_eq!(c.access_key_id, "AKENV");
    assert_eq!(c.secret_access_key, "SKENV");
    assert_eq!(c.session_token.as_deref(), Some("TOKENV"));
    assert!(!s.warnings.iter().any(|w| w.contains("no credentials")));

    // Keys in the file win, and the environment's session token is not mixed in.
    let raw = parse("[origin]\naccess_key_id = \"AKF\"\nsecret_access_key = \"SKF\"\n").unwrap();
    let s = validate::validate(&raw, &e, None).unwrap();
    let c = s.origin.credentials.as_ref().unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.session_token.as_deref()),
        ("AKF", None)
    );

    // Half a pair in the environment is an error naming the key it stood in for.
    let err = validate::validate(
        &RawConfig::default(),
        &env(&[("AWS_ACCESS_KEY_ID", "AKENV")]),
        None,
    )
    .unwrap_err();
    assert!(err.detail().starts_with("origin.access_key_id: "), "{err}");
    assert!(err.detail().contains("AWS_SECRET_ACCESS_KEY"), "{err}");

    // A session token alone in the environment is ignored: nothing to sign with.
    let s = validate::validate(
        &RawConfig::default(),
        &env(&[("AWS_SESSION_TOKEN", "T")]),
        None,
    )
    .unwrap();
    assert!(s.origin.credentials.is_none());
}

#[test]
fn bucket_overrides_inherit_from_origin() {
    let text = format!(
        "[origin]\nendpoint = \"http://minio:9000\"\nregion = \"eu-west-1\"\n\
         access_key_id = \"AK\"\nsecret_access_key = \"SK\"\nconnect_timeout = \"2s\"\n\
         [[bucket]]\nname = \"renamed\"\norigin_bucket = \"prod-renamed\"\n\
         [[bucket]]\nname = \"analytics\"\norigin_bucket = \"prod-analytics\"\n\
         endpoint = \"https://s3.us-west-2.amazonaws.com\"\nregion = \"us-west-2\"\n\
         ca_file = \"{}\"\n\
         [[bucket]]\nname = \"other-keys\"\naccess_key_id = \"AK2\"\n\
         secret_access_key = \"SK2\"\nsession_token = \"T2\"\n\
         [[bucket]]\nname = \"public\"\naccess_key_id = \"\"\nsecret_access_key = \"\"\n",
        ca_file()
    );
    let s = from_text(&text).unwrap();
    assert_eq!(s.buckets.len(), 4);

    let renamed = &s.buckets[0];
    assert_eq!(renamed.origin_bucket, "prod-renamed");
    assert!(
        renamed.origin.is_none(),
        "a rename alone shares the default origin"
    );

    let analytics = s.buckets[1].origin.as_ref().unwrap();
    assert_eq!(s.buckets[1].origin_bucket, "prod-analytics");
    assert_eq!(analytics.name, "analytics");
    assert_eq!(analytics.scheme, Scheme::Https);
    assert_eq!(
        (analytics.host.as_str(), analytics.port),
        ("s3.us-west-2.amazonaws.com", 443)
    );
    assert_eq!(analytics.region, "us-west-2");
    assert!(analytics.tls.is_some());
    let c = analytics.credentials.as_ref().unwrap();
    assert_eq!(c.access_key_id, "AK", "credentials inherited");
    assert_eq!(
        analytics.connect_timeout,
        Duration::from_secs(2),
        "timeouts inherited"
    );

    let other = s.buckets[2].origin.as_ref().unwrap();
    assert_eq!(s.buckets[2].origin_bucket, "other-keys");
    assert_eq!(
        (other.host.as_str(), other.port),
        ("minio", 9000),
        "endpoint inherited"
    );
    assert_eq!(other.region, "eu-west-1", "region inherited");
    let c = other.credentials.as_ref().unwrap();
    assert_eq!(c.access_key_id, "AK2");
    assert_eq!(c.session_token.as_deref(), Some("T2"));

    let public = s.buckets[3].origin.as_ref().unwrap();
    assert!(public.credentials.is_none());
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("'public' has no credentials")));

    assert_eq!(s.origins().count(), 4);
}

#[test]
fn effective_config_redacts_secrets_and_parses_back() {
    let text = "[origin]\naccess_key_id = \"AKVISIBLE\"\nsecret_access_key = \"SKSECRET\"\n\
                session_token = \"TOKSECRET\"\n\
                [[bucket]]\nname = \"b\"\naccess_key_id = \"AK2\"\nsecret_access_key = \"SK2SECRET\"\n";
    let s = from_text(text).unwrap();
    let out = effective_toml(&s);
    assert!(!out.contains("SECRET"), "{out}");
    assert!(out.contains("AKVISIBLE"), "{out}");
    assert!(out.contains(REDACTED), "{out}");
    let back = parse(&out).unwrap();
    assert_eq!(back.server, RawConfig::default().server);
    assert_eq!(back.origin.secret_access_key, REDACTED);
    assert_eq!(back.buckets[0].secret_access_key.as_deref(), Some(REDACTED));
    assert_eq!(back.buckets[0].origin_bucket.as_deref(), Some("b"));
    // Debug output of the typed settings does not leak them either.
    let debug = format!("{s:?}");
    assert!(!debug.contains("SKSECRET") && !debug.contains("TOKSECRET"));
}

#[test]
fn effective_config_shows_the_cache() {
    let s = from_text("[cache]\nmemory = 0\nblock_size = 131072\nmetadata_ttl = \"1m\"\n").unwrap();
    let back = parse(&effective_toml(&s)).unwrap();
    assert_eq!(back.cache.memory, "0");
    assert_eq!(back.cache.block_size, "128KiB");
    assert_eq!(back.cache.metadata_ttl, "60s");
    assert_eq!(back.cache.metadata_entries, 100_000);
    let again = validate::validate(&back, &EnvVars::new(), None).unwrap();
    assert_eq!(again.cache, s.cache);
}

#[test]
fn reload_keeps_restart_only_values() {
    let running = from_text("[server]\nworkers = 2\n").unwrap();
    let mut next = from_text(
        "[server]\nworkers = 4\nlisten = \"127.0.0.1:1\"\nidle_timeout = \"5s\"\n\
         [cache]\nmemory = \"2GiB\"\nmetadata_ttl = \"5s\"\n",
    )
    .unwrap();
    let changed = next.keep_restart_only(&running);
    assert_eq!(
        changed,
        [
            "server.listen",
            "server.workers",
            "cache.memory",
            "cache.metadata_ttl"
        ]
    );
    assert_eq!(next.cache, running.cache);
    assert_eq!(next.server.workers, 2);
    assert_eq!(next.server.listen, running.server.listen);
    assert_eq!(
        next.server.idle_timeout,
        Duration::from_secs(5),
        "others take effect"
    );
}

#[test]
fn the_disk_tier_is_off_by_default_and_checked_when_on() {
    assert!(from_text("").unwrap().cache.disk.is_none());
    let s = from_text("[cache.disk]\npath = \"/var/cache/rangecache\"\nsize = \"4GiB\"\n").unwrap();
    let disk = s.cache.disk.as_ref().unwrap();
    assert_eq!(
        (disk.path.to_str(), disk.size),
        (Some("/var/cache/rangecache"), 4 << 30)
    );
    let config = s.cache.disk_config().unwrap();
    assert_eq!(config.block_size, s.cache.block_size);
    // Dotted keys reach the same table.
    let s = from_text("[cache]\ndisk.path = \"/d\"\ndisk.size = \"1GiB\"\n").unwrap();
    assert_eq!(s.cache.disk.unwrap().size, 1 << 30);

    let e = invalid("[cache.disk]\npath = \"/d\"\n");
    assert!(e.starts_with("cache.disk.size:"), "{e}");
    let e = invalid("[cache.disk]\npath = \"/d\"\nsize = \"lots\"\n");
    assert!(e.starts_with("cache.disk.size:"), "{e}");
    let e = invalid("[cache]\nmemory = 0\n[cache.disk]\npath = \"/d\"\nsize = \"1GiB\"\n");
    assert!(e.starts_with("cache.disk.path:"), "{e}");
    let e = parse("[cache.disk]\npath = \"/d\"\nsize = \"1GiB\"\nfiles = 2\n").unwrap_err();
    assert!(e.to_string().contains("unknown field 'files'"), "{e}");
}
