//! agave's framing of admin RPC requests, without IO.
//!
//! agave's admin socket (jsonrpc-ipc-server) reads JSON values with no
//! delimiter between them: a request ends where its outermost brace (or
//! bracket, for a batch) closes, ignoring braces inside strings. Whitespace
//! between values, newlines included, is skipped, so newline-separated
//! requests work too. Responses are one JSON value per line.
//!
//! [`FrameDecoder`] implements the reading side. Bytes outside any JSON value
//! (say `hello\n`) come out as [`Frame::Garbage`], up to the next newline or
//! opening brace, so that the server can answer them with a parse error and
//! carry on.

/// Largest pending request, in bytes; beyond it the connection is closed.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// One unit of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one brace- or bracket-balanced value (not yet parsed: it may still be invalid JSON).
    Value(Vec<u8>),
    /// Bytes outside any value, up to a newline or an opening brace.
    Garbage(Vec<u8>),
}

/// More than [`MAX_FRAME_LEN`] bytes are pending without a complete frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request larger than {limit} bytes")]
pub struct Oversized {
    /// The limit that was exceeded.
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    /// Inside a value, at this nesting depth.
    Value {
        depth: usize,
        in_string: bool,
        escaped: bool,
    },
    /// Inside bytes that do not start a value.
    Garbage,
}

/// Splits a byte stream into frames; feed it with [`push`](Self::push), drain
/// it with [`next_frame`](Self::next_frame). Each byte is scanned once.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    state: State,
    limit: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the [`MAX_FRAME_LEN`] limit.
    pub fn new() -> Self {
        Self::with_limit(MAX_FRAME_LEN)
    }

    /// A decoder refusing frames longer than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            state: State::Idle,
            limit,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned in a frame (leading whitespace included).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or
    /// [`Oversized`] when the pending frame exceeds the limit (the decoder is
    /// then unusable: close the connection).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Oversized> {
        while self.scanned < self.buf.len() {
            let index = self.scanned;
            let byte = self.buf[index];
            self.scanned += 1;
            match &mut self.state {
                State::Idle => match byte {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        // Drop the whitespace so that idle connections hold no bytes.
                        self.buf.drain(..self.scanned);
                        self.scanned = 0;
                    }
                    b'{' | b'[' => {
                        self.state = State::Value {
                            depth: 1,
                            in_string: false,
                            escaped: false,
                        }
                    }
                    _ => self.state = State::Garbage,
                },
                State::Value {
                    depth,
                    in_string,
                    escaped,
                } => {
                    if *in_string {
                        if *escaped {
                            *escaped = false;
                        } else if byte == b'\\' {
                            *escaped = true;
                        } else if byte == b'"' {
                            *in_string = false;
                        }
                    } else {
                        match byte {
                            b'"' => *in_string = true,
                            b'{' | b'[' => *depth += 1,
                            b'}' | b']' => {
                                *depth -= 1;
                                if *depth == 0 {
                                    return Ok(Some(Frame::Value(self.take(self.scanned, 0))));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                State::Garbage => match byte {
                    b'\n' => {
                        let garbage = self.take(self.scanned, 1);
                        return Ok(Some(Frame::Garbage(trim_end(garbage))));
                    }
                    b'{' | b'[' => {
                        // The opening brace starts the next frame: leave it unscanned.
                        self.scanned -= 1;
                        let garbage = self.take(self.scanned, 0);
                        return Ok(Some(Frame::Garbage(trim_end(garbage))));
                    }
                    _ => {}
                },
            }
        }
        if self.buf.len() > self.limit {
            return Err(Oversized { limit: self.limit });
        }
        Ok(None)
    }

    /// Removes the first `len` bytes, returns them without their last `strip`
    /// bytes, and resets the scanner.
    fn take(&mut self, len: usize, strip: usize) -> Vec<u8> {
        let mut frame: Vec<u8> = self.buf.drain(..len).collect();
        frame.truncate(len - strip);
        self.scanned = 0;
        self.state = State::Idle;
        frame
    }
}

fn trim_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut FrameDecoder) -> Vec<Frame> {
        std::iter::from_fn(|| decoder.next_frame().unwrap()).collect()
    }

    fn value(text: &str) -> Frame {
        Frame::Value(text.as_bytes().to_vec())
    }

    #[test]
    fn back_to_back_values() {
        let mut decoder = FrameDecoder::new();
        decoder.push(br#"{"a":1}{"b":[2,{"c":3}]}  [1,2]"#);
        assert_eq!(
            frames(&mut decoder),
            vec![
                value(r#"{"a":1}"#),
                value(r#"{"b":[2,{"c":3}]}"#),
                value("[1,2]")
            ]
        );
        assert_eq!(decoder.pending(), 0);
    }

    #[test]
    fn newline_separated_values() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"{\"a\":1}\n\r\n{\"b\":2}\n");
        assert_eq!(
            frames(&mut decoder),
            vec![value(r#"{"a":1}"#), value(r#"{"b":2}"#)]
        );
    }

    #[test]
    fn braces_inside_strings_and_escapes() {
        let mut decoder = FrameDecoder::new();
        let text = r#"{"m":"}{\"]\\","n":"\\"}"#;
        decoder.push(text.as_bytes());
        assert_eq!(frames(&mut decoder), vec![value(text)]);
    }

    #[test]
    fn split_at_every_byte() {
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"x","params":["a}\"b"]}{"id":2}"#;
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        for byte in text.as_bytes() {
            decoder.push(&[*byte]);
            out.extend(frames(&mut decoder));
        }
        assert_eq!(
            out,
            vec![
                value(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":["a}\"b"]}"#),
                value(r#"{"id":2}"#)
            ]
        );
    }

    #[test]
    fn garbage_ends_at_newline_or_brace() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"hello world \nnope{\"a\":1}");
        assert_eq!(
            frames(&mut decoder),
            vec![
                Frame::Garbage(b"hello world".to_vec()),
                Frame::Garbage(b"nope".to_vec()),
                value(r#"{"a":1}"#)
            ]
        );
    }

    #[test]
    fn unbalanced_value_waits_then_overflows() {
        let mut decoder = FrameDecoder::with_limit(16);
        decoder.push(b"{\"a\":\"");
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.push(&[b'x'; 20]);
        assert_eq!(decoder.next_frame(), Err(Oversized { limit: 16 }));
    }

    #[test]
    fn many_small_frames_in_one_big_push_are_fine() {
        let mut decoder = FrameDecoder::with_limit(16);
        decoder.push("{\"a\":1}".repeat(10).as_bytes());
        assert_eq!(frames(&mut decoder).len(), 10);
    }
}
