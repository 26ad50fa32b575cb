//! Room kinds: named room templates (capacity, world size, speed, tick rate,
//! interest settings) and the settings a room of a kind runs with.
//!
//! The default kind comes from the top-level flags (`--tick-rate`,
//! `--world-size`, ..., `--room-capacity`); more kinds are given as
//! `--room-kind 'duel:capacity=2,tick_rate=60'` (repeatable, or
//! `TICKSYNC_ROOM_KINDS` separated by `;`), each field not named inheriting the
//! default kind's value.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ticksync_protocol::movement::{MAX_SPEED_PER_TICK, MAX_WORLD_FIXED};
use ticksync_protocol::{FIXED_SCALE, MoveConfig, SessionLimits};

use crate::config::Config;
use crate::sim::SimConfig;

/// Longest kind name, in bytes.
pub const MAX_KIND_NAME_LEN: usize = 32;

/// A room template as an operator writes it (world units, seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct KindSpec {
    /// The kind's name (`[a-z0-9_-]`, 1..=32 bytes).
    pub name: String,
    /// Most players in one room (connected, in their resume grace, or holding a
    /// reserved seat).
    pub capacity: u32,
    /// Side of the square world, in world units.
    pub world_size: f64,
    /// Player speed, in world units per second.
    pub speed: f64,
    /// Simulation ticks per second.
    pub tick_rate: u16,
    /// Interest radius in world units (0: everyone sees everyone).
    pub view_radius: f64,
    /// Interest cell side in world units (0: exact circles).
    pub view_cell: f64,
    /// When a room's match is locked: matchmaking offers it no more.
    pub lock: RoomLock,
}

/// When a room of a kind stops taking newcomers (Colyseus's `lock()`): a
/// locked room is never offered again by `POST /matchmake` (nor to a plain
/// `/ws` client); its players play on, resume, and the room closes when they
/// have left, at `--room-idle-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoomLock {
    /// Never: a seat freed by a leaving player is offered again (an open
    /// world, a drop-in match).
    #[default]
    Never,
    /// Once all its seats were taken (players and reservations): the match
    /// has started with a full roster, and a player who leaves is not
    /// replaced (a duel, a squad match).
    Full,
    /// This long after the room opened: its match has started, full or not
    /// (a lobby that fills for a while, then plays).
    After(Duration),
}

impl FromStr for RoomLock {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(RoomLock::Never),
            "full" => Ok(RoomLock::Full),
            other => match humantime::parse_duration(other) {
                Ok(d) if !d.is_zero() => Ok(RoomLock::After(d)),
                _ => Err(format!(
                    "must be never, full or a duration above 0 (e.g. 30s), got {s:?}"
                )),
            },
        }
    }
}

impl fmt::Display for RoomLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomLock::Never => f.write_str("never"),
            RoomLock::Full => f.write_str("full"),
            RoomLock::After(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

/// Fields of a `--room-kind` value that are not given inherit these.
impl KindSpec {
    /// The default kind: the top-level flags.
    pub fn from_config(config: &Config) -> KindSpec {
        KindSpec {
            name: config.default_kind.clone(),
            capacity: config.room_capacity,
            world_size: config.world_size,
            speed: config.speed,
            tick_rate: config.tick_rate,
            view_radius: config.view_radius,
            view_cell: config.view_cell,
            lock: RoomLock::Never,
        }
    }

    /// Checks ranges; errors name the setting as `setting(field)` returns it.
    pub fn validate(&self, setting: impl Fn(&str) -> String) -> Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= MAX_KIND_NAME_LEN
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(format!(
                "{} must be 1..={MAX_KIND_NAME_LEN} of a-z 0-9 _ -, got {:?}",
                setting("name"),
                self.name
            ));
        }
        if self.capacity == 0 {
            return Err(format!("{} must be at least 1", setting("capacity")));
        }
        let max_world = f64::from(MAX_WORLD_FIXED / FIXED_SCALE);
        if !(1..=240).contains(&self.tick_rate) {
            return Err(format!(
                "{} must be 1..=240, got {}",
                setting("tick_rate"),
                self.tick_rate
            ));
        }
        if !(self.world_size.is_finite() && self.world_size >= 1.0 && self.world_size <= max_world)
        {
            return Err(format!(
                "{} must be 1..={max_world}, got {}",
                setting("world_size"),
                self.world_size
            ));
        }
        let max_speed =
            f64::from(MAX_SPEED_PER_TICK) * f64::from(self.tick_rate) / f64::from(FIXED_SCALE);
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= max_speed) {
            return Err(format!(
                "{} must be > 0 and <= {max_speed}, got {}",
                setting("speed"),
                self.speed
            ));
        }
        if !(self.view_radius.is_finite()
            && self.view_radius >= 0.0
            && self.view_radius <= max_world)
        {
            return Err(format!(
                "{} must be 0..={max_world}, got {}",
                setting("view_radius"),
                self.view_radius
            ));
        }
        if !(self.view_cell.is_finite()
            && self.view_cell >= 0.0
            && (self.view_cell <= self.view_radius || self.view_radius == 0.0))
        {
            return Err(format!(
                "{} must be 0..={} (the view radius), got {}",
                setting("view_cell"),
                self.view_radius,
                self.view_cell
            ));
        }
        Ok(())
    }

    /// The fixed-point movement constants.
    pub fn movement(&self) -> MoveConfig {
        MoveConfig::from_units(self.speed, u32::from(self.tick_rate), self.world_size)
    }

    /// The view radius in grid steps (0: unlimited).
    pub fn view_radius_fixed(&self) -> u32 {
        (self.view_radius * f64::from(FIXED_SCALE)).round() as u32
    }

    /// The interest cell side in grid steps (0: exact per-client circles).
    pub fn view_cell_fixed(&self) -> u32 {
        (self.view_cell * f64::from(FIXED_SCALE)).round() as u32
    }

    /// A duration in whole ticks of this kind (at least 1).
    pub fn ticks(&self, d: std::time::Duration) -> u32 {
        ((d.as_secs_f64() * f64::from(self.tick_rate)).ceil() as u32).max(1)
    }
}

/// A `--room-kind` value before the default kind fills its gaps:
/// `name:field=value,field=value` (fields: capacity, world_size, speed,
/// tick_rate, view_radius, view_cell, lock).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KindArg {
    /// The kind's name.
    pub name: String,
    fields: Vec<(String, String)>,
}

impl FromStr for KindArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, rest) = s.split_once(':').unwrap_or((s, ""));
        let mut fields = Vec::new();
        for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected field=value in {pair:?}"))?;
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(KindArg {
            name: name.trim().to_string(),
            fields,
        })
    }
}

impl KindArg {
    /// The kind this describes, with `base`'s values where a field is not given.
    pub fn resolve(&self, base: &KindSpec) -> Result<KindSpec, String> {
        let mut spec = KindSpec {
            name: self.name.clone(),
            ..base.clone()
        };
        let setting = |f: &str| format!("--room-kind {}: {f}", self.name);
        for (k, v) in &self.fields {
            let bad = || format!("{} is not a valid number: {v:?}", setting(k));
            match k.as_str() {
                "capacity" => spec.capacity = v.parse().map_err(|_| bad())?,
                "world_size" => spec.world_size = v.parse().map_err(|_| bad())?,
                "speed" => spec.speed = v.parse().map_err(|_| bad())?,
                "tick_rate" => spec.tick_rate = v.parse().map_err(|_| bad())?,
                "view_radius" => spec.view_radius = v.parse().map_err(|_| bad())?,
                "view_cell" => spec.view_cell = v.parse().map_err(|_| bad())?,
                "lock" => spec.lock = v.parse().map_err(|e| format!("{} {e}", setting(k)))?,
                other => {
                    return Err(format!(
                        "--room-kind {}: unknown field {other:?} (capacity, world_size, speed, tick_rate, view_radius, view_cell, lock)",
                        self.name
                    ));
                }
            }
        }
        spec.validate(setting)?;
        Ok(spec)
    }
}

/// Everything a room of one kind runs with, in ticks and grid steps.
#[derive(Debug, Clone)]
pub struct RoomKind {
    /// The template.
    pub spec: KindSpec,
    /// The simulation's constants.
    pub sim: SimConfig,
    /// Ticks a client's outbound queue may stay full before it is closed (4002).
    pub stall_ticks: u32,
    /// Ticks a room stays open with no players and no reserved seats.
    pub idle_ticks: u32,
    /// Capacity of the room's command queue.
    pub command_queue: usize,
    /// The limits `Welcome` announces (the server's connection settings).
    pub limits: SessionLimits,
}

impl RoomKind {
    /// The kind `spec` under the session settings of `config`; `limits` is what
    /// its `Welcome` announces ([`Config::session_limits_at`]).
    pub fn new(spec: KindSpec, config: &Config, limits: SessionLimits) -> RoomKind {
        let sim = SimConfig {
            movement: spec.movement(),
            max_players: spec.capacity as usize,
            input_queue: config.input_queue,
            max_inputs_per_tick: 2,
            resume_grace_ticks: spec.ticks(config.resume_grace),
        };
        RoomKind {
            stall_ticks: spec.ticks(config.stall_timeout),
            idle_ticks: spec.ticks(config.room_idle_timeout),
            // Enough for every player's inputs of a few ticks plus joins; a
            // storm beyond it is refused (counted as server_busy), never queued.
            command_queue: (spec.capacity as usize)
                .saturating_mul(16)
                .clamp(256, 16 * 1024),
            limits,
            sim,
            spec,
        }
    }

    /// The duration of one tick.
    pub fn tick_period(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / f64::from(self.spec.tick_rate))
    }
}

/// The kinds a server offers; the first is the default kind.
#[derive(Debug, Clone)]
pub struct Kinds(Vec<Arc<RoomKind>>);

impl Kinds {
    /// The default kind from the top-level flags plus every `--room-kind`; a
    /// `--room-kind` named like the default kind replaces its fields.
    pub fn from_config(config: &Config) -> Result<Kinds, String> {
        let mut base = KindSpec::from_config(config);
        base.validate(|f| default_flag(f).to_string())?;
        let default_name = base.name.clone();
        let mut overrides = config.room_kinds.iter().filter(|a| a.name == default_name);
        if let Some(arg) = overrides.next() {
            base = arg.resolve(&base)?;
        }
        if overrides.next().is_some() {
            return Err(format!("--room-kind {default_name}: given twice"));
        }
        let mut all = vec![base.clone()];
        for arg in config.room_kinds.iter().filter(|a| a.name != base.name) {
            if all.iter().any(|k| k.name == arg.name) {
                return Err(format!("--room-kind {}: given twice", arg.name));
            }
            all.push(arg.resolve(&base)?);
        }
        // Rate limits are per connection, whatever its room: derived from the
        // fastest kind.
        let fastest = all
            .iter()
            .map(|s| s.tick_rate)
            .max()
            .unwrap_or(config.tick_rate);
        let limits = config.session_limits_at(fastest);
        Ok(Kinds(
            all.into_iter()
                .map(|s| Arc::new(RoomKind::new(s, config, limits)))
                .collect(),
        ))
    }

    /// The kind plain clients get.
    pub fn default_kind(&self) -> &Arc<RoomKind> {
        &self.0[0]
    }

    /// A kind by name.
    pub fn get(&self, name: &str) -> Option<&Arc<RoomKind>> {
        self.0.iter().find(|k| k.spec.name == name)
    }

    /// Every kind, the default first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RoomKind>> {
        self.0.iter()
    }
}

/// The top-level flag behind a field of the default kind.
fn default_flag(field: &str) -> &'static str {
    match field {
        "name" => "--default-kind",
        "capacity" => "--room-capacity",
        "world_size" => "--world-size",
        "speed" => "--speed",
        "tick_rate" => "--tick-rate",
        "view_radius" => "--view-radius",
        "view_cell" => "--view-cell",
        _ => "a room kind setting",
    }
}

impl fmt::Display for KindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:capacity={},world_size={},speed={},tick_rate={},view_radius={},view_cell={},lock={}",
            self.name,
            self.capacity,
            self.world_size,
            self.speed,
            self.tick_rate,
            self.view_radius,
            self.view_cell,
            self.lock
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn kinds_inherit_the_default_kind_and_name_their_bad_settings() {
        let c = Config::parse_from([
            "x",
            "--room-capacity",
            "64",
            "--room-kind",
            "duel:capacity=2,tick_rate=60",
            "--room-kind",
            "arena:view_radius=100,view_cell=50",
        ]);
        let kinds = Kinds::from_config(&c).unwrap();
        let names: Vec<_> = kinds.iter().map(|k| k.spec.name.as_str()).collect();
        assert_eq!(names, ["default", "duel", "arena"]);
        let duel = &kinds.get("duel").unwrap().spec;
        assert_eq!((duel.capacity, duel.tick_rate, duel.speed), (2, 60, 100.0));
        let arena = &kinds.get("arena").unwrap().spec;
        assert_eq!((arena.capacity, arena.view_radius), (64, 100.0));
        assert_eq!(kinds.default_kind().sim.max_players, 64);

        for (arg, expect) in [
            (
                "duel:capacity=0",
                "--room-kind duel: capacity must be at least 1",
            ),
            (
                "duel:tick_rate=0",
                "--room-kind duel: tick_rate must be 1..=240",
            ),
            (
                "duel:speed=fast",
                "--room-kind duel: speed is not a valid number",
            ),
            (
                "duel:colour=red",
                "--room-kind duel: unknown field \"colour\"",
            ),
            ("Duel!", "--room-kind Duel!: name must be"),
            (
                "a:view_radius=10,view_cell=20",
                "--room-kind a: view_cell must be",
            ),
            (
                "duel:lock=start",
                "--room-kind duel: lock must be never, full or a duration above 0 (e.g. 30s), got \"start\"",
            ),
        ] {
            let c = Config::parse_from(["x", "--room-kind", arg]);
            let e = Kinds::from_config(&c).unwrap_err();
            assert!(e.starts_with(expect), "{arg}: {e}");
        }
        let c = Config::parse_from(["x", "--room-capacity", "0"]);
        let e = Kinds::from_config(&c).unwrap_err();
        assert!(e.starts_with("--room-capacity must be at least 1"), "{e}");
        let c = Config::parse_from(["x", "--room-kind", "a", "--room-kind", "a"]);
        assert!(Kinds::from_config(&c).unwrap_err().contains("given twice"));
    }

    #[test]
    fn a_kind_named_like_the_default_replaces_its_fields() {
        let c = Config::parse_from(["x", "--room-kind", "default:capacity=8"]);
        let kinds = Kinds::from_config(&c).unwrap();
        assert_eq!(kinds.iter().count(), 1);
        assert_eq!(kinds.default_kind().spec.capacity, 8);
    }

    #[test]
    fn the_environment_lists_kinds_separated_by_semicolons() {
        let arg: KindArg = "duel:capacity=2, tick_rate=60, lock=full".parse().unwrap();
        assert_eq!(arg.name, "duel");
        let spec = arg
            .resolve(&KindSpec::from_config(&Config::default()))
            .unwrap();
        assert_eq!(
            spec.to_string(),
            "duel:capacity=2,world_size=1000,speed=100,tick_rate=60,view_radius=0,view_cell=0,lock=full"
        );
        assert_eq!(
            spec.to_string().parse::<KindArg>().unwrap().resolve(&spec),
            Ok(spec)
        );
        let lobby: KindArg = "lobby:lock=1m 30s".parse().unwrap();
        let lobby = lobby
            .resolve(&KindSpec::from_config(&Config::default()))
            .unwrap();
        assert_eq!(lobby.lock, RoomLock::After(Duration::from_secs(90)));
        assert!(lobby.to_string().ends_with(",lock=1m 30s"), "{lobby}");
        let again: KindArg = lobby.to_string().parse().unwrap();
        assert_eq!(again.resolve(&lobby), Ok(lobby));
        assert!("0s".parse::<RoomLock>().is_err());
    }
}
