//! The authoritative world: every player's position, their input queues, joins,
//! leaves with a resume grace period, and the fixed tick advance.

use rustc_hash::FxHashMap;
use ticksync_protocol::checksum::fmix32;
use ticksync_protocol::motion::Motion;
use ticksync_protocol::{
    EntityState, FixedPos, Input, InputSeq, MoveConfig, PlayerId, ResumeToken, Tick, step,
};

use super::input::{InputOutcome, InputQueue};

/// The simulation's constants, all in ticks and grid steps.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Movement constants shared with clients.
    pub movement: MoveConfig,
    /// Most players in the world, connected or in their resume grace.
    pub max_players: usize,
    /// Inputs that may wait per player.
    pub input_queue: usize,
    /// Most inputs applied to one player in one tick. Each tick grants one input
    /// credit, saved up to this many, so a player never outruns `speed` on average
    /// but catches up after a late input.
    pub max_inputs_per_tick: u32,
    /// Ticks a disconnected player stays in the world, resumable.
    pub resume_grace_ticks: u32,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The world holds `max_players` already.
    #[error("the server is full: try again later")]
    ServerFull,
    /// The resume token is unknown, expired or already used.
    #[error("Hello.resume_token is unknown, expired or already used")]
    ResumeFailed,
}

/// A successful join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The player's id.
    pub id: PlayerId,
    /// Whether an existing session was resumed.
    pub resumed: bool,
    /// Whether that session was still connected (the old connection must go).
    pub took_over: bool,
    /// The last input processed for this player.
    pub last_input_seq: InputSeq,
}

/// One player in the world.
#[derive(Debug, Clone)]
pub struct Player {
    /// The player's id.
    pub id: PlayerId,
    /// Display name from `Hello`.
    pub name: Option<String>,
    /// Authoritative position.
    pub pos: FixedPos,
    /// The velocity clients extrapolate it by (the reference policy, [`Motion`]).
    pub motion: Motion,
    /// The last input applied.
    pub last_applied: InputSeq,
    /// Pending inputs.
    pub inputs: InputQueue,
    credit: u32,
    token: ResumeToken,
    /// The tick the connection dropped, while in the resume grace.
    pub disconnected_at: Option<Tick>,
}

/// The world state the tick loop owns.
#[derive(Debug)]
pub struct World {
    cfg: SimConfig,
    tick: Tick,
    /// Sorted by id: ids only grow, so joins append.
    players: Vec<Player>,
    /// `players`' ids, in the same order: the binary search of a lookup
    /// touches a few lines of this instead of one `Player` per probe (the
    /// tick looks every connected player up each tick).
    ids: Vec<PlayerId>,
    tokens: FxHashMap<ResumeToken, PlayerId>,
    next_id: u32,
    view: Vec<EntityState>,
}

impl World {
    /// An empty world at tick 0.
    pub fn new(cfg: SimConfig) -> World {
        World {
            cfg,
            tick: Tick(0),
            players: Vec::new(),
            ids: Vec::new(),
            tokens: FxHashMap::default(),
            next_id: 1,
            view: Vec::new(),
        }
    }

    /// The tick of the current state.
    pub fn tick(&self) -> Tick {
        self.tick
    }

    /// The simulation constants.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Players in the world.
    pub fn len(&self) -> usize {
        self.players.len()
    }

    /// Whether the world has no players.
    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
    }

    /// A player by id.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        self.index(id).map(|i| &self.players[i])
    }

    /// Every entity at the current tick (position and velocity), sorted by id.
    pub fn view(&self) -> &[EntityState] {
        &self.view
    }

    fn index(&self, id: PlayerId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// Adds a player, or with `resume` takes an existing session back. `new_token`
    /// (random, from the caller) replaces any old token: tokens are single-use.
    pub fn join(
        &mut self,
        name: Option<String>,
        new_token: ResumeToken,
        resume: Option<ResumeToken>,
    ) -> Result<Joined, JoinError> {
        if let Some(token) = resume {
            let id = self.tokens.remove(&token).ok_or(JoinError::ResumeFailed)?;
            let i = self.index(id).ok_or(JoinError::ResumeFailed)?;
            self.tokens.insert(new_token, id);
            let p = &mut self.players[i];
            p.token = new_token;
            let took_over = p.disconnected_at.is_none();
            p.disconnected_at = None;
            p.inputs.reset(p.last_applied);
            if name.is_some() {
                p.name = name;
            }
            return Ok(Joined {
                id,
                resumed: true,
                took_over,
                last_input_seq: p.last_applied,
            });
        }
        if self.players.len() >= self.cfg.max_players {
            return Err(JoinError::ServerFull);
        }
        let id = PlayerId(self.next_id);
        self.next_id += 1;
        let pos = spawn_point(id, &self.cfg.movement);
        self.ids.push(id);
        self.players.push(Player {
            id,
            name,
            pos,
            motion: Motion::default(),
            last_applied: InputSeq(0),
            inputs: InputQueue::new(self.cfg.input_queue, InputSeq(0)),
            credit: 0,
            token: new_token,
            disconnected_at: None,
        });
        self.tokens.insert(new_token, id);
        self.rebuild_view();
        Ok(Joined {
            id,
            resumed: false,
            took_over: false,
            last_input_seq: InputSeq(0),
        })
    }

    /// A player's connection ended. A clean leave removes the player at once;
    /// otherwise it stays (standing still) for the resume grace.
    pub fn disconnect(&mut self, id: PlayerId, clean: bool) {
        let Some(i) = self.index(id) else { return };
        if clean {
            self.remove_at(i);
            self.rebuild_view();
        } else {
            let p = &mut self.players[i];
            p.disconnected_at = Some(self.tick);
            p.inputs.reset(p.last_applied);
        }
    }

    fn remove_at(&mut self, i: usize) {
        let p = self.players.remove(i);
        self.ids.remove(i);
        self.tokens.remove(&p.token);
    }

    /// Validates and queues an input batch for a connected player.
    pub fn queue_input(&mut self, id: PlayerId, input: &Input) -> InputOutcome {
        match self.index(id) {
            Some(i) if self.players[i].disconnected_at.is_none() => {
                self.players[i].inputs.push(input)
            }
            _ => InputOutcome::default(),
        }
    }

    /// Advances one tick: applies queued inputs within each player's credit and
    /// removes players whose resume grace ran out. Returns (inputs applied, ids
    /// of expired players).
    pub fn advance(&mut self) -> (u64, Vec<PlayerId>) {
        self.tick = self.tick.next();
        let mut applied = 0;
        let mut expired = Vec::new();
        for p in &mut self.players {
            p.credit = (p.credit + 1).min(self.cfg.max_inputs_per_tick);
            let mut last = None;
            while p.credit > 0 {
                let Some((seq, dir)) = p.inputs.pop() else {
                    break;
                };
                p.pos = step(p.pos, dir, &self.cfg.movement);
                p.last_applied = seq;
                p.credit -= 1;
                applied += 1;
                last = Some(dir);
            }
            p.motion.after_tick(last, &self.cfg.movement);
            if let Some(at) = p.disconnected_at
                && self.tick.0.wrapping_sub(at.0) >= self.cfg.resume_grace_ticks
            {
                expired.push(p.id);
            }
        }
        for id in &expired {
            if let Some(i) = self.index(*id) {
                self.remove_at(i);
            }
        }
        self.rebuild_view();
        (applied, expired)
    }

    fn rebuild_view(&mut self) {
        self.view.clear();
        self.view.extend(
            self.players
                .iter()
                .map(|p| EntityState::new(p.id, p.pos, p.motion.velocity())),
        );
    }
}

/// A spawn point spread over the world by hashing the id (deterministic, so tests
/// and replays see the same world).
fn spawn_point(id: PlayerId, cfg: &MoveConfig) -> FixedPos {
    let scale = |h: u32, max: i32| ((u64::from(h) * (max as u64 + 1)) >> 32) as i32;
    let hx = fmix32(id.0);
    let hy = fmix32(hx ^ 0x9e37_79b9);
    FixedPos::new(scale(hx, cfg.world_max.x), scale(hy, cfg.world_max.y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::input::tests::input;
    use ticksync_protocol::MoveDir;

    fn cfg() -> SimConfig {
        SimConfig {
            movement: MoveConfig::from_units(100.0, 30, 1000.0),
            max_players: 3,
            input_queue: 8,
            max_inputs_per_tick: 2,
            resume_grace_ticks: 5,
        }
    }

    fn token(n: u8) -> ResumeToken {
        ResumeToken([n; 16])
    }

    #[test]
    fn players_spawn_apart_and_inside_the_world() {
        let mut w = World::new(SimConfig {
            max_players: 100,
            ..cfg()
        });
        for n in 0..100 {
            w.join(None, token(n), None).unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        for e in w.view() {
            assert_eq!(w.config().movement.clamp(e.pos), e.pos);
            seen.insert(e.pos);
        }
        assert_eq!(seen.len(), 100);
    }

    #[test]
    fn one_input_per_tick_exactly_as_step_says() {
        let mut w = World::new(cfg());
        let j = w.join(None, token(1), None).unwrap();
        let start = w.player(j.id).unwrap().pos;
        w.queue_input(j.id, &input(1, &[(127, 0), (0, 127), (-127, -127)]));
        let m = cfg().movement;
        let mut expect = start;
        for dir in [(127, 0), (0, 127), (-127, -127)] {
            w.advance();
            expect = step(expect, MoveDir::new(dir.0, dir.1), &m);
            assert_eq!(w.player(j.id).unwrap().pos, expect);
        }
        assert_eq!(w.player(j.id).unwrap().last_applied, InputSeq(3));
    }

    #[test]
    fn credit_allows_catch_up_but_never_more_than_two_per_tick() {
        let mut w = World::new(cfg());
        let j = w.join(None, token(1), None).unwrap();
        for _ in 0..10 {
            w.advance(); // idle ticks: credit saturates at 2
        }
        w.queue_input(j.id, &input(1, &[(127, 0); 6]));
        w.advance();
        assert_eq!(w.player(j.id).unwrap().last_applied, InputSeq(2));
        w.advance();
        assert_eq!(w.player(j.id).unwrap().last_applied, InputSeq(3));
    }

    #[test]
    fn same_inputs_same_world() {
        let run = || {
            let mut w = World::new(cfg());
            let a = w.join(None, token(1), None).unwrap().id;
            let b = w.join(None, token(2), None).unwrap().id;
            for t in 0..50u32 {
                let d = ((t * 37) % 255) as i32 - 127;
                w.queue_input(a, &input(t + 1, &[(d as i8, 100)]));
                w.queue_input(b, &input(t + 1, &[(-100, d as i8)]));
                w.advance();
            }
            w.view().to_vec()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn clean_leave_removes_at_once_and_drop_waits_for_grace() {
        let mut w = World::new(cfg());
        let a = w.join(None, token(1), None).unwrap().id;
        let b = w.join(None, token(2), None).unwrap().id;
        w.disconnect(a, true);
        assert!(w.player(a).is_none());
        w.disconnect(b, false);
        for _ in 0..4 {
            let (_, expired) = w.advance();
            assert!(expired.is_empty());
        }
        let (_, expired) = w.advance();
        assert_eq!(expired, [b]);
        assert!(w.is_empty());
    }

    #[test]
    fn resume_keeps_id_position_and_sequence_and_token_is_single_use() {
        let mut w = World::new(cfg());
        let a = w.join(None, token(1), None).unwrap().id;
        w.queue_input(a, &input(1, &[(127, 0), (127, 0)]));
        w.advance();
        w.advance();
        let pos = w.player(a).unwrap().pos;
        w.disconnect(a, false);
        w.advance();
        let j = w.join(None, token(2), Some(token(1))).unwrap();
        assert_eq!((j.id, j.resumed, j.took_over), (a, true, false));
        assert_eq!(j.last_input_seq, InputSeq(2));
        assert_eq!(w.player(a).unwrap().pos, pos);
        assert_eq!(
            w.join(None, token(3), Some(token(1))),
            Err(JoinError::ResumeFailed)
        );
        // Resuming a still-connected session is a takeover.
        let j = w.join(None, token(4), Some(token(2))).unwrap();
        assert!(j.took_over);
    }

    #[test]
    fn full_world_refuses_and_inputs_for_absent_players_are_ignored() {
        let mut w = World::new(cfg());
        for n in 0..3 {
            w.join(None, token(n), None).unwrap();
        }
        assert_eq!(w.join(None, token(9), None), Err(JoinError::ServerFull));
        assert_eq!(
            w.queue_input(PlayerId(77), &input(1, &[(1, 1)])),
            InputOutcome::default()
        );
    }

    #[test]
    fn nobody_leaves_the_world() {
        let mut w = World::new(cfg());
        let a = w.join(None, token(1), None).unwrap().id;
        for t in 0..2000u32 {
            w.queue_input(a, &input(t + 1, &[(-127, 127)]));
            w.advance();
        }
        let p = w.player(a).unwrap().pos;
        assert_eq!(p.0.x, 0);
        assert_eq!(p.0.y, cfg().movement.world_max.y);
    }
}
