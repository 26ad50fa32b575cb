//! A session's plain TCP socket as tungstenite sees it: reads go straight to
//! the socket; writes (tungstenite's pongs and close replies, and the
//! handshake-time `Error` and close) go through the connection's [`Gate`], the
//! lock under which the sender shards and the writer task also write, so
//! frames from all of them reach the wire whole and in order.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::gate::{Drained, Gate};
use super::outbound::{self, Outbound, OutboundRx};

/// The socket half tungstenite drives; see the module docs.
#[derive(Debug)]
pub struct GatedTcp {
    socket: Arc<TcpStream>,
    gate: Arc<Gate>,
}

/// Opens a direct outbound path of `capacity` frames on `socket`, and the
/// stream the session's WebSocket runs on.
pub(super) fn open(
    socket: TcpStream,
    capacity: usize,
    bytes_sent: Counter,
) -> (GatedTcp, Outbound, OutboundRx) {
    let socket = Arc::new(socket);
    let (out, rx) = outbound::direct(capacity, socket.clone(), bytes_sent);
    let gate = out.0.clone();
    (GatedTcp { socket, gate }, out, rx)
}

impl AsyncRead for GatedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.socket.poll_read_ready(cx))?;
            match self.socket.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was cleared: poll again to register the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for GatedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.gate.write_ws(buf, cx.waker()) {
            Ok(true) => Poll::Ready(Ok(buf.len())),
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Flushed once the backlog is on the wire. Only the task that owns the
    /// WebSocket polls this (the reader, or the handshake before it), so the
    /// socket's single poll-readiness slot is never contended; the writer
    /// task waits with `writable()`, which has a waiter list of its own.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.gate.drain() {
                Drained::Empty => return Poll::Ready(Ok(())),
                Drained::Broken => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                Drained::Blocked => ready!(self.socket.poll_write_ready(cx))?,
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
