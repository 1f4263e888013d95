//! Each event sink's cursor: the resource version through which it holds every event version.
//!
//! A cursor is kept in two places. With `--events_state_dir` it is a small file per sink, replaced atomically
//! after every batch the sink took, so that a restart of this replica resumes there. With a Lease it is also
//! written into the Lease (one annotation, a JSON map from sink name to version), so that the replica that takes
//! over after this one resumes there too, whatever its own disk holds. Loading takes the newest of both.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The Lease annotation that carries the cursors.
pub const LEASE_ANNOTATION: &str = "eventer.heapster.k8s.io/cursors";

#[derive(Clone, Default)]
pub struct Cursors {
    dir: Option<PathBuf>,
    /// The cursors as the Lease carries them (written on each renewal by [`crate::eventer::lease`]).
    shared: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Cursors {
    /// Cursors kept in `dir` (created if missing) and in memory for the Lease; checks the directory is writable.
    pub fn open(dir: Option<PathBuf>) -> Result<Cursors, String> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)
                .and_then(|_| write_atomically(&d.join(".probe"), b""))
                .map_err(|e| format!("--events_state_dir={}: cannot write there: {e}", d.display()))?;
        }
        Ok(Cursors { dir, shared: Default::default() })
    }

    fn file(&self, sink: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        // Appended, not `with_extension`: the name's hash follows its last dot and must stay.
        let mut file = heapster_sinks::spool::sink_dir(dir, sink).into_os_string();
        file.push(".resourceversion");
        Some(PathBuf::from(file))
    }

    /// The newest cursor known for `sink`, from its state file and the Lease.
    pub fn load(&self, sink: &str) -> Option<u64> {
        let from_file =
            self.file(sink).and_then(|f| std::fs::read_to_string(f).ok()).and_then(|s| s.trim().parse().ok());
        let from_lease = lock(&self.shared).get(sink).copied();
        from_file.max(from_lease)
    }

    /// Records that `sink` holds everything through `rv`.
    pub fn save(&self, sink: &str, rv: u64) -> std::io::Result<()> {
        {
            let mut shared = lock(&self.shared);
            let e = shared.entry(sink.to_owned()).or_default();
            *e = (*e).max(rv);
        }
        match self.file(sink) {
            Some(f) => write_atomically(&f, format!("{rv}\n").as_bytes()),
            None => Ok(()),
        }
    }

    /// The cursors as JSON for the Lease annotation.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(&*lock(&self.shared)).unwrap_or_default()
    }

    /// Takes in cursors another replica wrote into the Lease; newer ones win.
    pub fn merge_annotation(&self, json: &str) {
        let Ok(theirs) = serde_json::from_str::<BTreeMap<String, u64>>(json) else { return };
        let mut shared = lock(&self.shared);
        for (sink, rv) in theirs {
            let e = shared.entry(sink).or_default();
            *e = (*e).max(rv);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `bytes` to a temporary file, syncs it and renames it over `path`: a crash leaves the old or the new
/// content, never a torn one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_and_a_new_leader_both_resume_at_the_newest_cursor() {
        let dir = std::env::temp_dir().join(format!("heapster-cursors-{}", std::process::id()));
        let c = Cursors::open(Some(dir.clone())).unwrap();
        assert_eq!(c.load("influxdb:http://h:8086/?db=k8s"), None);
        c.save("influxdb:http://h:8086/?db=k8s", 41).unwrap();
        c.save("influxdb:http://h:8086/?db=k8s", 42).unwrap();
        c.save("log", 7).unwrap();
        c.save("log:/var/log/a.jsonl", 8).unwrap();
        c.save("log:/var/log/a_jsonl", 9).unwrap();
        // A restart: a fresh process reads the files.
        let again = Cursors::open(Some(dir.clone())).unwrap();
        assert_eq!(again.load("influxdb:http://h:8086/?db=k8s"), Some(42));
        assert_eq!(again.load("log"), Some(7));
        assert_eq!(again.load("log:/var/log/a.jsonl"), Some(8), "names alike once made safe keep their own file");
        // Another replica, with no state of its own, reads the Lease.
        let other = Cursors::open(None).unwrap();
        other.merge_annotation(&c.to_annotation());
        assert_eq!(other.load("log"), Some(7));
        other.merge_annotation(r#"{"log":3}"#);
        assert_eq!(other.load("log"), Some(7), "an older cursor never moves one back");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_one_line() {
        let e = Cursors::open(Some("/proc/heapster-cannot".into())).err().unwrap();
        assert!(e.starts_with("--events_state_dir=/proc/heapster-cannot: cannot write there"), "{e}");
    }
}
