//! How bodies are delimited on the wire (RFC 9112 6): by a length, by the chunked transfer
//! coding (7.1), or by the close; decoded from a buffer as bytes arrive, for backends'
//! responses and clients' requests alike. Chunk extensions are ignored, trailers read and
//! dropped.

use bytes::{Bytes, BytesMut};

/// The longest a chunk-size line or a trailer line may be.
const MAX_LINE: usize = 4096;
/// The most trailer bytes taken before the body is refused.
const MAX_TRAILERS: usize = 16 * 1024;

/// What the buffer gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes.
    Data(Bytes),
    /// Nothing more until more bytes arrive.
    More,
    /// The body has ended (its last chunk and trailers taken off the buffer).
    End,
}

/// How a body is delimited, and how much of it is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked coding, decoded so far.
    Chunked(Decoder),
    /// Until the connection closes (a response only).
    Eof,
}

impl Framing {
    /// Takes what `buf` holds of the body.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, String> {
        match self {
            Framing::Length(0) => Ok(Step::End),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                Ok(Step::Data(buf.split_to(n as usize).freeze()))
            }
            Framing::Chunked(d) => d.decode(buf),
            Framing::Eof if buf.is_empty() => Ok(Step::More),
            Framing::Eof => Ok(Step::Data(buf.split().freeze())),
        }
    }

    /// Whether the body has ended (a close-delimited one never knows).
    pub fn is_done(&self) -> bool {
        matches!(self, Framing::Length(0) | Framing::Chunked(Decoder::Done))
    }

    /// The bytes left, when a length says.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Framing::Length(n) => Some(*n),
            Framing::Chunked(_) | Framing::Eof => None,
        }
    }
}

/// Where chunked decoding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoder {
    /// Before a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the empty line; this many trailer bytes so far.
    Trailers(usize),
    /// Ended.
    Done,
}

impl Decoder {
    /// Takes what `buf` holds of the body.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, String> {
        loop {
            match *self {
                Decoder::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    let hex = line
                        .split(|&b| b == b';' || b == b' ' || b == b'\t')
                        .next()
                        .unwrap_or(&[]);
                    if hex.is_empty() || hex.len() > 16 || !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err("a bad chunk size".into());
                    }
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u64::from_str_radix(h, 16).ok())
                        .ok_or("a bad chunk size")?;
                    *self = if size == 0 {
                        Decoder::Trailers(0)
                    } else {
                        Decoder::Data(size)
                    };
                }
                Decoder::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let n = left.min(buf.len() as u64);
                    *self = if left == n {
                        Decoder::DataEnd
                    } else {
                        Decoder::Data(left - n)
                    };
                    return Ok(Step::Data(buf.split_to(n as usize).freeze()));
                }
                Decoder::DataEnd => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    if !line.is_empty() {
                        return Err("chunk data longer than its size".into());
                    }
                    *self = Decoder::Size;
                }
                Decoder::Trailers(seen) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    if line.is_empty() {
                        *self = Decoder::Done;
                        return Ok(Step::End);
                    }
                    let seen = seen + line.len();
                    if seen > MAX_TRAILERS {
                        return Err(format!("trailers longer than {MAX_TRAILERS} bytes"));
                    }
                    *self = Decoder::Trailers(seen);
                }
                Decoder::Done => return Ok(Step::End),
            }
        }
    }
}

/// One CRLF- (or LF-) terminated line off the front of `buf`, without its ending; `None`:
/// not all there yet.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
    match buf.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') {
        Some(end) => {
            let mut line = buf.split_to(end + 1).freeze();
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(format!("a chunk line longer than {MAX_LINE} bytes")),
        None => Ok(None),
    }
}

/// Appends `data` as one chunk.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write as _;
    if data.is_empty() {
        return;
    }
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for p in pieces {
            buf.extend_from_slice(p);
            loop {
                match d.decode(&mut buf)? {
                    Step::Data(b) => out.extend_from_slice(&b),
                    Step::More => break,
                    Step::End => return Ok(out),
                }
            }
        }
        Err("not ended".into())
    }

    #[test]
    fn chunks_decode_across_any_split() {
        let whole: &[u8] = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(decode_all(&[a, b]).unwrap(), b"hello world", "cut at {cut}");
        }
        let mut out = Vec::new();
        encode_chunk(&mut out, b"hello");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(decode_all(&[&out]).unwrap(), b"hello");
    }

    #[test]
    fn bad_chunks_are_refused() {
        assert!(decode_all(&[b"zz\r\n"]).is_err());
        assert!(decode_all(&[b"+5\r\nhello\r\n0\r\n\r\n"]).is_err());
        assert!(decode_all(&[b"3\r\nhello\r\n"]).is_err());
        assert!(decode_all(&[b"11111111111111111\r\n"]).is_err());
        assert!(decode_all(&[&[b'1'; 5000]]).is_err());
    }
}
