//! Values coded bit by bit, as Gorilla (Facebook's in-memory time-series store) does.
//!
//! Most of a cluster's series barely change: requests, limits, restart and error counts are constant and counters
//! such as uptime grow by the same step, so their delta-of-delta is zero. As a byte-aligned varint such a point
//! cost a byte; here it costs one bit. Floats keep Gorilla's XOR window: when the bits that differ from the
//! previous value fall inside the window of the last stored XOR, only those bits are written, without a header.
//!
//! Bits are written least significant first, into bytes in order; a row of values is padded to a whole byte.
//!
//! # Integers (`z`: the zigzag of the delta-of-delta, or of the value itself for a series' first)
//! `0` for 0; `10` + 7 bits below 2^7; `110` + 14 bits below 2^14; else `111` + 6 bits (bit length - 1) + the bits.
//!
//! # Floats (`x`: the value's bits XOR the previous value's, or the bits themselves for the first)
//! `0` for 0; `10` + the window's bits of `x` when `x` has no bits outside the window; else `11` + 6 bits of
//! leading zeros + 6 bits (length - 1) + the `length` meaningful bits, which become the window.

/// Appends bits to a byte vector.
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    /// Bits in `acc` not yet written (< 32 between calls): written four bytes at a time.
    n: u32,
}

impl<'a> BitWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Appends the low `bits` bits of `v` (`bits` <= 64).
    pub fn put(&mut self, v: u64, bits: u32) {
        if bits > 32 {
            self.put(v, 32);
            return self.put(v >> 32, bits - 32);
        }
        self.acc |= (v & ((1 << bits) - 1)) << self.n;
        self.n += bits;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Writes the bits left, the last byte zero padded.
    pub fn finish(self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// Reads bits from a byte slice, from a byte position on.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bits of `data[pos]` already read (< 8).
    bit: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos, bit: 0 }
    }

    /// The next 57 or more bits as the low bits of the result, zeros past the end of the data.
    fn peek(&self) -> u64 {
        let word = match self.data.get(self.pos..self.pos + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
            None => {
                let mut w = [0u8; 8];
                let rest = &self.data[self.pos.min(self.data.len())..];
                w[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(w)
            }
        };
        word >> self.bit
    }

    fn consume(&mut self, bits: u32) {
        let b = self.bit + bits;
        self.pos += (b / 8) as usize;
        self.bit = b % 8;
    }

    /// The next `bits` bits (<= 64) as the low bits of the result.
    pub fn get(&mut self, bits: u32) -> u64 {
        if bits > 56 {
            let low = self.get(32);
            return low | self.get(bits - 32) << 32;
        }
        let v = self.peek() & ((1 << bits) - 1);
        self.consume(bits);
        v
    }

    /// How many 1 bits come next, up to `max` (the codes' prefixes), consumed with the 0 that ends them.
    fn prefix(&mut self, max: u32) -> u32 {
        let ones = self.peek().trailing_ones().min(max);
        self.consume(if ones == max { max } else { ones + 1 });
        ones
    }

    /// The byte position after the last bit read, past the padding.
    pub fn aligned(&self) -> usize {
        self.pos + usize::from(self.bit > 0)
    }
}

/// Bit width of `z` (> 0).
fn width(z: u64) -> u32 {
    64 - z.leading_zeros()
}

pub fn put_int(w: &mut BitWriter, z: u64) {
    if z == 0 {
        w.put(0, 1);
    } else if z < 1 << 7 {
        w.put(0b01 | z << 2, 9);
    } else if z < 1 << 14 {
        w.put(0b011 | z << 3, 17);
    } else {
        let n = width(z);
        w.put(0b111 | u64::from(n - 1) << 3, 9);
        w.put(z, n);
    }
}

pub fn get_int(r: &mut BitReader) -> u64 {
    match r.prefix(3) {
        0 => 0,
        1 => r.get(7),
        2 => r.get(14),
        _ => {
            let n = r.get(6) as u32 + 1;
            r.get(n)
        }
    }
}

/// Where the meaningful bits of a series' last stored XOR were: what a float written with `10` reuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    lead: u8,
    /// 0 when there is no window yet (a series' first value).
    len: u8,
}

impl Window {
    /// As one integer, to share the coder state's slot that integers use for their previous delta.
    pub fn to_i64(self) -> i64 {
        i64::from(self.lead) << 8 | i64::from(self.len)
    }

    pub fn from_i64(v: i64) -> Self {
        Window { lead: (v >> 8) as u8, len: v as u8 }
    }
}

pub fn put_float(w: &mut BitWriter, x: u64, win: &mut Window) {
    if x == 0 {
        w.put(0, 1);
        return;
    }
    let lead = x.leading_zeros();
    let trail = x.trailing_zeros();
    let (wl, wn) = (u32::from(win.lead), u32::from(win.len));
    if wn > 0 && lead >= wl && trail >= 64 - wl - wn {
        w.put(0b01, 2);
        w.put(x >> (64 - wl - wn), wn);
    } else {
        let len = 64 - lead - trail;
        w.put(0b11 | u64::from(lead) << 2 | u64::from(len - 1) << 8, 14);
        w.put(x >> trail, len);
        *win = Window { lead: lead as u8, len: len as u8 };
    }
}

pub fn get_float(r: &mut BitReader, win: &mut Window) -> u64 {
    match r.prefix(2) {
        0 => 0,
        1 => {
            let (wl, wn) = (u32::from(win.lead), u32::from(win.len));
            r.get(wn) << (64 - wl - wn)
        }
        _ => {
            let lead = r.get(6) as u32;
            let len = r.get(6) as u32 + 1;
            *win = Window { lead: lead as u8, len: len as u8 };
            r.get(len) << (64 - lead - len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_floats_round_trip_bit_for_bit() {
        let ints = [0, 1, 127, 128, (1 << 14) - 1, 1 << 14, 1 << 40, u64::MAX, u64::MAX - 1, 5];
        let floats = [0.0f64, -0.0, 1.0, 1.5, 1.25, f64::NAN, f64::INFINITY, 1e-300, 3.0, 3.0, f64::MIN_POSITIVE];
        let mut out = vec![0xAA];
        let mut w = BitWriter::new(&mut out);
        let mut win = Window::default();
        let mut prev = 0;
        for (i, f) in floats.iter().enumerate() {
            put_int(&mut w, ints[i % ints.len()]);
            let bits = f.to_bits();
            put_float(&mut w, bits ^ prev, &mut win);
            prev = bits;
        }
        w.finish();
        let mut r = BitReader::new(&out, 1);
        let mut win = Window::default();
        let mut prev = 0;
        for (i, f) in floats.iter().enumerate() {
            assert_eq!(get_int(&mut r), ints[i % ints.len()]);
            prev ^= get_float(&mut r, &mut win);
            assert_eq!(prev, f.to_bits(), "float {i}");
        }
        assert_eq!(r.aligned(), out.len());
        assert_eq!(Window::from_i64(win.to_i64()), win);
    }
}
