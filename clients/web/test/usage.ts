// Type-checked only (tsc --noEmit): the public API as a TypeScript user sees it.
import {
  ClientWorld,
  InterpolationBuffer,
  Session,
  decodeServerMsg,
  encodeClientMsg,
  step,
  type Dir,
  type ServerMsg,
  type SessionEvent,
} from "../src/index.js";

const hello: Uint8Array = encodeClientMsg({ type: "Hello", version: 2, name: "Ada", authToken: null, resumeToken: null });
const msg: ServerMsg = decodeServerMsg(hello);
if (msg.type === "Snapshot") {
  const world = new ClientWorld(16000, 16000);
  const vx: number | undefined = world.entities.get(1)?.vx;
  void vx;
  const result = world.apply(msg);
  if (!result.ok) {
    const reason: "baseline" | "missing" | "duplicate" | "overflow" | "checksum" = result.reason;
    void reason;
  }
}
const dir: Dir = [127, -127];
const next: { x: number; y: number } = step({ x: 0, y: 0 }, dir, { speedPerTick: 53, worldMaxX: 16000, worldMaxY: 16000 });
const session = new Session({ name: "Ada", sendEveryTicks: 2, interpolationDelayMs: 150 });
const event: SessionEvent = session.receive(hello, 0);
const others: Map<number, { x: number; y: number }> = new InterpolationBuffer(30).sample(0);
// @ts-expect-error: directions are pairs of numbers
encodeClientMsg({ type: "Input", ackTick: null, firstSeq: 1, dirs: [127] });
void next;
void event;
void others;
