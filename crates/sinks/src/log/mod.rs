//! `--sink=log`: prints every batch, one line per metric, for debugging a pipeline without any server.

pub mod events;

use crate::{ConfigError, DataSink, SinkError, SinkKind, SinkMetrics};
use async_trait::async_trait;
use heapster_model::{DataBatch, KindDoc, Options, SpecUri};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The log sink in the sink table: no options, nothing to read back.
pub const KIND: SinkKind = SinkKind {
    doc: KindDoc {
        key: "log",
        aliases: &[],
        usage: "log",
        summary: "Prints every batch to stdout, one line per metric, for debugging a pipeline without any server.",
        options: &[],
    },
    build: |uri, _: &SinkMetrics| Ok(Arc::new(LogSink::from_uri(uri)?)),
    historical: None,
};

/// Writes batches as text to stdout (or, in tests, to any writer).
pub struct LogSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogSink {
    pub fn from_uri(uri: &SpecUri) -> Result<Self, ConfigError> {
        Options::new("--sink", uri, KIND.doc.options)?;
        Ok(Self::to_writer(Box::new(std::io::stdout())))
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        LogSink { out: Mutex::new(out) }
    }
}

/// The text of one batch: a header line, then `key metric{labels} value` lines, sorted by key.
pub fn encode(batch: &DataBatch) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "batch timestamp={} sets={} points={}", batch.timestamp, batch.sets.len(), batch.point_count());
    for (key, set) in &batch.sets {
        let labels: Vec<String> = set.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "  {key} [{}] created={} scraped={}", labels.join(","), set.create_time, set.scrape_time);
        for (name, value) in &set.metrics {
            let _ = writeln!(s, "    {name} {}", value.as_f64());
        }
        for m in &set.labeled_metrics {
            let l: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "    {}{{{}}} {}", m.name, l.join(","), m.value.as_f64());
        }
    }
    s
}

#[async_trait]
impl DataSink for LogSink {
    fn name(&self) -> String {
        "log".into()
    }

    async fn export(&self, batch: Arc<DataBatch>) -> Result<(), SinkError> {
        let text = encode(&batch);
        let mut out = self.out.lock().unwrap();
        out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| SinkError::Retry(format!("log: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapster_model::{MetricSet, MetricValue};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn prints_every_metric() {
        let buf = Shared::default();
        let sink = LogSink::to_writer(Box::new(buf.clone()));
        let mut set = MetricSet::default();
        set.set("memory/usage", MetricValue::Int(42));
        set.add_labeled(
            "filesystem/usage",
            heapster_model::Labels::from([("resource_id".to_owned(), "/dev/vda".to_owned())]),
            MetricValue::Int(7),
        );
        let mut b = DataBatch { timestamp: 1000, ..Default::default() };
        b.sets.insert("node:n".into(), set);
        sink.export(Arc::new(b)).await.unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("batch timestamp=1000 sets=1 points=2"), "{text}");
        assert!(text.contains("memory/usage 42"), "{text}");
        assert!(text.contains("filesystem/usage{resource_id=/dev/vda} 7"), "{text}");
    }

    #[test]
    fn rejects_options() {
        let e = LogSink::from_uri(&"log?x=1".parse().unwrap()).err().unwrap().to_string();
        assert_eq!(e, "--sink=log?x=1: unknown log option \"x\"; known: none");
    }
}
