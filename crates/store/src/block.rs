//! One metric set's values for up to 16 consecutive batches, stored row by row in one byte buffer.
//!
//! A set's series (its metric names and labelled metrics) almost always arrive together, in the same order, batch
//! after batch. So the store keeps a set's values as rows: one row per batch, the values of every series of the set
//! side by side. Compared with a buffer per series this saves the per-series buffer, its header and its allocator
//! slack (about 40 % of the store's memory), and an ingest appends to one buffer per set instead of thirty.
//!
//! # Row format
//! `[slot | D << 5 | P << 6 | K << 7] [n: varint] [presence: ceil(n/8) bytes if P] [kinds: ceil(n/8) bytes if K]
//! [interval: varint if D] [values]`
//! - `slot` is the batch's offset from the block's first batch (< [`SLOTS`], at most 32); `n` is how many series
//!   the set had when the row was written.
//! - Without `P` all `n` series are present; with it, bit `i` says whether series `i` is.
//! - Without `K` every series keeps the kind (integer or float) it had in the previous row (integer before its
//!   first); with it, bit `i` set means float. A series whose kind changes starts afresh, as a new series does, so
//!   values round-trip exactly.
//! - Values of present series, in series order, bit by bit (see [`crate::bitcode`]), the row padded to a byte.
//!   Integers are delta-of-delta coded: a constant or a counter that grows steadily costs one bit a point. Floats
//!   are XORed with the previous value and coded as Gorilla does. A series' first value is coded against zero.
//! - With `D`, the row's `interval` (milliseconds since the set's previous scrape) is given, and each float is a
//!   bit `1` and a rate's count, or `0` and the XOR code (see [`rate_count`]).
//!
//! # Rates
//! Most of a set's floats are rates, `delta * 1000 / interval_ms` of a counter's increase over the interval between
//! two scrapes: their bits look random to an XOR, which spent 40 to 60 bits on each (a fifth of the store on the
//! simulator's sets). Given the interval, such a float is an integer count, the counter's increase, and is coded as
//! one: against the count the previous value would give over this interval, so a steady rate costs a few bits. The
//! writer checks that the count gives the value back bit for bit, so any other float is coded as before.
//!
//! # Blocks continue one another
//! A block's rows are coded against the rows before them, in its block or the one before, so a block does not
//! decode on its own. Coding every block afresh cost each series its first value and first delta four or five times
//! in a 60-batch window: 8 % of the store on the simulator's sets (112 bytes per series, 103 without). A [`Chain`]
//! instead keeps, beside its blocks, the decoder's state at the start of the oldest one (a keyframe, about one
//! restart's bytes): dropping old blocks decodes them once to move it on, and every reader starts from it.

use crate::bitcode::{self, BitReader, BitWriter, Window};
use heapster_model::MetricValue;
use heapster_model::varint;

thread_local! {
    /// The row being encoded, before it is appended to its block (see [`Writer::encode_row`]).
    static ROW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A writer's state, resumed from its compact form to encode a row (see [`Writer`]).
    static CODER: std::cell::RefCell<Reader> = std::cell::RefCell::new(Reader::default());
}

/// Batches per block (at most 32: five bits of the row header hold the slot).
///
/// A set holds its window plus, on average, half a block: blocks are dropped whole once their newest row is out of
/// the window. With 64 that half block was half again the window (60 batches at 15 minutes); 16 costs a few more
/// blocks per set (a 32-byte header each) and a keyframe move every 16 batches. When every block still restarted
/// its series' coding, 16 left 18 % fewer bytes than 64 in the store benchmark (12 % fewer than 32).
pub const SLOTS: u64 = 16;

const D: u8 = 1 << 5;
const P: u8 = 1 << 6;
const K: u8 = 1 << 7;
const SLOT_BITS: u32 = 5;
const SLOT_MASK: u8 = (1 << SLOT_BITS) - 1;
const _: () = assert!(SLOTS <= SLOT_MASK as u64 + 1);

/// The count `n` with `n * 1000 / interval_ms == value` bit for bit (the rate calculator's formula), coded against
/// what the previous value `prev` gives over the same interval; `None` when `value` is not such a rate.
fn rate_count(value: f64, prev: f64, interval_ms: u64) -> Option<u64> {
    let n = count_of(value, interval_ms);
    (rate_of(n, interval_ms).to_bits() == value.to_bits()).then(|| zigzag(n.wrapping_sub(count_of(prev, interval_ms))))
}

fn is_rate(value: MetricValue, interval_ms: u64) -> bool {
    matches!(value, MetricValue::Float(f) if rate_count(f, 0.0, interval_ms).is_some())
}

/// The rate a count coded by [`rate_count`] stands for.
fn rate_from_count(z: u64, prev: f64, interval_ms: u64) -> f64 {
    rate_of(unzigzag(z).wrapping_add(count_of(prev, interval_ms)), interval_ms)
}

/// The count nearest `rate` over `interval_ms` (saturating, and 0 for NaN, as `as` does: any answer will do, as
/// long as writer and reader compute the same, which IEEE arithmetic guarantees).
fn count_of(rate: f64, interval_ms: u64) -> i64 {
    (rate * interval_ms as f64 / 1000.0).round() as i64
}

/// `n * 1000 / interval_ms`, as `heapster_processors`' rate calculator computes a rate from a counter's increase.
fn rate_of(n: i64, interval_ms: u64) -> f64 {
    n as f64 * 1000.0 / interval_ms as f64
}

/// A block of rows. The encoder's state lives in [`Writer`], shared by the set's blocks, since only the newest
/// block is ever appended to.
///
/// Four words: every set has four or five blocks. A block's first batch is a `u32` (a store numbers its batches
/// from 0 at its start: 2^32 of them is 136 years of 1 s rounds), and where its newest row begins shares a `u32`
/// with that row's slot; as a `u64`, a `u32` and a `u8`, the three took a word more, about 2 % of the store.
#[derive(Debug)]
pub struct Block {
    rows: Vec<u8>,
    /// Sequence number of the batch in slot 0.
    start: u32,
    /// `newest row's offset << SLOT_BITS | its slot` ([`Block::last`]), to answer "the latest value" without
    /// decoding the block. No row starts at [`MAX_BLOCK_BYTES`] or beyond (the block is sealed first), so the
    /// offset fits.
    last: u32,
}

/// A block takes no row once its rows reach this many bytes (see [`Block::last`]): far beyond any set's (a row of
/// a thousand series takes a few kilobytes, and a block holds at most [`SLOTS`] rows). Small in tests, so that
/// their larger rows fill blocks early too.
const MAX_BLOCK_BYTES: usize = if cfg!(test) { 1 << 14 } else { 1 << 27 };
const _: () = assert!(MAX_BLOCK_BYTES <= 1 << (32 - SLOT_BITS));

/// A row's values: (series index, value), by index.
type RowValues = Vec<(u32, MetricValue)>;

/// Per-series coder state: previous raw value and, for integers, the previous delta; for floats, the XOR
/// window ([`Window::to_i64`]): a series is one or the other at a time, and a field each would cost 8 bytes more.
#[derive(Debug, Clone, Copy, Default)]
struct Codec {
    prev: u64,
    prev_delta: i64,
}

/// A set's encoder state: what a decoder reading from the keyframe would know after the newest row.
///
/// Kept compact ([`Reader::state_into`]) and resumed for each row: decoded, a series' state is 16 bytes (its
/// previous value and delta) and two bitmaps per set; compact, a constant costs a byte of flags, its value's bytes
/// and one for its delta. On the simulator's sets that was about 18 of the store's 85 bytes per series decoded, 5
/// compact. Resuming and writing it back for each row costs the ingest about a tenth: the store benchmark's went
/// from 362 to 387-441 ns per value with this and the rates' coding (441 with the state coded bit by bit, as a
/// keyframe is, for 1.6 bytes per series less).
#[derive(Debug, Default)]
pub struct Writer {
    state: Box<[u8]>,
    /// Where this set's blocks begin: at batches with `(seq + phase) % SLOTS == 0`. Sets given different phases
    /// drop their oldest block at different batches; with one boundary for all, every set held 60 to 124 batches
    /// and dropped a block in the same sweep, a 30 % saw-tooth in RSS with a period of a block's batches.
    phase: u8,
}

/// A set's newest values ([`Writer::newest`]).
pub struct Newest(Reader);

impl Newest {
    /// Series `i`'s newest value, valid when the newest row of the newest block holds it.
    pub fn value(&self, i: usize) -> MetricValue {
        self.0.last(i)
    }
}

/// A growable bitmap.
#[derive(Debug, Default, Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn set(&mut self, i: usize, on: bool) {
        if i / 64 >= self.0.len() {
            if !on {
                return;
            }
            self.0.resize(i / 64 + 1, 0);
        }
        if on {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }
    /// One past the highest bit set.
    fn len(&self) -> usize {
        let words = self.0.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        words.checked_sub(1).map_or(0, |top| top * 64 + 64 - self.0[top].leading_zeros() as usize)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap[i / 8] & (1 << (i % 8)) != 0
}

/// A row's header, parsed.
struct Row<'a> {
    seq: u64,
    n: usize,
    presence: Option<&'a [u8]>,
    kinds: Option<&'a [u8]>,
    /// Milliseconds since the set's previous scrape, when the row's floats may be coded as rates; else 0.
    interval: u64,
}

impl Row<'_> {
    fn present(&self, i: usize) -> bool {
        i < self.n && self.presence.is_none_or(|p| bit(p, i))
    }
}

fn read_row<'a>(block: &'a Block, pos: &mut usize) -> Row<'a> {
    let data = &block.rows;
    let header = data[*pos];
    *pos += 1;
    let n = varint::get(data, pos) as usize;
    let len = n.div_ceil(8);
    let mut take = |flag: u8| {
        (header & flag != 0).then(|| {
            let s = &data[*pos..*pos + len];
            *pos += len;
            s
        })
    };
    let presence = take(P);
    let kinds = take(K);
    let interval = if header & D != 0 { varint::get(data, pos) } else { 0 };
    Row { seq: block.start() + u64::from(header & SLOT_MASK), n, presence, kinds, interval }
}

/// Decoder state for whole rows or one series of them, carried from block to block.
#[derive(Debug, Default, Clone)]
struct Reader {
    codecs: Vec<Codec>,
    floats: Bits,
    started: Bits,
}

impl Reader {
    /// Applies a row's kinds bitmap: a series whose kind changes starts afresh.
    fn apply_kinds(&mut self, row: &Row) {
        let Some(kinds) = row.kinds else { return };
        for i in 0..row.n {
            let f = bit(kinds, i);
            if f != self.floats.get(i) {
                self.floats.set(i, f);
                self.started.set(i, false);
            }
        }
    }

    fn codec(&mut self, i: usize) -> &mut Codec {
        if self.codecs.len() <= i {
            self.codecs.resize(i + 1, Codec::default());
        }
        &mut self.codecs[i]
    }

    fn value(&mut self, bits: &mut BitReader, i: usize, interval: u64) -> MetricValue {
        let first = !self.started.get(i);
        self.started.set(i, true);
        let float = self.floats.get(i);
        let c = self.codec(i);
        if float {
            let prev = if first { 0 } else { c.prev };
            let mut win = if first { Window::default() } else { Window::from_i64(c.prev_delta) };
            c.prev = if interval > 0 && bits.get(1) == 1 {
                rate_from_count(bitcode::get_int(bits), f64::from_bits(prev), interval).to_bits()
            } else {
                prev ^ bitcode::get_float(bits, &mut win)
            };
            c.prev_delta = win.to_i64();
            MetricValue::Float(f64::from_bits(c.prev))
        } else {
            let dod = unzigzag(bitcode::get_int(bits));
            if first {
                c.prev = dod as u64;
                c.prev_delta = 0;
            } else {
                let delta = c.prev_delta.wrapping_add(dod);
                c.prev = (c.prev as i64).wrapping_add(delta) as u64;
                c.prev_delta = delta;
            }
            MetricValue::Int(c.prev as i64)
        }
    }

    /// Reads past series `i`'s value. A float's window is kept, since the next one may reuse it; a float that
    /// starts afresh never does (its first value is coded as a count or with a window of its own, and the writer
    /// never reuses a default window), so whether it started is not needed here.
    fn skip(&mut self, bits: &mut BitReader, i: usize, interval: u64) {
        if self.floats.get(i) {
            if interval > 0 && bits.get(1) == 1 {
                bitcode::get_int(bits);
                return;
            }
            let c = self.codec(i);
            let mut win = Window::from_i64(c.prev_delta);
            bitcode::get_float(bits, &mut win);
            c.prev_delta = win.to_i64();
        } else {
            bitcode::get_int(bits);
        }
    }
}

impl Reader {
    /// The state as a few bits per series plus, for each started one, its previous value and delta (a float's
    /// window): about what the first two values of a restarted series cost.
    fn keyframe(&self) -> Box<[u8]> {
        // A started series has a codec; a float that has not started yet only has its bit.
        let n = self.codecs.len().max(self.floats.len());
        if n == 0 {
            return Box::default();
        }
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        bitcode::put_int(&mut w, n as u64);
        for i in 0..n {
            let (started, float) = (self.started.get(i), self.floats.get(i));
            w.put(u64::from(started) | u64::from(float) << 1, 2);
            if started {
                let c = self.codecs[i];
                if float {
                    w.put(c.prev, 64);
                } else {
                    bitcode::put_int(&mut w, zigzag(c.prev as i64));
                }
                bitcode::put_int(&mut w, zigzag(c.prev_delta));
            }
        }
        w.finish();
        out.into_boxed_slice()
    }

    /// The state a [`Reader::keyframe`] holds (a fresh one when it is empty).
    fn resume(keyframe: &[u8]) -> Reader {
        let mut r = Reader::default();
        if keyframe.is_empty() {
            return r;
        }
        let mut bits = BitReader::new(keyframe, 0);
        let n = bitcode::get_int(&mut bits) as usize;
        r.codecs.resize(n, Codec::default());
        for i in 0..n {
            let flags = bits.get(2);
            let (started, float) = (flags & 1 != 0, flags & 2 != 0);
            r.floats.set(i, float);
            r.started.set(i, started);
            if started {
                let prev = if float { bits.get(64) } else { unzigzag(bitcode::get_int(&mut bits)) as u64 };
                r.codecs[i] = Codec { prev, prev_delta: unzigzag(bitcode::get_int(&mut bits)) };
            }
        }
        r
    }

    /// The state as a writer keeps it between rows: per series a byte of flags (started, float) and, for a started
    /// one, its previous value (a zigzag varint, or a float's 8 bytes) and delta (a float's window) as a zigzag
    /// varint. Byte-aligned, where a [`Reader::keyframe`] is coded bit by bit, since it is read and written back
    /// for every row the set stores.
    fn state_into(&self, out: &mut Vec<u8>) {
        let n = self.codecs.len().max(self.floats.len());
        varint::put(out, n as u64);
        for i in 0..n {
            let (started, float) = (self.started.get(i), self.floats.get(i));
            out.push(u8::from(started) | u8::from(float) << 1);
            if started {
                let c = self.codecs[i];
                if float {
                    out.extend_from_slice(&c.prev.to_le_bytes());
                } else {
                    varint::put(out, zigzag(c.prev as i64));
                }
                varint::put(out, zigzag(c.prev_delta));
            }
        }
    }

    /// Becomes the state [`Reader::state_into`] wrote, reusing its vectors.
    fn resume_state(&mut self, state: &[u8]) {
        self.codecs.clear();
        self.floats.0.clear();
        self.started.0.clear();
        let (n, entries) = state_entries(state);
        self.codecs.resize(n, Codec::default());
        self.floats.0.resize(n.div_ceil(64), 0);
        self.started.0.resize(n.div_ceil(64), 0);
        for (i, (started, float, codec)) in entries.enumerate() {
            self.floats.set(i, float);
            self.started.set(i, started);
            self.codecs[i] = codec;
        }
    }

    /// The value series `i` was last given.
    fn last(&self, i: usize) -> MetricValue {
        let prev = self.codecs.get(i).map_or(0, |c| c.prev);
        if self.floats.get(i) { MetricValue::Float(f64::from_bits(prev)) } else { MetricValue::Int(prev as i64) }
    }
}

/// The series count of a state [`Reader::state_into`] wrote, and its entries in order: (started, float, codec),
/// the codec the default for a series not started.
fn state_entries(state: &[u8]) -> (usize, impl Iterator<Item = (bool, bool, Codec)> + '_) {
    let mut pos = 0;
    let n = varint::get(state, &mut pos) as usize;
    let entries = (0..n).map(move |_| {
        let flags = state[pos];
        pos += 1;
        let (started, float) = (flags & 1 != 0, flags & 2 != 0);
        if !started {
            return (false, float, Codec::default());
        }
        let prev = if float {
            let mut b = [0; 8];
            b.copy_from_slice(&state[pos..pos + 8]);
            pos += 8;
            u64::from_le_bytes(b)
        } else {
            unzigzag(varint::get(state, &mut pos)) as u64
        };
        (true, float, Codec { prev, prev_delta: unzigzag(varint::get(state, &mut pos)) })
    });
    (n, entries)
}

impl Block {
    fn new(start: u64) -> Self {
        debug_assert!(start <= u64::from(u32::MAX), "batch {start}: a store numbers at most 2^32 batches");
        Block { rows: Vec::new(), start: start as u32, last: 0 }
    }

    /// Sequence number of the newest row.
    pub fn last(&self) -> u64 {
        self.start() + u64::from(self.last & u32::from(SLOT_MASK))
    }

    /// Sequence number of the batch in slot 0.
    pub fn start(&self) -> u64 {
        u64::from(self.start)
    }

    /// Heap bytes held, plus the struct itself.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Block>() + self.rows.capacity()
    }

    /// Gives back spare capacity once no more rows will be appended.
    pub fn seal(&mut self) {
        self.rows.shrink_to_fit();
    }

    /// Every value of every series: `f(seq, series, value)`, oldest row first.
    fn decode(&self, r: &mut Reader, mut f: impl FnMut(u64, usize, MetricValue)) {
        let mut pos = 0;
        while pos < self.rows.len() {
            let row = read_row(self, &mut pos);
            r.apply_kinds(&row);
            let mut bits = BitReader::new(&self.rows, pos);
            for i in 0..row.n {
                if row.present(i) {
                    let v = r.value(&mut bits, i, row.interval);
                    f(row.seq, i, v);
                }
            }
            pos = bits.aligned();
        }
    }

    /// The values of the row of batch `seq`, if the block has one: `f(series, value)`. Rows are coded against the
    /// ones before them, so those are decoded too, and the walk stops there.
    fn decode_row(&self, r: &mut Reader, seq: u64, mut f: impl FnMut(usize, MetricValue)) {
        let mut pos = 0;
        while pos < self.rows.len() {
            let row = read_row(self, &mut pos);
            if row.seq > seq {
                return;
            }
            r.apply_kinds(&row);
            let mut bits = BitReader::new(&self.rows, pos);
            for i in (0..row.n).filter(|&i| row.present(i)) {
                let v = r.value(&mut bits, i, row.interval);
                if row.seq == seq {
                    f(i, v);
                }
            }
            if row.seq == seq {
                return;
            }
            pos = bits.aligned();
        }
    }

    /// The values of series `series`: `f(seq, value)`, oldest first. Other series' values are skipped, not decoded:
    /// afterwards `r` holds only this series' state and the floats' windows.
    fn decode_series(&self, r: &mut Reader, series: usize, mut f: impl FnMut(u64, MetricValue)) {
        let mut pos = 0;
        while pos < self.rows.len() {
            let row = read_row(self, &mut pos);
            r.apply_kinds(&row);
            let mut bits = BitReader::new(&self.rows, pos);
            for i in (0..row.n).filter(|&i| row.present(i)) {
                if i == series {
                    let v = r.value(&mut bits, i, row.interval);
                    f(row.seq, v);
                } else {
                    // Skipped by length only; the rest of the row must still be walked to reach the next one.
                    r.skip(&mut bits, i, row.interval);
                }
            }
            pos = bits.aligned();
        }
    }

    /// Calls `f(seq, i)` for every present series of every row (no values decoded).
    fn presence(&self, r: &mut Reader, mut f: impl FnMut(u64, usize)) {
        self.each_row(r, |row| {
            for i in (0..row.n).filter(|&i| row.present(i)) {
                f(row.seq, i);
            }
        });
    }

    fn each_row(&self, r: &mut Reader, mut f: impl FnMut(&Row)) {
        let mut pos = 0;
        while pos < self.rows.len() {
            let row = read_row(self, &mut pos);
            r.apply_kinds(&row);
            f(&row);
            let mut bits = BitReader::new(&self.rows, pos);
            for i in 0..row.n {
                if row.present(i) {
                    r.skip(&mut bits, i, row.interval);
                }
            }
            pos = bits.aligned();
        }
    }

    /// Whether series `i` has a value in the newest row.
    pub fn in_last_row(&self, i: usize) -> bool {
        let mut pos = (self.last >> SLOT_BITS) as usize;
        read_row(self, &mut pos).present(i)
    }
}

/// A set's blocks, oldest first, and the decoder's state at the start of the oldest (see the module docs).
#[derive(Debug, Default)]
pub struct Chain {
    /// [`Reader::keyframe`] after the rows of every block dropped so far; empty before the first drop.
    keyframe: Box<[u8]>,
    blocks: Vec<Block>,
}

impl Chain {
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    fn reader(&self) -> Reader {
        Reader::resume(&self.keyframe)
    }

    /// The decoder's state at the start of the newest block.
    fn reader_before_last(&self) -> Reader {
        let mut r = self.reader();
        for b in self.blocks.iter().rev().skip(1).rev() {
            b.decode(&mut r, |_, _, _| {});
        }
        r
    }

    /// Heap bytes held (the struct itself is the caller's).
    pub fn bytes(&self) -> usize {
        self.keyframe.len()
            + self.blocks.iter().map(Block::bytes).sum::<usize>()
            + (self.blocks.capacity() - self.blocks.len()) * std::mem::size_of::<Block>()
    }

    /// Drops the blocks whose newest row is older than batch `first`, decoding them once to move the keyframe on.
    pub fn drop_before(&mut self, first: u64) {
        let expired = self.blocks.partition_point(|b| b.last() < first);
        if expired == 0 {
            return;
        }
        let mut r = self.reader();
        for b in &self.blocks[..expired] {
            b.decode(&mut r, |_, _, _| {});
        }
        self.keyframe = r.keyframe();
        self.blocks.drain(..expired);
    }

    /// Every value of every series: `f(seq, series, value)`, oldest row first.
    #[cfg(test)]
    pub fn decode(&self, mut f: impl FnMut(u64, usize, MetricValue)) {
        let mut r = self.reader();
        for b in &self.blocks {
            b.decode(&mut r, &mut f);
        }
    }

    /// The values of the row of batch `seq`, if there is one: `f(series, value)`. The rows before it are decoded
    /// too, from the oldest block on.
    pub fn decode_row(&self, seq: u64, f: impl FnMut(usize, MetricValue)) {
        let mut r = self.reader();
        for b in &self.blocks {
            if b.last() < seq {
                b.decode(&mut r, |_, _, _| {});
            } else {
                if b.start() <= seq {
                    b.decode_row(&mut r, seq, f);
                }
                return;
            }
        }
    }

    /// The values of series `series`: `f(seq, value)`, oldest first.
    pub fn decode_series(&self, series: usize, mut f: impl FnMut(u64, MetricValue)) {
        let mut r = self.reader();
        for b in &self.blocks {
            b.decode_series(&mut r, series, &mut f);
        }
    }

    /// Calls `f(seq, i)` for every present series of every row (no values decoded).
    pub fn presence(&self, mut f: impl FnMut(u64, usize)) {
        let mut r = self.reader();
        for b in &self.blocks {
            b.presence(&mut r, &mut f);
        }
    }
}

impl Writer {
    /// A writer whose blocks begin at batches with `(seq + phase) % SLOTS == 0`.
    pub fn new(phase: u64) -> Self {
        Writer { phase: (phase % SLOTS) as u8, ..Default::default() }
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.state.len()
    }

    /// Series `i`'s newest value, valid when the newest row of the newest block holds it: read from the state
    /// without decoding the others' (a query of one series' latest point asks this).
    pub fn newest_value(&self, i: usize) -> MetricValue {
        match state_entries(&self.state).1.nth(i) {
            Some((true, true, c)) => MetricValue::Float(f64::from_bits(c.prev)),
            Some((true, false, c)) => MetricValue::Int(c.prev as i64),
            _ => MetricValue::Int(0),
        }
    }

    /// The newest values, decoded once for all the set's series.
    pub fn newest(&self) -> Newest {
        let mut r = Reader::default();
        r.resume_state(&self.state);
        Newest(r)
    }

    /// Appends a row for batch `seq` to `chain` with `values` (series index, value), sorted by index without
    /// duplicates; `n` is the set's number of series; `interval` is the milliseconds since the set's previous
    /// scrape, over which its rates were computed (0 when unknown: see the module docs). A batch ingested twice
    /// (same `seq` as the newest row) updates that row: its values replace those of the same series, the others
    /// stay.
    pub fn append(&mut self, chain: &mut Chain, seq: u64, n: usize, values: &[(u32, MetricValue)], interval: u64) {
        let start = match chain.blocks.last() {
            Some(b) if b.last() == seq => Some(chain.reader_before_last()),
            _ => None,
        };
        let blocks = &mut chain.blocks;
        match blocks.last_mut() {
            Some(b) if b.last() == seq => {
                let (rewritten, (was, mut merged)) = self.rewrite_without_last(b, start.unwrap_or_default());
                *b = rewritten;
                for &(i, v) in values {
                    match merged.binary_search_by_key(&i, |x| x.0) {
                        Ok(at) => merged[at].1 = v,
                        Err(at) => merged.insert(at, (i, v)),
                    }
                }
                if b.rows.is_empty() {
                    blocks.pop();
                }
                // The values kept were the row's rates over its interval; new ones not so are coded as floats.
                return self.append(chain, seq, n, &merged, if was > 0 { was } else { interval });
            }
            Some(b)
                if seq > b.last()
                    && self.boundary(seq) == self.boundary(b.start())
                    && b.rows.len() < MAX_BLOCK_BYTES => {}
            last => {
                if let Some(b) = last {
                    b.seal();
                }
                // The coder's state carries on into the new block (see the module docs). Grow by one, not to
                // Vec's minimum of 4: a set spans four or five blocks of a 60-batch window.
                blocks.reserve_exact(1);
                blocks.push(Block::new(seq));
            }
        }
        let block = blocks.last_mut().expect("a block to append to");
        self.encode_row(block, seq, n, values, interval);
    }

    /// The number of the block boundary at or before `seq`: rows of one block share it, so a slot is < SLOTS.
    fn boundary(&self, seq: u64) -> u64 {
        (seq + u64::from(self.phase)) / SLOTS
    }

    fn encode_row(&mut self, block: &mut Block, seq: u64, n: usize, values: &[(u32, MetricValue)], interval: u64) {
        CODER.with_borrow_mut(|coder| {
            coder.resume_state(&self.state);
            if coder.codecs.len() < n {
                coder.codecs.resize(n, Codec::default());
            }
            ROW.with_borrow_mut(|out| {
                out.clear();
                coder.encode_row_into(out, (seq - block.start()) as u8, n, values, interval);
                // The block grows by the row, or by a quarter of itself when that is more. The newest block of
                // every set is open for up to SLOTS batches; grown by doubling it held up to twice its bytes, and
                // open blocks were at times a quarter of the store. Encoded apart first, so that the room is what
                // the row takes, not the most a row could.
                let slot = (seq - block.start()) as u32;
                let rows = &mut block.rows;
                if rows.capacity() - rows.len() < out.len() {
                    rows.reserve_exact(out.len().max(rows.len() / 4));
                }
                block.last = (rows.len() as u32) << SLOT_BITS | slot;
                rows.extend_from_slice(out);
                // The state back, in place while it fits ([`Reader::resume_state`] reads its series, not the bytes
                // after them). Its length changes with its values' lengths, by a byte now and then: reallocated at
                // each change, a set's state was freed and allocated anew most rounds. It is given room to the next
                // 16 bytes (what the allocator's size classes round a small allocation up to anyway) and reallocated
                // when it outgrows that or needs 32 bytes less.
                out.clear();
                coder.state_into(out);
                let len = out.len();
                if len > self.state.len() || len + 32 < self.state.len() {
                    self.state = vec![0; len.next_multiple_of(16)].into_boxed_slice();
                }
                self.state[..len].copy_from_slice(out);
                self.state[len..].fill(0);
            });
        });
    }

    /// The block re-encoded without its newest row, leaving this writer as after the remaining rows, and that
    /// row's interval and values (the rare batch ingested twice). `start` is the decoder's state at the block's
    /// start.
    fn rewrite_without_last(&mut self, block: &Block, start: Reader) -> (Block, (u64, RowValues)) {
        let mut rows: Vec<(u64, usize, u64, RowValues)> = Vec::new();
        let mut pos = 0;
        let mut r = start.clone();
        while pos < block.rows.len() {
            let row = read_row(block, &mut pos);
            r.apply_kinds(&row);
            let mut vals = Vec::new();
            let mut bits = BitReader::new(&block.rows, pos);
            for i in 0..row.n {
                if row.present(i) {
                    vals.push((i as u32, r.value(&mut bits, i, row.interval)));
                }
            }
            pos = bits.aligned();
            rows.push((row.seq, row.n, row.interval, vals));
        }
        let (_, _, interval, last) = rows.pop().unwrap_or_default();
        let mut state = Vec::new();
        start.state_into(&mut state);
        self.state = state.into_boxed_slice();
        let mut out = Block::new(block.start());
        for (seq, n, interval, vals) in rows {
            self.encode_row(&mut out, seq, n, &vals, interval);
        }
        (out, (interval, last))
    }
}

impl Reader {
    /// The row of `values` for `slot` (see the module docs), appended to `out`.
    fn encode_row_into(&mut self, out: &mut Vec<u8>, slot: u8, n: usize, values: &[(u32, MetricValue)], interval: u64) {
        let all = values.len() == n;
        let kinds_change =
            values.iter().any(|&(i, v)| matches!(v, MetricValue::Float(_)) != self.floats.get(i as usize));
        let interval = if interval > 0 && values.iter().any(|&(_, v)| is_rate(v, interval)) { interval } else { 0 };
        out.push(slot | if interval > 0 { D } else { 0 } | if all { 0 } else { P } | if kinds_change { K } else { 0 });
        varint::put(out, n as u64);
        let len = n.div_ceil(8);
        if !all {
            let at = out.len();
            out.resize(at + len, 0);
            for &(i, _) in values {
                out[at + i as usize / 8] |= 1 << (i % 8);
            }
        }
        if kinds_change {
            for &(i, v) in values {
                let f = matches!(v, MetricValue::Float(_));
                if f != self.floats.get(i as usize) {
                    self.floats.set(i as usize, f);
                    self.started.set(i as usize, false);
                }
            }
            let at = out.len();
            out.resize(at + len, 0);
            for i in 0..n {
                if self.floats.get(i) {
                    out[at + i / 8] |= 1 << (i % 8);
                }
            }
        }
        if interval > 0 {
            varint::put(out, interval);
        }
        let mut w = BitWriter::new(out);
        for &(i, v) in values {
            let i = i as usize;
            let first = !self.started.get(i);
            self.started.set(i, true);
            let c = &mut self.codecs[i];
            match v {
                MetricValue::Int(v) => {
                    if first {
                        bitcode::put_int(&mut w, zigzag(v));
                        c.prev_delta = 0;
                    } else {
                        let delta = v.wrapping_sub(c.prev as i64);
                        bitcode::put_int(&mut w, zigzag(delta.wrapping_sub(c.prev_delta)));
                        c.prev_delta = delta;
                    }
                    c.prev = v as u64;
                }
                MetricValue::Float(f) => {
                    let bits = f.to_bits();
                    let prev = if first { 0 } else { c.prev };
                    let mut win = if first { Window::default() } else { Window::from_i64(c.prev_delta) };
                    match (interval > 0).then(|| rate_count(f, f64::from_bits(prev), interval)) {
                        Some(Some(count)) => {
                            w.put(1, 1);
                            bitcode::put_int(&mut w, count);
                        }
                        rate => {
                            if rate.is_some() {
                                w.put(0, 1);
                            }
                            bitcode::put_float(&mut w, bits ^ prev, &mut win);
                        }
                    }
                    c.prev_delta = win.to_i64();
                    c.prev = bits;
                }
            }
        }
        w.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MetricValue::{Float, Int};
    use proptest::strategy::Strategy;

    fn round_trip(rows: &[Vec<Option<MetricValue>>]) {
        round_trip_keeping(rows, u64::MAX);
    }

    /// The scrape intervals rows are written with in the round trips: [`any_rate`]'s, and unknown.
    const INTERVALS: [u64; 4] = [15_000, 14_999, 1, 0];

    fn interval(seq: usize) -> u64 {
        INTERVALS[seq * 7 % 5 % INTERVALS.len()]
    }

    /// Writes `rows` (per batch: per series an optional value), dropping before each the blocks older than
    /// `window` batches as the store does, and decodes what is kept back every way. Every fifth batch is ingested
    /// twice, the second time with new values for its even series, which then replace the first ones. Rows are
    /// written with [`interval`]s, so that floats that are rates over it are coded as rates.
    fn round_trip_keeping(rows: &[Vec<Option<MetricValue>>], window: u64) {
        let mut w = Writer::default();
        let mut chain = Chain::default();
        let mut rows = rows.to_vec();
        for (seq, row) in rows.iter_mut().enumerate() {
            let vals: Vec<(u32, MetricValue)> =
                row.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as u32, v))).collect();
            if !vals.is_empty() {
                chain.drop_before((seq as u64).saturating_sub(window));
                w.append(&mut chain, seq as u64, row.len(), &vals, interval(seq));
                if seq % 5 == 3 {
                    let again: Vec<(u32, MetricValue)> = vals
                        .iter()
                        .filter(|(i, _)| i % 2 == 0)
                        .map(|&(i, _)| (i, Int(seq as i64 * 1000 + i as i64)))
                        .collect();
                    for &(i, v) in &again {
                        row[i as usize] = Some(v);
                    }
                    w.append(&mut chain, seq as u64, row.len(), &again, interval(seq + 1));
                }
            }
        }
        let blocks = chain.blocks();
        // Rows before the oldest block kept were dropped with their blocks.
        let kept = blocks.first().map_or(rows.len(), |b| b.start() as usize);
        let dropped: Vec<Vec<Option<MetricValue>>> = vec![Vec::new(); kept];
        let rows: Vec<Vec<Option<MetricValue>>> = dropped.into_iter().chain(rows[kept..].iter().cloned()).collect();
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut got = vec![vec![None; width]; rows.len()];
        chain.decode(|seq, i, v| got[seq as usize][i] = Some(v));
        let same = |a: &Option<MetricValue>, b: &Option<MetricValue>| match (a, b) {
            (Some(Float(x)), Some(Float(y))) => x.to_bits() == y.to_bits(),
            _ => a == b,
        };
        for (seq, (row, got)) in rows.iter().zip(&got).enumerate() {
            for (i, got) in got.iter().enumerate() {
                let want = row.get(i).copied().flatten();
                assert!(same(&want, got), "seq {seq} series {i}: {want:?} != {got:?}");
            }
        }
        for i in 0..width {
            let mut one = Vec::new();
            chain.decode_series(i, |seq, v| one.push((seq, v)));
            let want: Vec<(u64, MetricValue)> = rows
                .iter()
                .enumerate()
                .filter_map(|(s, r)| r.get(i).copied().flatten().map(|v| (s as u64, v)))
                .collect();
            assert_eq!(one.len(), want.len(), "series {i}");
            for (a, b) in one.iter().zip(&want) {
                assert!(a.0 == b.0 && same(&Some(a.1), &Some(b.1)), "series {i}: {a:?} != {b:?}");
            }
        }
        // Each row decoded alone is the row.
        for (seq, row) in rows.iter().enumerate() {
            let mut alone = vec![None; width];
            chain.decode_row(seq as u64, |i, v| alone[i] = Some(v));
            for (i, got) in alone.iter().enumerate() {
                let want = row.get(i).copied().flatten();
                assert!(same(&want, got), "row {seq} alone, series {i}: {want:?} != {got:?}");
            }
        }
        // Each block's newest row is the one `last` names, and blocks follow one another.
        let mut r = chain.reader();
        for (k, b) in blocks.iter().enumerate() {
            let mut newest = None;
            b.presence(&mut r, |seq, _| newest = Some(seq));
            assert_eq!(Some(b.last()), newest, "block {k}");
            assert!(k == 0 || blocks[k - 1].last() < b.start(), "block {k} starts before the previous one ends");
        }
        let mut present = Vec::new();
        chain.presence(|seq, i| present.push((seq, i)));
        let want: Vec<(u64, usize)> = (rows.iter().enumerate())
            .flat_map(|(seq, r)| r.iter().enumerate().filter(|(_, v)| v.is_some()).map(move |(i, _)| (seq as u64, i)))
            .collect();
        assert_eq!(present, want);
        // The newest values come from the writer without decoding.
        let Some(last) = blocks.last() else { return };
        let newest = rows.iter().rposition(|r| r.iter().any(Option::is_some)).unwrap();
        let last_values = w.newest();
        for i in 0..width {
            let want = rows[newest].get(i).copied().flatten();
            assert_eq!(last.in_last_row(i), want.is_some(), "series {i}");
            if let Some(v) = want {
                assert!(same(&Some(last_values.value(i)), &Some(v)), "series {i}");
                assert!(same(&Some(w.newest_value(i)), &Some(v)), "series {i} alone");
            }
        }
    }

    /// A rate computed as the rate calculator does costs about its count's change, where an XOR of its bits cost 40
    /// to 60 bits: 200 rows of four rates of counters growing by 500 to 520 (times 1, 10, 100, 1000) over scrapes
    /// 14.9 to 15.1 s apart.
    #[test]
    fn rates_over_their_interval_cost_their_count() {
        let rows: Vec<(u64, Vec<(u32, MetricValue)>)> = (0..200u64)
            .map(|seq| {
                let interval = 14_900 + seq * 7919 % 200;
                let count = 500 + seq * 31 % 21;
                let rate = |i: u32| (i, Float((count * 10u64.pow(i)) as f64 * 1000.0 / interval as f64));
                (interval, (0..4).map(rate).collect())
            })
            .collect();
        let write = |known: bool| {
            let (mut w, mut chain) = (Writer::default(), Chain::default());
            for (seq, (interval, values)) in rows.iter().enumerate() {
                w.append(&mut chain, seq as u64, 4, values, if known { *interval } else { 0 });
            }
            chain.blocks.iter_mut().for_each(Block::seal);
            chain
        };
        let (rates, floats) = (write(true), write(false));
        let mut got = vec![Vec::new(); rows.len()];
        rates.decode(|seq, i, v| got[seq as usize].push((i as u32, v)));
        for ((_, want), got) in rows.iter().zip(&got) {
            let same = |(a, b): (&(u32, MetricValue), &(u32, MetricValue))| match (a.1, b.1) {
                (Float(x), Float(y)) => a.0 == b.0 && x.to_bits() == y.to_bits(),
                _ => false,
            };
            assert!(want.len() == got.len() && want.iter().zip(got).all(same), "{want:?} != {got:?}");
        }
        // Per row: its header and series count (2 bytes), the interval (2), and for each value a flag and 9 to 17
        // bits of the change of its count (6 to 9 bytes in all); the first values more.
        let data = |c: &Chain| c.bytes() - c.blocks.len() * std::mem::size_of::<Block>();
        assert!(data(&rates) <= rows.len() * 13 + 16, "{} bytes as rates", data(&rates));
        assert!(data(&rates) * 2 < data(&floats), "{} bytes as rates, {} as floats", data(&rates), data(&floats));
    }

    /// A block's header is charged to every set for each of its four or five blocks.
    #[test]
    fn a_block_header_is_four_words() {
        assert_eq!(std::mem::size_of::<Block>(), 32);
    }

    /// A block that reaches [`MAX_BLOCK_BYTES`] is sealed and the set goes on in a block starting at the next batch,
    /// between two boundaries.
    #[test]
    fn a_full_block_is_followed_by_one_of_its_own() {
        // Values that change at random, a few bytes each: a row of 600 is about 1.5 KiB.
        let noise = |seq: u64, i: u64| ((seq * 600 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 44) as i64;
        let rows: Vec<Vec<Option<MetricValue>>> =
            (0..40u64).map(|seq| (0..600u64).map(|i| Some(Int(noise(seq, i)))).collect()).collect();
        round_trip(&rows);
        let (mut w, mut chain) = (Writer::default(), Chain::default());
        for (seq, row) in rows.iter().enumerate() {
            let values: Vec<(u32, MetricValue)> = row.iter().enumerate().map(|(i, v)| (i as u32, v.unwrap())).collect();
            w.append(&mut chain, seq as u64, row.len(), &values, 0);
        }
        assert!(chain.blocks.len() > 40 / SLOTS as usize + 1, "{} blocks", chain.blocks.len());
        assert!(chain.blocks.iter().any(|b| b.start() % SLOTS != 0), "a block starts between boundaries");
        assert!(chain.blocks.iter().all(|b| b.rows.len() < MAX_BLOCK_BYTES + 600 * 8));
    }

    #[test]
    fn ints_floats_gaps_kind_changes_and_new_series_round_trip() {
        let mut rows = Vec::new();
        for s in 0..200i64 {
            let mut r = vec![
                Some(Int(1_000_000 + s * 15_000_000_000)),
                Some(Float(s as f64 / 3.0)),
                (s % 5 != 0).then_some(Int(s * s)),
                Some(if s % 7 == 0 { Float(s as f64) } else { Int(s) }),
            ];
            if s > 100 {
                r.push(Some(Int(-s)));
            }
            if s == 150 {
                r = vec![None, None, None, None, Some(Int(i64::MAX))];
            }
            rows.push(r);
        }
        rows.push(vec![Some(Int(i64::MIN)), Some(Float(f64::NAN)), Some(Float(-0.0)), Some(Float(f64::INFINITY))]);
        rows.push(vec![None; 5]);
        rows.push(vec![Some(Int(0)), Some(Float(f64::MAX)), Some(Int(3)), Some(Float(3.0)), Some(Int(i64::MAX))]);
        round_trip(&rows);
    }

    /// A rate over one of [`INTERVALS`], as the rate calculator computes it: small and large counts, both signs.
    fn any_rate() -> impl Strategy<Value = MetricValue> {
        let count = proptest::prop_oneof![-5i64..5000, proptest::prelude::any::<i64>()];
        (count, 0..INTERVALS.len() - 1).prop_map(|(n, k)| Float(n as f64 * 1000.0 / INTERVALS[k] as f64))
    }

    /// Rows of 1 to `width` series (some absent, ints and floats mixed, some floats rates), 1 to `batches` of them.
    fn any_rows(width: usize, batches: usize) -> impl Strategy<Value = Vec<Vec<Option<MetricValue>>>> {
        let value = proptest::prop_oneof![
            proptest::prelude::any::<i64>().prop_map(Int),
            (0i64..100).prop_map(Int),
            proptest::prelude::any::<f64>().prop_map(Float),
            any_rate(),
        ];
        let row = proptest::collection::vec(proptest::option::of(value), 1..width);
        proptest::collection::vec(row, 1..batches)
    }

    proptest::proptest! {
        #[test]
        fn any_rows_round_trip(rows in any_rows(12, 200)) {
            if rows.iter().any(|r| r.iter().any(Option::is_some)) {
                round_trip(&rows);
            }
        }

        /// Blocks dropped as they leave a window of `window` batches, the keyframe moved on each time.
        #[test]
        fn any_rows_round_trip_as_old_blocks_are_dropped(rows in any_rows(8, 120), window in 1u64..40) {
            if rows.iter().any(|r| r.iter().any(Option::is_some)) {
                round_trip_keeping(&rows, window);
            }
        }
    }

    /// A counter pays for its first value and delta once per set, in the keyframe, not once per block (about 11
    /// bytes a block, four or five blocks in a 60-batch window): the blocks kept and their keyframe take what
    /// their rows written afresh into one chain take, within a few bytes.
    #[test]
    fn a_counter_restarts_once_per_window_not_once_per_block() {
        let value = |seq: u64| Int(2_441_092_034_125 + seq as i64 * 10_165_549_515 + (seq * 7919 % 13) as i64 * 1000);
        let data = |chain: &mut Chain| {
            chain.blocks.iter_mut().for_each(Block::seal);
            chain.bytes() - chain.blocks.len() * std::mem::size_of::<Block>()
        };
        let (mut w, mut chain) = (Writer::default(), Chain::default());
        for seq in 0..200u64 {
            chain.drop_before(seq.saturating_sub(60));
            w.append(&mut chain, seq, 1, &[(0, value(seq))], 0);
        }
        let kept_from = chain.blocks[0].start();
        assert!(chain.blocks.len() >= 4, "{} blocks", chain.blocks.len());
        let (mut w, mut fresh) = (Writer::default(), Chain::default());
        for seq in kept_from..200 {
            w.append(&mut fresh, seq, 1, &[(0, value(seq))], 0);
        }
        let (kept, fresh) = (data(&mut chain), data(&mut fresh));
        assert!(kept <= fresh + 4, "{kept} bytes kept against {fresh} written afresh");
    }

    /// A writer's state is written back in place while its length moves by a few bytes, as values' bit lengths do
    /// from row to row, and is read back whatever follows it in its room.
    #[test]
    fn a_writers_state_stays_in_place_as_its_length_moves() {
        let (mut w, mut chain) = (Writer::default(), Chain::default());
        let row = |seq: u64| [(0, Int(1 << (20 + seq % 9))), (1, Int(seq as i64 * 1000)), (2, Float(seq as f64 / 7.0))];
        // From the third row on every series has a previous value and delta.
        for seq in 0..3 {
            w.append(&mut chain, seq, 3, &row(seq), 0);
        }
        let (room, at) = (w.state.len(), w.state.as_ptr());
        let mut lengths = std::collections::BTreeSet::new();
        for seq in 3..40 {
            w.append(&mut chain, seq, 3, &row(seq), 0);
            let mut kept = Vec::new();
            w.newest().0.state_into(&mut kept);
            lengths.insert(kept.len());
            assert_eq!(w.newest().value(0), row(seq)[0].1);
        }
        assert!(lengths.len() > 1, "the state's length moved: {lengths:?}");
        assert_eq!((w.state.len(), w.state.as_ptr()), (room, at));
    }

    /// The keyframe and a rewritten writer hold the set's series, no more: a bitmap's 64 bits are not 64 series.
    #[test]
    fn a_keyframe_holds_the_sets_series_only() {
        let (mut w, mut chain) = (Writer::default(), Chain::default());
        for seq in 0..40u64 {
            chain.drop_before(seq.saturating_sub(20));
            w.append(&mut chain, seq, 3, &[(0, Float(seq as f64 / 3.0)), (1, Int(seq as i64)), (2, Int(7))], 0);
        }
        assert!(!chain.keyframe.is_empty(), "blocks were dropped");
        assert_eq!(Reader::resume(&chain.keyframe).codecs.len(), 3);
        w.append(&mut chain, 39, 3, &[(1, Int(-1))], 0);
        assert_eq!(w.newest().0.codecs.len(), 3);
        let mut got = Vec::new();
        chain.decode_row(39, |i, v| got.push((i, v)));
        assert_eq!(got, vec![(0, Float(13.0)), (1, Int(-1)), (2, Int(7))]);
    }

    #[test]
    fn a_steady_counter_costs_about_one_byte_a_point() {
        let rows: Vec<Vec<Option<MetricValue>>> =
            (0..SLOTS as i64).map(|i| vec![Some(Int(48_135_221_356 + i * 367_686_764))]).collect();
        let mut w = Writer::default();
        let mut chain = Chain::default();
        for (seq, row) in rows.iter().enumerate() {
            w.append(&mut chain, seq as u64, 1, &[(0, row[0].unwrap())], 0);
        }
        assert_eq!(chain.blocks.len(), 1);
        chain.blocks[0].seal();
        // Two header bytes a row; the first value and first delta take a few bytes, the rest one byte each.
        let data = chain.blocks[0].bytes() - std::mem::size_of::<Block>();
        assert!(data <= SLOTS as usize * 3 + 12, "{data}");
    }

    #[test]
    fn constants_and_steady_counters_cost_about_a_bit_a_point() {
        // Requests, limits, error counts, zero rates and uptime: most of a cluster's series.
        let mut w = Writer::default();
        let mut chain = Chain::default();
        for seq in 0..SLOTS as i64 {
            let mut row: Vec<(u32, MetricValue)> = (0..12).map(|i| (i, Int(100 << i))).collect();
            row.extend((12..18).map(|i| (i, Float(0.0))));
            row.extend((18..24).map(|i| (i, Int(1_700_000_000 + seq * 15 * i64::from(i)))));
            w.append(&mut chain, seq as u64, 24, &row, 0);
        }
        assert_eq!(chain.blocks.len(), 1);
        chain.blocks[0].seal();
        // Two header bytes and three bytes of values a row, plus the first row's values coded against zero.
        let data = chain.blocks[0].bytes() - std::mem::size_of::<Block>();
        assert!(data <= SLOTS as usize * 5 + 24 * 6, "{data}");
    }

    #[test]
    fn a_batch_ingested_twice_replaces_its_row() {
        let mut w = Writer::default();
        let mut chain = Chain::default();
        w.append(&mut chain, 10, 2, &[(0, Int(1)), (1, Float(0.5))], 0);
        w.append(&mut chain, 11, 2, &[(0, Int(2)), (1, Float(1.5))], 0);
        w.append(&mut chain, 11, 2, &[(0, Float(2.5))], 0);
        w.append(&mut chain, 12, 2, &[(0, Float(3.5))], 0);
        let mut got = Vec::new();
        chain.decode(|s, i, v| got.push((s, i, v)));
        assert_eq!(
            got,
            vec![(10, 0, Int(1)), (10, 1, Float(0.5)), (11, 0, Float(2.5)), (11, 1, Float(1.5)), (12, 0, Float(3.5)),]
        );
        // Replacing the only row of a block leaves no empty block behind.
        let mut w = Writer::default();
        let mut chain = Chain::default();
        w.append(&mut chain, 0, 1, &[(0, Int(1))], 0);
        w.append(&mut chain, SLOTS, 1, &[(0, Int(2))], 0);
        w.append(&mut chain, SLOTS, 1, &[(0, Int(3))], 0);
        assert_eq!(chain.blocks.len(), 2);
        let mut got = Vec::new();
        chain.decode(|s, i, v| got.push((s, i, v)));
        assert_eq!(got, vec![(0, 0, Int(1)), (SLOTS, 0, Int(3))]);
        // And a row replaced in a block that continues an older one is coded against that one's state.
        let mut w = Writer::default();
        let mut chain = Chain::default();
        for seq in 0..SLOTS + 2 {
            w.append(&mut chain, seq, 2, &[(0, Int(seq as i64 * 1_000_003)), (1, Float(seq as f64 / 7.0))], 0);
        }
        w.append(&mut chain, SLOTS + 1, 2, &[(1, Float(0.25))], 0);
        w.append(&mut chain, SLOTS + 2, 2, &[(0, Int(7)), (1, Float(0.5))], 0);
        let mut got = Vec::new();
        chain.decode_row(SLOTS + 1, |i, v| got.push((i, v)));
        assert_eq!(got, vec![(0, Int((SLOTS as i64 + 1) * 1_000_003)), (1, Float(0.25))]);
        assert_eq!(w.newest().value(0), Int(7));
    }
}
