// @ts-check
/**
 * @module prediction
 * Client-side prediction of the own player and reconciliation with the server
 * (PROTOCOL.md section 11): every direction is stepped at once and remembered
 * until a snapshot's `ack_input` covers it; each snapshot rebases the prediction on
 * the authoritative position and replays the inputs still unacknowledged.
 */

import { step } from "./movement.js";

/**
 * @typedef {import("./movement.js").Pos} Pos
 * @typedef {import("./movement.js").MoveConfig} MoveConfig
 * @typedef {import("./messages.js").Dir} Dir
 * @typedef {{ seq: number, dir: Dir, pos: Pos }} PendingInput  A direction sent but not acknowledged.
 */

/**
 * The sequence number after `seq`: numbers are `u32` and wrap from 2^32 − 1 to 0
 * (PROTOCOL.md section 11).
 * @param {number} seq
 * @returns {number}
 */
export function seqNext(seq) {
  return (seq + 1) >>> 0;
}

/**
 * Whether sequence number `a` comes after `b` in serial-number order (RFC 1982):
 * 1 to 2^31 − 1 steps later, across the wrap.
 * @param {number} a
 * @param {number} b
 * @returns {boolean}
 */
export function seqAfter(a, b) {
  return ((a - b) | 0) > 0;
}

/** Prediction and reconciliation for the own player. */
export class Predictor {
  /** @param {MoveConfig} cfg  the movement constants from `Welcome` */
  constructor(cfg) {
    /** @type {MoveConfig} */
    this.cfg = cfg;
    /** Predicted position, or null before the first snapshot with the own entity. @type {Pos | null} */
    this.predicted = null;
    /** Unacknowledged inputs, oldest first. @type {PendingInput[]} */
    this.pending = [];
    /** Sequence number the next input gets. */
    this.nextSeq = 1;
    /** Highest `ack_input` seen. */
    this.ackInput = 0;
    /** Snapshots whose replay moved the prediction (an input the server dropped or applied differently). */
    this.corrections = 0;
  }

  /**
   * Starts (or resumes) a session: inputs continue at `lastInputSeq + 1`, and
   * inputs not applied before a drop are forgotten. The prediction starts again
   * from the next snapshot's own entity.
   * @param {number} lastInputSeq  `Welcome.last_input_seq`
   */
  reset(lastInputSeq) {
    this.predicted = null;
    this.pending = [];
    this.nextSeq = seqNext(lastInputSeq);
    this.ackInput = lastInputSeq;
  }

  /** Whether inputs can be produced (the own position is known). */
  get ready() {
    return this.predicted !== null;
  }

  /**
   * Produces the input for one tick: assigns the next sequence number and moves the
   * prediction at once.
   * @param {Dir} dir
   * @returns {PendingInput}
   */
  push(dir) {
    if (this.predicted === null) throw new Error("Predictor.push before the own position is known");
    const input = { seq: this.nextSeq, dir, pos: step(this.predicted, dir, this.cfg) };
    this.nextSeq = seqNext(this.nextSeq);
    this.predicted = input.pos;
    this.pending.push(input);
    return input;
  }

  /**
   * Reconciles with a snapshot: forgets inputs up to `ackInput` (in serial order), then starts
   * from the authoritative position and replays the rest.
   * @param {number} ackInput  the snapshot's `ack_input`
   * @param {Pos} serverPos  the own entity's position in that snapshot
   * @returns {boolean}  whether the prediction changed (a correction)
   */
  reconcile(ackInput, serverPos) {
    if (seqAfter(ackInput, this.ackInput)) this.ackInput = ackInput;
    let drop = 0;
    while (drop < this.pending.length && !seqAfter(this.pending[drop].seq, this.ackInput)) drop++;
    if (drop > 0) this.pending.splice(0, drop);
    const before = this.predicted;
    let pos = { x: serverPos.x, y: serverPos.y };
    for (const input of this.pending) {
      pos = step(pos, input.dir, this.cfg);
      input.pos = pos;
    }
    this.predicted = pos;
    const corrected = before !== null && (before.x !== pos.x || before.y !== pos.y);
    if (corrected) this.corrections++;
    return corrected;
  }
}
