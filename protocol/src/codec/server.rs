//! Server messages: `Welcome`, `Snapshot` (split into a per-client header and a
//! shareable body), `Pong`, `Error` (docs/PROTOCOL.md §6).

use super::*;

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

/// Writes the shareable part of a `Snapshot` message.
///
/// The body's lists must be sorted by id with unique, non-zero ids (as
/// [`crate::snapshot`] builds them), and a delta's baseline must be older than its
/// tick; ids are written as gaps from the previous one.
pub fn encode_snapshot_body(body: &SnapshotBody, out: &mut Vec<u8>) {
    debug_assert!(body.baseline.is_none_or(|b| b < body.tick));
    // Typical sizes: 1-byte gaps, small deltas, positions of up to 3 bytes.
    out.reserve(16 + body.removed.len() + 7 * body.spawned.len() + 3 * body.changed.len());
    with_encoder(out, |e| {
        put(e, &body.tick.0);
        let age = body.baseline.map_or(0, |b| body.tick.0.wrapping_sub(b.0));
        put(e, &age);
        put_ids(e, body.removed.iter().map(|id| (*id, ())), |_, _| {});
        put_ids(e, body.spawned.iter().map(|s| (s.id, s.pos.0)), put_ivec);
        put_ids(e, body.changed.iter().map(|c| (c.id, c.delta)), put_ivec);
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

/// Decodes one server message of at most [`MAX_SERVER_MSG_LEN`] bytes.
///
/// A message whose type tag this version does not know yields
/// [`DecodeError::UnknownTag`]; clients must skip it rather than fail.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode_all(bytes, MAX_SERVER_MSG_LEN, |d| {
        let tag: u32 = get(d)?;
        Ok(match tag {
            SERVER_WELCOME => ServerMsg::Welcome(decode_welcome(d)?),
            SERVER_SNAPSHOT => ServerMsg::Snapshot(Snapshot {
                ack_input: InputSeq(get(d)?),
                body: decode_body(d)?,
            }),
            SERVER_PONG => ServerMsg::Pong {
                client_time_us: get(d)?,
                server_tick: Tick(get(d)?),
            },
            SERVER_ERROR => ServerMsg::Error(ErrorMsg {
                code: ErrorCode::from_u16(get(d)?),
                message: get_string(d, MAX_ERROR_TEXT_LEN)?,
            }),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ServerMsg",
                    tag,
                });
            }
        })
    })
}

fn decode_welcome(d: &mut Dec<'_>) -> Result<Welcome, DecodeError> {
    let w = Welcome {
        player_id: PlayerId(get(d)?),
        tick: Tick(get(d)?),
        tick_rate: get(d)?,
        movement: MoveConfig {
            speed_per_tick: get(d)?,
            world_max: IVec2::new(get(d)?, get(d)?),
        },
        fixed_scale: get(d)?,
        view_radius: get(d)?,
        resume_token: ResumeToken(get(d)?),
        resumed: get(d)?,
        last_input_seq: InputSeq(get(d)?),
    };
    // Out-of-range constants would make `step` overflow on the client.
    if !w.movement.is_valid() {
        return Err(DecodeError::Invalid(format!(
            "movement constants out of range: {:?}",
            w.movement
        )));
    }
    Ok(w)
}

fn decode_body(d: &mut Dec<'_>) -> Result<SnapshotBody, DecodeError> {
    let tick = Tick(get(d)?);
    let age: u32 = get(d)?;
    let baseline = match age {
        0 => None,
        age if age > tick.0 => {
            return Err(DecodeError::Invalid(format!(
                "baseline age {age} reaches before tick 0 (tick {})",
                tick.0
            )));
        }
        age => Some(Tick(tick.0 - age)),
    };
    let removed = get_ids(d, 1, |id, _| Ok(id))?;
    let spawned = get_ids(d, 3, |id, d| {
        Ok(EntityState {
            id,
            pos: FixedPos(get_ivec(d)?),
        })
    })?;
    let changed = get_ids(d, 3, |id, d| {
        Ok(EntityDelta {
            id,
            delta: get_ivec(d)?,
        })
    })?;
    let checksum = Checksum(u32::from_le_bytes(get(d)?));
    if baseline.is_none() && !(removed.is_empty() && changed.is_empty()) {
        return Err(DecodeError::Invalid(
            "a full snapshot cannot remove or change entities".into(),
        ));
    }
    Ok(SnapshotBody {
        tick,
        baseline,
        removed,
        spawned,
        changed,
        checksum,
    })
}

#[inline]
fn get_ivec(d: &mut Dec<'_>) -> Result<IVec2, DecodeError> {
    Ok(IVec2::new(get(d)?, get(d)?))
}

/// Reads an id-gap list whose entries take at least `min_item_bytes` each.
#[inline]
fn get_ids<T>(
    d: &mut Dec<'_>,
    min_item_bytes: usize,
    mut get_item: impl FnMut(PlayerId, &mut Dec<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = get_len(d, usize::MAX, min_item_bytes)?;
    let mut out = Vec::with_capacity(n);
    let mut prev = 0u32;
    for _ in 0..n {
        let gap: u32 = get(d)?;
        if gap == 0 {
            return Err(DecodeError::Invalid(
                "entity ids must be non-zero and strictly increasing".into(),
            ));
        }
        let id = prev
            .checked_add(gap)
            .ok_or_else(|| DecodeError::Invalid("entity id overflows u32".into()))?;
        prev = id;
        out.push(get_item(PlayerId(id), d)?);
    }
    Ok(out)
}
