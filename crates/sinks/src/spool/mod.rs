//! A sink's durable spool (`--sink_buffer_dir`): every batch is on disk before the sink is asked to write it, and
//! stays there until the sink has taken it, so neither an outage longer than the memory queue nor a restart of
//! heapster loses it.
//!
//! **Write-through, not spill-on-overflow.** Each batch is appended (and `fdatasync`ed) as it arrives, even while
//! the sink keeps up. Spilling only when memory is full would lose everything still in memory at a crash or
//! SIGKILL, and would need the memory queue and the disk to be merged back into one order; with write-through
//! the disk alone is the order and the truth, and memory is only a cache of its newest batches (the manager sends
//! from memory when it can and reads from disk when the outage outlasted the cache). The cost is one sequential
//! append and one small acknowledgement per batch and resolution, which is nothing next to a scrape round.
//!
//! **Layout**, one directory per sink ([`sink_dir`]): segment files `<first sequence, 20 digits>.seg`, each a
//! versioned header and records that carry their own length and checksums ([`record`] is the framing, [`codec`]
//! the payload), and `ack`, the sequence number of the newest batch the sink took (written to a temporary file,
//! `fsync`ed, renamed). A segment whose batches are all acknowledged is deleted (the one being appended to once a
//! newer one begins). A new segment is begun every `max_bytes / 8` (at most 64 MiB) and at every start, so appends
//! never touch a file an earlier run wrote, and segments of an older format are only read.
//!
//! **Order and duplicates.** Sequence numbers grow across restarts; the manager sends them in order, one at a time,
//! and acknowledges each after the sink took it, so after a restart it resumes at the first unacknowledged batch.
//! A crash between a write and its acknowledgement sends that one batch again; InfluxDB keeps one point per series
//! and timestamp, so it is stored once.
//!
//! **Bound.** When a new batch would take the spool over `max_bytes`, whole segments are dropped from the oldest
//! end; the undelivered batches among them are returned as [`Dropped`] for the manager to count and log with their
//! time range. A full disk is met the same way: segments are dropped from the oldest end until the batch fits, and
//! only a spool with nothing left to drop fails the append (the manager then sends the batch from memory).
//!
//! **Damage.** At open every record is checked (header and payload checksums, increasing sequence). A bad
//! record is skipped and reading goes on at the next whole one, so a flipped bit or a block of zeros loses only the
//! records it hit; how many is exact (sequence numbers within a segment go up by one) and reported through
//! [`Spool::lost`]; a damaged tail (a torn write from a crash) is cut off. An acknowledgement ahead of every record
//! kept cannot come from a sink that took them in order: it is damage too ([`Spool::ack_ahead`]), and the records
//! are sent again rather than taken as delivered. Nothing here panics on what it reads.

pub mod codec;
pub mod record;

use heapster_model::{DataBatch, Timestamp};
use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where spools live and how large each may grow.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// One directory per sink is made under this one.
    pub dir: PathBuf,
    /// Bytes one sink's spool may hold before its oldest batches are dropped.
    pub max_bytes: u64,
}

/// Default of `--sink_buffer_max_bytes`: 1 GiB per sink.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
const MAX_SEGMENT_BYTES: u64 = 64 << 20;
const ACK_FILE: &str = "ack";
const SEGMENT_SUFFIX: &str = ".seg";

/// Batches dropped, unsent, to keep a spool within its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub batches: u64,
    /// Timestamp of the oldest dropped batch.
    pub first: Timestamp,
    /// Timestamp of the newest dropped batch.
    pub last: Timestamp,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} batches from {} to {}", self.batches, rfc3339(self.first), rfc3339(self.last))
    }
}

pub use heapster_model::time::rfc3339;

/// The directory of the sink called `key` under `root`: its name made safe for a file name, and a hash of the
/// whole name so that names alike after sanitizing (or cut short) still get directories of their own.
pub fn sink_dir(root: &Path, key: &str) -> PathBuf {
    let safe: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(80)
        .collect();
    // FNV-1a: stable across runs and Rust versions, unlike std's hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    root.join(format!("{safe}-{hash:016x}"))
}

use record::Found as Record;

/// An acknowledgement found ahead of every record kept, see [`Spool::ack_ahead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckAhead {
    /// What the `ack` file said.
    pub ack: u64,
    /// The newest sequence number among the records.
    pub newest: u64,
    /// Records that will be sent again because of it.
    pub resent: u64,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// Format version ([`record::VERSION`] for the segments this run writes).
    version: u16,
    bytes: u64,
    records: Vec<Record>,
}

impl Segment {
    /// Whether deleting it would free more than its header.
    fn holds_data(&self) -> bool {
        self.bytes > if self.version == 1 { 0 } else { record::SEGMENT_HEADER as u64 }
    }
}

/// One sink's spool. Not thread-safe by itself: the manager keeps it behind a mutex and calls it off the async
/// threads (every method does blocking file I/O).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Open for appending to `segments.back()`; `None` until the first append of this run.
    active: Option<File>,
    acked: u64,
    next_seq: u64,
    total_bytes: u64,
    lost: u64,
    ack_ahead: Option<AckAhead>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir` for the sink `name` (used in log lines), checking every record.
    pub fn open(dir: &Path, name: &str, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let acked = read_ack(dir, name)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else { continue };
            if let Some(first) = file.strip_suffix(SEGMENT_SUFFIX).and_then(|s| s.parse::<u64>().ok()) {
                files.push((first, path));
            }
        }
        files.sort();
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(1, MAX_SEGMENT_BYTES),
            segments: VecDeque::new(),
            active: None,
            acked,
            next_seq: acked.saturating_add(1),
            total_bytes: 0,
            lost: 0,
            ack_ahead: None,
        };
        let mut newest = 0;
        let mut damaged = Vec::new();
        for (i, (_, path)) in files.iter().enumerate() {
            let (segment, damage) = scan(path, newest)?;
            if let Some(last) = segment.records.last() {
                newest = last.seq;
            }
            if !damage.is_empty() {
                // The next segment's first sequence number (its name) bounds what a damaged tail held.
                damaged.push((spool.segments.len(), damage, files.get(i + 1).map(|(first, _)| *first)));
            }
            spool.total_bytes += segment.bytes;
            spool.segments.push_back(segment);
        }
        let oldest = spool.segments.iter().find_map(|s| s.records.first()).map(|r| r.seq);
        if let Some(oldest) = oldest.filter(|_| acked > newest) {
            // The sink took batches in order, so it cannot have taken one that is not here yet: send them again.
            spool.acked = oldest - 1;
            let resent = spool.pending_count();
            spool.ack_ahead = Some(AckAhead { ack: acked, newest, resent });
            tracing::warn!(
                sink = %name,
                "spool {}: the acknowledgement ({acked}) is ahead of every batch kept (the newest is {newest}): the \
                 ack file or the segments are damaged; the {resent} batches kept are sent again (check the disk)",
                dir.display()
            );
            if let Err(e) = write_ack(dir, spool.acked) {
                tracing::warn!(sink = %name, "spool {}: cannot rewrite the acknowledgement: {e}", dir.display());
            }
        }
        for (i, damage, next_first) in damaged {
            let lost: u64 = damage
                .iter()
                .map(|d| match d.before {
                    Some(before) => before.saturating_sub(d.after.max(spool.acked) + 1),
                    // A damaged tail: a torn write is one batch; the next segment, when there is one, may say more.
                    None => next_first.map_or(0, |n| n.saturating_sub(d.after.max(spool.acked) + 1)).max(1),
                })
                .sum();
            spool.lost += lost;
            let segment = &spool.segments[i];
            let places: Vec<String> =
                damage.iter().map(|d| format!("{} at byte {} ({} bytes)", d.what, d.offset, d.bytes)).collect();
            tracing::warn!(
                sink = %name,
                "spool {}: {}: {lost} batches lost, {} kept; damage other than a torn last write (a crash) means the \
                 disk needs checking",
                segment.path.display(),
                places.join(", "),
                segment.records.len()
            );
        }
        spool.next_seq = spool.acked.saturating_add(1).max(newest + 1);
        spool.delete_delivered()?;
        Ok(spool)
    }

    /// Appends one batch durably. Returns its sequence number (or why it could not be written), and what had to
    /// be dropped to stay within the bound or, when the disk is full, to make room: the oldest segments go first,
    /// the newest batches are the ones worth having after an outage.
    pub fn append(&mut self, batch: &DataBatch) -> (io::Result<u64>, Vec<Dropped>) {
        let mut dropped = Vec::new();
        let result = self.append_making_room(batch, &mut dropped);
        (result, dropped)
    }

    fn append_making_room(&mut self, batch: &DataBatch, dropped: &mut Vec<Dropped>) -> io::Result<u64> {
        let mut payload = Vec::new();
        codec::encode(batch, &mut payload);
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "batch larger than 4 GiB"))?;
        let seq = self.next_seq;
        let record = record::encode(seq, batch.timestamp, &payload);

        while self.total_bytes + record.len() as u64 > self.max_bytes && !self.segments.is_empty() {
            dropped.extend(self.drop_oldest()?);
        }
        loop {
            match self.write(&record) {
                Ok(()) => break,
                // Dropping an empty segment frees nothing, and a new one would be begun and fail again.
                Err(e) if is_disk_full(&e) && self.segments.iter().any(Segment::holds_data) => {
                    dropped.extend(self.drop_oldest()?)
                }
                Err(e) => return Err(e),
            }
        }
        let segment = self.segments.back_mut().expect("written to");
        segment.records.push(Record { seq, timestamp: batch.timestamp, offset: segment.bytes, len });
        segment.bytes += record.len() as u64;
        self.total_bytes += record.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes `record` at the end of the active segment (begun if there is none or it is full) and syncs it;
    /// on failure nothing of it stays behind for the next append to follow.
    fn write(&mut self, record: &[u8]) -> io::Result<()> {
        let full = self.segments.back().is_none_or(|s| s.bytes >= self.segment_bytes);
        if self.active.is_none() || full {
            self.begin_segment(self.next_seq)?;
        }
        let segment = self.segments.back_mut().expect("a segment was just begun");
        let file = self.active.as_mut().expect("a segment was just begun");
        let written = file.write_all(record).and_then(|()| file.sync_data());
        if written.is_err() {
            let _ = file.set_len(segment.bytes);
            let _ = file.seek(SeekFrom::Start(segment.bytes));
        }
        written
    }

    fn begin_segment(&mut self, first_seq: u64) -> io::Result<()> {
        let path = self.dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"));
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        // Synced with the segment's first record.
        if let Err(e) = file.write_all(&record::segment_header()).and_then(|()| sync_dir(&self.dir)) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.active = Some(file);
        let bytes = record::SEGMENT_HEADER as u64;
        self.segments.push_back(Segment { path, version: record::VERSION, bytes, records: Vec::new() });
        self.total_bytes += bytes;
        Ok(())
    }

    /// Deletes the oldest segment; its undelivered batches are the loss.
    fn drop_oldest(&mut self) -> io::Result<Option<Dropped>> {
        let Some(segment) = self.segments.pop_front() else { return Ok(None) };
        if self.segments.is_empty() {
            self.active = None;
        }
        self.total_bytes -= segment.bytes;
        fs::remove_file(&segment.path)?;
        let lost: Vec<&Record> = segment.records.iter().filter(|r| r.seq > self.acked).collect();
        Ok(match (lost.first(), lost.last()) {
            (Some(first), Some(last)) => {
                Some(Dropped { batches: lost.len() as u64, first: first.timestamp, last: last.timestamp })
            }
            _ => None,
        })
    }

    /// The sequence number of the oldest batch the sink has not taken yet.
    pub fn first_pending(&self) -> Option<u64> {
        self.segments.iter().find_map(|s| {
            let i = s.records.partition_point(|r| r.seq <= self.acked);
            s.records.get(i).map(|r| r.seq)
        })
    }

    /// Batches not taken yet, and the timestamps of the oldest and newest of them.
    pub fn pending(&self) -> Option<Dropped> {
        let (segments, acked) = (&self.segments, self.acked);
        let pending = move || segments.iter().flat_map(|s| &s.records).filter(move |r| r.seq > acked);
        let count = pending().count() as u64;
        let first = pending().next()?;
        let last = pending().next_back()?;
        Some(Dropped { batches: count, first: first.timestamp, last: last.timestamp })
    }

    /// Number of batches not taken yet.
    pub fn pending_count(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| (s.records.len() - s.records.partition_point(|r| r.seq <= self.acked)) as u64)
            .sum()
    }

    /// The sequence number of the newest batch written (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Bytes on disk in segments.
    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Batches found damaged (and skipped) when the spool was opened.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// An acknowledgement found ahead of every batch kept when the spool was opened (they are sent again).
    pub fn ack_ahead(&self) -> Option<&AckAhead> {
        self.ack_ahead.as_ref()
    }

    /// The bound given at open.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The spool's directory, for log lines.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the batch `seq` back from disk.
    pub fn read(&self, seq: u64) -> io::Result<DataBatch> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let found = self.segments.iter().find_map(|s| {
            let i = s.records.binary_search_by_key(&seq, |r| r.seq).ok()?;
            Some((s, s.records[i]))
        });
        let (segment, found) = found.ok_or_else(|| bad(format!("batch {seq} is not in the spool")))?;
        let mut file = File::open(&segment.path)?;
        file.seek(SeekFrom::Start(found.offset))?;
        let mut buf = vec![0u8; record::header_len(segment.version) + found.len as usize];
        file.read_exact(&mut buf)?;
        let payload = record::payload(&buf, segment.version, seq)
            .ok_or_else(|| bad(format!("batch {seq} in {} changed on disk", segment.path.display())))?;
        codec::decode(payload).map_err(|e| bad(format!("batch {seq} in {}: {e}", segment.path.display())))
    }

    /// Records that the sink took every batch up to `seq`, durably, and deletes segments no longer needed. The
    /// acknowledgement holds in memory even when writing it fails (the error is for a log line: after a restart
    /// those batches would be sent again).
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        // Delivered segments go even when the acknowledgement cannot be written (a full disk): they are what
        // frees the room, and a restart would only send their batches again.
        let written = write_ack(&self.dir, seq);
        self.delete_delivered()?;
        written
    }

    /// Deletes leading segments with nothing left to send, except the one being appended to (a sink that keeps
    /// up would otherwise cost a new file per batch; it goes once a newer one is begun).
    fn delete_delivered(&mut self) -> io::Result<()> {
        while let Some(front) = self.segments.front() {
            if front.records.last().is_some_and(|r| r.seq > self.acked) {
                break;
            }
            if self.segments.len() == 1 && self.active.is_some() {
                break;
            }
            let segment = self.segments.pop_front().expect("front exists");
            if self.segments.is_empty() {
                self.active = None;
            }
            self.total_bytes -= segment.bytes;
            fs::remove_file(&segment.path)?;
        }
        Ok(())
    }
}

/// Reads the records of one segment (whole: a segment is at most 64 MiB), skipping damaged ones and cutting off a
/// damaged tail. `after`: the newest sequence number before this segment.
fn scan(path: &Path, after: u64) -> io::Result<(Segment, Vec<record::Damage>)> {
    let bytes = fs::read(path)?;
    let Some(version) = record::version_of(&bytes) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: a spool format newer than this heapster's: run that heapster, or move the directory",
                path.display()
            ),
        ));
    };
    let found = record::scan(&bytes, version, after);
    let mut size = bytes.len() as u64;
    if found.damage.last().is_some_and(|d| d.before.is_none()) {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(found.end)?;
        file.sync_all()?;
        size = found.end;
    }
    Ok((Segment { path: path.to_owned(), version, bytes: size, records: found.records }, found.damage))
}

fn write_ack(dir: &Path, seq: u64) -> io::Result<()> {
    let tmp = dir.join(format!("{ACK_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{seq}\n").as_bytes())?;
    f.sync_all()?;
    // No fsync of the directory: were the rename lost in a power cut, the older acknowledgement would only send
    // some batches again. Two fsyncs per batch (its append and this) are all a sink that keeps up costs.
    fs::rename(&tmp, dir.join(ACK_FILE))
}

fn read_ack(dir: &Path, name: &str) -> io::Result<u64> {
    match fs::read_to_string(dir.join(ACK_FILE)) {
        Ok(s) => Ok(s.trim().parse().unwrap_or_else(|_| {
            // Written by rename, so only a damaged disk gets here; sending again beats losing.
            tracing::warn!(sink = %name, "spool {}: unreadable acknowledgement {s:?}: sending every batch kept", dir.display());
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Whether `e` says the filesystem (or the user's quota on it) has no room left.
fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{MetricSet, MetricValue};
    use record::SEGMENT_HEADER;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("heapster-spool-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn batch(ts: i64) -> DataBatch {
        let mut set = MetricSet::default();
        set.labels.insert("type", "node");
        set.set("uptime", MetricValue::Int(ts));
        DataBatch { timestamp: ts, sets: [("node:n1".to_string(), set)].into() }
    }

    /// Bytes of the record of `batch` in a segment.
    fn record_bytes(batch: &DataBatch) -> u64 {
        let mut payload = Vec::new();
        codec::encode(batch, &mut payload);
        record::encode(1, 1, &payload).len() as u64
    }

    fn drain(spool: &mut Spool) -> Vec<i64> {
        let mut seen = Vec::new();
        while let Some(seq) = spool.first_pending() {
            seen.push(spool.read(seq).unwrap().timestamp);
            spool.ack(seq).unwrap();
        }
        seen
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn batches_come_back_in_order_after_a_reopen_and_acknowledged_ones_do_not() {
        let tmp = TempDir::new("order");
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        for ts in 1..=5 {
            let (seq, dropped) = spool.append(&batch(ts));
            assert_eq!(seq.unwrap(), ts as u64);
            assert!(dropped.is_empty());
        }
        assert_eq!(spool.read(3).unwrap(), batch(3));
        spool.ack(2).unwrap();
        assert_eq!(spool.pending_count(), 3);
        drop(spool);

        // A restart: the three unacknowledged batches, in order, then new ones after them.
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.pending(), Some(Dropped { batches: 3, first: 3, last: 5 }));
        assert_eq!(spool.append(&batch(6)).0.unwrap(), 6, "sequence numbers go on across restarts");
        let first = spool.first_pending().unwrap();
        spool.ack(first).unwrap();
        drop(spool);
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(drain(&mut spool), vec![4, 5, 6]);
        assert_eq!(spool.pending_count(), 0);
        assert!(segment_files(&tmp.0).is_empty(), "delivered segments are deleted: {:?}", segment_files(&tmp.0));
        assert_eq!(spool.bytes(), 0);

        // Nothing left after everything was taken, even across one more restart.
        drop(spool);
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.first_pending(), None);
        spool.append(&batch(7)).0.unwrap();
        spool.ack(7).unwrap();
        assert_eq!(segment_files(&tmp.0).len(), 1, "the segment being appended to stays");
        spool.append(&batch(8)).0.unwrap();
        spool.ack(8).unwrap();
        assert_eq!(segment_files(&tmp.0).len(), 1, "and takes the next batch: {:?}", segment_files(&tmp.0));
        drop(spool);
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert!(segment_files(&tmp.0).is_empty(), "delivered, so deleted at the next start");
        assert_eq!(spool.first_pending(), None);
        assert_eq!(spool.append(&batch(9)).0.unwrap(), 9);
    }

    #[test]
    fn a_torn_last_record_is_discarded_and_counted_and_appends_go_on() {
        let tmp = TempDir::new("torn");
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        for ts in 1..=3 {
            spool.append(&batch(ts)).0.unwrap();
        }
        drop(spool);
        let file = segment_files(&tmp.0).pop().unwrap();
        let size = fs::metadata(&file).unwrap().len();
        // A crash in the middle of writing the third record.
        OpenOptions::new().write(true).open(&file).unwrap().set_len(size - 5).unwrap();

        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.lost(), 1);
        assert_eq!(spool.pending_count(), 2);
        assert!(fs::metadata(&file).unwrap().len() < size - 5, "truncated to the last whole record");
        spool.append(&batch(4)).0.unwrap();
        drop(spool);
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.lost(), 0, "nothing torn after the truncation");
        assert_eq!(drain(&mut spool), vec![1, 2, 4]);
    }

    #[test]
    fn garbage_and_zeros_at_the_tail_do_not_panic() {
        let tmp = TempDir::new("garbage");
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        spool.append(&batch(1)).0.unwrap();
        spool.append(&batch(2)).0.unwrap();
        drop(spool);
        let file = segment_files(&tmp.0).pop().unwrap();
        let mut bytes = fs::read(&file).unwrap();
        let whole = bytes.len();
        // A flipped bit in the second record's payload, then zeros (a file extended but never written).
        bytes[whole - 3] ^= 0x10;
        bytes.extend_from_slice(&[0u8; 100]);
        fs::write(&file, &bytes).unwrap();
        // And a segment file of zeros only, as after a crash right after its creation.
        fs::write(tmp.0.join(format!("{:020}.seg", 3)), [0u8; 10]).unwrap();
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        // The bad record, the zeros after it (as a torn write, one batch) and the file of zeros.
        assert_eq!(spool.lost(), 3);
        assert_eq!(drain(&mut spool), vec![1]);
        assert!(segment_files(&tmp.0).is_empty());
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_undelivered_batches_and_says_which() {
        let tmp = TempDir::new("bound");
        let record = record_bytes(&batch(1));
        // Room for ten records, in segments of two (max / 8 is just over one record: a segment ends past it).
        let bound = record * 10 + 5 * SEGMENT_HEADER as u64 + 5;
        let mut spool = Spool::open(&tmp.0, "t", bound).unwrap();
        let mut dropped = Vec::new();
        for ts in 1..=14 {
            let (seq, d) = spool.append(&batch(ts));
            seq.unwrap();
            dropped.extend(d);
        }
        assert!(spool.bytes() <= bound, "{} bytes", spool.bytes());
        let lost: u64 = dropped.iter().map(|d| d.batches).sum();
        assert_eq!(lost, 4, "{dropped:?}");
        assert_eq!(dropped.first().unwrap().first, 1);
        assert_eq!(dropped.last().unwrap().last, 4);
        assert_eq!(drain(&mut spool), (5..=14).collect::<Vec<_>>());

        // Batches already delivered are not a loss when their segment goes.
        let tmp = TempDir::new("bound-acked");
        let mut spool = Spool::open(&tmp.0, "t", record * 4 + 2 * SEGMENT_HEADER as u64 + 5).unwrap();
        spool.segment_bytes = record * 2;
        for ts in 1..=4 {
            spool.append(&batch(ts)).0.unwrap();
        }
        spool.ack(1).unwrap();
        let (seq, dropped) = spool.append(&batch(5));
        seq.unwrap();
        assert_eq!(dropped, vec![Dropped { batches: 1, first: 2, last: 2 }]);
        assert_eq!(drain(&mut spool), vec![3, 4, 5]);
    }

    /// A tmpfs of `size` on `dir` (the tests run as root), unmounted when dropped.
    struct SmallDisk(TempDir);

    impl SmallDisk {
        fn mount(tag: &str, size: &str) -> SmallDisk {
            let tmp = TempDir::new(tag);
            fs::create_dir_all(&tmp.0).unwrap();
            let out = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&tmp.0)
                .output()
                .expect("run mount");
            assert!(
                out.status.success(),
                "mount a tmpfs (the tests need root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            SmallDisk(tmp)
        }

        /// Writes `filler` until the filesystem is full.
        fn fill(&self) -> PathBuf {
            let path = self.0.0.join("filler");
            let mut f = File::create(&path).unwrap();
            let block = [0x5a_u8; 512];
            while f.write_all(&block).is_ok() {}
            path
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0.0).status();
        }
    }

    #[test]
    fn a_full_disk_drops_the_oldest_segments_to_make_room_and_fails_only_when_nothing_is_left() {
        let disk = SmallDisk::mount("full", "64k");
        let dir = disk.0.0.join("sink");
        let mut spool = Spool::open(&dir, "t", DEFAULT_MAX_BYTES).unwrap();
        spool.segment_bytes = record_bytes(&batch(1)) * 2;
        for ts in 1..=6 {
            assert!(spool.append(&batch(ts)).1.is_empty());
        }
        assert_eq!(segment_files(&dir).len(), 3);
        disk.fill();

        // No room: the oldest segment (batches 1 and 2, not delivered) goes, and the new batch is written.
        let (seq, dropped) = spool.append(&batch(7));
        assert_eq!(seq.unwrap(), 7);
        assert_eq!(dropped, vec![Dropped { batches: 2, first: 1, last: 2 }]);

        // Only delivered batches in the way: dropping them is no loss.
        spool.ack(7).unwrap_or_default();
        let (seq, dropped) = spool.append(&batch(8));
        assert_eq!(seq.unwrap(), 8);
        assert!(dropped.is_empty(), "{dropped:?}");

        // A spool with nothing on the full disk has nothing to drop: an error, and the spool stays consistent.
        let filler = disk.fill();
        let dir = disk.0.0.join("empty");
        let mut empty = Spool::open(&dir, "e", DEFAULT_MAX_BYTES).unwrap();
        for ts in 1..=3 {
            let (seq, dropped) = empty.append(&batch(ts));
            assert!(is_disk_full(&seq.unwrap_err()));
            assert!(dropped.is_empty());
        }
        fs::remove_file(&filler).unwrap();
        assert_eq!(empty.append(&batch(4)).0.unwrap(), 1);
        drop(empty);
        let mut empty = Spool::open(&dir, "e", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(empty.lost(), 0, "no half record left behind by the failed writes");
        assert_eq!(drain(&mut empty), vec![4]);
    }

    /// A batch of about a kilobyte, so that a few kilobytes of damage hit a few records.
    fn big_batch(ts: i64) -> DataBatch {
        let mut b = batch(ts);
        let set = b.sets.get_mut("node:n1").unwrap();
        set.labels.insert("padding", "p".repeat(1000));
        b
    }

    /// A spool with `n` big batches (timestamps 1..=n) in one segment, closed; the segment's path.
    fn spool_of(dir: &Path, n: i64) -> PathBuf {
        let mut spool = Spool::open(dir, "t", DEFAULT_MAX_BYTES).unwrap();
        for ts in 1..=n {
            spool.append(&big_batch(ts)).0.unwrap();
        }
        drop(spool);
        let mut files = segment_files(dir);
        assert_eq!(files.len(), 1);
        files.pop().unwrap()
    }

    /// Where each record begins and ends in a segment of `n` records all alike in size.
    fn record_spans(file: &Path, n: usize) -> Vec<(usize, usize)> {
        let size = fs::metadata(file).unwrap().len() as usize;
        let record = (size - SEGMENT_HEADER) / n;
        assert_eq!((size - SEGMENT_HEADER) % n, 0, "records of one size");
        (0..n).map(|i| (SEGMENT_HEADER + i * record, SEGMENT_HEADER + (i + 1) * record)).collect()
    }

    #[test]
    fn one_flipped_byte_loses_one_record_and_keeps_the_rest() {
        for (tag, pick) in [("payload", 100usize), ("header", 5)] {
            let tmp = TempDir::new(&format!("flip-{tag}"));
            let file = spool_of(&tmp.0, 14);
            let spans = record_spans(&file, 14);
            let mut bytes = fs::read(&file).unwrap();
            // In the fourth record: its payload, or its length in the header.
            bytes[spans[3].0 + pick] ^= 0x01;
            fs::write(&file, &bytes).unwrap();
            let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
            assert_eq!(spool.lost(), 1, "{tag}");
            let expect: Vec<i64> = (1..=14).filter(|ts| *ts != 4).collect();
            assert_eq!(drain(&mut spool), expect, "{tag}: 13 of 14 replayed");
        }
    }

    #[test]
    fn four_kib_of_zeros_in_the_middle_lose_only_the_records_they_hit() {
        let tmp = TempDir::new("zeros");
        let file = spool_of(&tmp.0, 14);
        let spans = record_spans(&file, 14);
        let mut bytes = fs::read(&file).unwrap();
        let from = spans[5].0 + 300;
        bytes[from..from + 4096].fill(0);
        fs::write(&file, &bytes).unwrap();
        let hit: Vec<i64> = (1..=14)
            .filter(|ts| {
                let (a, b) = spans[*ts as usize - 1];
                a < from + 4096 && b > from
            })
            .collect();
        assert!(hit.len() >= 4 && hit.len() < 8, "{hit:?}");
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.lost(), hit.len() as u64);
        let expect: Vec<i64> = (1..=14).filter(|ts| !hit.contains(ts)).collect();
        assert_eq!(drain(&mut spool), expect);
    }

    #[test]
    fn an_acknowledgement_ahead_of_the_records_is_damage_and_they_are_sent_again() {
        let tmp = TempDir::new("ack-ahead");
        spool_of(&tmp.0, 5);
        fs::write(tmp.0.join(ACK_FILE), "900\n").unwrap();
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.ack_ahead(), Some(&AckAhead { ack: 900, newest: 5, resent: 5 }));
        assert_eq!(drain(&mut spool), vec![1, 2, 3, 4, 5]);
        assert_eq!(spool.append(&batch(6)).0.unwrap(), 6);
        drop(spool);
        let spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.ack_ahead(), None, "the acknowledgement was rewritten");
    }

    #[test]
    fn an_unversioned_segment_of_the_format_before_is_read_and_a_damaged_one_ends_at_the_damage() {
        let tmp = TempDir::new("v1");
        fs::create_dir_all(&tmp.0).unwrap();
        // `len:u32le crc32:u32le seq:u64le timestamp:i64le payload`, the CRC over all after it.
        let mut v1 = Vec::new();
        for ts in 1..=3_i64 {
            let mut payload = Vec::new();
            codec::encode(&batch(ts), &mut payload);
            let mut rest = (ts as u64).to_le_bytes().to_vec();
            rest.extend_from_slice(&ts.to_le_bytes());
            rest.extend_from_slice(&payload);
            v1.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            v1.extend_from_slice(&crc32fast::hash(&rest).to_le_bytes());
            v1.extend_from_slice(&rest);
        }
        let file = tmp.0.join(format!("{:020}.seg", 1));
        fs::write(&file, &v1).unwrap();
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.lost(), 0);
        assert_eq!(spool.append(&batch(4)).0.unwrap(), 4, "new batches go to a new segment of the new format");
        drop(spool);
        let segments = segment_files(&tmp.0);
        assert_eq!(fs::read(&segments[0]).unwrap(), v1, "the old segment is not written to");
        assert!(fs::read(&segments[1]).unwrap().starts_with(record::SEGMENT_MAGIC));
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(drain(&mut spool), vec![1, 2, 3, 4]);

        let tmp = TempDir::new("v1-damaged");
        fs::create_dir_all(&tmp.0).unwrap();
        let last = v1.len() - 5;
        v1[last] ^= 1;
        fs::write(tmp.0.join(format!("{:020}.seg", 1)), &v1).unwrap();
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!((spool.lost(), drain(&mut spool)), (1, vec![1, 2]));
    }

    #[test]
    fn sink_directories_are_safe_and_distinct() {
        let root = Path::new("/r");
        let a = sink_dir(root, "influxdb:http://127.0.0.1:8086/?db=k8s");
        assert_eq!(a.parent(), Some(root));
        let file = a.file_name().unwrap().to_str().unwrap();
        assert!(file.starts_with("influxdb_http___127.0.0.1_8086__db_k8s-"), "{file}");
        assert_ne!(a, sink_dir(root, "influxdb:http://127.0.0.1:8086/?db=k8s#2"));
        assert_ne!(sink_dir(root, "a/b"), sink_dir(root, "a:b"), "alike after sanitizing, told apart by the hash");
        assert_eq!(a, sink_dir(root, "influxdb:http://127.0.0.1:8086/?db=k8s"), "stable");
    }
}
