//! Helpers shared by the control plane's unit tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file with given contents in the temp directory, unique per process and call, removed on
/// drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// Writes `text` to a fresh file.
    pub fn new(text: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "rangecache-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
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
