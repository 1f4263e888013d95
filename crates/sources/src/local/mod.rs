//! `--source=local`: this host, read straight from its cgroups and procfs, with no kubelet or cAdvisor.
//!
//! Every cgroup is a container (`node:<host>/container:<path>`, type `sys_container`) and the root cgroup is the
//! node. Hierarchies are found through mountinfo and merged by cgroup path, so `/a/b` is one container whether
//! its CPU figures come from a v1 `cpuacct` mount, its memory from a v1 `memory` mount and its PSI from cgroup2.
//! Where a controller has both, v1 wins: on a hybrid host the v1 controller is the one that is enabled.
//!
//! A metric this host cannot give (a controller not mounted, a kernel without PSI) is absent, never zero, and
//! heapster says so once: a log line and the `heapster_source_metric_unavailable` self-metric.

mod cgroup;
mod mounts;
mod node;
mod parse;

use crate::self_metrics::{SourceMetrics, UnavailableLabels};
use crate::{MetricsSource, SourceError};
use async_trait::async_trait;
use heapster_model::keys::{self, MetricSetType};
use heapster_model::{DataBatch, MetricSet, Timestamp, labels};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use mounts::{BlockMount, Hierarchies, Mounts, parse_mountinfo};

/// Where the local source reads from. Tests point it at other roots; the defaults read this host.
#[derive(Debug, Clone)]
pub struct LocalSourceConfig {
    /// The mountinfo that says where cgroup hierarchies and block filesystems are mounted.
    pub mountinfo: PathBuf,
    /// procfs, for the node's figures, processes' network namespaces and task states.
    pub proc_root: PathBuf,
    /// The node's name in keys and labels.
    pub hostname: String,
}

impl Default for LocalSourceConfig {
    fn default() -> Self {
        LocalSourceConfig {
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            proc_root: PathBuf::from("/proc"),
            hostname: rustix::system::uname().nodename().to_string_lossy().into_owned(),
        }
    }
}

/// Reads this host. Cheap to clone the handle; the state behind it (create times, smoothed load, what was
/// already reported unavailable) lives as long as the source.
pub struct LocalSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: LocalSourceConfig,
    metrics: SourceMetrics,
    state: Mutex<State>,
}

/// What one scrape leaves for the next.
#[derive(Default)]
struct State {
    /// cgroup path -> identity and creation time, kept while the cgroup exists so that a child being created
    /// (which touches the parent's mtime) is not taken for a restart.
    known: HashMap<String, Known>,
    /// (metric, reason) pairs already reported unavailable.
    said: HashSet<(String, String)>,
}

#[derive(Clone, Copy)]
struct Known {
    inode: u64,
    create_time: Timestamp,
    /// cAdvisor-style load: runnable + uninterruptible tasks x 1000, smoothed over ~10 s.
    load: Option<(f64, Timestamp)>,
}

/// One cgroup's directories in each hierarchy that has it.
#[derive(Debug, Default, Clone)]
pub(crate) struct CgroupDirs {
    /// v1 controller -> directory.
    pub v1: BTreeMap<&'static str, PathBuf>,
    pub v2: Option<PathBuf>,
    /// Inode of the first directory seen: a cgroup removed and re-created under the same path gets a new one.
    pub inode: u64,
    /// Oldest mtime across hierarchies, in ms: when the cgroup was created (cgroupfs has no birth time; cAdvisor
    /// uses the same).
    pub created: Timestamp,
}

impl LocalSource {
    /// Checks that this host has cgroups to read at all; everything finer is reported per metric at run time.
    pub fn new(config: LocalSourceConfig, metrics: SourceMetrics) -> Result<Self, SourceError> {
        let text = std::fs::read_to_string(&config.mountinfo).map_err(|err| SourceError::Io {
            source_name: format!("local:{}", config.hostname),
            path: config.mountinfo.display().to_string(),
            err,
        })?;
        if parse_mountinfo(&text).cgroups.roots().is_empty() {
            return Err(SourceError::Other(format!(
                "local: no cgroup hierarchy is mounted (per {}): mount cgroupfs or use another --source",
                config.mountinfo.display()
            )));
        }
        Ok(LocalSource { inner: Arc::new(Inner { config, metrics, state: Mutex::new(State::default()) }) })
    }
}

#[async_trait]
impl MetricsSource for LocalSource {
    fn name(&self) -> String {
        format!("local:{}", self.inner.config.hostname)
    }

    async fn scrape(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
        let inner = self.inner.clone();
        // Reading and parsing this host's cgroup and proc files: the local source's decoding, in heapster's bill.
        tokio::task::spawn_blocking(move || {
            let _cpu = heapster_cost::DECODE_STAGE.start();
            inner.collect(timestamp)
        })
        .await
        .map_err(|e| SourceError::Other(format!("local: scrape task failed: {e}")))?
    }
}

pub(crate) fn now_ms() -> Timestamp {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Reads small kernel files into one reused buffer; the source reads thousands per scrape.
pub(crate) struct Reader {
    buf: String,
    /// Metrics missing this scrape, with why: reported once by the caller.
    pub missing: Vec<(&'static str, String)>,
}

impl Reader {
    fn new() -> Self {
        Reader { buf: String::with_capacity(4096), missing: Vec::new() }
    }

    /// The file's text, or `None` when it cannot be read.
    pub fn read(&mut self, path: &Path) -> Option<&str> {
        use std::io::Read;
        self.buf.clear();
        let mut f = std::fs::File::open(path).ok()?;
        f.read_to_string(&mut self.buf).ok()?;
        Some(&self.buf)
    }

    /// Like [`Reader::read`], but a missing file is noted as the reason `metric` is absent.
    pub fn read_for(&mut self, metric: &'static str, path: &Path) -> Option<&str> {
        use std::io::Read;
        self.buf.clear();
        let opened = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut self.buf));
        match opened {
            Ok(_) => Some(&self.buf),
            Err(e) => {
                let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                self.missing.push((metric, format!("cannot read {file}: {}", e.kind())));
                None
            }
        }
    }
}

impl Inner {
    fn collect(&self, timestamp: Timestamp) -> Result<DataBatch, SourceError> {
        let cfg = &self.config;
        let source_name = format!("local:{}", cfg.hostname);
        let mountinfo = std::fs::read_to_string(&cfg.mountinfo).map_err(|err| SourceError::Io {
            source_name: source_name.clone(),
            path: cfg.mountinfo.display().to_string(),
            err,
        })?;
        let mounts = parse_mountinfo(&mountinfo);
        let cgroups = walk(&mounts.cgroups);
        let mut reader = Reader::new();
        let mut batch = DataBatch { timestamp, ..Default::default() };
        let mut state = self.state.lock().unwrap();
        let ctx = cgroup::Context::new(&cfg.proc_root, &mounts.cgroups, &mut reader);

        // What could not be read, with the first cgroup it was missing for: reported once per (metric, reason).
        let mut missing: Vec<(&'static str, String, String)> = Vec::new();
        let node = node::read(&cfg.proc_root, &mounts, cgroups.get("/"), &ctx, &mut reader);
        missing.extend(reader.missing.drain(..).map(|(m, why)| (m, why, "the node".to_owned())));
        batch.sets.insert(keys::node_key(&cfg.hostname), self.labelled(node, MetricSetType::Node, None));

        let mut seen = HashMap::with_capacity(cgroups.len());
        for (path, dirs) in &cgroups {
            if path == "/" {
                continue;
            }
            let (inode, mtime) = (dirs.inode, dirs.created);
            let known = match state.known.get(path) {
                Some(k) if k.inode == inode => *k,
                _ => Known { inode, create_time: mtime, load: None },
            };
            let mut known = known;
            let read = cgroup::read(dirs, &ctx, &mut known, &mut reader);
            missing.extend(reader.missing.drain(..).map(|(m, why)| (m, why, format!("cgroup {path}"))));
            let Some(set) = read else { continue };
            let name = path.trim_start_matches('/');
            let mut set = self.labelled(set, MetricSetType::SysContainer, Some(name));
            set.create_time = known.create_time;
            if let Some(scrape) = Some(set.scrape_time).filter(|&t| t > 0) {
                set.set("uptime", heapster_model::MetricValue::Int((scrape - known.create_time).max(0)));
            }
            batch.sets.insert(keys::node_container_key(&cfg.hostname, name), set);
            seen.insert(path.clone(), known);
        }
        // Cgroups that are gone are forgotten: one re-created under the same path is a new container.
        state.known = seen;
        for (metric, reason, example) in missing {
            if state.said.insert((metric.to_owned(), reason.clone())) {
                tracing::warn!(
                    source = %source_name,
                    "{metric} cannot be read for {example} (and any other with the same cause): {reason}; it is left \
                     out, not reported as zero"
                );
                self.metrics
                    .unavailable
                    .get_or_create(&UnavailableLabels {
                        source: source_name.clone(),
                        metric: metric.to_owned(),
                        reason,
                    })
                    .set(1);
            }
        }
        Ok(batch)
    }

    fn labelled(&self, mut set: MetricSet, set_type: MetricSetType, container: Option<&str>) -> MetricSet {
        let host = &self.config.hostname;
        set.set_kind(set_type);
        set.labels.insert(labels::HOSTNAME, host.clone());
        set.labels.insert(labels::NODENAME, host.clone());
        if let Some(c) = container {
            set.labels.insert(labels::CONTAINER_NAME, c);
        }
        set
    }
}

/// Every cgroup path in every hierarchy, `/` first, with its directory per hierarchy.
///
/// cgroupfs keeps a directory's link count at 2 + its subdirectories, so a leaf cgroup (most of them) is found
/// with the `stat` that [`CgroupDirs`] needs anyway, without listing its files: listing costs five times more.
fn walk(h: &Hierarchies) -> BTreeMap<String, CgroupDirs> {
    use std::os::unix::fs::MetadataExt;
    let mut out: BTreeMap<String, CgroupDirs> = BTreeMap::new();
    for root in h.roots() {
        let controllers: Vec<&'static str> = h.v1.iter().filter(|(_, m)| **m == root).map(|(c, _)| *c).collect();
        let is_v2 = h.v2.as_ref() == Some(&root);
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else { continue }; // removed meanwhile
            let rel = dir.strip_prefix(&root).map(|r| format!("/{}", r.display())).unwrap_or_default();
            let entry = out.entry(rel).or_default();
            let mtime = meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000;
            if entry.inode == 0 {
                (entry.inode, entry.created) = (meta.ino(), mtime);
            }
            entry.created = entry.created.min(mtime);
            for c in &controllers {
                entry.v1.insert(c, dir.clone());
            }
            if is_v2 {
                entry.v2 = Some(dir.clone());
            }
            // (Filesystems that do not count subdirectories report 1, and are listed.)
            if meta.nlink() == 2 {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_hierarchy_and_merges_by_path() {
        let tmp = std::env::temp_dir().join(format!("heapster-walk-{}", std::process::id()));
        for d in ["cpu/a/b", "memory/a", "unified/a/b", "unified/c"] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        let mut h = Hierarchies::default();
        h.v1.insert("cpu", tmp.join("cpu"));
        h.v1.insert("memory", tmp.join("memory"));
        h.v2 = Some(tmp.join("unified"));
        let w = walk(&h);
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(w.keys().collect::<Vec<_>>(), ["/", "/a", "/a/b", "/c"]);
        assert_eq!(w["/a"].v1.keys().copied().collect::<Vec<_>>(), ["cpu", "memory"]);
        assert!(w["/a/b"].v2.is_some() && w["/a/b"].v1.contains_key("cpu") && !w["/a/b"].v1.contains_key("memory"));
        assert!(w["/c"].v1.is_empty());
    }
}
