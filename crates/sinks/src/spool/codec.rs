//! The spool's encoding of a [`DataBatch`]: compact, self-contained, versioned, and exact (an integer stays an
//! integer and a float keeps every bit, which JSON would not promise for `3.0` or NaN).
//!
//! Layout (integers LEB128 varints unless said otherwise, strings a varint length and UTF-8 bytes):
//! `version:u8 timestamp:i64le nsets` then per set `key create_time:i64le scrape_time:i64le nlabels (k v)*
//! nmetrics (name value)* nlabelmaps (nlabels (k v)*)* nlabeled (name labelmap-index value)*`, a value being
//! `0 i64le` or `1 f64-bits-le`. Label maps of labelled metrics are written once per set and shared again on
//! reading, as the sources share them (a filesystem's five metrics carry one `resource_id` map).

use heapster_model::batch::MetricName;
use heapster_model::{DataBatch, LabeledMetric, Labels, MetricSet, MetricValue, catalog, varint};
use std::borrow::Cow;
use std::sync::Arc;

const VERSION: u8 = 1;

/// Appends the encoding of `batch` to `out`.
pub fn encode(batch: &DataBatch, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&batch.timestamp.to_le_bytes());
    put_len(out, batch.sets.len());
    for (key, set) in &batch.sets {
        put_str(out, key);
        out.extend_from_slice(&set.create_time.to_le_bytes());
        out.extend_from_slice(&set.scrape_time.to_le_bytes());
        put_labels(out, &set.labels);
        put_len(out, set.metrics.len());
        for (name, value) in &set.metrics {
            put_str(out, name);
            put_value(out, *value);
        }
        // Distinct label maps by identity (the sources share them), then each metric's index into them.
        let mut maps: Vec<&Arc<Labels>> = Vec::new();
        let indices: Vec<usize> = set
            .labeled_metrics
            .iter()
            .map(|m| match maps.iter().position(|l| Arc::ptr_eq(l, &m.labels)) {
                Some(i) => i,
                None => {
                    maps.push(&m.labels);
                    maps.len() - 1
                }
            })
            .collect();
        put_len(out, maps.len());
        for labels in maps {
            put_labels(out, labels);
        }
        put_len(out, set.labeled_metrics.len());
        for (m, i) in set.labeled_metrics.iter().zip(indices) {
            put_str(out, &m.name);
            put_len(out, i);
            put_value(out, m.value);
        }
    }
}

/// Reads a batch written by [`encode`]; an error says what was wrong instead of panicking on bad bytes.
pub fn decode(buf: &[u8]) -> Result<DataBatch, String> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.byte()?;
    if version != VERSION {
        return Err(format!("unknown batch encoding version {version}"));
    }
    let timestamp = r.i64()?;
    let mut batch = DataBatch { timestamp, ..Default::default() };
    for _ in 0..r.len()? {
        let key = r.string()?;
        let create_time = r.i64()?;
        let scrape_time = r.i64()?;
        let labels = r.labels()?;
        let mut set = MetricSet { create_time, scrape_time, labels, ..Default::default() };
        for _ in 0..r.len()? {
            let name = metric_name(r.string()?);
            let value = r.value()?;
            set.metrics.insert(name, value);
        }
        let maps = (0..r.len()?).map(|_| r.labels().map(Arc::new)).collect::<Result<Vec<_>, _>>()?;
        let n = r.len()?;
        set.labeled_metrics.reserve(n);
        for _ in 0..n {
            let name = metric_name(r.string()?);
            let i = r.index()?;
            let labels = maps.get(i).ok_or_else(|| format!("label map {i} of {} does not exist", maps.len()))?;
            let value = r.value()?;
            set.labeled_metrics.push(LabeledMetric { name, labels: labels.clone(), value });
        }
        batch.sets.insert(key, set);
    }
    if r.pos != buf.len() {
        return Err(format!("{} bytes left after the batch", buf.len() - r.pos));
    }
    Ok(batch)
}

/// Catalog names go back to their `&'static str`, as the sources made them; others (`custom/...`) are owned.
fn metric_name(s: String) -> MetricName {
    match catalog::find(&s) {
        Some(d) => Cow::Borrowed(d.name),
        None => Cow::Owned(s),
    }
}

fn put_len(out: &mut Vec<u8>, v: usize) {
    varint::put(out, v as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_labels(out: &mut Vec<u8>, labels: &Labels) {
    put_len(out, labels.len());
    for (k, v) in labels {
        put_str(out, k);
        put_str(out, v);
    }
}

fn put_value(out: &mut Vec<u8>, v: MetricValue) {
    match v {
        MetricValue::Int(i) => {
            out.push(0);
            out.extend_from_slice(&i.to_le_bytes());
        }
        MetricValue::Float(f) => {
            out.push(1);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| format!("batch ends early: {n} bytes wanted at offset {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Result<u64, String> {
        varint::read(self.buf, &mut self.pos).map_err(|e| match e {
            varint::Error::Truncated => format!("batch ends early: 1 bytes wanted at offset {}", self.pos),
            varint::Error::TooLong => format!("varint too long at offset {}", self.pos),
        })
    }

    /// A count or length; never more than the bytes left (each element takes one at least), so a corrupt count
    /// cannot ask for a huge allocation.
    fn len(&mut self) -> Result<usize, String> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|v| *v <= self.buf.len() - self.pos)
            .ok_or_else(|| format!("count {v} at offset {} is beyond the batch", self.pos))
    }

    /// An index into a table already read (checked by the caller).
    fn index(&mut self) -> Result<usize, String> {
        let v = self.varint()?;
        usize::try_from(v).map_err(|_| format!("index {v} too large"))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("string is not UTF-8: {e}"))
    }

    fn labels(&mut self) -> Result<Labels, String> {
        (0..self.len()?).map(|_| -> Result<_, String> { Ok((self.string()?, self.string()?)) }).collect()
    }

    fn value(&mut self) -> Result<MetricValue, String> {
        match self.byte()? {
            0 => Ok(MetricValue::Int(self.i64()?)),
            1 => Ok(MetricValue::Float(f64::from_bits(self.i64()? as u64))),
            t => Err(format!("unknown value tag {t}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch with every kind of content: catalog and custom names, both value types, shared label maps.
    fn sample(ts: i64) -> DataBatch {
        let mut batch = DataBatch { timestamp: ts, ..Default::default() };
        let mut set = MetricSet { create_time: 5, scrape_time: ts - 1, ..Default::default() };
        set.labels.insert("type", "node");
        set.labels.insert("nodename", "n1");
        set.set("uptime", MetricValue::Int(ts));
        set.set("cpu/usage_rate", MetricValue::Float(12.5));
        set.metrics.insert(Cow::Owned("custom/qps".into()), MetricValue::Float(f64::NAN));
        let fs: Arc<Labels> = Arc::new([("resource_id".to_string(), "/dev/sda1".to_string())].into());
        set.add_labeled("filesystem/usage", fs.clone(), MetricValue::Int(-7));
        set.add_labeled("filesystem/limit", fs, MetricValue::Int(i64::MAX));
        set.add_labeled("filesystem/usage", Labels::new(), MetricValue::Float(0.0));
        batch.sets.insert("node:n1".into(), set);
        batch.sets.insert("cluster".into(), MetricSet::default());
        batch
    }

    #[test]
    fn a_batch_comes_back_exactly_with_shared_label_maps() {
        let batch = sample(1_700_000_000_000);
        let mut buf = Vec::new();
        encode(&batch, &mut buf);
        let back = decode(&buf).unwrap();
        assert_eq!(back.timestamp, batch.timestamp);
        assert_eq!(back.sets.len(), 2);
        let (a, b) = (&back.sets["node:n1"], &batch.sets["node:n1"]);
        assert_eq!((a.create_time, a.scrape_time, &a.labels), (b.create_time, b.scrape_time, &b.labels));
        assert_eq!(a.get("uptime"), Some(MetricValue::Int(1_700_000_000_000)));
        assert_eq!(a.get("cpu/usage_rate"), Some(MetricValue::Float(12.5)));
        assert!(a.get("custom/qps").unwrap().as_f64().is_nan());
        assert!(matches!(a.metrics.keys().find(|k| *k == "uptime"), Some(Cow::Borrowed(_))), "catalog names interned");
        assert_eq!(a.labeled_metrics[..2], b.labeled_metrics[..2]);
        assert!(Arc::ptr_eq(&a.labeled_metrics[0].labels, &a.labeled_metrics[1].labels));
        assert!(a.labeled_metrics[2].labels.is_empty());
    }

    #[test]
    fn many_label_maps_in_one_set() {
        let mut set = MetricSet::default();
        for i in 0..300 {
            set.add_labeled("filesystem/usage", Labels::from([("resource_id", format!("d{i}"))]), MetricValue::Int(i));
        }
        let batch = DataBatch { timestamp: 1, sets: [("node:x".to_string(), set)].into() };
        let mut buf = Vec::new();
        encode(&batch, &mut buf);
        assert_eq!(decode(&buf).unwrap(), batch);
    }

    #[test]
    fn bad_bytes_are_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode(&sample(1), &mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = buf.clone();
        flipped[0] = 9;
        assert!(decode(&flipped).unwrap_err().contains("version"));
        // Every single-byte corruption either fails or decodes to something; none panics.
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0xff;
            let _ = decode(&b);
        }
    }
}
