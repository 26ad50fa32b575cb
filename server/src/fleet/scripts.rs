//! The Lua scripts that read and change the fleet directory in Redis. Each runs
//! atomically (Redis executes one script at a time), which is what makes a
//! seat reservation exact under any number of concurrent matchmakes: the count
//! and the reservation happen in one step, so no two callers can both take the
//! last seat. Time inside a script is Redis's own `TIME`, so every member
//! judges expiry by one clock.
//!
//! Keys (prefix `P`, `--redis-prefix`, default `ticksync:`), all with a
//! lifetime so a member that vanishes leaves nothing behind:
//!
//! | key | type | holds | lifetime |
//! |---|---|---|---|
//! | `P member:<id>` | hash | url, capacity, taken, players, rooms, draining, heartbeat_ms | TTL, refreshed by each heartbeat |
//! | `P members` | zset | member id → expiry (ms) | entries pruned by score |
//! | `P member-rooms:<id>` | set | the member's room ids | TTL |
//! | `P room:<id>` | hash | member, kind, capacity, taken, locked, draining, info (its `GET /rooms` entry) | TTL |
//! | `P kind:<kind>` | zset | room id → expiry (ms) | entries pruned by score |
//! | `P pending:<room>` | zset | seat id → expires_ms | until its last reservation expires |
//! | `P seat:<room>:<seat>` | string | the reservation (JSON) | until it expires (+10 s, so a late claim learns it expired) |
//! | `P inbox:<id>` | list | create requests for the member | 10 s |
//! | `P reply:<request>` | list | the answer to one create request | 10 s |
//!
//! Seat accounting: a room's `taken` is what its own process counts (players
//! plus seats it holds, `room::Seats`), written by that process only; a seat
//! reserved through the directory and not yet claimed is an entry of
//! `pending:<room>`. Free seats = capacity − taken − live pending entries.
//! A claim moves a seat from `pending` to `taken` in one step. A member's
//! `taken` and `rooms` (what "least loaded" compares) are its own counts as of
//! its last heartbeat plus the seats reserved and rooms opened on it since, so
//! creates between two heartbeats spread over the members.

use redis::Script;

/// The first lines of every script: `now`, Redis's clock in milliseconds;
/// `SEAT_TAIL_MS`, how long a reservation's key outlives its expiry (a claim
/// arriving that late is told "expired", not "already used"); and
/// `live_members(P)`, the ids of the members whose heartbeat has not expired
/// (the expired ones are dropped from `P members` first).
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local SEAT_TAIL_MS = 10000
local function live_members(P)
  redis.call('ZREMRANGEBYSCORE', P .. 'members', '-inf', now)
  return redis.call('ZRANGE', P .. 'members', 0, -1)
end
"#;

/// The heartbeat: registers or refreshes the member and every room it runs,
/// and forgets rooms it no longer runs.
///
/// ARGV: prefix, member, ttl_ms, url, capacity, taken, players, draining
/// (0/1), then 6 per room: id, kind, capacity, taken, locked (0/1: its match
/// is locked, `lock=full`), info (the room's `GET /rooms` entry as JSON).
/// Returns the number of rooms.
const PUBLISH: &str = r#"
local P, m, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local mk = P .. 'member:' .. m
local draining = ARGV[8]
-- A member that started draining stays draining: a heartbeat that was in
-- flight when the drain was marked must not reopen it.
if redis.call('HGET', mk, 'draining') == '1' then draining = '1' end
local n = (#ARGV - 8) / 6
redis.call('HSET', mk, 'url', ARGV[4], 'capacity', ARGV[5], 'taken', ARGV[6],
  'players', ARGV[7], 'draining', draining, 'rooms', n, 'heartbeat_ms', now)
redis.call('PEXPIRE', mk, ttl)
redis.call('ZADD', P .. 'members', now + ttl, m)
redis.call('ZREMRANGEBYSCORE', P .. 'members', '-inf', now)
local mr = P .. 'member-rooms:' .. m
local current = {}
for i = 0, n - 1 do
  local b = 9 + i * 6
  local rid, kind = ARGV[b], ARGV[b + 1]
  current[rid] = true
  local rk = P .. 'room:' .. rid
  redis.call('HSET', rk, 'member', m, 'kind', kind, 'capacity', ARGV[b + 2],
    'taken', ARGV[b + 3], 'locked', ARGV[b + 4], 'info', ARGV[b + 5], 'draining', draining)
  redis.call('PEXPIRE', rk, ttl)
  redis.call('ZADD', P .. 'kind:' .. kind, now + ttl, rid)
  redis.call('SADD', mr, rid)
  redis.call('ZREMRANGEBYSCORE', P .. 'pending:' .. rid, '-inf', now)
end
for _, rid in ipairs(redis.call('SMEMBERS', mr)) do
  if not current[rid] then
    local kind = redis.call('HGET', P .. 'room:' .. rid, 'kind')
    redis.call('DEL', P .. 'room:' .. rid, P .. 'pending:' .. rid)
    if kind then redis.call('ZREM', P .. 'kind:' .. kind, rid) end
    redis.call('SREM', mr, rid)
  end
end
redis.call('PEXPIRE', mr, ttl)
return n
"#;

/// A room the member just opened for a create request, with the requested
/// seat reserved in it (one step, so no other matchmake can fill it first).
///
/// ARGV: prefix, member, ttl_ms, room, kind, capacity, taken, seat,
/// expires_ms, reservation, info. Returns 1, or 0 if the member is draining or
/// unknown (its heartbeat has not registered it, or it expired).
const OPEN: &str = r#"
local P, m, ttl, rid, kind = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local expires = tonumber(ARGV[9])
local md = redis.call('HGET', P .. 'member:' .. m, 'draining')
if md ~= '0' or expires <= now then return 0 end
local rk = P .. 'room:' .. rid
redis.call('HSET', rk, 'member', m, 'kind', kind, 'capacity', ARGV[6],
  'taken', ARGV[7], 'locked', '0', 'info', ARGV[11], 'draining', '0')
redis.call('PEXPIRE', rk, ttl)
redis.call('ZADD', P .. 'kind:' .. kind, now + ttl, rid)
redis.call('SADD', P .. 'member-rooms:' .. m, rid)
redis.call('PEXPIRE', P .. 'member-rooms:' .. m, ttl)
local pk = P .. 'pending:' .. rid
redis.call('ZADD', pk, expires, ARGV[8])
redis.call('PEXPIRE', pk, expires - now + 1000)
redis.call('SET', P .. 'seat:' .. rid .. ':' .. ARGV[8], ARGV[10], 'PX', expires - now + SEAT_TAIL_MS)
-- The member's load counts the room and the seat now, so the next create
-- between two heartbeats goes to another member.
redis.call('HINCRBY', P .. 'member:' .. m, 'taken', 1)
redis.call('HINCRBY', P .. 'member:' .. m, 'rooms', 1)
return 1
"#;

/// The open rooms of a kind on live, non-draining members whose match is not
/// locked, with their seats taken (the owner's count plus live reservations).
///
/// ARGV: prefix, kind. Returns 6 strings per room: id, capacity, taken,
/// member url, member id, live reservations (so the owner can put its own
/// count, fresher than its last heartbeat's, in place of the directory's).
const OPEN_ROOMS: &str = r#"
local P = ARGV[1]
local kk = P .. 'kind:' .. ARGV[2]
redis.call('ZREMRANGEBYSCORE', kk, '-inf', now)
local out = {}
for _, rid in ipairs(redis.call('ZRANGE', kk, 0, -1)) do
  local r = redis.call('HMGET', P .. 'room:' .. rid, 'member', 'capacity', 'taken', 'draining', 'locked')
  if r[1] and r[4] == '0' and r[5] ~= '1' then
    local mem = redis.call('HMGET', P .. 'member:' .. r[1], 'url', 'draining')
    if mem[1] and mem[2] == '0' then
      local pending = redis.call('ZCOUNT', P .. 'pending:' .. rid, '(' .. now, '+inf')
      table.insert(out, rid)
      table.insert(out, r[2])
      table.insert(out, tostring(tonumber(r[3]) + pending))
      table.insert(out, mem[1])
      table.insert(out, r[1])
      table.insert(out, tostring(pending))
    end
  end
end
return out
"#;

/// Reserves one seat in a room, never past its capacity; refuses rooms that
/// are locked or draining or whose member is gone or draining.
///
/// ARGV: prefix, room, seat, expires_ms, reservation. Returns 1 or 0.
const RESERVE: &str = r#"
local P, rid, seat, expires = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if expires <= now then return 0 end
local r = redis.call('HMGET', P .. 'room:' .. rid, 'member', 'capacity', 'taken', 'draining', 'locked')
if not r[1] or r[4] ~= '0' or r[5] == '1' then return 0 end
if redis.call('HGET', P .. 'member:' .. r[1], 'draining') ~= '0' then return 0 end
local pk = P .. 'pending:' .. rid
redis.call('ZREMRANGEBYSCORE', pk, '-inf', now)
if tonumber(r[3]) + redis.call('ZCARD', pk) >= tonumber(r[2]) then return 0 end
redis.call('ZADD', pk, expires, seat)
if redis.call('PTTL', pk) < expires - now + 1000 then
  redis.call('PEXPIRE', pk, expires - now + 1000)
end
redis.call('SET', P .. 'seat:' .. rid .. ':' .. seat, ARGV[5], 'PX', expires - now + SEAT_TAIL_MS)
-- The member's load counts the seat now, not at its next heartbeat (which
-- writes the member's own count again).
redis.call('HINCRBY', P .. 'member:' .. r[1], 'taken', 1)
return 1
"#;

/// Claims a reservation (run by the room's own member once it took the seat
/// locally): the seat moves from `pending` to the room's `taken`.
///
/// ARGV: prefix, room, seat. Returns the reservation (JSON); `EXPIRED` if its
/// time ran out before this claim (its entry in `pending` is past its expiry,
/// or already swept while the seat's own key, which outlives it by a second,
/// is still there, `SEAT_TAIL_MS`); nil if it was claimed already or never
/// made.
const CLAIM: &str = r#"
local P, rid, seat = ARGV[1], ARGV[2], ARGV[3]
local pk = P .. 'pending:' .. rid
local sk = P .. 'seat:' .. rid .. ':' .. seat
local expires = redis.call('ZSCORE', pk, seat)
local data = redis.call('GET', sk)
redis.call('ZREM', pk, seat)
redis.call('DEL', sk)
if not data then return false end
if not expires or tonumber(expires) <= now then return 'expired' end
local rk = P .. 'room:' .. rid
if redis.call('EXISTS', rk) == 1 then redis.call('HINCRBY', rk, 'taken', 1) end
return data
"#;

/// Marks a member and all its rooms draining at once: no seat is handed out
/// there any more. ARGV: prefix, member. Returns the number of rooms.
const DRAIN: &str = r#"
local P, m = ARGV[1], ARGV[2]
local mk = P .. 'member:' .. m
if redis.call('EXISTS', mk) == 0 then return 0 end
redis.call('HSET', mk, 'draining', '1')
local rooms = redis.call('SMEMBERS', P .. 'member-rooms:' .. m)
for _, rid in ipairs(rooms) do
  local rk = P .. 'room:' .. rid
  if redis.call('EXISTS', rk) == 1 then redis.call('HSET', rk, 'draining', '1') end
end
return #rooms
"#;

/// Removes a member and everything it registered (graceful end).
/// ARGV: prefix, member. Returns the number of rooms removed.
const LEAVE: &str = r#"
local P, m = ARGV[1], ARGV[2]
local mr = P .. 'member-rooms:' .. m
local rooms = redis.call('SMEMBERS', mr)
for _, rid in ipairs(rooms) do
  local kind = redis.call('HGET', P .. 'room:' .. rid, 'kind')
  redis.call('DEL', P .. 'room:' .. rid, P .. 'pending:' .. rid)
  if kind then redis.call('ZREM', P .. 'kind:' .. kind, rid) end
end
redis.call('DEL', mr, P .. 'member:' .. m, P .. 'inbox:' .. m)
redis.call('ZREM', P .. 'members', m)
return #rooms
"#;

/// Every live member: 6 strings each: id, url, capacity, taken, draining,
/// rooms. ARGV: prefix.
const MEMBERS: &str = r#"
local P = ARGV[1]
local out = {}
for _, m in ipairs(live_members(P)) do
  local h = redis.call('HMGET', P .. 'member:' .. m, 'url', 'capacity', 'taken', 'draining', 'rooms')
  if h[1] then
    table.insert(out, m)
    for i = 1, 5 do table.insert(out, h[i]) end
  end
end
return out
"#;

/// Every room of every live member: 4 strings each: member, member url, info
/// (JSON, as of the member's last heartbeat), seats taken now (with live
/// reservations). ARGV: prefix.
const ROOMS: &str = r#"
local P = ARGV[1]
local out = {}
for _, m in ipairs(live_members(P)) do
  local url = redis.call('HGET', P .. 'member:' .. m, 'url')
  if url then
    for _, rid in ipairs(redis.call('SMEMBERS', P .. 'member-rooms:' .. m)) do
      local r = redis.call('HMGET', P .. 'room:' .. rid, 'info', 'taken')
      if r[1] then
        local pending = redis.call('ZCOUNT', P .. 'pending:' .. rid, '(' .. now, '+inf')
        table.insert(out, m)
        table.insert(out, url)
        table.insert(out, r[1])
        table.insert(out, tostring(tonumber(r[2]) + pending))
      end
    end
  end
end
return out
"#;

/// What the claim script (`CLAIM`) answers for a reservation that ran out.
pub const EXPIRED: &str = "expired";

/// The scripts, loaded once (EVALSHA, falling back to EVAL after a Redis
/// restart flushed the script cache).
#[derive(Debug)]
pub struct Scripts {
    /// The heartbeat (register, refresh, forget closed rooms).
    pub publish: Script,
    /// Publish a room just opened here with the requested seat reserved.
    pub open: Script,
    /// Open rooms of a kind with their seats taken.
    pub open_rooms: Script,
    /// Reserve one seat, never past capacity.
    pub reserve: Script,
    /// Claim a reservation on the room's member.
    pub claim: Script,
    /// Mark a member and its rooms draining.
    pub drain: Script,
    /// Remove a member and its rooms.
    pub leave: Script,
    /// Every live member.
    pub members: Script,
    /// Every room of every live member.
    pub rooms: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            publish: script(PUBLISH),
            open: script(OPEN),
            open_rooms: script(OPEN_ROOMS),
            reserve: script(RESERVE),
            claim: script(CLAIM),
            drain: script(DRAIN),
            leave: script(LEAVE),
            members: script(MEMBERS),
            rooms: script(ROOMS),
        }
    }
}
