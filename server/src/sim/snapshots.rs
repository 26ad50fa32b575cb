//! Snapshot planning: the recent history of world views and the encoded snapshot
//! bodies of the current tick, shared by every client with the same baseline.
//!
//! Over WebSocket (ordered, reliable) a client's baseline is the last snapshot
//! enqueued to it. Most clients therefore share the previous tick as baseline and
//! get the very same body bytes: encoding work grows with the number of distinct
//! baselines, not with the number of clients. A client whose baseline has left the
//! history (it skipped many ticks) gets a full snapshot.

use std::collections::VecDeque;

use bytes::Bytes;
use glam::IVec2;
use ticksync_protocol::{EntityState, InputSeq, SnapshotBody, Tick, codec, snapshot};

/// A view of the world at one tick.
#[derive(Debug, Default)]
struct TickView {
    tick: Tick,
    entities: Vec<EntityState>,
}

/// One encoded body of the current tick.
#[derive(Debug, Clone)]
pub struct EncodedBody {
    /// The baseline it is a delta against (`None`: full).
    pub baseline: Option<Tick>,
    /// The body bytes.
    pub bytes: Bytes,
}

/// Builds and caches the current tick's snapshot bodies.
#[derive(Debug)]
pub struct SnapshotPlanner {
    world_max: IVec2,
    history: VecDeque<TickView>,
    max_history: usize,
    bodies: Vec<EncodedBody>,
    scratch: SnapshotBody,
    /// Bodies encoded since creation (for metrics).
    encoded: u64,
}

impl SnapshotPlanner {
    /// A planner for a world whose largest coordinates are `world_max` that keeps
    /// the views of the last `max_history` ticks (at least 1).
    pub fn new(world_max: IVec2, max_history: usize) -> SnapshotPlanner {
        SnapshotPlanner {
            world_max,
            history: VecDeque::with_capacity(max_history.max(1)),
            max_history: max_history.max(1),
            bodies: Vec::new(),
            scratch: SnapshotBody::default(),
            encoded: 0,
        }
    }

    /// Records the view of a new tick (sorted by id) and forgets the previous tick's
    /// bodies. The oldest view's buffer is reused.
    pub fn record(&mut self, tick: Tick, view: &[EntityState]) {
        let mut slot = if self.history.len() >= self.max_history {
            self.history.pop_front().unwrap_or_default()
        } else {
            TickView::default()
        };
        slot.tick = tick;
        slot.entities.clear();
        slot.entities.extend_from_slice(view);
        self.history.push_back(slot);
        self.bodies.clear();
    }

    /// The current tick, if any view was recorded.
    pub fn tick(&self) -> Option<Tick> {
        self.history.back().map(|v| v.tick)
    }

    /// The body for a client holding `baseline` (`None`: it needs a full snapshot).
    /// Falls back to a full body when the baseline is no longer in the history.
    pub fn body(&mut self, baseline: Option<Tick>) -> EncodedBody {
        let Some(current) = self.history.back() else {
            return EncodedBody {
                baseline: None,
                bytes: Bytes::new(),
            };
        };
        let base_view =
            baseline.and_then(|b| self.history.iter().rev().skip(1).find(|v| v.tick == b));
        let baseline = base_view.map(|v| v.tick);
        if let Some(found) = self.bodies.iter().find(|b| b.baseline == baseline) {
            return found.clone();
        }
        match base_view {
            Some(base) => snapshot::delta_into(
                current.tick,
                base.tick,
                &base.entities,
                &current.entities,
                self.world_max,
                &mut self.scratch,
            ),
            None => snapshot::full_into(current.tick, &current.entities, &mut self.scratch),
        }
        let mut buf = Vec::new();
        codec::encode_snapshot_body(&self.scratch, &mut buf);
        self.encoded += 1;
        let body = EncodedBody {
            baseline,
            bytes: Bytes::from(buf),
        };
        self.bodies.push(body.clone());
        body
    }

    /// Bodies encoded since creation.
    pub fn bodies_encoded(&self) -> u64 {
        self.encoded
    }

    /// A complete `Snapshot` message: the per-client header, then the shared body.
    pub fn frame(ack_input: InputSeq, body: &Bytes) -> Bytes {
        let mut out = Vec::with_capacity(8 + body.len());
        codec::encode_snapshot_header(ack_input, &mut out);
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticksync_protocol::{ClientWorld, FixedPos, PlayerId, ServerMsg};

    const MAX: IVec2 = IVec2::new(1000, 1000);

    /// A view of (id, x, velocity x) entities on the line y = 0.
    fn view(xs: &[(u32, i32, i32)]) -> Vec<EntityState> {
        xs.iter()
            .map(|&(id, x, vx)| {
                EntityState::new(PlayerId(id), FixedPos::new(x, 0), IVec2::new(vx, 0))
            })
            .collect()
    }

    fn apply(world: &mut ClientWorld, frame: &Bytes) -> InputSeq {
        let Ok(ServerMsg::Snapshot(s)) = codec::decode_server(frame) else {
            panic!("not a snapshot")
        };
        world.apply(&s.body).expect("applies");
        s.ack_input
    }

    #[test]
    fn clients_with_the_same_baseline_share_one_body() {
        let mut p = SnapshotPlanner::new(MAX, 4);
        p.record(Tick(1), &view(&[(1, 0, 5), (2, 0, 0)]));
        let full = p.body(None);
        p.record(Tick(2), &view(&[(1, 5, 5), (2, 0, 0)]));
        let a = p.body(Some(Tick(1)));
        let b = p.body(Some(Tick(1)));
        assert_eq!(p.bodies_encoded(), 2);
        assert_eq!(a.bytes.as_ptr(), b.bytes.as_ptr());
        assert_eq!(a.baseline, Some(Tick(1)));

        let mut world = ClientWorld::new(MAX);
        apply(
            &mut world,
            &SnapshotPlanner::frame(InputSeq(0), &full.bytes),
        );
        let ack = apply(&mut world, &SnapshotPlanner::frame(InputSeq(7), &a.bytes));
        assert_eq!(ack, InputSeq(7));
        assert_eq!(world.to_sorted_vec(), view(&[(1, 5, 5), (2, 0, 0)]));
    }

    #[test]
    fn a_client_that_skipped_ticks_gets_a_delta_spanning_them() {
        let mut p = SnapshotPlanner::new(MAX, 8);
        let ticks = [
            view(&[(1, 0, 5), (2, 0, 0)]),
            view(&[(1, 5, 5), (2, 0, 0)]),
            view(&[(1, 10, 5), (2, 3, 3)]),
            view(&[(1, 15, 5), (2, 6, 3)]),
        ];
        let mut world = ClientWorld::new(MAX);
        p.record(Tick(1), &ticks[0]);
        apply(
            &mut world,
            &SnapshotPlanner::frame(InputSeq(0), &p.body(None).bytes),
        );
        for (t, v) in (2..).zip(&ticks[1..]) {
            p.record(Tick(t), v);
        }
        let body = p.body(Some(Tick(1)));
        assert_eq!(body.baseline, Some(Tick(1)));
        apply(
            &mut world,
            &SnapshotPlanner::frame(InputSeq(3), &body.bytes),
        );
        assert_eq!(world.to_sorted_vec(), ticks[3]);
    }

    #[test]
    fn a_baseline_outside_the_history_gets_a_full_snapshot() {
        let mut p = SnapshotPlanner::new(MAX, 2);
        for t in 1..=5 {
            p.record(Tick(t), &view(&[(1, t as i32, 1)]));
        }
        assert_eq!(p.body(Some(Tick(1))).baseline, None);
        assert_eq!(p.body(Some(Tick(4))).baseline, Some(Tick(4)));
        // The current tick is not a baseline for itself.
        assert_eq!(p.body(Some(Tick(5))).baseline, None);
    }
}
