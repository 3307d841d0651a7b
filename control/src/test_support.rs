//! Helpers shared by the control plane's unit tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh path in the temp directory, unique per process and call.
fn temp_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "rangecache-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A directory of files in the temp directory, removed with its contents on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// An empty directory.
    pub fn empty() -> Self {
        let path = temp_path();
        std::fs::create_dir(&path).expect("the temp directory is writable");
        Self(path)
    }

    /// Write `text` to the file `name` in the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("the temp directory is writable");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file with given contents in the temp directory, unique per process and call, removed on
/// drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// Writes `text` to a fresh file.
    pub fn new(text: &str) -> Self {
        let path = temp_path();
        std::fs::write(&path, text).expect("the temp directory is writable");
        Self(path)
    }

    /// The file's path as text, for config values.
    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
