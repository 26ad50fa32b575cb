//! One connection's outbound state, shared by the tick side, the sender
//! shards, the reader and the writer task: the reservations, the socket (direct
//! paths) and the backlog, under one lock. Everything that writes to a direct
//! path's socket does it here, so bytes reach the wire whole and in order.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::{Buf, Bytes, BytesMut};
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::outbound::Rejected;
use super::rtt::RttProbe;

/// Bytes of tungstenite's own frames (pongs, close replies) a backlog may hold
/// beyond its frames; past it tungstenite is told to wait.
const CONTROL_BACKLOG: usize = 16 * 1024;

/// WebSocket opcodes of the frames written here.
pub(super) const OP_BINARY: u8 = 0x2;
pub(super) const OP_CLOSE: u8 = 0x8;
pub(super) const OP_PING: u8 = 0x9;

/// One connection's outbound state, shared by the tick side, the sender
/// shards, the reader and the writer task.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
    /// Frames reserved and not yet written to the socket (or, queued, taken by
    /// the writer). Outside the lock: the tick thread reserves without ever
    /// waiting for a shard that is writing to this socket.
    outstanding: AtomicUsize,
    /// No more frames: the connection is closing or broken.
    closed: AtomicBool,
    capacity: usize,
    /// Which sender shard delivers this connection's batched frames.
    pub(super) shard: usize,
    /// Wakes the writer task: backlog to drain, or the socket broke.
    pub(super) wake: Notify,
    /// WebSocket payload bytes of frames delivered (the server's metric).
    bytes_sent: Counter,
    /// The writer's pings and the reader's pongs: the connection's RTT.
    pub(super) rtt: RttProbe,
}

#[derive(Debug, Default)]
struct State {
    /// Direct: framed bytes the socket did not take yet, in order (the front
    /// may be partly written). Queued: frame payloads for the writer.
    backlog: VecDeque<Chunk>,
    /// Bytes of tungstenite's frames in the backlog.
    control_bytes: usize,
    /// A close frame went out: nothing may follow it on the wire.
    close_sent: bool,
    /// A write failed; the writer ends the connection.
    broken: bool,
    /// Direct only; dropped when the session ends so the socket can close.
    socket: Option<Arc<TcpStream>>,
    /// tungstenite waiting for backlog room.
    control_waker: Option<Waker>,
}

#[derive(Debug)]
struct Chunk {
    bytes: Bytes,
    /// A reserved frame (counts in `outstanding`), not tungstenite's bytes.
    frame: bool,
}

/// What [`Gate::drain`] left.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Drained {
    /// The backlog is empty.
    Empty,
    /// The socket is full: wait until it is writable.
    Blocked,
    /// The socket failed.
    Broken,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

impl Gate {
    pub(super) fn new(
        capacity: usize,
        socket: Option<Arc<TcpStream>>,
        bytes_sent: Counter,
    ) -> Gate {
        Gate {
            state: Mutex::new(State {
                socket,
                ..State::default()
            }),
            outstanding: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            capacity,
            shard: NEXT_SHARD.fetch_add(1, Ordering::Relaxed),
            wake: Notify::new(),
            bytes_sent,
            rtt: RttProbe::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in
        // a way that matters more than losing the connection; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one slot (a permit), lock-free.
    pub(super) fn try_reserve(&self) -> Result<(), Rejected> {
        if self.is_closed() {
            return Err(Rejected::Closed);
        }
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| Rejected::Full)
    }

    /// Gives back a slot (unused, or its frame is on the wire or dropped).
    pub(super) fn release(&self) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn set_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Takes a slot and delivers `frame` into it at once.
    pub(super) fn try_send(&self, frame: Bytes) -> Result<(), Rejected> {
        self.try_reserve()?;
        self.deliver(frame);
        Ok(())
    }

    fn clear_backlog(&self, st: &mut State) {
        for chunk in st.backlog.drain(..) {
            if chunk.frame {
                self.release();
            }
        }
        st.control_bytes = 0;
    }

    /// Delivers a reserved frame (a sender shard, or an inline flush).
    pub(super) fn deliver(&self, frame: Bytes) {
        let mut st = self.lock();
        self.deliver_locked(&mut st, frame);
    }

    fn deliver_locked(&self, st: &mut State, frame: Bytes) {
        if self.is_closed() {
            // Closing: the close frame may be on the wire already.
            self.release();
            return;
        }
        self.bytes_sent.inc_by(frame.len() as u64);
        let Some(socket) = &st.socket else {
            st.backlog.push_back(Chunk {
                bytes: frame,
                frame: true,
            });
            self.wake.notify_one();
            return;
        };
        let (head, head_len) = header(OP_BINARY, frame.len());
        let head = &head[..head_len];
        let written = if st.backlog.is_empty() {
            match socket.try_write_vectored(&[IoSlice::new(head), IoSlice::new(&frame)]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(_) => {
                    self.release();
                    return self.break_locked(st);
                }
            }
        } else {
            0
        };
        if written == head.len() + frame.len() {
            self.release();
            return;
        }
        let mut rest = BytesMut::with_capacity(head.len() + frame.len() - written);
        if written < head.len() {
            rest.extend_from_slice(&head[written..]);
            rest.extend_from_slice(&frame);
        } else {
            rest.extend_from_slice(&frame[written - head.len()..]);
        }
        st.backlog.push_back(Chunk {
            bytes: rest.freeze(),
            frame: true,
        });
        self.wake.notify_one();
    }

    fn break_locked(&self, st: &mut State) {
        st.broken = true;
        self.set_closed();
        self.clear_backlog(st);
        if let Some(w) = st.control_waker.take() {
            w.wake();
        }
        self.wake.notify_one();
    }

    /// Queued paths: the next frame for the writer.
    pub(super) fn pop_queued(&self) -> Option<Bytes> {
        let mut st = self.lock();
        if st.socket.is_some() {
            return None;
        }
        let chunk = st.backlog.pop_front()?;
        self.release();
        Some(chunk.bytes)
    }

    /// Direct paths: writes as much of the backlog as the socket takes.
    pub(super) fn drain(&self) -> Drained {
        let mut st = self.lock();
        self.drain_locked(&mut st)
    }

    fn drain_locked(&self, st: &mut State) -> Drained {
        if st.broken {
            return Drained::Broken;
        }
        let Some(socket) = st.socket.clone() else {
            return Drained::Empty;
        };
        while let Some(front) = st.backlog.front_mut() {
            match socket.try_write(&front.bytes) {
                Ok(n) if n == front.bytes.len() => {
                    let done = st.backlog.pop_front().map(|c| (c.frame, c.bytes.len()));
                    match done {
                        Some((true, _)) => self.release(),
                        Some((false, len)) => st.control_bytes -= len,
                        None => {}
                    }
                }
                Ok(n) => {
                    front.bytes.advance(n);
                    if !front.frame {
                        st.control_bytes -= n;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Blocked,
                Err(_) => {
                    self.break_locked(st);
                    return Drained::Broken;
                }
            }
        }
        if let Some(w) = st.control_waker.take() {
            w.wake();
        }
        Drained::Empty
    }

    /// Refuses new frames (the connection is closing); frames already in
    /// the backlog still go out.
    pub(super) fn close(&self) {
        self.set_closed();
    }

    /// Writes a frame of the writer's own (ping, the final `Error`, close)
    /// behind everything queued, even after [`Gate::close`]; nothing once a
    /// close frame went out. Returns false if the socket broke.
    pub(super) fn send_own(&self, opcode: u8, payload: &[u8]) -> bool {
        let (head, n) = header(opcode, payload.len());
        let mut frame = BytesMut::with_capacity(n + payload.len());
        frame.extend_from_slice(&head[..n]);
        frame.extend_from_slice(payload);
        let mut st = self.lock();
        if !st.broken {
            self.write_control_locked(&mut st, &frame);
        }
        !st.broken
    }

    /// tungstenite's writes (direct paths): whole frames, accepted whole or
    /// not at all, so no frame of ours can land inside one of its frames.
    /// `Ok(false)`: no room now, `waker` is woken when there is.
    pub(super) fn write_ws(&self, buf: &[u8], waker: &Waker) -> io::Result<bool> {
        let mut st = self.lock();
        if st.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !st.backlog.is_empty() && st.control_bytes + buf.len() > CONTROL_BACKLOG {
            st.control_waker = Some(waker.clone());
            return Ok(false);
        }
        self.write_control_locked(&mut st, buf);
        Ok(true)
    }

    /// Writes whole frames that are not reserved frames: after a close frame
    /// nothing more goes out (RFC 6455 §5.5.1), so a close reply tungstenite
    /// makes after our close frame is dropped, and vice versa.
    fn write_control_locked(&self, st: &mut State, buf: &[u8]) {
        if st.close_sent {
            return;
        }
        let (keep, has_close) = up_to_close(buf);
        let buf = &buf[..keep];
        if has_close {
            st.close_sent = true;
            self.set_closed();
        }
        let Some(socket) = st.socket.clone() else {
            return;
        };
        let written = if st.backlog.is_empty() {
            match socket.try_write(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(_) => return self.break_locked(st),
            }
        } else {
            0
        };
        if written < buf.len() {
            st.control_bytes += buf.len() - written;
            st.backlog.push_back(Chunk {
                bytes: Bytes::copy_from_slice(&buf[written..]),
                frame: false,
            });
            self.wake.notify_one();
        }
    }

    /// The socket, for waiting until it is writable (direct paths).
    pub(super) fn socket(&self) -> Option<Arc<TcpStream>> {
        self.lock().socket.clone()
    }

    /// The session is over: refuse frames and let go of the socket.
    pub(super) fn detach(&self) {
        let mut st = self.lock();
        self.set_closed();
        st.socket = None;
        self.clear_backlog(&mut st);
    }
}

/// A server-to-client WebSocket frame header (FIN set, unmasked) for a payload
/// of `len` bytes, and its length.
pub(super) fn header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if let Ok(len) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// How many bytes of `buf` (whole unmasked frames) to write: everything up to
/// and including the first close frame, and whether there is one. Bytes that
/// do not parse as frames are passed on whole.
fn up_to_close(buf: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while i + 2 <= buf.len() {
        let opcode = buf[i] & 0x0f;
        let (len, head) = match buf[i + 1] & 0x7f {
            126 if i + 4 <= buf.len() => (u16::from_be_bytes([buf[i + 2], buf[i + 3]]) as usize, 4),
            127 if i + 10 <= buf.len() => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[i + 2..i + 10]);
                (
                    usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                    10,
                )
            }
            126 | 127 => return (buf.len(), false),
            n => (n as usize, 2),
        };
        let end = i.saturating_add(head).saturating_add(len);
        if end > buf.len() {
            return (buf.len(), false);
        }
        if opcode == OP_CLOSE {
            return (end, true);
        }
        i = end;
    }
    (buf.len(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(header(OP_BINARY, 125).0[..2], [0x82, 125]);
        assert_eq!(header(OP_BINARY, 126).0[..4], [0x82, 126, 0, 126]);
        assert_eq!(header(OP_BINARY, 65535).1, 4);
        let (h, n) = header(OP_BINARY, 65536);
        assert_eq!(
            (n, h[1], &h[2..10]),
            (10, 127, &[0, 0, 0, 0, 0, 1, 0, 0][..])
        );
    }

    #[test]
    fn nothing_after_a_close_frame_is_written() {
        let pong = [0x8a, 1, 7];
        let close = [0x88, 2, 0x03, 0xe8];
        let both: Vec<u8> = [&pong[..], &close[..], &pong[..]].concat();
        assert_eq!(up_to_close(&both), (7, true));
        assert_eq!(up_to_close(&pong), (3, false));
        // Not frames: passed on whole.
        assert_eq!(up_to_close(&[0x88, 10, 1]), (3, false));
    }
}
