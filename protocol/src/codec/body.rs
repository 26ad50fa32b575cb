//! The hand-written writer of snapshot bodies: the one message a server encodes
//! per client per tick with exact-circle views, so it skips bincode's generic
//! encoder (a trait call and a `Result` per value) and writes varints straight
//! into the buffer after reserving the worst case once.
//!
//! It writes exactly what [`super::encode_snapshot_body_bincode`] writes — the
//! property tests and the golden vectors check both byte for byte — so the wire
//! format stays the one docs/PROTOCOL.md and bincode's standard configuration
//! define.

use glam::IVec2;

use crate::messages::{EntityDelta, SnapshotBody};
use crate::types::PlayerId;

/// Most bytes a `u32` varint takes (`0xFC` + 4).
const U32_MAX_LEN: usize = 5;
/// Most bytes a list count takes (`0xFD` + 8).
const COUNT_MAX_LEN: usize = 9;

/// Writes the shareable part of a `Snapshot` message (docs/PROTOCOL.md §6):
/// `tick`, `baseline_age`, the four id-gap lists and the checksum.
///
/// The body's lists must be sorted by id with unique, non-zero ids (as
/// [`crate::snapshot`] builds them), and a delta's baseline must be older than its
/// tick.
///
/// ```
/// use ticksync_protocol::{codec, snapshot, EntityState, FixedPos, PlayerId, Tick};
/// let body = snapshot::full(Tick(100), &[EntityState::at(PlayerId(1), FixedPos::new(0, 0))]);
/// let mut out = Vec::new();
/// codec::encode_snapshot_body(&body, &mut out);
/// // tick 100, age 0, removed 0, spawned 1: gap 1, x 0, y 0, vx 0, vy 0, changed 0,
/// // corrected 0, then the checksum (4 bytes).
/// assert_eq!(out[..11], [100, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]);
/// ```
pub fn encode_snapshot_body(body: &SnapshotBody, out: &mut Vec<u8>) {
    debug_assert!(body.baseline.is_none_or(|b| b < body.tick));
    let entries = body.removed.len()
        + 5 * body.spawned.len()
        + 3 * (body.changed.len() + body.corrected.len());
    out.reserve(2 * U32_MAX_LEN + 4 * COUNT_MAX_LEN + U32_MAX_LEN * entries + 4);
    put_u32(out, body.tick.0);
    put_u32(out, body.baseline_age());
    put_count(out, body.removed.len());
    let mut gaps = Gaps::default();
    for id in &body.removed {
        put_u32(out, gaps.next(*id));
    }
    put_count(out, body.spawned.len());
    let mut gaps = Gaps::default();
    for s in &body.spawned {
        put_u32(out, gaps.next(s.id));
        put_ivec(out, s.pos.0);
        put_ivec(out, s.vel);
    }
    put_entries(out, &body.changed);
    put_entries(out, &body.corrected);
    out.extend_from_slice(&body.checksum.0.to_le_bytes());
}

/// Id gaps: each id minus the previous one of the same list (the first from 0).
#[derive(Default)]
struct Gaps(u32);

impl Gaps {
    #[inline(always)]
    fn next(&mut self, id: PlayerId) -> u32 {
        debug_assert!(
            id.0 > self.0,
            "snapshot ids must be non-zero and increasing"
        );
        let gap = id.0.wrapping_sub(self.0);
        self.0 = id.0;
        gap
    }
}

#[inline(always)]
fn put_entries(out: &mut Vec<u8>, entries: &[EntityDelta]) {
    put_count(out, entries.len());
    let mut gaps = Gaps::default();
    for e in entries {
        put_u32(out, gaps.next(e.id));
        put_ivec(out, e.delta);
    }
}

#[inline(always)]
fn put_ivec(out: &mut Vec<u8>, v: IVec2) {
    put_u32(out, zigzag(v.x));
    put_u32(out, zigzag(v.y));
}

#[inline(always)]
fn zigzag(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

/// A `u32` varint in its shortest form (docs/PROTOCOL.md §4).
#[inline(always)]
fn put_u32(out: &mut Vec<u8>, v: u32) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= 0xffff {
        out.push(0xfb);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else {
        out.push(0xfc);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A list count: a `u64` varint (never above `u32` in practice: lists live in
/// memory).
#[inline(always)]
fn put_count(out: &mut Vec<u8>, n: usize) {
    match u32::try_from(n) {
        Ok(n) => put_u32(out, n),
        Err(_) => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
    }
}
