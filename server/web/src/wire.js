// @ts-check
/**
 * @module wire
 * The byte level of the Ticksync protocol (docs/PROTOCOL.md, section 4): bincode 2
 * standard encoding written out by hand — little-endian varints with 0xFB/0xFC/0xFD
 * markers, zigzag signed integers, Options, strings and raw byte arrays — plus the
 * decoding error kinds of section 7.
 */

/** The decoding error kinds of PROTOCOL.md section 7 (the Rust `DecodeError` variants). */
export const DecodeErrorKind = Object.freeze({
  TooLarge: "TooLarge",
  Truncated: "Truncated",
  TrailingBytes: "TrailingBytes",
  UnknownTag: "UnknownTag",
  LimitExceeded: "LimitExceeded",
  Invalid: "Invalid",
});

/** @typedef {"TooLarge" | "Truncated" | "TrailingBytes" | "UnknownTag" | "LimitExceeded" | "Invalid"} DecodeErrorKindName */

/** A message that does not decode; `kind` says why (PROTOCOL.md section 7). */
export class DecodeError extends Error {
  /**
   * @param {DecodeErrorKindName} kind
   * @param {string} detail
   */
  constructor(kind, detail) {
    super(`${kind}: ${detail}`);
    this.name = "DecodeError";
    /** @type {DecodeErrorKindName} */
    this.kind = kind;
  }
}

/** A value that cannot be encoded (out of range, too long, wrong count). */
export class EncodeError extends RangeError {
  /** @param {string} detail */
  constructor(detail) {
    super(detail);
    this.name = "EncodeError";
  }
}

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Reads protocol values from one message, reporting the first problem as a DecodeError. */
export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    /** @type {Uint8Array} */
    this.bytes = bytes;
    /** @type {DataView} */
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    /** Read position. */
    this.pos = 0;
  }

  /** Bytes not read yet. */
  remaining() {
    return this.bytes.length - this.pos;
  }

  /**
   * @param {number} n
   * @param {string} what
   */
  need(n, what) {
    if (this.remaining() < n) throw new DecodeError("Truncated", `${what}: need ${n} bytes`);
  }

  /** @param {string} what */
  u8(what) {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  /** @param {string} what */
  i8(what) {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }

  /** @param {string} what */
  bool(what) {
    const b = this.u8(what);
    if (b > 1) throw new DecodeError("Invalid", `${what}: bool byte ${b}`);
    return b === 1;
  }

  /**
   * Reads the Option tag byte: true when a value follows.
   * @param {string} what
   */
  option(what) {
    const b = this.u8(what);
    if (b > 1) throw new DecodeError("Invalid", `${what}: Option byte ${b}`);
    return b === 1;
  }

  /**
   * A varint of at most `width` bits (16, 32 or 64), as a bigint.
   * @param {16 | 32 | 64} width
   * @param {string} what
   * @returns {bigint}
   */
  varintBig(width, what) {
    const first = this.u8(what);
    if (first < 0xfb) return BigInt(first);
    if (first === 0xfb) {
      this.need(2, what);
      const v = this.view.getUint16(this.pos, true);
      this.pos += 2;
      return BigInt(v);
    }
    if (first === 0xfc && width >= 32) {
      this.need(4, what);
      const v = this.view.getUint32(this.pos, true);
      this.pos += 4;
      return BigInt(v);
    }
    if (first === 0xfd && width >= 64) {
      this.need(8, what);
      const v = this.view.getBigUint64(this.pos, true);
      this.pos += 8;
      return v;
    }
    throw new DecodeError("Invalid", `${what}: varint marker 0x${first.toString(16)} in a u${width} field`);
  }

  /**
   * A varint of at most 32 bits as a number, without going through bigint (the
   * hot path: snapshots are mostly u32 and i32 fields).
   * @param {16 | 32} width
   * @param {string} what
   * @returns {number}
   */
  varintNum(width, what) {
    const first = this.u8(what);
    if (first < 0xfb) return first;
    if (first === 0xfb) {
      this.need(2, what);
      const v = this.view.getUint16(this.pos, true);
      this.pos += 2;
      return v;
    }
    if (first === 0xfc && width === 32) {
      this.need(4, what);
      const v = this.view.getUint32(this.pos, true);
      this.pos += 4;
      return v;
    }
    throw new DecodeError("Invalid", `${what}: varint marker 0x${first.toString(16)} in a u${width} field`);
  }

  /** @param {string} what */
  u16(what) {
    return this.varintNum(16, what);
  }

  /** @param {string} what */
  u32(what) {
    return this.varintNum(32, what);
  }

  /** @param {string} what */
  u64(what) {
    return this.varintBig(64, what);
  }

  /**
   * A list or string length (a u64 varint), checked against `max` (LimitExceeded)
   * and then against the bytes left at `minEntryBytes` per entry (Truncated).
   * @param {string} what
   * @param {number} minEntryBytes
   * @param {number} [max]
   */
  length(what, minEntryBytes, max) {
    // Only a 0xFD length can exceed 2^32; it is read as a bigint and is then
    // always over every limit and over the bytes left.
    const n = this.bytes[this.pos] === 0xfd ? this.u64(what) : BigInt(this.varintNum(32, what));
    if (max !== undefined && n > BigInt(max)) {
      throw new DecodeError("LimitExceeded", `${what}: ${n} > ${max}`);
    }
    if (n * BigInt(minEntryBytes) > BigInt(this.remaining())) {
      throw new DecodeError("Truncated", `${what}: ${n} entries, ${this.remaining()} bytes left`);
    }
    return Number(n);
  }

  /** @param {string} what */
  i32(what) {
    const z = this.u32(what);
    return (z >>> 1) ^ -(z & 1);
  }

  /**
   * @param {string} what
   * @param {number} maxBytes
   */
  string(what, maxBytes) {
    const n = this.length(what, 1, maxBytes);
    const raw = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw new DecodeError("Invalid", `${what}: not UTF-8`);
    }
  }

  /**
   * @param {number} n
   * @param {string} what
   */
  raw(n, what) {
    this.need(n, what);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Fails with TrailingBytes unless every byte was read. */
  end() {
    if (this.remaining() !== 0) {
      throw new DecodeError("TrailingBytes", `${this.remaining()} bytes after the message`);
    }
  }
}

/** Appends protocol values to a growing buffer; `finish()` returns the bytes. */
export class Writer {
  constructor() {
    /** @type {number[]} */
    this.out = [];
  }

  /** @param {number} v */
  u8(v) {
    this.out.push(v & 0xff);
  }

  /** @param {number} v */
  i8(v) {
    if (!Number.isInteger(v) || v < -128 || v > 127) throw new EncodeError(`i8 out of range: ${v}`);
    this.out.push(v & 0xff);
  }

  /** @param {boolean} v */
  bool(v) {
    this.out.push(v ? 1 : 0);
  }

  /**
   * Writes the shortest varint form of `v`, which must fit `max`.
   * @param {number | bigint} v
   * @param {bigint} max
   * @param {string} what
   */
  varint(v, max, what) {
    const big = typeof v === "bigint" ? v : Number.isInteger(v) ? BigInt(v) : -1n;
    if (big < 0n || big > max) throw new EncodeError(`${what} out of range: ${v}`);
    const n = Number(big);
    if (big < 251n) {
      this.out.push(n);
    } else if (big <= 0xffffn) {
      this.out.push(0xfb, n & 0xff, n >>> 8);
    } else if (big <= 0xffffffffn) {
      this.out.push(0xfc, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
    } else {
      this.out.push(0xfd);
      for (let i = 0n; i < 64n; i += 8n) this.out.push(Number((big >> i) & 0xffn));
    }
  }

  /** @param {number} v @param {string} what */
  u16(v, what) {
    this.varint(v, BigInt(U16_MAX), what);
  }

  /** @param {number} v @param {string} what */
  u32(v, what) {
    this.varint(v, BigInt(U32_MAX), what);
  }

  /** @param {bigint | number} v @param {string} what */
  u64(v, what) {
    this.varint(v, U64_MAX, what);
  }

  /** @param {number} v @param {string} what */
  i32(v, what) {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      throw new EncodeError(`${what} out of i32 range: ${v}`);
    }
    this.u32(((v << 1) ^ (v >> 31)) >>> 0, what);
  }

  /**
   * @param {string} s
   * @param {number} maxBytes
   * @param {string} what
   */
  string(s, maxBytes, what) {
    const bytes = utf8Encoder.encode(s);
    if (bytes.length > maxBytes) throw new EncodeError(`${what}: ${bytes.length} bytes > ${maxBytes}`);
    this.u64(bytes.length, what);
    for (const b of bytes) this.out.push(b);
  }

  /**
   * @param {Uint8Array} bytes
   * @param {number} len
   * @param {string} what
   */
  raw(bytes, len, what) {
    if (bytes.length !== len) throw new EncodeError(`${what}: ${bytes.length} bytes, expected ${len}`);
    for (const b of bytes) this.out.push(b);
  }

  /** @param {number} v */
  u32le(v) {
    this.out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  /** @returns {Uint8Array} */
  finish() {
    return Uint8Array.from(this.out);
  }
}

/**
 * Lowercase hex of some bytes (the golden vectors' notation).
 * @param {Uint8Array} bytes
 */
export function toHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * Bytes from a hex string.
 * @param {string} hex
 * @returns {Uint8Array}
 */
export function fromHex(hex) {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new EncodeError(`not hex: ${hex}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
