//! A durable, bounded queue of records on disk: what a probe agent has observed and not yet
//! pushed to its server (docs/locations.md, "The agent"). A server outage or an agent
//! restart loses nothing; a long outage can't fill the disk: past `max_bytes` the oldest
//! records are dropped first, and counted, so the loss is reported rather than silent.
//!
//! Layout: a directory of segment files `SEQ.seg` (20 digits, oldest first), each a run of
//! records `[payload length: u32 LE][CRC-32C of the payload: u32 LE][payload]`, and a `head`
//! file (`SEQ OFFSET`, replaced atomically) saying where the oldest record not yet
//! acknowledged starts. Delivery is at least once: records handed out by [`Buffer::peek`] come
//! back after a restart until [`Buffer::ack`] passes them (the server ignores what it already
//! has). A record torn by a crash (short, or failing its checksum) ends its segment: it and
//! whatever follows it in that file are cut off when the buffer opens.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
/// Bytes before each payload: its length and its checksum.
const RECORD_HEADER: u64 = 8;
/// The largest record accepted (a batch of observations is far smaller).
pub const MAX_RECORD: usize = 16 << 20;

/// A segment file: its sequence number, size and number of records.
#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u64,
    bytes: u64,
    records: u64,
}

/// Where reading stands: a segment, a byte offset in it, and how many of its records lie
/// before that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    seq: u64,
    offset: u64,
    before: u64,
}

/// Records handed out by [`Buffer::peek`], and the cursor to [`Buffer::ack`] once they are
/// delivered.
#[derive(Debug)]
pub struct Peeked {
    pub records: Vec<Vec<u8>>,
    pub next: Cursor,
}

#[derive(Debug)]
pub struct Buffer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    head: Cursor,
    /// The newest segment, open for appending.
    writer: Option<File>,
    dropped: u64,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn bad_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The records of a segment's bytes from `offset`: each record's end offset and payload,
/// stopping at the end or at the first torn record.
fn records_from(bytes: &[u8], offset: u64) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = offset as usize;
    while bytes.len() - at >= RECORD_HEADER as usize {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let sum = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let start = at + RECORD_HEADER as usize;
        if len > MAX_RECORD || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if CASTAGNOLI.checksum(payload) != sum {
            break;
        }
        at = start + len;
        out.push((at as u64, payload));
    }
    out
}

impl Buffer {
    /// Open (or create) the buffer in `dir`, holding at most about `max_bytes` of records
    /// (the newest segment may overshoot by one segment, a sixteenth of it).
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Buffer> {
        fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        let stored_head = match fs::read_to_string(dir.join("head")) {
            Ok(text) => {
                let mut parts = text.split_whitespace().map(str::parse::<u64>);
                match (parts.next(), parts.next()) {
                    (Some(Ok(seq)), Some(Ok(offset))) => Some((seq, offset)),
                    _ => None,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut buffer = Buffer {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(4096),
            segment_bytes: (max_bytes / 16).clamp(4096, 4 << 20),
            segments: VecDeque::new(),
            head: Cursor {
                seq: 0,
                offset: 0,
                before: 0,
            },
            writer: None,
            dropped: 0,
        };
        for seq in seqs {
            let path = segment_path(dir, seq);
            if stored_head.is_some_and(|(head, _)| seq < head) {
                // Acknowledged before the last stop.
                fs::remove_file(&path)?;
                continue;
            }
            let bytes = fs::read(&path)?;
            let records = records_from(&bytes, 0);
            let end = records.last().map_or(0, |r| r.0);
            if end < bytes.len() as u64 {
                // A torn tail: keep what is whole.
                OpenOptions::new().write(true).open(&path)?.set_len(end)?;
            }
            if buffer.segments.is_empty() {
                let offset = stored_head
                    .filter(|(head, _)| *head == seq)
                    .map_or(0, |(_, offset)| offset);
                // A head that is not a record boundary (never written so) restarts the segment.
                let before = records.iter().position(|r| r.0 == offset).map(|i| i + 1);
                buffer.head = match (offset, before) {
                    (0, _) | (_, None) => Cursor {
                        seq,
                        offset: 0,
                        before: 0,
                    },
                    (offset, Some(before)) => Cursor {
                        seq,
                        offset,
                        before: before as u64,
                    },
                };
            }
            buffer.segments.push_back(Segment {
                seq,
                bytes: end,
                records: records.len() as u64,
            });
        }
        Ok(buffer)
    }

    /// Records waiting (pushed, not yet acknowledged).
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum::<u64>() - self.head.before
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes waiting on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum::<u64>() - self.head.offset
    }

    /// Records dropped to stay within the bound since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Append `records` and make them durable (one sync for all), then drop the oldest
    /// records if the buffer is over its bound.
    pub fn push<R: AsRef<[u8]>>(&mut self, records: &[R]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut new_segment = false;
        for record in records {
            let payload = record.as_ref();
            if payload.len() > MAX_RECORD {
                return Err(bad_data(format!(
                    "a record of {} bytes is over the limit of {MAX_RECORD}",
                    payload.len()
                )));
            }
            let full = self
                .segments
                .back()
                .is_none_or(|s| s.bytes >= self.segment_bytes);
            if full || self.writer.is_none() {
                if full {
                    if let Some(file) = self.writer.take() {
                        file.sync_data()?;
                    }
                    let seq = self.segments.back().map_or(0, |s| s.seq + 1);
                    let file = OpenOptions::new()
                        .create_new(true)
                        .append(true)
                        .open(segment_path(&self.dir, seq))?;
                    self.segments.push_back(Segment {
                        seq,
                        bytes: 0,
                        records: 0,
                    });
                    if self.segments.len() == 1 {
                        self.head = Cursor {
                            seq,
                            offset: 0,
                            before: 0,
                        };
                    }
                    self.writer = Some(file);
                    new_segment = true;
                } else {
                    let seq = self.segments.back().expect("not full: exists").seq;
                    self.writer = Some(
                        OpenOptions::new()
                            .append(true)
                            .open(segment_path(&self.dir, seq))?,
                    );
                }
            }
            let mut framed = Vec::with_capacity(payload.len() + RECORD_HEADER as usize);
            framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            framed.extend_from_slice(&CASTAGNOLI.checksum(payload).to_le_bytes());
            framed.extend_from_slice(payload);
            self.writer
                .as_mut()
                .expect("opened above")
                .write_all(&framed)?;
            let last = self.segments.back_mut().expect("opened above");
            last.bytes += framed.len() as u64;
            last.records += 1;
        }
        self.writer.as_ref().expect("written above").sync_data()?;
        if new_segment {
            File::open(&self.dir)?.sync_all()?;
        }
        self.enforce_bound()
    }

    /// Drop whole segments, oldest first, while over the bound (never the one being written).
    fn enforce_bound(&mut self) -> io::Result<()> {
        let mut moved = false;
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            let oldest = self.segments.pop_front().expect("more than one");
            self.dropped += oldest.records - self.head.before;
            fs::remove_file(segment_path(&self.dir, oldest.seq))?;
            let next = self.segments.front().expect("more than one").seq;
            self.head = Cursor {
                seq: next,
                offset: 0,
                before: 0,
            };
            moved = true;
        }
        if moved {
            self.write_head()?;
        }
        Ok(())
    }

    /// The oldest waiting records, at most `max_records` and about `max_bytes` of payload (at
    /// least one record when any waits), in the order they were pushed.
    pub fn peek(&self, max_records: usize, max_bytes: usize) -> io::Result<Peeked> {
        let mut out = Vec::new();
        let mut size = 0;
        let mut next = self.head;
        for segment in self.segments.iter().filter(|s| s.seq >= self.head.seq) {
            if out.len() >= max_records {
                break;
            }
            let start = if segment.seq == self.head.seq {
                self.head.offset
            } else {
                next = Cursor {
                    seq: segment.seq,
                    offset: 0,
                    before: 0,
                };
                0
            };
            if start >= segment.bytes {
                continue;
            }
            let mut file = File::open(segment_path(&self.dir, segment.seq))?;
            file.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::with_capacity((segment.bytes - start) as usize);
            file.take(segment.bytes - start).read_to_end(&mut bytes)?;
            for (end, payload) in records_from(&bytes, 0) {
                if out.len() >= max_records || (!out.is_empty() && size + payload.len() > max_bytes)
                {
                    return Ok(Peeked { records: out, next });
                }
                size += payload.len();
                out.push(payload.to_vec());
                next = Cursor {
                    seq: segment.seq,
                    offset: start + end,
                    before: next.before + 1,
                };
            }
        }
        Ok(Peeked { records: out, next })
    }

    /// The records up to `next` (from [`Buffer::peek`]) were delivered: forget them for good.
    /// A cursor that is no longer ahead of the head (its records were dropped meanwhile) is
    /// ignored.
    pub fn ack(&mut self, next: Cursor) -> io::Result<()> {
        if (next.seq, next.offset) <= (self.head.seq, self.head.offset)
            || !self.segments.iter().any(|s| s.seq == next.seq)
        {
            return Ok(());
        }
        self.head = next;
        self.write_head()?;
        // Whole segments behind the head, and the head's own once it is read to its end
        // (unless it is still being written).
        while let Some(front) = self.segments.front().copied() {
            let finished = front.seq < self.head.seq
                || (front.seq == self.head.seq
                    && self.head.offset >= front.bytes
                    && self.segments.len() > 1);
            if !finished {
                break;
            }
            self.segments.pop_front();
            fs::remove_file(segment_path(&self.dir, front.seq))?;
            if front.seq == self.head.seq
                && let Some(after) = self.segments.front()
            {
                self.head = Cursor {
                    seq: after.seq,
                    offset: 0,
                    before: 0,
                };
            }
        }
        Ok(())
    }

    /// Record the head (`SEQ OFFSET`) atomically: a temporary file renamed over the old one.
    fn write_head(&self) -> io::Result<()> {
        let tmp = self.dir.join("head.tmp");
        let mut file = File::create(&tmp)?;
        writeln!(file, "{} {}", self.head.seq, self.head.offset)?;
        file.sync_data()?;
        fs::rename(&tmp, self.dir.join("head"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Vec<u8> {
        format!("observation {i:05} {}", "x".repeat(100)).into_bytes()
    }

    fn drain(buffer: &mut Buffer) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            let peeked = buffer.peek(7, 1 << 20).unwrap();
            if peeked.records.is_empty() {
                return all;
            }
            all.extend(peeked.records);
            buffer.ack(peeked.next).unwrap();
        }
    }

    #[test]
    fn records_come_out_in_order_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = Buffer::open(dir.path(), 64 * 1024).unwrap();
        let all: Vec<Vec<u8>> = (0..200).map(record).collect();
        for chunk in all.chunks(9) {
            buffer.push(chunk).unwrap();
        }
        assert_eq!(buffer.len(), 200);
        assert!(
            fs::read_dir(dir.path()).unwrap().count() > 3,
            "several segments"
        );

        // Half delivered, then a restart: the rest, and only the rest, comes back.
        let mut got = Vec::new();
        while got.len() < 100 {
            let peeked = buffer.peek(10, 1 << 20).unwrap();
            got.extend(peeked.records);
            buffer.ack(peeked.next).unwrap();
        }
        drop(buffer);
        let mut buffer = Buffer::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(buffer.len(), 100);
        got.extend(drain(&mut buffer));
        assert_eq!(got, all);
        assert!(buffer.is_empty());
        assert_eq!(buffer.take_dropped(), 0);
    }

    #[test]
    fn what_was_peeked_but_not_acknowledged_comes_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        buffer.push(&[record(1), record(2), record(3)]).unwrap();
        let peeked = buffer.peek(2, 1 << 20).unwrap();
        assert_eq!(peeked.records, vec![record(1), record(2)]);
        drop(buffer);
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut buffer), vec![record(1), record(2), record(3)]);
    }

    #[test]
    fn over_the_bound_the_oldest_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let max = 64 * 1024;
        let mut buffer = Buffer::open(dir.path(), max).unwrap();
        let n = 2000; // ~250 KB of records: about four times the bound
        for i in 0..n {
            buffer.push(&[record(i)]).unwrap();
        }
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= max + max / 16 + 64, "{on_disk} bytes on disk");
        let dropped = buffer.take_dropped();
        let waiting = buffer.len();
        let left = drain(&mut buffer);
        assert_eq!(left.len() as u64, waiting);
        assert_eq!(
            dropped + left.len() as u64,
            n as u64,
            "every record kept or counted"
        );
        assert!(dropped > 0);
        // What is left is the newest, in order.
        let want: Vec<Vec<u8>> = (n - left.len()..n).map(record).collect();
        assert_eq!(left, want);
    }

    #[test]
    fn a_torn_record_is_cut_off_and_the_buffer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        buffer.push(&[record(1), record(2)]).unwrap();
        drop(buffer);
        // A crash in the middle of the third record: its header and half its payload.
        let segment = segment_path(dir.path(), 0);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        let payload = record(3);
        file.write_all(&(payload.len() as u32).to_le_bytes())
            .unwrap();
        file.write_all(&CASTAGNOLI.checksum(&payload).to_le_bytes())
            .unwrap();
        file.write_all(&payload[..20]).unwrap();
        drop(file);
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(buffer.len(), 2);
        buffer.push(&[record(4)]).unwrap();
        assert_eq!(drain(&mut buffer), vec![record(1), record(2), record(4)]);
    }

    #[test]
    fn a_corrupted_record_ends_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        buffer.push(&[record(1), record(2), record(3)]).unwrap();
        drop(buffer);
        let segment = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&segment).unwrap();
        let second = RECORD_HEADER as usize + record(1).len() + RECORD_HEADER as usize;
        bytes[second + 3] ^= 0xff; // a flipped byte in the second payload
        fs::write(&segment, bytes).unwrap();
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut buffer), vec![record(1)]);
    }

    #[test]
    fn peek_respects_its_limits_but_always_gives_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = Buffer::open(dir.path(), 1 << 20).unwrap();
        let big = vec![7u8; 5000];
        buffer.push(&[big.clone(), record(1), record(2)]).unwrap();
        let first = buffer.peek(10, 100).unwrap();
        assert_eq!(first.records, vec![big], "one record even over max_bytes");
        buffer.ack(first.next).unwrap();
        let rest = buffer.peek(1, 1 << 20).unwrap();
        assert_eq!(rest.records, vec![record(1)]);
        assert!(buffer.push(&[vec![0u8; MAX_RECORD + 1]]).is_err());
    }
}
