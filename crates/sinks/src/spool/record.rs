//! The framing of a spool segment: a header with the format version, then records that each carry their own
//! length and checksums, so that damage in one record (a flipped bit, a block of zeros) loses that record and the
//! ones it overwrote, and reading picks up again at the next whole record.
//!
//! **Version 2** (written now): the segment begins with `hspool` and `version:u16le`; each record is
//! `magic:u32le len:u32le seq:u64le timestamp:i64le header_crc:u32le payload_crc:u32le payload`, the header CRC
//! over the 24 bytes before it. After a bad header the reader looks for the next `magic` whose header checksum
//! holds; a bad payload under a good header skips exactly that record. Sequence numbers within a segment go up by
//! one, so the records lost between two good ones are counted exactly.
//!
//! **Version 1** (unversioned, written before): records `len:u32le crc32:u32le seq:u64le timestamp:i64le
//! payload`, one CRC over everything after it. Nothing there allows finding the next record after a bad one, so
//! the first bad record ends the segment, as it did when that format was current. Such segments are only read
//! (each start begins a new segment), and go once they are delivered.

/// Start of a versioned segment.
pub const SEGMENT_MAGIC: &[u8; 6] = b"hspool";
/// The format this code writes.
pub const VERSION: u16 = 2;
/// Bytes of the segment header.
pub const SEGMENT_HEADER: usize = 8;
/// Start of every version-2 record ("HSRC" read as little-endian bytes).
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"HSRC");
/// Bytes before a record's payload, by version.
const HEADER_V1: usize = 24;
const HEADER_V2: usize = 32;

/// The bytes a new segment begins with.
pub fn segment_header() -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..6].copy_from_slice(SEGMENT_MAGIC);
    h[6..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// The version of a segment that begins with `start`: 2 after the header, 1 without one. `None` for a version
/// this code does not know (written by a newer heapster).
pub fn version_of(start: &[u8]) -> Option<u16> {
    // A crash while the header was written leaves a prefix of it: an empty segment of this version.
    if start.len() < SEGMENT_HEADER && segment_header().starts_with(start) {
        return Some(VERSION);
    }
    if start.len() < SEGMENT_HEADER || &start[..6] != SEGMENT_MAGIC {
        return Some(1);
    }
    let v = u16::from_le_bytes([start[6], start[7]]);
    (v == VERSION).then_some(v)
}

/// Bytes before the payload of a record of segment format `version`.
pub fn header_len(version: u16) -> usize {
    if version == 1 { HEADER_V1 } else { HEADER_V2 }
}

/// One version-2 record: `payload` framed with its sequence number and timestamp.
pub fn encode(seq: u64, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("checked by the caller: a batch under 4 GiB");
    let mut out = Vec::with_capacity(HEADER_V2 + payload.len());
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A whole record found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub seq: u64,
    pub timestamp: i64,
    /// Where the record (its header) begins in the segment.
    pub offset: u64,
    /// Bytes of its payload.
    pub len: u32,
}

/// A stretch of a segment that held no whole record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub bytes: u64,
    /// The sequence number of the last good record before it (or what the caller said came before the segment).
    pub after: u64,
    /// The sequence number of the first good record after it; `None` when it runs to the end of the segment.
    pub before: Option<u64>,
    pub what: &'static str,
}

/// What [`scan`] found in a segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    pub records: Vec<Found>,
    pub damage: Vec<Damage>,
    /// Where the last good record ends: a damaged tail (a torn write) is cut off there.
    pub end: u64,
}

/// Reads the records of segment `buf` of format `version`; `after` is the newest sequence number before this
/// segment (a record at or below it is out of order). Never panics, whatever the bytes.
pub fn scan(buf: &[u8], version: u16, after: u64) -> Scanned {
    if version == 1 { scan_v1(buf, after) } else { scan_v2(buf, after) }
}

fn scan_v1(buf: &[u8], after: u64) -> Scanned {
    let mut out = Scanned::default();
    let (mut offset, mut previous) = (0usize, after);
    let problem = loop {
        let rest = &buf[offset..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < HEADER_V1 {
            break Some("a partial record header");
        }
        let len = u32_at(rest, 0);
        let (crc, seq, timestamp) = (u32_at(rest, 4), u64_at(rest, 8), u64_at(rest, 16) as i64);
        if len as usize > rest.len() - HEADER_V1 {
            break Some("a record longer than the rest of the file");
        }
        if crc32fast::hash(&rest[8..HEADER_V1 + len as usize]) != crc {
            break Some("a checksum mismatch");
        }
        if seq <= previous {
            break Some("a sequence number out of order");
        }
        out.records.push(Found { seq, timestamp, offset: offset as u64, len });
        previous = seq;
        offset += HEADER_V1 + len as usize;
    };
    out.end = offset as u64;
    if let Some(what) = problem {
        let bytes = (buf.len() - offset) as u64;
        out.damage.push(Damage { offset: offset as u64, bytes, after: previous, before: None, what });
    }
    out
}

/// A version-2 header at the start of `rest` whose checksum holds and whose record fits: (len, seq, timestamp).
fn header_v2(rest: &[u8]) -> Option<(u32, u64, i64)> {
    if rest.len() < HEADER_V2 || u32_at(rest, 0) != RECORD_MAGIC || crc32fast::hash(&rest[..24]) != u32_at(rest, 24) {
        return None;
    }
    let len = u32_at(rest, 4);
    ((len as usize) <= rest.len() - HEADER_V2).then(|| (len, u64_at(rest, 8), u64_at(rest, 16) as i64))
}

fn scan_v2(buf: &[u8], after: u64) -> Scanned {
    let mut out = Scanned::default();
    let (mut offset, mut previous) = (SEGMENT_HEADER.min(buf.len()), after);
    out.end = offset as u64;
    while offset < buf.len() {
        let header = header_v2(&buf[offset..]).filter(|(_, seq, _)| *seq > previous);
        let Some((len, seq, timestamp)) = header else {
            // No record begins here: look for the next header that holds, after the last good sequence number.
            let next = (offset + 1..buf.len()).find(|i| {
                buf[*i..].starts_with(&RECORD_MAGIC.to_le_bytes())
                    && header_v2(&buf[*i..]).is_some_and(|(_, seq, _)| seq > previous)
            });
            let to = next.unwrap_or(buf.len());
            let before = next.and_then(|i| header_v2(&buf[i..])).map(|(_, seq, _)| seq);
            let what = if next.is_none() && buf.len() - offset < HEADER_V2 {
                "a partial record header"
            } else {
                "a damaged record header"
            };
            out.damage.push(Damage {
                offset: offset as u64,
                bytes: (to - offset) as u64,
                after: previous,
                before,
                what,
            });
            offset = to;
            continue;
        };
        let start = offset + HEADER_V2;
        let payload = &buf[start..start + len as usize];
        let size = HEADER_V2 + len as usize;
        if crc32fast::hash(payload) != u32_at(&buf[offset..], 28) {
            // The header holds, so the length does: this record alone is lost.
            let what = "a payload checksum mismatch";
            out.damage.push(Damage {
                offset: offset as u64,
                bytes: size as u64,
                after: previous,
                before: Some(seq + 1),
                what,
            });
        } else {
            out.records.push(Found { seq, timestamp, offset: offset as u64, len });
        }
        previous = seq;
        offset += size;
        out.end = offset as u64;
    }
    out
}

/// The payload of the record `seq` of format `version`, read whole (header and payload) into `buf`, if its
/// header and checksums still hold.
pub fn payload(buf: &[u8], version: u16, seq: u64) -> Option<&[u8]> {
    if version == 1 {
        let found = scan_v1(buf, 0);
        return (found.records.len() == 1 && found.records[0].seq == seq && found.end as usize == buf.len())
            .then(|| &buf[HEADER_V1..]);
    }
    let (len, got, _) = header_v2(buf)?;
    let payload = &buf[HEADER_V2..];
    (got == seq && len as usize == payload.len() && crc32fast::hash(payload) == u32_at(buf, 28)).then_some(payload)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(n: u64) -> Vec<u8> {
        let mut buf = segment_header().to_vec();
        for seq in 1..=n {
            buf.extend(encode(seq, seq as i64 * 10, &[seq as u8; 50]));
        }
        buf
    }

    #[test]
    fn whole_records_come_back_and_an_empty_or_cut_header_is_no_panic() {
        let buf = segment(3);
        let s = scan(&buf, version_of(&buf).unwrap(), 0);
        assert_eq!(s.records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(s.damage.is_empty());
        assert_eq!(s.end as usize, buf.len());
        let r = s.records[1];
        let one = &buf[r.offset as usize..r.offset as usize + HEADER_V2 + r.len as usize];
        assert_eq!(payload(one, 2, 2), Some(&[2u8; 50][..]));
        assert_eq!(payload(one, 2, 3), None);
        for cut in 0..buf.len() {
            let _ = scan(&buf[..cut], 2, 0);
        }
        assert_eq!(version_of(b"hspool\x09\x00"), None, "a newer format is not read as an older one");
        assert_eq!(version_of(&[0u8; 30]), Some(1));
    }
}
