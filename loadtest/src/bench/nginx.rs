//! Debian's nginx with a slice cache (`nginx.conf.tmpl` beside this file) as a child process,
//! with a second listener serving the same objects from local files (the ceiling).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::proc::{free_port, terminate, wait_for_port};
use crate::content;
use crate::object::ObjectRef;

/// Bytes generated per write when laying out object files.
const FILE_PIECE: usize = 8 << 20;

/// The configuration template.
pub const TEMPLATE: &str = include_str!("nginx.conf.tmpl");

/// What to tell someone without nginx.
pub const INSTALL_HINT: &str =
    "nginx not found; install it with `apt-get install -y nginx` (Debian 12: that package has the slice module; any nginx built with --with-http_slice_module works), or pass --nginx PATH";

/// Find nginx: `explicit`, else `nginx` on PATH, `/usr/sbin/nginx`, `/usr/local/nginx/sbin/nginx`.
/// Checks that it has the slice module.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_owned()],
        None => std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("nginx"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain([
                PathBuf::from("/usr/sbin/nginx"),
                PathBuf::from("/usr/local/nginx/sbin/nginx"),
            ])
            .collect(),
    };
    let Some(bin) = candidates.into_iter().find(|p| p.is_file()) else {
        bail!("{INSTALL_HINT}");
    };
    let out = Command::new(&bin)
        .arg("-V")
        .output()
        .with_context(|| format!("run {} -V", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    if !text.contains("http_slice_module") {
        bail!(
            "{} lacks the slice module (--with-http_slice_module); {INSTALL_HINT}",
            bin.display()
        );
    }
    Ok(bin)
}

/// Who nginx's workers run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// Started as root: `user root;`, so workers can read the temporary prefix.
    Root,
    /// Started unprivileged: workers keep the caller's user.
    Caller,
}

/// Where nginx listens and what it proxies.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    /// The origin it proxies and caches.
    pub origin: SocketAddr,
    /// The slice-cache listener.
    pub cache: SocketAddr,
    /// The local-file listener.
    pub files: SocketAddr,
}

/// Fill the template.
pub fn render(prefix: &Path, at: Listeners, workers: usize, run_as: RunAs) -> String {
    TEMPLATE
        .replace(
            "@USER@",
            if run_as == RunAs::Root {
                "user root;"
            } else {
                ""
            },
        )
        .replace("@WORKERS@", &workers.to_string())
        .replace("@PREFIX@", &prefix.display().to_string())
        .replace("@ORIGIN@", &at.origin.to_string())
        .replace("@FILES_LISTEN@", &at.files.to_string())
        .replace("@LISTEN@", &at.cache.to_string())
}

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// Slice-cache listener.
    pub addr: SocketAddr,
    /// Local-file listener: serves `files_dir()/<bucket>/<key>`.
    pub files_addr: SocketAddr,
    /// Its prefix directory (config, cache, logs).
    pub prefix: PathBuf,
}

impl Nginx {
    /// Start nginx with a fresh prefix under `dir`, in front of `origin`.
    pub fn start(bin: &Path, dir: &Path, origin: SocketAddr, workers: usize) -> Result<Nginx> {
        let prefix = dir.join("nginx");
        for d in [
            "tmp/body",
            "tmp/proxy",
            "tmp/fastcgi",
            "tmp/uwsgi",
            "tmp/scgi",
            "cache",
            "files",
        ] {
            std::fs::create_dir_all(prefix.join(d))?;
        }
        let (addr, files_addr) = (free_port()?, free_port()?);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            RunAs::Root
        } else {
            RunAs::Caller
        };
        let conf = prefix.join("nginx.conf");
        let at = Listeners {
            origin,
            cache: addr,
            files: files_addr,
        };
        std::fs::write(&conf, render(&prefix, at, workers, run_as))?;
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let ready = wait_for_port(addr, Duration::from_secs(10), &mut child)
            .and_then(|()| wait_for_port(files_addr, Duration::from_secs(10), &mut child));
        if let Err(e) = ready {
            let err = std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
            terminate(&mut child, Duration::from_secs(2));
            bail!("nginx: {e}\n{err}");
        }
        Ok(Nginx {
            child,
            addr,
            files_addr,
            prefix,
        })
    }

    /// The root of the local-file listener.
    pub fn files_dir(&self) -> PathBuf {
        self.prefix.join("files")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// Write each of `objects` to `root/<bucket>/<key>` with the content the simulator serves for
/// it (so the load generator verifies file-served bytes like any other); files that exist
/// with the right size are kept.
pub fn write_objects(root: &Path, bucket: &str, objects: &[ObjectRef]) -> Result<()> {
    use std::io::Write as _;
    let mut buf = vec![0u8; FILE_PIECE];
    for o in objects {
        let path = root.join(bucket).join(&o.key);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == o.size) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let seed = content::object_seed(bucket, &o.key, 0);
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?,
        );
        let mut off = 0u64;
        while off < o.size {
            let n = usize::try_from((o.size - off).min(FILE_PIECE as u64))?;
            content::fill(seed, off, &mut buf[..n]);
            f.write_all(&buf[..n])?;
            off += n as u64;
        }
        f.flush()
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_fully_filled() {
        let s = render(
            Path::new("/tmp/p"),
            Listeners {
                origin: "127.0.0.1:9000".parse().unwrap(),
                cache: "127.0.0.1:9001".parse().unwrap(),
                files: "127.0.0.1:9002".parse().unwrap(),
            },
            2,
            RunAs::Root,
        );
        assert!(!s.contains('@'), "{s}");
        assert!(s.contains("user root;"));
        assert!(s.contains("server 127.0.0.1:9000;"));
        assert!(s.contains("listen 127.0.0.1:9001;"));
        assert!(s.contains("listen 127.0.0.1:9002;\n        root /tmp/p/files;"));
        assert!(s.contains("slice 1m;"));
    }

    #[test]
    fn object_files_hold_the_simulated_content() {
        let root = std::env::temp_dir().join(format!("rc-lt-files-{}", std::process::id()));
        let objects = [ObjectRef {
            key: "dir/obj-000001-size-1000".into(),
            size: 1000,
        }];
        write_objects(&root, "b", &objects).unwrap();
        let bytes = std::fs::read(root.join("b/dir/obj-000001-size-1000")).unwrap();
        assert_eq!(bytes.len(), 1000);
        let seed = content::object_seed("b", "dir/obj-000001-size-1000", 0);
        assert_eq!(content::verify(seed, 0, &bytes), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
