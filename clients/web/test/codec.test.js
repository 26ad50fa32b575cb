// @ts-check
/** Codec against the golden vectors: every message byte for byte, every invalid one by kind. */

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DecodeError,
  EncodeError,
  decodeClientMsg,
  decodeServerMsg,
  encodeClientMsg,
  encodeServerMsg,
  fromHex,
  toHex,
} from "../src/index.js";
import { loadVectors, messageFromJson } from "./vectors.js";

const client = loadVectors("client_messages.json");
const server = loadVectors("server_messages.json");
const invalid = loadVectors("invalid_messages.json");

test("the vector files are protocol version 2 and not empty", () => {
  assert.equal(client.protocol_version, 2);
  assert.equal(server.protocol_version, 2);
  assert.ok(client.cases.length >= 10 && server.cases.length >= 10 && invalid.cases.length >= 20);
});

for (const c of client.cases) {
  test(`client message ${c.name}: encodes to its canonical bytes and decodes back`, () => {
    const msg = messageFromJson(c.message);
    assert.equal(toHex(encodeClientMsg(msg)), c.canonical_hex ?? c.hex);
    assert.deepEqual(decodeClientMsg(fromHex(c.hex)), msg);
  });
}

for (const c of server.cases) {
  test(`server message ${c.name}: decodes from its bytes and encodes back`, () => {
    const msg = messageFromJson(c.message);
    assert.deepEqual(decodeServerMsg(fromHex(c.hex)), msg);
    assert.equal(toHex(encodeServerMsg(msg)), c.canonical_hex ?? c.hex);
  });
}

for (const c of invalid.cases) {
  test(`invalid ${c.direction} ${c.name}: fails with ${c.error}`, () => {
    const decode = c.direction === "client_to_server" ? decodeClientMsg : decodeServerMsg;
    assert.throws(
      () => decode(fromHex(c.hex)),
      (e) => e instanceof DecodeError && e.kind === c.error,
    );
  });
}

test("a server message over 16 MiB is TooLarge before anything else", () => {
  const big = new Uint8Array(16 * 1024 * 1024 + 1);
  assert.throws(() => decodeServerMsg(big), (e) => e instanceof DecodeError && e.kind === "TooLarge");
});

test("encoders refuse what the spec forbids instead of writing bad bytes", () => {
  const bad = [
    { type: "Input", ackTick: null, firstSeq: 1, dirs: [] },
    { type: "Input", ackTick: null, firstSeq: 1, dirs: Array(9).fill([0, 0]) },
    { type: "Input", ackTick: null, firstSeq: 1, dirs: [[128, 0]] },
    { type: "Input", ackTick: null, firstSeq: 2 ** 32, dirs: [[0, 0]] },
    { type: "Hello", version: 2, name: "x".repeat(33), authToken: null, resumeToken: null },
    { type: "Hello", version: 2, name: null, authToken: null, resumeToken: new Uint8Array(15) },
    { type: "Ping", clientTimeUs: -1n },
  ];
  for (const msg of bad) {
    assert.throws(() => encodeClientMsg(/** @type {any} */ (msg)), EncodeError, JSON.stringify(msg, (_, v) => (typeof v === "bigint" ? String(v) : v)));
  }
});

test("varint boundaries from PROTOCOL.md section 4 round-trip in the shortest form", () => {
  /** @type {[bigint, string][]} */
  const cases = [
    [250n, "fa"],
    [251n, "fbfb00"],
    [1000n, "fbe803"],
    [65535n, "fbffff"],
    [70000n, "fc70110100"],
    [2n ** 32n, "fd0000000001000000"],
    [2n ** 64n - 1n, "fdffffffffffffffff"],
  ];
  for (const [v, hex] of cases) {
    const bytes = encodeClientMsg({ type: "Ping", clientTimeUs: v });
    assert.equal(toHex(bytes), "02" + hex);
    assert.deepEqual(decodeClientMsg(bytes), { type: "Ping", clientTimeUs: v });
  }
});
