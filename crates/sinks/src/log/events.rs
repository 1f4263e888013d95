//! `heapster eventer --sink=log`: the original eventer's text to stdout, or, with `file=PATH`, one JSON line per
//! event version appended to a file that also says, after a crash, how far it got.
//!
//! Text: `EventBatch     Timestamp: <batch time>` then `   <lastTimestamp> (cnt:<count>): <message>` per event, times
//! as Go's `time.Time.String()` prints them in UTC.
//!
//! File: `{"change":"Added","event":{...}}` per version, written in one piece and fsynced per batch. The file is
//! its own record of what it holds: on open a partial last line (the process killed mid-write) is cut off, and
//! the last complete line's resourceVersion is what [`EventSink::holds_through`] reports and what the sink skips
//! up to, so a restart never writes a version twice. A write that fails truncates back to the batch's start, so
//! a retry never follows a half-written batch.

use crate::events::{EventSink, EventSinkKind};
use crate::{ConfigError, SinkError, SinkMetrics};
use async_trait::async_trait;
use heapster_model::events::{Change, Event, EventBatch};
use heapster_model::{KindDoc, OptionSpec, Options, SpecUri};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const OPTIONS: &[OptionSpec] = &[OptionSpec::new(
    "file",
    "",
    "append one JSON line per event version to this file (fsynced per batch) instead of text to stdout; a \
     restart resumes after its last complete line",
)];

/// The log event sink in [`crate::events::EVENT_SINKS`].
pub const KIND: EventSinkKind = EventSinkKind {
    doc: KindDoc {
        key: "log",
        aliases: &[],
        usage: "log[?file=PATH]",
        summary: "Prints every event batch as the original eventer did; with file=, one JSON line per event \
                  version, resumed after a restart.",
        options: OPTIONS,
    },
    build: |uri, _: &SinkMetrics| Ok(Arc::new(LogEventSink::from_uri(uri)?)),
};

/// Text to a writer, or JSON lines to a file.
pub struct LogEventSink {
    out: Mutex<Output>,
    name: String,
}

enum Output {
    Text(Box<dyn Write + Send>),
    File(JsonLines),
}

/// The JSON-lines file and what it holds.
struct JsonLines {
    file: File,
    path: PathBuf,
    /// Bytes of complete lines: where the next batch starts, and where a failed one is cut back to.
    len: u64,
    /// The resource version of the last line written.
    holds: Option<u64>,
}

impl LogEventSink {
    /// `log` (text to stdout) or `log?file=PATH`; opens (and repairs) the file at once, so a bad path stops the
    /// eventer at start-up.
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        let options = Options::new("--sink", uri, OPTIONS)?;
        match options.get("file") {
            None => Ok(Self::to_writer(Box::new(std::io::stdout()))),
            Some("") => Err(options.error("file= is empty: name the file to append events to, or leave file out")),
            Some(path) => Self::to_file(Path::new(path)).map_err(|e| options.error(e)),
        }
    }

    /// Text mode on any writer (tests).
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        LogEventSink { out: Mutex::new(Output::Text(out)), name: "log".into() }
    }

    /// JSON-lines mode on `path`, created when missing; a partial last line is cut off.
    pub fn to_file(path: &Path) -> Result<Self, String> {
        let lines = JsonLines::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(LogEventSink { name: format!("log:{}", path.display()), out: Mutex::new(Output::File(lines)) })
    }
}

#[async_trait]
impl EventSink for LogEventSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn export(&self, batch: &EventBatch) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *out {
            Output::Text(w) => w
                .write_all(text(batch).as_bytes())
                .and_then(|_| w.flush())
                .map_err(|e| SinkError::Retry(format!("log: writing to stdout: {e}"))),
            Output::File(lines) => lines.append(batch),
        }
    }

    async fn holds_through(&self) -> Option<u64> {
        match &*self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::Text(_) => None,
            Output::File(lines) => lines.holds,
        }
    }
}

/// The original eventer's text of one batch.
pub fn text(batch: &EventBatch) -> String {
    let mut s = format!("EventBatch     Timestamp: {}\n", go_time(Some(batch.timestamp)));
    for v in &batch.events {
        let last = v.event.last_timestamp.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let last = go_time(last.map(|t| t.timestamp_millis()));
        s.push_str(&format!("   {last} (cnt:{}): {}\n", v.event.count, v.event.message));
    }
    s
}

/// A time as Go's `time.Time.String()` prints it in UTC (`2026-12-03 10:05:00.25 +0000 UTC`, fraction without
/// trailing zeros); `None` is Go's zero time, as a null `lastTimestamp` printed.
fn go_time(ms: Option<i64>) -> String {
    let Some(t) = ms.and_then(chrono::DateTime::from_timestamp_millis) else {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
    }
    s.push_str(" +0000 UTC");
    s
}

impl JsonLines {
    fn open(path: &Path) -> std::io::Result<JsonLines> {
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let (len, last) = last_complete_line(&mut file)?;
        if file.metadata()?.len() != len {
            tracing::warn!(file = %path.display(), "cutting off a partial last line (the eventer was stopped mid-write)");
            file.set_len(len)?;
            file.sync_data()?;
        }
        let holds = match last {
            None => None,
            Some(line) => Some(resource_version(&line).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "its last line is not an event version this sink wrote: give another file=",
                )
            })?),
        };
        Ok(JsonLines { file, path: path.to_owned(), len, holds })
    }

    /// Appends the versions after the one the file holds, in one write, and fsyncs.
    fn append(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
        let mut buf = Vec::new();
        let mut last = self.holds;
        for v in &batch.events {
            let rv = v.event.resource_version();
            if rv.zip(self.holds).is_some_and(|(rv, held)| rv <= held) {
                continue;
            }
            line(&mut buf, v.change, &v.event);
            last = rv.or(last);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&buf))
            .and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            // Cut back so the retry does not follow half a batch; if even that fails, reopening repairs it.
            let _ = self.file.set_len(self.len);
            return Err(SinkError::Retry(format!("log: appending to {}: {e}", self.path.display())));
        }
        self.len += buf.len() as u64;
        self.holds = last;
        Ok(())
    }
}

/// One line of the file: `{"change":"Added","event":{...}}`, the event in Go's field order.
fn line(buf: &mut Vec<u8>, change: Change, event: &Event) {
    buf.extend_from_slice(b"{\"change\":");
    serde_json::to_writer(&mut *buf, &change).expect("a Change serializes");
    buf.extend_from_slice(b",\"event\":");
    serde_json::to_writer(&mut *buf, event).expect("an Event serializes");
    buf.extend_from_slice(b"}\n");
}

/// The `event.metadata.resourceVersion` of one line.
fn resource_version(line: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v["event"]["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

/// The length of the file up to its last newline, and the last complete line (without its newline), read
/// backwards so a long file costs one block or two.
fn last_complete_line(file: &mut File) -> std::io::Result<(u64, Option<Vec<u8>>)> {
    const BLOCK: u64 = 64 * 1024;
    let size = file.metadata()?.len();
    // Bytes read so far from the end, in file order, starting at `from`.
    let mut tail: Vec<u8> = Vec::new();
    let mut from = size;
    let mut end_of_lines: Option<u64> = None;
    loop {
        if let Some(end) = end_of_lines {
            // The line ends at `end` (its newline); it starts after the newline before it, or at 0.
            let rel_end = (end - from) as usize;
            if let Some(p) = tail[..rel_end].iter().rposition(|&b| b == b'\n') {
                return Ok((end + 1, Some(tail[p + 1..rel_end].to_vec())));
            }
            if from == 0 {
                return Ok((end + 1, Some(tail[..rel_end].to_vec())));
            }
        } else if let Some(p) = tail.iter().rposition(|&b| b == b'\n') {
            end_of_lines = Some(from + p as u64);
            continue;
        } else if from == 0 {
            return Ok((0, None));
        }
        let start = from.saturating_sub(BLOCK);
        let mut block = vec![0; (from - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        from = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::events::EventVersion;

    fn event(rv: u64, count: i32, message: &str) -> Event {
        let mut e = Event { count, message: message.into(), ..Default::default() };
        e.metadata.name = "web-1.17f3".into();
        e.metadata.resource_version = rv.to_string();
        e.last_timestamp = Some("2026-12-03T10:05:00Z".into());
        e
    }

    fn batch(versions: &[(Change, Event)]) -> EventBatch {
        let events = versions.iter().map(|(c, e)| EventVersion { change: *c, event: Arc::new(e.clone()) }).collect();
        EventBatch { timestamp: 1_796_292_301_250, events }
    }

    struct TempFile(PathBuf);
    impl TempFile {
        fn new(name: &str) -> TempFile {
            TempFile(std::env::temp_dir().join(format!("heapster-log-events-{name}-{}", std::process::id())))
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[tokio::test]
    async fn text_as_the_original_eventer() {
        let tmp = TempFile::new("text");
        let sink = LogEventSink::to_writer(Box::new(File::create(&tmp.0).unwrap()));
        let mut timeless = event(3, 0, "no time");
        timeless.last_timestamp = None;
        sink.export(&batch(&[(Change::Added, event(1, 2, "Pulled image")), (Change::Added, timeless)])).await.unwrap();
        let text = std::fs::read_to_string(&tmp.0).unwrap();
        assert_eq!(
            text,
            "EventBatch     Timestamp: 2026-12-03 10:05:01.25 +0000 UTC\n   2026-12-03 10:05:00 +0000 UTC (cnt:2): \
             Pulled image\n   0001-01-01 00:00:00 +0000 UTC (cnt:0): no time\n"
        );
        assert_eq!(sink.holds_through().await, None);
    }

    #[tokio::test]
    async fn file_lines_resume_after_a_restart_without_writing_twice() {
        let tmp = TempFile::new("resume");
        let sink = LogEventSink::to_file(&tmp.0).unwrap();
        assert_eq!(sink.holds_through().await, None);
        let first = batch(&[(Change::Added, event(10, 1, "a")), (Change::Modified, event(11, 2, "a"))]);
        sink.export(&first).await.unwrap();
        assert_eq!(sink.holds_through().await, Some(11));
        drop(sink);

        let sink = LogEventSink::to_file(&tmp.0).unwrap();
        assert_eq!(sink.holds_through().await, Some(11), "read back from the file");
        // The eventer resends the batch it was not sure of, and the next version.
        let again = batch(&[(Change::Modified, event(11, 2, "a")), (Change::Modified, event(12, 3, "a"))]);
        sink.export(&again).await.unwrap();
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&tmp.0).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let seen: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l["change"].as_str().unwrap(), l["event"]["metadata"]["resourceVersion"].as_str().unwrap()))
            .collect();
        assert_eq!(seen, [("Added", "10"), ("Modified", "11"), ("Modified", "12")]);
        let back: Event = serde_json::from_value(lines[2]["event"].clone()).unwrap();
        assert_eq!(back, event(12, 3, "a"));
    }

    #[tokio::test]
    async fn a_partial_last_line_is_cut_off() {
        let tmp = TempFile::new("partial");
        let sink = LogEventSink::to_file(&tmp.0).unwrap();
        sink.export(&batch(&[(Change::Added, event(10, 1, "a")), (Change::Added, event(20, 1, "b"))])).await.unwrap();
        drop(sink);
        let whole = std::fs::read(&tmp.0).unwrap();
        // Killed mid-write: half of the next line.
        let mut killed = whole.clone();
        killed.extend_from_slice(br#"{"change":"Added","event":{"metadata":{"name":"x","resourceVersion":"3"#);
        std::fs::write(&tmp.0, &killed).unwrap();
        let sink = LogEventSink::to_file(&tmp.0).unwrap();
        assert_eq!(sink.holds_through().await, Some(20));
        assert_eq!(std::fs::read(&tmp.0).unwrap(), whole, "the partial line is gone");
        sink.export(&batch(&[(Change::Added, event(30, 1, "c"))])).await.unwrap();
        let text = std::fs::read_to_string(&tmp.0).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{text}");
    }

    #[test]
    fn the_last_line_is_found_across_blocks() {
        let tmp = TempFile::new("blocks");
        let long = "x".repeat(150_000);
        let content = format!("{{\"a\":1}}\n{{\"m\":\"{long}\"}}\nhalf");
        std::fs::write(&tmp.0, &content).unwrap();
        let mut f = File::open(&tmp.0).unwrap();
        let (len, last) = last_complete_line(&mut f).unwrap();
        assert_eq!(len as usize, content.len() - 4);
        assert_eq!(last.unwrap(), format!("{{\"m\":\"{long}\"}}").into_bytes());
        std::fs::write(&tmp.0, "only\n").unwrap();
        let (len, last) = last_complete_line(&mut File::open(&tmp.0).unwrap()).unwrap();
        assert_eq!((len, last.as_deref()), (5, Some(&b"only"[..])));
        std::fs::write(&tmp.0, "no newline").unwrap();
        assert_eq!(last_complete_line(&mut File::open(&tmp.0).unwrap()).unwrap(), (0, None));
    }

    #[test]
    fn options() {
        let e = LogEventSink::from_uri(&"log?file=".parse().unwrap()).err().unwrap().to_string();
        assert!(e.contains("file= is empty"), "{e}");
        let e = LogEventSink::from_uri(&"log?x=1".parse().unwrap()).err().unwrap().to_string();
        assert!(e.contains("unknown log option \"x\""), "{e}");
        let e = LogEventSink::from_uri(&"log?file=/nonexistent-dir/events.jsonl".parse().unwrap()).err().unwrap();
        assert!(e.to_string().contains("/nonexistent-dir/events.jsonl: No such file"), "{e}");
        let tmp = TempFile::new("foreign");
        std::fs::write(&tmp.0, "not ours\n").unwrap();
        let e = LogEventSink::to_file(&tmp.0).err().unwrap();
        assert!(e.contains("give another file="), "{e}");
    }
}
