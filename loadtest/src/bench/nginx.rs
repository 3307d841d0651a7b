//! Debian's nginx with a slice cache (`nginx.conf.tmpl` beside this file) as a child process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::proc::{free_port, terminate, wait_for_port};

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

/// Fill the template.
pub fn render(
    prefix: &Path,
    origin: SocketAddr,
    listen: SocketAddr,
    workers: usize,
    as_root: bool,
) -> String {
    TEMPLATE
        .replace("@USER@", if as_root { "user root;" } else { "" })
        .replace("@WORKERS@", &workers.to_string())
        .replace("@PREFIX@", &prefix.display().to_string())
        .replace("@ORIGIN@", &origin.to_string())
        .replace("@LISTEN@", &listen.to_string())
}

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// Listener.
    pub addr: SocketAddr,
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
        ] {
            std::fs::create_dir_all(prefix.join(d))?;
        }
        let addr = free_port()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_root = unsafe { libc::geteuid() } == 0;
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, render(&prefix, origin, addr, workers, as_root))?;
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
        if let Err(e) = wait_for_port(addr, Duration::from_secs(10), &mut child) {
            let err = std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
            terminate(&mut child, Duration::from_secs(2));
            bail!("nginx: {e}\n{err}");
        }
        Ok(Nginx {
            child,
            addr,
            prefix,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_fully_filled() {
        let s = render(
            Path::new("/tmp/p"),
            "127.0.0.1:9000".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
            2,
            true,
        );
        assert!(!s.contains('@'), "{s}");
        assert!(s.contains("server 127.0.0.1:9000;"));
        assert!(s.contains("listen 127.0.0.1:9001;"));
        assert!(s.contains("slice 1m;"));
    }
}
