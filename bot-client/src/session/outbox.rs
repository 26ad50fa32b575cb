//! What a session sends: the queue of outgoing messages, the pacing that makes
//! one input per server tick, the batching of those inputs into `Input` messages
//! of at most [`MAX_INPUTS_PER_MSG`], the send budget that keeps them within the
//! server's rate limit, and their encoding into a reused buffer (no allocation per
//! message).

use std::collections::VecDeque;
use std::time::Instant;

use ticksync_protocol::{
    ClientMsg, Hello, Input, InputSeq, MAX_INPUTS_PER_MSG, MoveDir, Tick, codec,
};

use super::Counters;
use super::budget::SendBudget;

/// After a stall (a slow runtime), at most this many overdue inputs are generated
/// at once, and never more than the server's `Welcome.input_queue`; older ones are
/// skipped, as a real client skips frames after a hitch. More would only overflow
/// the server's per-player input queue.
pub(crate) const MAX_INPUT_BACKLOG: u64 = 2 * MAX_INPUTS_PER_MSG as u64;

/// A message waiting to be encoded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outgoing {
    Hello,
    Input {
        first_seq: InputSeq,
        len: usize,
        dirs: [MoveDir; MAX_INPUTS_PER_MSG],
    },
    Ping(u64),
    Resync,
}

/// The outgoing queue and the input clock.
#[derive(Debug)]
pub(super) struct Outbox {
    queue: VecDeque<Outgoing>,
    /// When input generation started and how many inputs were due since then.
    clock: Option<(Instant, u64)>,
    /// From the connection's `Welcome` on: messages other than `Hello` wait for it.
    budget: Option<SendBudget>,
    scratch: ClientMsg,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox {
            queue: VecDeque::with_capacity(4),
            clock: None,
            budget: None,
            scratch: ClientMsg::Input(Input {
                ack_tick: None,
                first_seq: InputSeq(0),
                dirs: Vec::with_capacity(MAX_INPUTS_PER_MSG),
            }),
        }
    }

    pub fn push(&mut self, m: Outgoing) {
        self.queue.push_back(m);
    }

    /// Drops everything queued (the connection is gone) and restarts the clock.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.clock = None;
        self.budget = None;
    }

    /// From now on, sends within this budget (the connection's `Welcome` arrived).
    pub fn set_budget(&mut self, budget: SendBudget) {
        self.budget = Some(budget);
    }

    /// The next input will be due at once, without catching up on the past.
    pub fn restart_input_clock(&mut self) {
        self.clock = None;
    }

    /// How many inputs are due by `now` at `tick_rate` inputs per second since the
    /// clock started (the first call starts it, with one input due at once), at most
    /// [`MAX_INPUT_BACKLOG`] and `input_queue`.
    pub fn inputs_due(
        &mut self,
        now: Instant,
        tick_rate: u32,
        input_queue: u16,
        counters: &mut Counters,
    ) -> u64 {
        let backlog = MAX_INPUT_BACKLOG.min(u64::from(input_queue.max(1)));
        let (start, done) = *self.clock.get_or_insert((now, 0));
        let elapsed_us = now.saturating_duration_since(start).as_micros() as u64;
        // Input k (0-based) is due k ticks after the first, give or take half a
        // tick, so a timer firing a little early or late at a multiple of the tick
        // period still finds the expected number of inputs.
        let due = 1 + (elapsed_us.saturating_mul(u64::from(tick_rate)) + 500_000) / 1_000_000;
        self.clock = Some((start, due));
        let count = due.saturating_sub(done);
        if count > backlog {
            counters.inputs_skipped += count - backlog;
            return backlog;
        }
        count
    }

    /// Queues `count` inputs from `next` (which assigns their sequence numbers) as
    /// `Input` messages of at most [`MAX_INPUTS_PER_MSG`]. An `Input` still waiting
    /// for the send budget at the end of the queue takes the first ones if they
    /// follow it: a low rate limit means fuller messages, not more of them.
    pub fn push_inputs(&mut self, count: u64, mut next: impl FnMut() -> (InputSeq, MoveDir)) {
        let mut dirs = [MoveDir::ZERO; MAX_INPUTS_PER_MSG];
        let mut len = 0;
        let mut first_seq = InputSeq(0);
        for _ in 0..count {
            let (seq, dir) = next();
            if len == 0
                && let Some(Outgoing::Input {
                    first_seq: waiting,
                    len: n,
                    dirs: d,
                }) = self.queue.back_mut()
                && *n < MAX_INPUTS_PER_MSG
                && waiting.plus(*n as u32) == seq
            {
                d[*n] = dir;
                *n += 1;
                continue;
            }
            if len == 0 {
                first_seq = seq;
            }
            dirs[len] = dir;
            len += 1;
            if len == MAX_INPUTS_PER_MSG {
                self.push(Outgoing::Input {
                    first_seq,
                    len,
                    dirs,
                });
                len = 0;
            }
        }
        if len > 0 {
            self.push(Outgoing::Input {
                first_seq,
                len,
                dirs,
            });
        }
    }

    /// Encodes the next message into `out` (cleared first); `false` when there is
    /// nothing to send, or the send budget has no token for it at `now` (it waits).
    /// `ack_tick` goes into inputs; `hello` builds a `Hello`.
    pub fn encode_next(
        &mut self,
        out: &mut Vec<u8>,
        now: Instant,
        ack_tick: Option<Tick>,
        hello: impl FnOnce() -> Hello,
        counters: &mut Counters,
    ) -> bool {
        let Some(&next) = self.queue.front() else {
            return false;
        };
        if !matches!(next, Outgoing::Hello) && self.budget.as_mut().is_some_and(|b| !b.take(now)) {
            return false;
        }
        self.queue.pop_front();
        out.clear();
        match next {
            Outgoing::Hello => codec::encode_client_into(&ClientMsg::Hello(hello()), out),
            Outgoing::Input {
                first_seq,
                len,
                dirs,
            } => {
                if let ClientMsg::Input(input) = &mut self.scratch {
                    input.ack_tick = ack_tick;
                    input.first_seq = first_seq;
                    input.dirs.clear();
                    input.dirs.extend_from_slice(&dirs[..len]);
                }
                codec::encode_client_into(&self.scratch, out);
                counters.inputs_sent += len as u64;
                counters.input_messages_sent += 1;
            }
            Outgoing::Ping(client_time_us) => {
                codec::encode_client_into(&ClientMsg::Ping { client_time_us }, out);
                counters.pings_sent += 1;
            }
            Outgoing::Resync => {
                codec::encode_client_into(&ClientMsg::Resync, out);
                counters.resyncs_requested += 1;
            }
        }
        counters.bytes_sent += out.len() as u64;
        true
    }
}
