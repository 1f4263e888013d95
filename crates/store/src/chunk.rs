//! Compressed runs of up to 64 consecutive batches of one series.
//!
//! Batches share timestamps, so a chunk stores no timestamps: a start sequence number and a presence bitmap say
//! which batches the series appeared in, and the values follow in a byte stream.
//! - Integers are delta-of-delta coded as zigzag varints: a counter that grows steadily costs one byte a point, a
//!   gauge that holds still costs one byte.
//! - Floats are XORed with the previous value and only the bytes between the leading and trailing zero bytes are
//!   kept (Gorilla's idea, byte-aligned so that decoding stays branch-light): an unchanged float costs one byte.
//!
//! A chunk holds one kind; a series whose values change type starts a new chunk, so values round-trip exactly.

use heapster_model::MetricValue;

/// Batches per chunk: the width of the presence bitmap.
pub const SLOTS: u64 = 64;

#[derive(Debug, Clone)]
pub struct Chunk {
    /// Sequence number of the batch in slot 0.
    pub start: u64,
    /// Bit i set: the series has a value in batch `start + i`.
    pub present: u64,
    pub is_float: bool,
    data: Vec<u8>,
    /// Encoder state for appending: previous raw value and (for ints) previous delta.
    prev: u64,
    prev_delta: i64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*pos) {
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl Chunk {
    pub fn new(start: u64, value: MetricValue) -> Chunk {
        let mut c = Chunk {
            start,
            present: 0,
            is_float: matches!(value, MetricValue::Float(_)),
            data: Vec::with_capacity(8),
            prev: 0,
            prev_delta: 0,
        };
        c.push(start, value);
        c
    }

    /// Sequence number of the newest value.
    pub fn last_seq(&self) -> u64 {
        self.start + 63 - u64::from(self.present.leading_zeros())
    }

    /// Whether `value` at `seq` can be appended here.
    pub fn accepts(&self, seq: u64, value: MetricValue) -> bool {
        seq > self.last_seq() && seq < self.start + SLOTS && self.is_float == matches!(value, MetricValue::Float(_))
    }

    /// Appends; the caller checked [`Chunk::accepts`] (or this is the first value).
    pub fn push(&mut self, seq: u64, value: MetricValue) {
        let first = self.present == 0;
        self.present |= 1 << (seq - self.start);
        match value {
            MetricValue::Int(v) => {
                let delta = if first { v } else { v.wrapping_sub(self.prev as i64) };
                put_varint(&mut self.data, zigzag(delta.wrapping_sub(self.prev_delta)));
                self.prev = v as u64;
                self.prev_delta = if first { 0 } else { delta };
            }
            MetricValue::Float(f) => {
                let bits = f.to_bits();
                let x = bits ^ self.prev;
                if x == 0 {
                    self.data.push(0);
                } else {
                    let lead = (x.leading_zeros() / 8) as usize;
                    let trail = (x.trailing_zeros() / 8) as usize;
                    self.data.push(0x40 | (lead << 3) as u8 | trail as u8);
                    let bytes = (x >> (trail * 8)).to_le_bytes();
                    self.data.extend_from_slice(&bytes[..8 - lead - trail]);
                }
                self.prev = bits;
            }
        }
    }

    /// The newest value, from the encoder's state (no decoding).
    pub fn last_value(&self) -> MetricValue {
        if self.is_float { MetricValue::Float(f64::from_bits(self.prev)) } else { MetricValue::Int(self.prev as i64) }
    }

    /// Every value with its sequence number, oldest first.
    pub fn decode(&self, mut f: impl FnMut(u64, MetricValue)) {
        let mut pos = 0;
        let (mut prev, mut prev_delta, mut first) = (0u64, 0i64, true);
        let mut present = self.present;
        while present != 0 {
            let slot = u64::from(present.trailing_zeros());
            present &= present - 1;
            let value = if self.is_float {
                let header = self.data[pos];
                pos += 1;
                if header != 0 {
                    let (lead, trail) = (((header >> 3) & 7) as usize, (header & 7) as usize);
                    let mut bytes = [0u8; 8];
                    let n = 8 - lead - trail;
                    bytes[..n].copy_from_slice(&self.data[pos..pos + n]);
                    pos += n;
                    prev ^= u64::from_le_bytes(bytes) << (trail * 8);
                }
                MetricValue::Float(f64::from_bits(prev))
            } else {
                let dod = unzigzag(get_varint(&self.data, &mut pos));
                let delta = if first { dod } else { prev_delta.wrapping_add(dod) };
                let v = if first { delta } else { (prev as i64).wrapping_add(delta) };
                prev_delta = if first { 0 } else { delta };
                prev = v as u64;
                MetricValue::Int(v)
            };
            first = false;
            f(self.start + slot, value);
        }
    }

    /// The values, decoded, for the rare rewrite of the newest one.
    fn values(&self) -> Vec<(u64, MetricValue)> {
        let mut out = Vec::with_capacity(self.present.count_ones() as usize);
        self.decode(|s, v| out.push((s, v)));
        out
    }

    /// Replaces the newest value (a batch ingested twice with the same timestamp). Returns a chunk re-encoded with
    /// the new value, which may have another kind.
    pub fn with_last_replaced(&self, value: MetricValue) -> Vec<Chunk> {
        let mut vals = self.values();
        if let Some(last) = vals.last_mut() {
            last.1 = value;
        }
        let mut out: Vec<Chunk> = Vec::new();
        for (seq, v) in vals {
            match out.last_mut() {
                Some(c) if c.accepts(seq, v) => c.push(seq, v),
                _ => out.push(Chunk::new(seq.max(self.start), v)),
            }
        }
        out
    }

    /// Called when no more values will be appended: gives back spare capacity.
    pub fn seal(&mut self) {
        self.data.shrink_to_fit();
    }

    /// Heap bytes held, plus the struct itself.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Chunk>() + self.data.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[Option<MetricValue>]) {
        let mut chunks: Vec<Chunk> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let Some(v) = *v else { continue };
            match chunks.last_mut() {
                Some(c) if c.accepts(i as u64, v) => c.push(i as u64, v),
                _ => chunks.push(Chunk::new(i as u64, v)),
            }
        }
        let mut got = vec![None; values.len()];
        for c in &chunks {
            c.decode(|s, v| got[s as usize] = Some(v));
        }
        for (i, (a, b)) in values.iter().zip(&got).enumerate() {
            match (a, b) {
                (Some(MetricValue::Float(x)), Some(MetricValue::Float(y))) => {
                    assert_eq!(x.to_bits(), y.to_bits(), "slot {i}")
                }
                _ => assert_eq!(a, b, "slot {i}"),
            }
        }
    }

    #[test]
    fn ints_floats_gaps_and_edges_round_trip() {
        use MetricValue::{Float, Int};
        let mut v: Vec<Option<MetricValue>> = (0..200).map(|i| Some(Int(1_000_000 + i * 15_000_000_000))).collect();
        v[7] = None;
        v[64] = None;
        v.extend([Some(Int(i64::MAX)), Some(Int(i64::MIN)), Some(Int(0)), Some(Int(-5)), None, Some(Int(i64::MAX))]);
        v.extend([
            Some(Float(0.1)),
            Some(Float(0.1)),
            Some(Float(-0.0)),
            Some(Float(f64::NAN)),
            Some(Float(f64::INFINITY)),
        ]);
        v.extend([Some(Float(f64::MIN_POSITIVE)), Some(Float(f64::MAX)), Some(Int(3)), Some(Float(3.0)), Some(Int(3))]);
        round_trip(&v);
    }

    #[test]
    fn a_steady_counter_costs_one_byte_a_point() {
        let mut c = Chunk::new(0, MetricValue::Int(48_135_221_356));
        for i in 1..64 {
            c.push(i, MetricValue::Int(48_135_221_356 + i as i64 * 367_686_764));
        }
        c.seal();
        // First value and first delta take a few bytes; the other 62 are zero delta-of-deltas.
        assert!(c.bytes() - std::mem::size_of::<Chunk>() <= 62 + 12, "{}", c.bytes());
    }

    #[test]
    fn replacing_the_last_value() {
        let mut c = Chunk::new(10, MetricValue::Int(1));
        c.push(11, MetricValue::Int(2));
        let r = c.with_last_replaced(MetricValue::Float(2.5));
        let mut got = Vec::new();
        for c in &r {
            c.decode(|s, v| got.push((s, v)));
        }
        assert_eq!(got, vec![(10, MetricValue::Int(1)), (11, MetricValue::Float(2.5))]);
    }
}
