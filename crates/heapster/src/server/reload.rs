//! Files the server reads at start-up and again whenever they change on disk: the serving certificate, the client
//! CAs and the token file. Certificates are renewed and CAs rotated in place (cert-manager updating a Secret, the
//! kubelet refreshing the extension-apiserver-authentication ConfigMap volume), and a restart to pick them up
//! would empty the 15-minute store.
//!
//! Files are checked when they are used (a handshake, a request with a token) rather than by a watcher: a `stat`
//! per file costs little next to a TLS handshake, and nothing runs while nobody connects.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The files' inodes, modification times and sizes (following symlinks, as Kubernetes swaps a volume's files by
/// replacing a symlink): any difference means they were rewritten. `None` while one cannot be read.
type Stamp = Option<Vec<(u64, SystemTime, u64)>>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    paths.iter().map(|p| std::fs::metadata(p).and_then(|m| Ok((m.ino(), m.modified()?, m.len()))).ok()).collect()
}

/// What a set of files loads into, loaded again when they change. A new version that does not load (a key written
/// before its certificate, a truncated CA file) is logged once, naming the flag and what is wrong, and the previous
/// value kept until the files change again: refusing every client because of a half-written file would be worse.
pub struct Reloading<T> {
    paths: Vec<PathBuf>,
    /// What is kept when a new version does not load, for the log line: "serving certificate", "client CAs".
    what: &'static str,
    load: Box<dyn Fn() -> Result<T, String> + Send + Sync>,
    current: Mutex<(Stamp, Arc<T>)>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading").field("paths", &self.paths).field("what", &self.what).finish_non_exhaustive()
    }
}

impl<T> Reloading<T> {
    /// Loads `paths` with `load` once; at start-up a file that does not load is an error (`load`'s, which should
    /// name the flag).
    pub fn load(
        paths: &[&Path],
        what: &'static str,
        load: impl Fn() -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Reloading<T>, String> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
        let stamp = stamp(&paths);
        let loaded = Arc::new(load()?);
        Ok(Reloading { paths, what, load: Box::new(load), current: Mutex::new((stamp, loaded)) })
    }

    /// The current value, loaded again first if the files changed since the last look.
    pub fn get(&self) -> Arc<T> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.paths);
        if now.is_some() && now != current.0 {
            current.0 = now;
            match (self.load)() {
                Ok(v) => {
                    tracing::info!("reloaded the {} from {}", self.what, self.describe());
                    current.1 = Arc::new(v);
                }
                Err(e) => tracing::warn!("{e}; keeping the previous {} until the file changes again", self.what),
            }
        }
        current.1.clone()
    }

    fn describe(&self) -> String {
        self.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reloads_and_a_bad_version_keeps_the_previous() {
        let dir = std::env::temp_dir().join(format!("heapster-reload-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("n");
        std::fs::write(&file, "1").unwrap();
        let path = file.clone();
        let parse = move || {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            text.trim().parse::<u32>().map_err(|e| format!("--n={}: {e}", path.display()))
        };
        let r = Reloading::load(&[&file], "number", parse).unwrap();
        assert_eq!(*r.get(), 1);
        let swap = |text: &str| {
            std::fs::write(dir.join("n.new"), text).unwrap();
            std::fs::rename(dir.join("n.new"), &file).unwrap();
        };
        swap("2");
        assert_eq!(*r.get(), 2);
        swap("two");
        assert_eq!(*r.get(), 2, "a version that does not load keeps the previous");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(*r.get(), 2, "a file missing for a moment (a volume being swapped) keeps it too");
        swap("3");
        assert_eq!(*r.get(), 3);
        let e = Reloading::load(&[&dir.join("missing")], "number", || Err::<u32, _>("--n: missing".into()));
        assert_eq!(e.unwrap_err(), "--n: missing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
