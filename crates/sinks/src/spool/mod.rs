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
//! **Layout**, one directory per sink ([`sink_dir`]): segment files `<first sequence, 20 digits>.seg` of records
//! `len:u32le crc32:u32le seq:u64le timestamp:i64le payload` ([`codec`] is the payload), and `ack`, the sequence
//! number of the newest batch the sink took (written to a temporary file, `fsync`ed, renamed). A segment whose
//! batches are all acknowledged is deleted (the one being appended to once a newer one begins). A new segment is begun every `max_bytes / 8` (at most 64 MiB) and at
//! every start, so appends never touch a file an earlier run wrote.
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
//! **Crash safety.** At open every record is checked (length, checksum, increasing sequence). The first bad one, a
//! torn write from a crash, ends its segment: it is logged, the file is truncated there, and the loss (one batch,
//! at most, for a torn tail) is reported through [`Spool::torn`]. Nothing here panics on what it reads.

pub mod codec;

use heapster_model::{DataBatch, Timestamp};
use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
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
const HEADER: usize = 24;
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

#[derive(Debug, Clone, Copy)]
struct Record {
    seq: u64,
    timestamp: Timestamp,
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
    records: Vec<Record>,
}

/// One sink's spool. Not thread-safe by itself: the manager keeps it behind a mutex and calls it off the async
/// threads (every method does blocking file I/O).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    name: String,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Open for appending to `segments.back()`; `None` until the first append of this run.
    active: Option<File>,
    acked: u64,
    next_seq: u64,
    total_bytes: u64,
    torn: u64,
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
            name: name.to_owned(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(1, MAX_SEGMENT_BYTES),
            segments: VecDeque::new(),
            active: None,
            acked,
            next_seq: acked + 1,
            total_bytes: 0,
            torn: 0,
        };
        let mut newest = 0;
        for (_, path) in files {
            let (records, bytes) = spool.scan(&path, newest)?;
            if let Some(last) = records.last() {
                newest = last.seq;
                spool.next_seq = spool.next_seq.max(last.seq + 1);
            }
            spool.total_bytes += bytes;
            spool.segments.push_back(Segment { path, bytes, records });
        }
        spool.delete_delivered()?;
        Ok(spool)
    }

    /// Reads the records of one segment, truncating it at the first bad one. `after`: the newest sequence number
    /// before this segment; a record at or below it is out of order, and bad.
    fn scan(&mut self, path: &Path, after: u64) -> io::Result<(Vec<Record>, u64)> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let (mut records, mut offset, mut previous) = (Vec::new(), 0u64, after);
        let mut payload = Vec::new();
        let problem = loop {
            if offset == size {
                break None;
            }
            let mut header = [0u8; HEADER];
            if size - offset < HEADER as u64 {
                break Some("a partial record header");
            }
            reader.read_exact(&mut header)?;
            let (len, crc, seq, timestamp) = parse_header(&header);
            if u64::from(len) > size - offset - HEADER as u64 {
                break Some("a record longer than the rest of the file");
            }
            payload.resize(len as usize, 0);
            reader.read_exact(&mut payload)?;
            if crc32(&[&header[8..], &payload]) != crc {
                break Some("a checksum mismatch");
            }
            if seq <= previous {
                break Some("a sequence number out of order");
            }
            records.push(Record { seq, timestamp, offset, len });
            previous = seq;
            offset += (HEADER + len as usize) as u64;
        };
        if let Some(what) = problem {
            tracing::warn!(
                sink = %self.name,
                "spool {}: {what} at byte {offset} (of {size}), from a crash during a write: the rest of the file \
                 ({} bytes, one batch or part of one) is discarded",
                path.display(),
                size - offset
            );
            drop(reader);
            file.set_len(offset)?;
            file.sync_all()?;
            self.torn += 1;
        }
        Ok((records, offset))
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
        let mut record = vec![0u8; HEADER];
        codec::encode(batch, &mut record);
        let len = u32::try_from(record.len() - HEADER)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "batch larger than 4 GiB"))?;
        let seq = self.next_seq;
        record[8..16].copy_from_slice(&seq.to_le_bytes());
        record[16..24].copy_from_slice(&batch.timestamp.to_le_bytes());
        let crc = crc32(&[&record[8..]]);
        record[0..4].copy_from_slice(&len.to_le_bytes());
        record[4..8].copy_from_slice(&crc.to_le_bytes());

        while self.total_bytes + record.len() as u64 > self.max_bytes && !self.segments.is_empty() {
            dropped.extend(self.drop_oldest()?);
        }
        loop {
            match self.write(&record) {
                Ok(()) => break,
                // Dropping an empty segment frees nothing, and a new one would be begun and fail again.
                Err(e) if is_disk_full(&e) && self.segments.iter().any(|s| s.bytes > 0) => {
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
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        sync_dir(&self.dir)?;
        self.active = Some(file);
        self.segments.push_back(Segment { path, bytes: 0, records: Vec::new() });
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

    /// Records found torn (and discarded) when the spool was opened.
    pub fn torn(&self) -> u64 {
        self.torn
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
        let (segment, record) = found.ok_or_else(|| bad(format!("batch {seq} is not in the spool")))?;
        let mut file = File::open(&segment.path)?;
        file.seek(SeekFrom::Start(record.offset))?;
        let mut buf = vec![0u8; HEADER + record.len as usize];
        file.read_exact(&mut buf)?;
        let (len, crc, got, _) = parse_header(buf[..HEADER].try_into().expect("header"));
        if len != record.len || got != seq || crc32(&[&buf[8..]]) != crc {
            return Err(bad(format!("batch {seq} in {} changed on disk", segment.path.display())));
        }
        codec::decode(&buf[HEADER..]).map_err(|e| bad(format!("batch {seq} in {}: {e}", segment.path.display())))
    }

    /// Records that the sink took every batch up to `seq`, durably, and deletes segments no longer needed. The
    /// acknowledgement holds in memory even when writing it fails (the error is for a log line: after a restart
    /// those batches would be sent again).
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        let tmp = self.dir.join(format!("{ACK_FILE}.tmp"));
        // No fsync of the directory: were the rename lost in a power cut, the older acknowledgement would only
        // send some batches again. Two fsyncs per batch (its append and this) are all a sink that keeps up costs.
        // Delivered segments go even when the acknowledgement cannot be written (a full disk): they are what
        // frees the room, and a restart would only send their batches again.
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(format!("{seq}\n").as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&tmp, self.dir.join(ACK_FILE)));
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

fn parse_header(h: &[u8; HEADER]) -> (u32, u32, u64, i64) {
    (
        u32::from_le_bytes(h[0..4].try_into().expect("4")),
        u32::from_le_bytes(h[4..8].try_into().expect("4")),
        u64::from_le_bytes(h[8..16].try_into().expect("8")),
        i64::from_le_bytes(h[16..24].try_into().expect("8")),
    )
}

/// CRC-32 (IEEE) of the parts, one after the other.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{MetricSet, MetricValue};

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
        set.labels.insert("type", "node".into());
        set.set("uptime", MetricValue::Int(ts));
        DataBatch { timestamp: ts, sets: [("node:n1".to_string(), set)].into() }
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
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xcbf4_3926);
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
        assert_eq!(spool.torn(), 1);
        assert_eq!(spool.pending_count(), 2);
        assert!(fs::metadata(&file).unwrap().len() < size - 5, "truncated to the last whole record");
        spool.append(&batch(4)).0.unwrap();
        drop(spool);
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.torn(), 0, "nothing torn after the truncation");
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
        fs::write(tmp.0.join(format!("{:020}.seg", 99)), [0u8; 10]).unwrap();
        let mut spool = Spool::open(&tmp.0, "t", DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(spool.torn(), 2);
        assert_eq!(drain(&mut spool), vec![1]);
        assert!(segment_files(&tmp.0).is_empty());
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_undelivered_batches_and_says_which() {
        let tmp = TempDir::new("bound");
        let mut one = Vec::new();
        codec::encode(&batch(1), &mut one);
        let record = (HEADER + one.len()) as u64;
        // Room for ten records, in segments of two (max / 8 is just over one record: a segment ends past it).
        let mut spool = Spool::open(&tmp.0, "t", record * 10 + 5).unwrap();
        let mut dropped = Vec::new();
        for ts in 1..=14 {
            let (seq, d) = spool.append(&batch(ts));
            seq.unwrap();
            dropped.extend(d);
        }
        assert!(spool.bytes() <= record * 10 + 5, "{} bytes", spool.bytes());
        let lost: u64 = dropped.iter().map(|d| d.batches).sum();
        assert_eq!(lost, 4, "{dropped:?}");
        assert_eq!(dropped.first().unwrap().first, 1);
        assert_eq!(dropped.last().unwrap().last, 4);
        assert_eq!(drain(&mut spool), (5..=14).collect::<Vec<_>>());

        // Batches already delivered are not a loss when their segment goes.
        let tmp = TempDir::new("bound-acked");
        let mut spool = Spool::open(&tmp.0, "t", record * 4 + 5).unwrap();
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
        let mut one = Vec::new();
        codec::encode(&batch(1), &mut one);
        spool.segment_bytes = (HEADER + one.len()) as u64 * 2;
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
        assert_eq!(empty.torn(), 0, "no half record left behind by the failed writes");
        assert_eq!(drain(&mut empty), vec![4]);
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
