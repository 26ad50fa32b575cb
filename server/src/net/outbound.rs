//! A connection's outbound path: the one way the tick side (and the
//! connection's own reader, for `Pong` and `Error`) hands encoded frames to the
//! connection's socket.
//!
//! The tick side never waits on it: [`Outbound::try_reserve`] either grants a
//! slot (before the frame is encoded, so a full client costs no encoding) or
//! says the client is full or gone. A granted frame goes into the tick thread's
//! [`SendBatch`](super::send::SendBatch) and reaches the socket when the batch
//! is flushed. At most `capacity` frames are outstanding (reserved and not yet
//! taken by the socket); a client that does not read skips ticks and is closed
//! after the stall timeout by its room.
//!
//! Two ways to the socket, chosen per connection when it is opened:
//!
//! - **Direct** (plain TCP): whoever delivers a frame — a sender shard, or the
//!   reader for a `Pong` — writes it, WebSocket-framed, straight into the
//!   non-blocking socket under the connection's lock: one `writev` and no task
//!   wake-up per frame. Only bytes the socket cannot take now go into the
//!   backlog, which the connection's writer task drains when the socket is
//!   writable again; while the backlog is non-empty every later byte queues
//!   behind it, so the byte stream stays in order. tungstenite's own writes (on
//!   the reader's side: pongs to client pings, close replies) go through the
//!   same lock ([`GatedTcp`](super::gated::GatedTcp)).
//! - **Queued** (TLS, tests): frames queue here for the writer task, which
//!   writes them through tungstenite.
//!
//! Room code depends only on [`Outbound`], [`OutboundPermit`] and [`Rejected`].

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::{Buf, Bytes, BytesMut};
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::send::SendBatch;

/// Bytes of tungstenite's own frames (pongs, close replies) a backlog may hold
/// beyond its frames; past it tungstenite is told to wait.
const CONTROL_BACKLOG: usize = 16 * 1024;

/// WebSocket opcodes of the frames written here.
pub(super) const OP_BINARY: u8 = 0x2;
pub(super) const OP_CLOSE: u8 = 0x8;
pub(super) const OP_PING: u8 = 0x9;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue is full: the client is not keeping up.
    Full,
    /// The connection is gone.
    Closed,
}

/// The sending side of one connection's outbound path (cheap to clone).
#[derive(Debug, Clone)]
pub struct Outbound(pub(super) Arc<Gate>);

/// A reserved slot; [`OutboundPermit::send`] puts a frame in it. Dropping the
/// permit unused releases the slot.
#[derive(Debug)]
pub struct OutboundPermit<'a> {
    gate: &'a Arc<Gate>,
    armed: bool,
}

/// The writer task's side of one connection's outbound path.
#[derive(Debug)]
pub struct OutboundRx(pub(super) Arc<Gate>);

/// A queued outbound path of `capacity` frames, drained by the holder of the
/// [`OutboundRx`] (tests; the server's own queued paths count their bytes).
pub fn channel(capacity: usize) -> (Outbound, OutboundRx) {
    queued(capacity, Counter::default())
}

/// A queued outbound path (TLS) counting delivered payload bytes in `bytes_sent`.
pub(super) fn queued(capacity: usize, bytes_sent: Counter) -> (Outbound, OutboundRx) {
    let gate = Arc::new(Gate::new(capacity, None, bytes_sent));
    (Outbound(gate.clone()), OutboundRx(gate))
}

/// A direct outbound path of `capacity` frames into `socket`.
pub(super) fn direct(
    capacity: usize,
    socket: Arc<TcpStream>,
    bytes_sent: Counter,
) -> (Outbound, OutboundRx) {
    let gate = Arc::new(Gate::new(capacity, Some(socket), bytes_sent));
    (Outbound(gate.clone()), OutboundRx(gate))
}

impl Outbound {
    /// Reserves a slot for one frame, without waiting.
    pub fn try_reserve(&self) -> Result<OutboundPermit<'_>, Rejected> {
        self.0.reserve(&mut self.0.lock())?;
        Ok(OutboundPermit {
            gate: &self.0,
            armed: true,
        })
    }

    /// Sends one frame now (on the calling thread), without waiting: for the
    /// few frames outside a tick's batch (`Welcome`, `Pong`, `Error`).
    pub fn try_send(&self, frame: Bytes) -> Result<(), Rejected> {
        let mut st = self.0.lock();
        self.0.reserve(&mut st)?;
        self.0.deliver_locked(&mut st, frame);
        Ok(())
    }
}

impl OutboundPermit<'_> {
    /// Puts the frame in the reserved slot: it reaches the socket when `batch`
    /// is flushed, after every frame sent to this connection before it.
    pub fn send(mut self, frame: Bytes, batch: &mut SendBatch) {
        self.armed = false;
        batch.push(self.gate.clone(), frame);
    }
}

impl Drop for OutboundPermit<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gate.lock().release();
        }
    }
}

impl OutboundRx {
    /// The next queued frame, if any (queued paths only).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.0.pop_queued()
    }

    /// The next queued frame, waiting for one (queued paths only).
    pub async fn recv(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.0.pop_queued() {
                return frame;
            }
            // A frame queued between the look and the wait leaves a permit.
            self.0.wake.notified().await;
        }
    }
}

/// One connection's outbound state, shared by the tick side, the sender
/// shards, the reader and the writer task.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
    capacity: usize,
    /// Which sender shard delivers this connection's batched frames.
    pub(super) shard: usize,
    /// Wakes the writer task: backlog to drain, or the socket broke.
    pub(super) wake: Notify,
    /// WebSocket payload bytes of frames delivered (the server's metric).
    bytes_sent: Counter,
}

#[derive(Debug, Default)]
struct State {
    /// Frames reserved and not yet written to the socket (or, queued, taken by
    /// the writer).
    outstanding: usize,
    /// Direct: framed bytes the socket did not take yet, in order (the front
    /// may be partly written). Queued: frame payloads for the writer.
    backlog: VecDeque<Chunk>,
    /// Bytes of tungstenite's frames in the backlog.
    control_bytes: usize,
    /// No more frames: the connection is closing or broken.
    closed: bool,
    /// A close frame went out: nothing may follow it on the wire.
    close_sent: bool,
    /// A write failed; the writer ends the connection.
    broken: bool,
    /// Direct only; dropped when the session ends so the socket can close.
    socket: Option<Arc<TcpStream>>,
    /// tungstenite waiting for backlog room.
    control_waker: Option<Waker>,
}

impl State {
    fn clear_backlog(&mut self) {
        let frames = self.backlog.iter().filter(|c| c.frame).count();
        self.outstanding = self.outstanding.saturating_sub(frames);
        self.backlog.clear();
        self.control_bytes = 0;
    }

    fn release(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }
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
    fn new(capacity: usize, socket: Option<Arc<TcpStream>>, bytes_sent: Counter) -> Gate {
        Gate {
            state: Mutex::new(State {
                socket,
                ..State::default()
            }),
            capacity,
            shard: NEXT_SHARD.fetch_add(1, Ordering::Relaxed),
            wake: Notify::new(),
            bytes_sent,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in
        // a way that matters more than losing the connection; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reserve(&self, st: &mut State) -> Result<(), Rejected> {
        if st.closed {
            Err(Rejected::Closed)
        } else if st.outstanding >= self.capacity {
            Err(Rejected::Full)
        } else {
            st.outstanding += 1;
            Ok(())
        }
    }

    /// Delivers a reserved frame (a sender shard, or an inline flush).
    pub(super) fn deliver(&self, frame: Bytes) {
        let mut st = self.lock();
        self.deliver_locked(&mut st, frame);
    }

    fn deliver_locked(&self, st: &mut State, frame: Bytes) {
        if st.closed {
            // Closing: the close frame may be on the wire already.
            st.release();
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
                    st.release();
                    return self.break_locked(st);
                }
            }
        } else {
            0
        };
        if written == head.len() + frame.len() {
            st.release();
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
        st.closed = true;
        st.clear_backlog();
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
        st.release();
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
                        Some((true, _)) => st.release(),
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
        self.lock().closed = true;
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
            st.closed = true;
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
        st.closed = true;
        st.socket = None;
        st.clear_backlog();
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

    #[test]
    fn reservations_are_bounded_and_released() {
        let (out, mut rx) = channel(2);
        let a = out.try_reserve().unwrap();
        out.try_send(Bytes::from_static(b"x")).unwrap();
        assert_eq!(out.try_reserve().unwrap_err(), Rejected::Full);
        drop(a);
        assert!(out.try_reserve().is_ok());
        assert_eq!(rx.try_recv().as_deref(), Some(&b"x"[..]));
        out.0.close();
        assert_eq!(out.try_reserve().unwrap_err(), Rejected::Closed);
    }
}
