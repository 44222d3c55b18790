//! Where HTTP/2 request heads begin and end in the bytes a server reads, so the head deadline
//! can time them on HTTP/2 too: the h2 crate surfaces a stream only once its header block is
//! complete and has no timeout for one that never completes. Only the 9-byte frame headers are
//! looked at (RFC 9113 §4.1: length, type, flags): payloads are skipped by their length and
//! header blocks are never decoded (h2 does that, and bounds their size).
//!
//! A request head is incomplete from the first byte of a frame header until that header is
//! whole, and from a HEADERS frame until the end of the frame (HEADERS or CONTINUATION) that
//! carries END_HEADERS (§6.2, §6.10). Between frames, and in DATA or any other frame, it is not.

/// The client connection preface (RFC 9113 §3.4), skipped before the first frame.
const PREFACE_LEN: u8 = 24;
const HEADER_LEN: u8 = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// The frame-boundary state of one HTTP/2 connection's inbound bytes.
#[derive(Debug)]
pub struct H2Frames {
    preface_left: u8,
    head: [u8; HEADER_LEN as usize],
    head_len: u8,
    payload_left: u32,
    /// The current frame carries END_HEADERS: the open block ends with its payload.
    ends_block: bool,
    /// A header block began (HEADERS) and its END_HEADERS frame is not yet read whole.
    block_open: bool,
}

impl Default for H2Frames {
    fn default() -> Self {
        Self {
            preface_left: PREFACE_LEN,
            head: [0; HEADER_LEN as usize],
            head_len: 0,
            payload_left: 0,
            ends_block: false,
            block_open: false,
        }
    }
}

impl H2Frames {
    /// Takes the next bytes read from the client; true when a request head is incomplete
    /// after them (the deadline runs).
    pub fn advance(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = bytes.len().min(usize::from(self.preface_left));
                self.preface_left -= n as u8;
                bytes = &bytes[n..];
            } else if self.payload_left > 0 {
                let n = bytes.len().min(self.payload_left as usize);
                self.payload_left -= n as u32;
                bytes = &bytes[n..];
                if self.payload_left == 0 {
                    self.frame_done();
                }
            } else {
                let at = usize::from(self.head_len);
                let n = bytes.len().min(usize::from(HEADER_LEN) - at);
                self.head[at..at + n].copy_from_slice(&bytes[..n]);
                self.head_len += n as u8;
                bytes = &bytes[n..];
                if self.head_len == HEADER_LEN {
                    self.frame_header();
                }
            }
        }
        self.incomplete()
    }

    fn frame_header(&mut self) {
        self.head_len = 0;
        let [l0, l1, l2, kind, flags, ..] = self.head;
        self.payload_left = u32::from_be_bytes([0, l0, l1, l2]);
        match kind {
            HEADERS => {
                self.block_open = true;
                self.ends_block = flags & END_HEADERS != 0;
            }
            CONTINUATION if self.block_open => self.ends_block = flags & END_HEADERS != 0,
            _ => self.ends_block = false,
        }
        if self.payload_left == 0 {
            self.frame_done();
        }
    }

    fn frame_done(&mut self) {
        if self.ends_block {
            self.block_open = false;
            self.ends_block = false;
        }
    }

    /// Whether a request head is being read (a frame header, or an open header block).
    pub fn incomplete(&self) -> bool {
        self.head_len > 0 || self.block_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, flags]);
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    #[test]
    fn a_header_block_is_open_until_its_end_headers_frame_is_read() {
        let mut t = H2Frames::default();
        assert!(!t.advance(PREFACE));
        assert!(!t.advance(&frame(0x4, 0, 0, &[])), "SETTINGS");
        assert!(
            t.advance(&frame(HEADERS, 0, 1, &[0x82])),
            "HEADERS without END_HEADERS"
        );
        assert!(t.advance(&frame(CONTINUATION, 0, 1, &[0x87])));
        let last = frame(CONTINUATION, END_HEADERS, 1, &[0x84]);
        // The END_HEADERS frame must be read whole, byte by byte too.
        for b in &last[..last.len() - 1] {
            assert!(t.advance(std::slice::from_ref(b)));
        }
        assert!(!t.advance(&last[last.len() - 1..]));
        assert!(!t.advance(&frame(0x0, 0x1, 1, &[0; 100])), "DATA");
    }

    #[test]
    fn whole_heads_and_other_frames_never_leave_it_running() {
        let mut t = H2Frames::default();
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(HEADERS, END_HEADERS | 0x1, 1, &[0x82, 0x87, 0x84]));
        bytes.extend(frame(0x6, 0, 0, &[0; 8]));
        bytes.extend(frame(0x0, 0, 3, &[7; 40_000]));
        assert!(!t.advance(&bytes));
        // A partial frame header runs the clock until it is whole.
        assert!(t.advance(&[0, 0, 0]));
        assert!(
            !t.advance(&[0x4, 0x1, 0, 0, 0, 0]),
            "SETTINGS ACK completes it"
        );
        // A trickled HEADERS payload.
        let h = frame(HEADERS, END_HEADERS, 5, &[0x82; 10]);
        assert!(t.advance(&h[..12]));
        assert!(!t.advance(&h[12..]));
    }
}
