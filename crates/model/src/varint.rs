//! LEB128 varints: 7 bits a byte, low bits first, the high bit set on every byte but the last. The store's blocks
//! and packed labels and the sinks' spool records all count and measure with them; small numbers (lengths,
//! deltas of deltas) take one byte.
//!
//! The helpers are `#[inline]`: the store decodes one per stored value on every read.

/// The most bytes a `u64` takes.
pub const MAX_LEN: usize = 10;

/// Why [`read`] found no varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The data ended inside the varint.
    Truncated,
    /// More than [`MAX_LEN`] bytes: not a varint any encoder here wrote.
    TooLong,
}

/// Appends `v`.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the varint at `*pos` and moves `*pos` past it. On an error `*pos` is where reading stopped.
#[inline]
pub fn read(data: &[u8], pos: &mut usize) -> Result<u64, Error> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = data.get(*pos) else { return Err(Error::Truncated) };
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(Error::TooLong)
}

/// [`read`] for bytes this process wrote itself (the store's blocks and labels), which are whole by
/// construction: a malformed varint reads as 0 rather than being handled at every call.
#[inline]
pub fn get(data: &[u8], pos: &mut usize) -> u64 {
    read(data, pos).unwrap_or(0)
}

/// Moves `*pos` past the varint there without decoding it.
#[inline]
pub fn skip(data: &[u8], pos: &mut usize) {
    while let Some(&b) = data.get(*pos) {
        *pos += 1;
        if b < 0x80 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_length() {
        let values = [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX >> 1, u64::MAX];
        let mut out = Vec::new();
        for v in values {
            put(&mut out, v);
        }
        assert_eq!(&out[..5], [0, 1, 127, 0x80, 1], "LEB128, low bits first");
        let (mut a, mut b) = (0, 0);
        for v in values {
            assert_eq!(read(&out, &mut a), Ok(v));
            skip(&out, &mut b);
            assert_eq!(a, b);
        }
        assert_eq!(a, out.len());
        let mut max = Vec::new();
        put(&mut max, u64::MAX);
        assert_eq!(max.len(), MAX_LEN);
    }

    #[test]
    fn bad_varints_are_errors() {
        let mut pos = 0;
        assert_eq!(read(&[0x80, 0x80], &mut pos), Err(Error::Truncated));
        assert_eq!(pos, 2);
        assert_eq!(read(&[], &mut 0), Err(Error::Truncated));
        let mut pos = 0;
        assert_eq!(read(&[0xff; 11], &mut pos), Err(Error::TooLong));
        assert_eq!(pos, MAX_LEN);
        assert_eq!(get(&[0xff], &mut 0), 0);
    }
}
