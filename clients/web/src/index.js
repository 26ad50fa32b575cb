// @ts-check
/**
 * @module ticksync-client
 * Ticksync protocol v2 client library (docs/PROTOCOL.md): the codec, the movement
 * rule and checksum, client world reconstruction (positions and velocities),
 * prediction, interpolation and a sans-I/O session that ties them together. No
 * runtime dependencies.
 */

export { DecodeError, DecodeErrorKind, EncodeError, Reader, Writer, fromHex, toHex } from "./wire.js";
export {
  CloseCode,
  ErrorCode,
  Limits,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  WS_PATH,
  decodeClientMsg,
  decodeServerMsg,
  encodeClientMsg,
  encodeServerMsg,
} from "./messages.js";
export { checksum, entityHash, fmix32, step, velocity } from "./movement.js";
export { ClientWorld, extrapolate } from "./world.js";
export { Predictor, seqAfter, seqNext } from "./prediction.js";
export { InterpolationBuffer } from "./interpolation.js";
export { SendBudget, Session, SessionStats, welcomeProblem } from "./session.js";
export { MatchmakeError, httpOrigin, listRooms, matchmake } from "./matchmake.js";

/**
 * @typedef {import("./messages.js").ClientMsg} ClientMsg
 * @typedef {import("./messages.js").ServerMsg} ServerMsg
 * @typedef {import("./messages.js").Hello} Hello
 * @typedef {import("./messages.js").Input} Input
 * @typedef {import("./messages.js").Ping} Ping
 * @typedef {import("./messages.js").Resync} Resync
 * @typedef {import("./messages.js").Welcome} Welcome
 * @typedef {import("./messages.js").Snapshot} Snapshot
 * @typedef {import("./messages.js").Pong} Pong
 * @typedef {import("./messages.js").ErrorMsg} ErrorMsg
 * @typedef {import("./messages.js").EntityState} EntityState
 * @typedef {import("./messages.js").EntityChange} EntityChange
 * @typedef {import("./messages.js").EntityCorrection} EntityCorrection
 * @typedef {import("./messages.js").Dir} Dir
 * @typedef {import("./movement.js").Pos} Pos
 * @typedef {import("./movement.js").MoveConfig} MoveConfig
 * @typedef {import("./world.js").ApplyResult} ApplyResult
 * @typedef {import("./world.js").ApplyFailure} ApplyFailure
 * @typedef {import("./session.js").SessionOptions} SessionOptions
 * @typedef {import("./session.js").SessionEvent} SessionEvent
 * @typedef {import("./session.js").ReconnectPolicy} ReconnectPolicy
 * @typedef {import("./matchmake.js").Seat} Seat
 * @typedef {import("./matchmake.js").RoomListing} RoomListing
 * @typedef {import("./matchmake.js").MatchmakeOptions} MatchmakeOptions
 */
