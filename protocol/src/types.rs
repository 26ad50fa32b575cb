//! Newtypes that give the integers on the wire their meaning and units.
//!
//! Positions are fixed-point: one world unit is [`FIXED_SCALE`] grid steps, so the
//! state a snapshot carries is exactly the server's state and every client, in any
//! language, reproduces movement bit for bit with integer arithmetic.

use glam::{IVec2, Vec2};

/// Grid steps per world unit (positions are multiples of 1/16 unit).
pub const FIXED_SCALE: i32 = 16;

/// Identifies a player and the entity that represents it. Never 0 on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PlayerId(pub u32);

/// A simulation tick number. Tick 0 is the server's first tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tick(pub u32);

impl Tick {
    /// The tick after this one (wrapping is not expected: 2^32 ticks at 30 Hz is 4.5 years).
    pub fn next(self) -> Tick {
        Tick(self.0.wrapping_add(1))
    }
}

/// A client's input sequence number. A session's first input is 1, so 0 in
/// `Welcome`/`Snapshot` means "no input processed yet".
///
/// Numbers wrap: 0 follows 2^32 − 1 and is then an ordinary number. They are
/// compared with serial-number arithmetic (RFC 1982, docs/PROTOCOL.md section
/// 11), which is why the type has no `<`: `b.is_after(a)` holds when `b` is 1 to
/// 2^31 − 1 steps after `a`, across the wrap.
///
/// ```
/// use ticksync_protocol::InputSeq;
/// let last = InputSeq(u32::MAX);
/// assert_eq!(last.next(), InputSeq(0));
/// assert!(last.next().is_after(last));
/// assert!(!last.is_after(last.next()));
/// assert_eq!(InputSeq(2).since(last), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InputSeq(pub u32);

impl InputSeq {
    /// The sequence number after this one.
    pub fn next(self) -> InputSeq {
        self.plus(1)
    }

    /// The sequence number `n` after this one.
    pub fn plus(self, n: u32) -> InputSeq {
        InputSeq(self.0.wrapping_add(n))
    }

    /// How many steps `self` is after `earlier`: `(self - earlier) mod 2^32` as
    /// a signed 32-bit number, negative when `self` comes first.
    pub fn since(self, earlier: InputSeq) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// Whether `self` comes after `other` (1 to 2^31 − 1 steps later). Two
    /// numbers exactly 2^31 apart come after neither.
    pub fn is_after(self, other: InputSeq) -> bool {
        self.since(other) > 0
    }
}

/// A position on the fixed-point grid, in 1/[`FIXED_SCALE`] world units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FixedPos(pub IVec2);

impl FixedPos {
    /// A position from grid coordinates.
    pub const fn new(x: i32, y: i32) -> FixedPos {
        FixedPos(IVec2::new(x, y))
    }

    /// The position in world units (for rendering; never fed back into the simulation).
    pub fn to_world(self) -> Vec2 {
        self.0.as_vec2() / FIXED_SCALE as f32
    }

    /// The nearest grid position to a point in world units.
    pub fn from_world(v: Vec2) -> FixedPos {
        FixedPos((v * FIXED_SCALE as f32).round().as_ivec2())
    }
}

/// A quantized movement direction: each axis in `-127..=127` (x grows right, y grows
/// down). The movement rule normalizes vectors longer than 127, so any value is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MoveDir {
    /// Horizontal component, `-127..=127`.
    pub x: i8,
    /// Vertical component, `-127..=127`.
    pub y: i8,
}

impl MoveDir {
    /// Standing still.
    pub const ZERO: MoveDir = MoveDir { x: 0, y: 0 };

    /// A direction from its components.
    pub const fn new(x: i8, y: i8) -> MoveDir {
        MoveDir { x, y }
    }

    /// The closest quantized direction to a unit-or-shorter float vector.
    pub fn from_vec2(v: Vec2) -> MoveDir {
        let v = if v.length_squared() > 1.0 {
            v.normalize()
        } else {
            v
        };
        let q = (v * 127.0)
            .round()
            .clamp(Vec2::splat(-127.0), Vec2::splat(127.0));
        MoveDir::new(q.x as i8, q.y as i8)
    }
}

/// An opaque, single-use session resume token (16 random bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResumeToken(pub [u8; 16]);

impl std::fmt::Debug for ResumeToken {
    // Tokens are credentials: never print them whole in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResumeToken({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// Checksum of the entity set a client should hold after applying a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Checksum(pub u32);
