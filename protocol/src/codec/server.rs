//! Server messages: `Welcome`, `Snapshot` (split into a per-client header and a
//! shareable body), `Pong`, `Error` (docs/PROTOCOL.md §6).

use super::*;
use crate::movement::{MAX_SPEED_PER_TICK, MAX_WORLD_FIXED};

const SERVER_WELCOME: u32 = 0;
const SERVER_SNAPSHOT: u32 = 1;
const SERVER_PONG: u32 = 2;
const SERVER_ERROR: u32 = 3;

/// Encodes a server message, appending to `out`.
///
/// An error text longer than [`MAX_ERROR_TEXT_LEN`] bytes is cut at a character
/// boundary, so the result always decodes.
pub fn encode_server_into(msg: &ServerMsg, out: &mut Vec<u8>) {
    match msg {
        ServerMsg::Snapshot(s) => {
            encode_snapshot_header(s.ack_input, out);
            encode_snapshot_body(&s.body, out);
        }
        ServerMsg::Welcome(w) => with_encoder(out, |e| {
            put(e, &SERVER_WELCOME);
            put(e, &w.player_id.0);
            put(e, &w.tick.0);
            put(e, &w.tick_rate);
            put(e, &w.movement.speed_per_tick);
            put(e, &w.movement.world_max.x);
            put(e, &w.movement.world_max.y);
            put(e, &w.fixed_scale);
            put(e, &w.view_radius);
            put(e, &w.resume_token.0);
            put(e, &w.resumed);
            put(e, &w.last_input_seq.0);
            put(e, &w.limits.idle_timeout_ms);
            put(e, &w.limits.rate_limit);
            put(e, &w.limits.rate_burst);
            put(e, &w.limits.resume_grace_ms);
            put(e, &w.limits.input_queue);
        }),
        ServerMsg::Pong {
            client_time_us,
            server_tick,
        } => with_encoder(out, |e| {
            put(e, &SERVER_PONG);
            put(e, client_time_us);
            put(e, &server_tick.0);
        }),
        ServerMsg::Error(err) => with_encoder(out, |e| {
            put(e, &SERVER_ERROR);
            put(e, &err.code.to_u16());
            put(e, &truncate_utf8(&err.message, MAX_ERROR_TEXT_LEN));
        }),
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encodes a server message into a new buffer.
pub fn encode_server(msg: &ServerMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_server_into(msg, &mut out);
    out
}

/// Writes the per-client head of a `Snapshot` message: the message tag and the
/// acknowledged input. A complete message is this head followed by the bytes of
/// [`encode_snapshot_body`], so one encoded body can be shared by many clients.
pub fn encode_snapshot_header(ack_input: InputSeq, out: &mut Vec<u8>) {
    with_encoder(out, |e| {
        put(e, &SERVER_SNAPSHOT);
        put(e, &ack_input.0);
    });
}

/// The bincode-based writer of a snapshot body, kept as the reference the
/// hand-written [`encode_snapshot_body`] is checked against byte for byte (tests,
/// benches). Same contract as [`encode_snapshot_body`].
#[doc(hidden)]
pub fn encode_snapshot_body_bincode(body: &SnapshotBody, out: &mut Vec<u8>) {
    debug_assert!(body.baseline.is_none_or(|b| b < body.tick));
    with_encoder(out, |e| {
        put(e, &body.tick.0);
        put(e, &body.baseline_age());
        put_ids(e, body.removed.iter().map(|id| (*id, ())), |_, _| {});
        put_ids(e, body.spawned.iter().map(|s| (s.id, s)), |e, s| {
            put_ivec(e, s.pos.0);
            put_ivec(e, s.vel);
        });
        put_ids(e, body.changed.iter().map(|c| (c.id, c.delta)), put_ivec);
        put_ids(e, body.corrected.iter().map(|c| (c.id, c.delta)), put_ivec);
        put(e, &body.checksum.0.to_le_bytes());
    });
}

#[inline]
fn put_ivec(e: &mut Enc<'_>, v: IVec2) {
    put(e, &v.x);
    put(e, &v.y);
}

#[inline]
fn put_ids<T>(
    e: &mut Enc<'_>,
    items: impl ExactSizeIterator<Item = (PlayerId, T)>,
    mut put_item: impl FnMut(&mut Enc<'_>, T),
) {
    put(e, &(items.len() as u64));
    let mut prev = 0u32;
    for (id, item) in items {
        debug_assert!(id.0 > prev, "snapshot ids must be non-zero and increasing");
        put(e, &id.0.wrapping_sub(prev));
        prev = id.0;
        put_item(e, item);
    }
}

/// The head of a `Snapshot` message — `ack_input` and `tick` — read without
/// decoding the body: for a client that only counts snapshots (a load generator)
/// and still wants to acknowledge ticks. `None` if `bytes` is not a snapshot or
/// ends before `tick`; nothing after `tick` is checked.
///
/// ```
/// use ticksync_protocol::{codec, InputSeq, Tick};
/// assert_eq!(codec::snapshot_head(&[0x01, 0x07, 0xfb, 0xe8, 0x03, 0xff]), Some((InputSeq(7), Tick(1000))));
/// assert_eq!(codec::snapshot_head(&[0x02, 0x07, 0x01]), None); // a Pong
/// ```
pub fn snapshot_head(bytes: &[u8]) -> Option<(InputSeq, Tick)> {
    let mut dec = DecoderImpl::new(SliceReader(bytes), STANDARD, ());
    match get::<u32>(&mut dec, "ServerMsg tag") {
        Ok(SERVER_SNAPSHOT) => {
            let ack = get::<u32>(&mut dec, "Snapshot.ack_input").ok()?;
            let tick = get::<u32>(&mut dec, "Snapshot.tick").ok()?;
            Some((InputSeq(ack), Tick(tick)))
        }
        _ => None,
    }
}

/// Decodes one server message of at most [`MAX_SERVER_MSG_LEN`] bytes.
///
/// A message whose type tag this version does not know yields
/// [`DecodeError::UnknownTag`]; clients must skip it rather than fail.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_all(
        bytes,
        ("server", MAX_SERVER_MSG_LEN),
        |d| {
            let tag: u32 = get(d, "the tag")?;
            Ok(match tag {
                SERVER_WELCOME => ServerMsg::Welcome(decode_welcome(d)?),
                SERVER_SNAPSHOT => ServerMsg::Snapshot(Snapshot {
                    ack_input: InputSeq(get(d, "Snapshot.ack_input")?),
                    body: decode_body(d)?,
                }),
                SERVER_PONG => ServerMsg::Pong {
                    client_time_us: get(d, "Pong.client_time_us")?,
                    server_tick: Tick(get(d, "Pong.server_tick")?),
                },
                SERVER_ERROR => ServerMsg::Error(ErrorMsg {
                    code: ErrorCode::from_u16(get(d, "Error.code")?),
                    message: get_string(d, "Error.message", MAX_ERROR_TEXT_LEN)?,
                }),
                tag => {
                    return Err(DecodeError::UnknownTag {
                        direction: "server",
                        tag,
                    });
                }
            })
        },
        ServerMsg::name,
    )
}

fn decode_welcome(d: &mut Dec<'_>) -> Result<Welcome, DecodeError> {
    let w = Welcome {
        player_id: PlayerId(get(d, "Welcome.player_id")?),
        tick: Tick(get(d, "Welcome.tick")?),
        tick_rate: get(d, "Welcome.tick_rate")?,
        movement: MoveConfig {
            speed_per_tick: get(d, "Welcome.speed_per_tick")?,
            world_max: IVec2::new(
                get(d, "Welcome.world_max_x")?,
                get(d, "Welcome.world_max_y")?,
            ),
        },
        fixed_scale: get(d, "Welcome.fixed_scale")?,
        view_radius: get(d, "Welcome.view_radius")?,
        resume_token: ResumeToken(get(d, "Welcome.resume_token")?),
        resumed: get(d, "Welcome.resumed")?,
        last_input_seq: InputSeq(get(d, "Welcome.last_input_seq")?),
        limits: SessionLimits {
            idle_timeout_ms: get(d, "Welcome.idle_timeout_ms")?,
            rate_limit: get(d, "Welcome.rate_limit")?,
            rate_burst: get(d, "Welcome.rate_burst")?,
            resume_grace_ms: get(d, "Welcome.resume_grace_ms")?,
            input_queue: get(d, "Welcome.input_queue")?,
        },
    };
    // Out-of-range constants would make `step` overflow on the client.
    let m = &w.movement;
    for (field, value, max) in [
        (
            "Welcome.speed_per_tick",
            m.speed_per_tick,
            MAX_SPEED_PER_TICK,
        ),
        ("Welcome.world_max_x", m.world_max.x, MAX_WORLD_FIXED),
        ("Welcome.world_max_y", m.world_max.y, MAX_WORLD_FIXED),
    ] {
        if !(0..=max).contains(&value) {
            return Err(DecodeError::invalid(
                field,
                format!("must be 0 to {max}, got {value}"),
            ));
        }
    }
    Ok(w)
}

fn decode_body(d: &mut Dec<'_>) -> Result<SnapshotBody, DecodeError> {
    let tick = Tick(get(d, "Snapshot.tick")?);
    let age: u32 = get(d, "Snapshot.baseline_age")?;
    let baseline = match age {
        0 => None,
        age if age > tick.0 => {
            return Err(DecodeError::invalid(
                "Snapshot.baseline_age",
                format!(
                    "must not exceed the tick ({}): {age} names a baseline before tick 0",
                    tick.0
                ),
            ));
        }
        age => Some(Tick(tick.0 - age)),
    };
    let removed = get_ids(d, "Snapshot.removed", 1, |id, _| Ok(id))?;
    let spawned = get_ids(d, "Snapshot.spawned", 5, |id, d| {
        Ok(EntityState {
            id,
            pos: FixedPos(get_ivec(d, "Snapshot.spawned")?),
            vel: get_ivec(d, "Snapshot.spawned")?,
        })
    })?;
    let changed = get_ids(d, "Snapshot.changed", 3, |id, d| {
        Ok(EntityDelta {
            id,
            delta: get_ivec(d, "Snapshot.changed")?,
        })
    })?;
    let corrected = get_ids(d, "Snapshot.corrected", 3, |id, d| {
        Ok(EntityDelta {
            id,
            delta: get_ivec(d, "Snapshot.corrected")?,
        })
    })?;
    let checksum = Checksum(u32::from_le_bytes(get(d, "Snapshot.checksum")?));
    let not_empty = [
        ("Snapshot.removed", removed.is_empty()),
        ("Snapshot.changed", changed.is_empty()),
        ("Snapshot.corrected", corrected.is_empty()),
    ]
    .into_iter()
    .find(|(_, empty)| !empty);
    if baseline.is_none()
        && let Some((field, _)) = not_empty
    {
        return Err(DecodeError::invalid(
            field,
            "must be empty in a full snapshot (baseline_age 0)",
        ));
    }
    Ok(SnapshotBody {
        tick,
        baseline,
        removed,
        spawned,
        changed,
        corrected,
        checksum,
    })
}

#[inline]
fn get_ivec(d: &mut Dec<'_>, field: &'static str) -> Result<IVec2, DecodeError> {
    Ok(IVec2::new(get(d, field)?, get(d, field)?))
}

/// Reads the id-gap list `field` whose entries take at least `min_item_bytes` each.
#[inline]
fn get_ids<T>(
    d: &mut Dec<'_>,
    field: &'static str,
    min_item_bytes: usize,
    mut get_item: impl FnMut(PlayerId, &mut Dec<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = get_len(d, field, (usize::MAX, "entries"), min_item_bytes)?;
    let mut out = Vec::with_capacity(n);
    let mut prev = 0u32;
    for _ in 0..n {
        let gap: u32 = get(d, field)?;
        if gap == 0 {
            return Err(DecodeError::invalid(
                field,
                "ids must be strictly increasing and non-zero (an id gap of 0)",
            ));
        }
        let id = prev.checked_add(gap).ok_or_else(|| {
            DecodeError::invalid(field, format!("id {prev} + gap {gap} exceeds 2^32 - 1"))
        })?;
        prev = id;
        out.push(get_item(PlayerId(id), d)?);
    }
    Ok(out)
}
