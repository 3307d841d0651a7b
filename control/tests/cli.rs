//! End-to-end tests of the `rangecache` binary: startup errors (one `[phase]` line, exit 1),
//! `--check`, and a short run with the admin endpoint, SIGHUP and SIGTERM.
//!
//! Every address is `127.0.0.1:0` or a port the test holds; the origin is an address literal,
//! so no test needs DNS or the network.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary with a clean environment (no stray RANGECACHE_* or AWS_* variables), run in
/// cargo's scratch directory for tests, which has no `config/` to merge.
fn rangecache() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rangecache"));
    cmd.env_clear()
        .env("RANGECACHE_LOG", "warn")
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    cmd
}

/// A config file in the temp directory, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("rangecache-cli-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run to completion and return (exit code, last stderr line).
fn fails(cmd: &mut Command) -> (i32, String) {
    let out: Output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    (out.status.code().unwrap_or(-1), last)
}

#[test]
fn missing_config_file_is_a_load_error() {
    let (code, line) = fails(rangecache().args(["--config", "/nonexistent/rc.toml"]));
    assert_eq!(code, 1);
    assert_eq!(
        line,
        "rangecache: [load_config] /nonexistent/rc.toml: No such file or directory"
    );
}

#[test]
fn unknown_key_is_a_parse_error_with_its_line() {
    let cfg = TempConfig::new("unknown", "[server]\n\nlisen = \"127.0.0.1:1\"\n");
    let (code, line) = fails(rangecache().arg("--config").arg(&cfg.0));
    assert_eq!(code, 1);
    let want = format!(
        "rangecache: [parse_config] {}: line 3: unknown field 'lisen'",
        cfg.0.display()
    );
    assert!(line.starts_with(&want), "{line}");
}

#[test]
fn bad_flag_value_is_a_validation_error() {
    let (code, line) = fails(rangecache().args(["--origin", "ftp://x"]));
    assert_eq!(code, 1);
    assert_eq!(
        line,
        "rangecache: [validate_config] origin.endpoint: scheme must be http or https"
    );
}

#[test]
fn bad_environment_value_names_the_variable() {
    let (code, line) = fails(rangecache().env("RANGECACHE_SERVER__WORKERS", "four"));
    assert_eq!(code, 1);
    assert_eq!(
        line,
        "rangecache: [parse_config] RANGECACHE_SERVER__WORKERS: expected an integer, got 'four'"
    );
}

#[test]
fn busy_admin_port_is_a_bind_admin_error() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let (code, line) = fails(rangecache().args([
        "--origin",
        "http://127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        &addr.to_string(),
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        line,
        format!("rangecache: [bind_admin] {addr}: Address already in use")
    );
}

#[test]
fn busy_listen_port_is_a_bind_listener_error() {
    // Held without SO_REUSEPORT, so the workers' reuse-port bind must fail.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let (code, line) = fails(rangecache().args([
        "--origin",
        "http://127.0.0.1:1",
        "--workers",
        "1",
        "--admin-listen",
        "127.0.0.1:0",
        "--listen",
        &addr.to_string(),
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        line,
        format!("rangecache: [bind_listener] {addr}: Address already in use")
    );
}

#[test]
fn check_prints_the_effective_config_redacted() {
    let cfg = TempConfig::new(
        "check",
        "[server]\nworkers = 3\n[origin]\naccess_key_id = \"AKFILE\"\n\
         secret_access_key = \"SECRETFILE\"\n[[bucket]]\nname = \"b\"\n",
    );
    let out = rangecache()
        .arg("--config")
        .arg(&cfg.0)
        .args(["--check", "--listen", "127.0.0.1:7070"])
        .env("RANGECACHE_SERVER__DOMAIN", "s3.test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("SECRETFILE"), "{text}");
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:7070"));
    assert_eq!(v["server"]["workers"].as_integer(), Some(3));
    assert_eq!(v["server"]["domain"].as_str(), Some("s3.test"));
    assert_eq!(v["origin"]["access_key_id"].as_str(), Some("AKFILE"));
    assert_eq!(
        v["origin"]["secret_access_key"].as_str(),
        Some("<redacted>")
    );
    assert_eq!(v["bucket"][0]["origin_bucket"].as_str(), Some("b"));
}

/// A scratch directory holding `config/` files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str, files: &[(&str, &str)]) -> Self {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(root.join("config")).unwrap();
        for (file, text) in files {
            std::fs::write(root.join("config").join(file), text).unwrap();
        }
        Self(root)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn profiles_and_the_config_directory_layer_with_provenance() {
    let dir = TempDir::new(
        "profiles",
        &[
            ("default.toml", "[server]\nworkers = 2\n"),
            (
                "prod.toml",
                "[server]\nlisten = \"127.0.0.1:7071\"\n[origin]\naccess_key_id = \"AKPROD\"\n\
                 secret_access_key = \"PRODSECRET\"\n",
            ),
            ("local.toml", "[cache]\nmemory = \"64MiB\"\n"),
        ],
    );
    // The working directory's config/ is the default directory.
    let out = rangecache()
        .current_dir(&dir.0)
        .args(["--profile", "prod", "--check", "--domain", "s3.test"])
        .env("RANGECACHE_CACHE__BLOCK_SIZE", "4MiB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("PRODSECRET"), "{text}");
    let from = |key: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"));
        line.rsplit_once("   # from ").unwrap().1.to_owned()
    };
    assert_eq!(from("server.workers"), "config/default.toml");
    assert_eq!(from("server.listen"), "config/prod.toml");
    assert_eq!(from("origin.secret_access_key"), "config/prod.toml");
    assert_eq!(from("cache.memory"), "config/local.toml");
    assert_eq!(from("cache.block_size"), "RANGECACHE_CACHE__BLOCK_SIZE");
    assert_eq!(from("server.domain"), "--domain");
    assert_eq!(from("log.access"), "profile prod");
    assert_eq!(from("server.idle_timeout"), "built-in defaults");
    assert!(
        text.contains("\nserver.listen = \"127.0.0.1:7071\" "),
        "{text}"
    );
    assert!(text.contains("\norigin.secret_access_key = \"<redacted>\" "));
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["cache"]["memory"].as_str(), Some("64MiB"));

    // RANGECACHE_PROFILE picks the profile; --config-dir replaces ./config.
    let out = rangecache()
        .args(["--check", "--config-dir"])
        .arg(dir.0.join("config"))
        .env("RANGECACHE_PROFILE", "dev")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("# profile: dev (RANGECACHE_PROFILE)"),
        "{text}"
    );
    assert!(text.contains("\nauth.mode = \"none\" "), "{text}");
    assert!(!text.contains("127.0.0.1:7071"), "prod.toml is not dev's");

    // A profile whose requirements are not met names the missing key.
    let (code, line) = fails(
        rangecache()
            .current_dir(&dir.0)
            .args(["--profile", "prod-tls"]),
    );
    assert_eq!(code, 1);
    assert_eq!(
        line,
        "rangecache: [validate_config] server.tls.cert_file: profile prod-tls requires TLS on \
         the client listener: set server.tls.cert_file and server.tls.key_file"
    );
    let (code, line) = fails(rangecache().args(["--profile", "qa"]));
    assert_eq!(code, 1);
    assert_eq!(
        line,
        "rangecache: [validate_config] --profile: unknown profile 'qa' (expected default, dev, \
         prod, prod-tls or prod-mtls)"
    );
}

/// A running rangecache, killed on drop if the test did not stop it.
struct Running {
    child: Child,
    admin: SocketAddr,
    stderr: mpsc::Receiver<String>,
    /// The log lines up to the admin endpoint's.
    startup: Vec<String>,
}

impl Running {
    fn start(config: &TempConfig) -> Self {
        Self::start_with_env(config, &[])
    }

    fn start_with_env(config: &TempConfig, env: &[(&str, &str)]) -> Self {
        let mut child = rangecache()
            .env("RANGECACHE_LOG", "info")
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&config.0)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, stderr) = mpsc::channel();
        let pipe = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Self {
            child,
            admin: "0.0.0.0:0".parse().unwrap(),
            stderr,
            startup: Vec::new(),
        };
        running.startup = running.lines_until("admin endpoint on http://");
        let line = running.startup.last().unwrap();
        let addr = line.rsplit("http://").next().unwrap().trim();
        running.admin = addr.parse().unwrap();
        running
    }

    /// The first stderr line containing `needle` (panics after 10 s).
    fn wait_for_log(&self, needle: &str) -> String {
        self.lines_until(needle).pop().unwrap()
    }

    /// The stderr lines up to and including the first containing `needle` (panics after 10 s).
    fn lines_until(&self, needle: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    lines.push(line);
                    if found {
                        return lines;
                    }
                }
                Err(e) => panic!("no log line containing {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `GET path` on the admin endpoint: (status, content type, body).
    fn get(&self, path: &str) -> (u16, String, String) {
        self.request("GET", path)
    }

    /// `method target` on the admin endpoint: (status, content type, body).
    fn request(&self, method: &str, target: &str) -> (u16, String, String) {
        self.exchange(method, target, "", "")
    }

    /// `POST target` with a form body: (status, content type, body).
    fn post_form(&self, target: &str, form: &str) -> (u16, String, String) {
        let ct = "Content-Type: application/x-www-form-urlencoded\r\n";
        self.exchange("POST", target, ct, form)
    }

    fn exchange(
        &self,
        method: &str,
        target: &str,
        headers: &str,
        body: &str,
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: admin\r\n{headers}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        let content_type = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type: ")
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        (status, content_type, body.to_owned())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serves_admin_reloads_on_sighup_and_drains_on_sigterm() {
    let base = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n\
                pin_cores = false\ndrain_timeout = \"1s\"\n\
                [cache]\nmemory = \"64MiB\"\n\
                [origin]\nendpoint = \"http://127.0.0.1:1\"\n";
    let cfg = TempConfig::new("run", base);
    let mut rc = Running::start(&cfg);

    assert_eq!(
        rc.get("/healthz"),
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    assert_eq!(rc.get("/readyz").0, 200);
    let (status, content_type, metrics) = rc.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(
        metrics.contains("rangecache_config_generation 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("rangecache_workers 1\n"), "{metrics}");
    assert!(
        metrics.contains("rangecache_worker_info{worker=\"0\",driver=\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("rangecache_cache_capacity_bytes 67108864\n"),
        "{metrics}"
    );
    let (status, content_type, _) = rc.get("/nope");
    assert_eq!(
        (status, content_type.as_str()),
        (404, "application/problem+json")
    );

    // The cache endpoints.
    let (status, content_type, stats) = rc.get("/cache/stats");
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["enabled"], true);
    assert_eq!(stats["capacity_bytes"], 64 << 20);
    assert_eq!(stats["block_size"], 1 << 20);
    let (status, _, purged) = rc.request("POST", "/cache/purge?bucket=b&prefix=x%2F");
    assert_eq!(status, 200, "{purged}");
    let purged: serde_json::Value = serde_json::from_str(&purged).unwrap();
    assert_eq!(
        purged,
        serde_json::json!({"bucket": "b", "blocks": 0, "objects": 0})
    );
    let (status, content_type, _) = rc.request("POST", "/cache/purge?key=k");
    assert_eq!(
        (status, content_type.as_str()),
        (400, "application/problem+json")
    );
    assert_eq!(rc.get("/cache/purge?bucket=b").0, 405);

    // A good reload publishes generation 2; the cache keeps its size until a restart ...
    let reloaded = base.replace("64MiB", "128MiB");
    std::fs::write(&cfg.0, format!("{reloaded}region = \"eu-west-1\"\n")).unwrap();
    rc.signal("HUP");
    rc.wait_for_log("cache.memory changed: it takes effect only after a restart");
    rc.wait_for_log("configuration reloaded: generation 2");
    let (_, _, config) = rc.get("/config");
    assert!(config.contains("\"region\": \"eu-west-1\""), "{config}");
    assert!(config.contains("\"memory\": \"64MiB\""), "{config}");
    assert!(rc
        .get("/cache/stats")
        .2
        .contains("\"capacity_bytes\": 67108864"));

    // ... a bad one is rejected and the old snapshot stays.
    std::fs::write(&cfg.0, format!("{base}bogus = 1\n")).unwrap();
    rc.signal("HUP");
    let line = rc.wait_for_log("configuration reload failed");
    assert!(line.contains("keeping generation 2"), "{line}");
    assert!(line.contains("[parse_config]"), "{line}");
    assert!(rc
        .get("/metrics")
        .2
        .contains("rangecache_config_generation 2\n"));

    rc.signal("TERM");
    let status = rc.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Config text for a quick run: ephemeral ports, one worker, an unreachable origin.
const RUN_BASE: &str = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
                        workers = 1\npin_cores = false\ndrain_timeout = \"1s\"\n\
                        [cache]\nmemory = \"64MiB\"\n\
                        [origin]\nendpoint = \"http://127.0.0.1:1\"\n";

/// A session token key (base64 of 32 bytes).
const SESSION_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

#[test]
fn check_shows_auth_with_secrets_redacted() {
    let cfg = TempConfig::new(
        "check-auth",
        "[[auth.keys]]\naccess_key_id = \"AKREADER\"\nsecret_access_key = \"KEYSECRET\"\n\
         grants = [{ bucket = \"data\", access = [\"read\", \"list\"] }]\n\
         [[auth.anonymous]]\nbucket = \"public\"\naccess = \"read\"\n",
    );
    let out = rangecache()
        .arg("--config")
        .arg(&cfg.0)
        .arg("--check")
        .env("SESSION_TOKEN_KEY", SESSION_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("KEYSECRET") && !text.contains(SESSION_KEY),
        "{text}"
    );
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["auth"]["mode"].as_str(), Some("sigv4"));
    assert_eq!(
        v["auth"]["keys"][0]["access_key_id"].as_str(),
        Some("AKREADER")
    );
    assert_eq!(
        v["auth"]["keys"][0]["secret_access_key"].as_str(),
        Some("<redacted>")
    );
    let shown_key = v["auth"]["session_token_keys"][0].as_str().unwrap();
    assert!(shown_key.starts_with("<redacted> id "), "{shown_key}");
    assert_eq!(v["auth"]["anonymous"][0]["bucket"].as_str(), Some("public"));

    // A bad session token key is a startup error that names its position, not the key.
    let (code, line) = fails(
        rangecache()
            .arg("--check")
            .env("SESSION_TOKEN_KEY", "bm9wZQ=="),
    );
    assert_eq!(code, 1);
    assert_eq!(
        line,
        "rangecache: [validate_config] SESSION_TOKEN_KEY: key 1 of 1: session token key must be \
         32 bytes (base64 of 32 random bytes), got 4"
    );
}

#[test]
fn mode_none_is_warned_about_at_startup_and_on_reload() {
    let cfg = TempConfig::new("mode-none", &format!("{RUN_BASE}[auth]\nmode = \"none\"\n"));
    let rc = Running::start(&cfg);
    let warned = |line: &String| {
        line.contains("WARN") && line.contains("auth.mode = \"none\": clients are NOT verified")
    };
    assert!(rc.startup.iter().any(warned), "{:#?}", rc.startup);
    rc.signal("HUP");
    let line = rc.wait_for_log("clients are NOT verified");
    assert!(warned(&line), "{line}");
    rc.wait_for_log("configuration reloaded: generation 2");
}

/// An ES256 JWT over `claims`, signed with a fresh P-256 key; and that key's JWKS.
fn es256_token(claims: &serde_json::Value) -> (String, String) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = key.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
    let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(&rng, input.as_bytes()).unwrap();
    (
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())),
        jwks.to_string(),
    )
}

#[test]
fn sts_answers_assume_role_with_web_identity() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (token, jwks) = es256_token(&serde_json::json!({
        "iss": "https://issuer.test", "sub": "ci-job", "aud": "rangecache",
        "exp": now + 600, "iat": now
    }));
    let jwks_file = TempConfig::new("sts-jwks", &jwks);
    let cfg = TempConfig::new(
        "sts",
        &format!(
            "{RUN_BASE}[[auth.roles]]\nname = \"analytics\"\nissuer = \"https://issuer.test\"\n\
             jwks_file = \"{}\"\naudiences = [\"rangecache\"]\n\
             grants = [{{ bucket = \"data\", access = \"read\" }}]\n",
            jwks_file.0.display()
        ),
    );
    let rc = Running::start_with_env(&cfg, &[("SESSION_TOKEN_KEY", SESSION_KEY)]);
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fanalytics\
         &RoleSessionName=job-1&DurationSeconds=900&WebIdentityToken={token}"
    );
    let (status, content_type, xml) = rc.post_form("/", &body);
    assert_eq!((status, content_type.as_str()), (200, "text/xml"), "{xml}");
    assert!(xml.contains("<AccessKeyId>ASIA"), "{xml}");
    assert!(
        xml.contains("<SubjectFromWebIdentityToken>ci-job<"),
        "{xml}"
    );
    assert!(xml.contains("assumed-role/analytics/job-1</Arn>"), "{xml}");

    let (status, _, xml) = rc.post_form("/", &body.replace("analytics", "nope"));
    assert_eq!(status, 403, "{xml}");
    assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
    let (status, _, xml) = rc.get("/?Action=GetCallerIdentity");
    assert_eq!(status, 400, "{xml}");
    assert!(xml.contains("<Code>InvalidAction</Code>"), "{xml}");

    let metrics = rc.get("/metrics").2;
    assert!(
        metrics.contains("rangecache_sts_requests_total{result=\"ok\"} 1\n"),
        "{metrics}"
    );
}
