/**
 * @module
 * Wire messages of the membership protocol: an append-only type enum, `[version, type, body]`
 * CBOR envelopes (lib/codec), compound packets, and a validation schema for every body, so a
 * malformed packet is rejected before any state is touched.
 */
import { z } from "../lib/schema.ts";
import { decodeEnvelope, DecodeError, encodeEnvelope } from "../lib/codec.ts";

/** Envelope version; a peer speaking another version is dropped and counted. */
export const wireVersion = 1;

/** Message types. Append only: never renumber, never reuse a retired number. */
export enum MessageType {
  Ping = 0,
  IndirectPing = 1,
  Ack = 2,
  Nack = 3,
  Suspect = 4,
  Alive = 5,
  Dead = 6,
  Compound = 7,
  PushPull = 8,
}

/** A service a node runs, as advertised in its metadata. */
export const serviceMetaSchema = z.object({
  name: z.string().min(1).max(253),
  port: z.number().int().min(0).max(65535),
  protocol: z.enum(["http", "http2", "grpc", "tcp"]),
  labels: z.record(z.string(), z.string()),
  healthy: z.boolean(),
});
export type ServiceMeta = z.infer<typeof serviceMetaSchema>;

/** Member metadata: how to reach the node's listeners and what it serves. */
export const memberMetaSchema = z.object({
  nodeId: z.string().max(128),
  name: z.string().max(128),
  gossipAddr: z.string().max(300),
  inboundAddr: z.string().max(300),
  adminAddr: z.string().max(300),
  p2pAddr: z.string().max(1000).optional(),
  storeDigest: z.string().max(200).optional(),
  services: z.array(serviceMetaSchema).max(64),
});
export type MemberMeta = z.infer<typeof memberMetaSchema>;

const name = z.string().min(1).max(128);
const id = z.string().min(1).max(128);
const addr = z.string().min(1).max(300);
const seq = z.number().int().min(0);
const inc = z.number().int().min(0);

export const pingSchema = z.object({
  seq,
  /** Name the sender expects at this address; a different node there drops the ping. */
  target: name,
  from: name,
  fromAddr: addr,
});
export const indirectPingSchema = z.object({
  seq,
  target: name,
  targetAddr: addr,
  /** Lifeguard: ask the relay to send a nack if the target does not answer in time. */
  nack: z.boolean(),
  from: name,
  fromAddr: addr,
});
export const ackSchema = z.object({ seq });
export const nackSchema = z.object({ seq });
export const aliveSchema = z.object({
  name,
  id,
  inc,
  addr,
  /** Process start (wall ms): a newer process with the same name replaces an older one. */
  started: z.number().int().min(0),
  meta: memberMetaSchema,
});
export const suspectSchema = z.object({ name, id, inc, from: name });
export const deadSchema = z.object({
  name,
  id,
  inc,
  from: name,
  /** Graceful leave (state `left`) rather than failure. */
  left: z.boolean(),
});
export const pushPullSchema = z.object({
  join: z.boolean(),
  members: z.array(
    z.object({
      name,
      id,
      inc,
      addr,
      started: z.number().int().min(0),
      state: z.enum(["alive", "suspect", "dead", "left"]),
      meta: memberMetaSchema,
    }),
  ).max(100_000),
});
const compoundSchema = z.array(z.instanceof(Uint8Array)).max(255);

export type Ping = z.infer<typeof pingSchema>;
export type IndirectPing = z.infer<typeof indirectPingSchema>;
export type Alive = z.infer<typeof aliveSchema>;
export type Suspect = z.infer<typeof suspectSchema>;
export type Dead = z.infer<typeof deadSchema>;
export type PushPull = z.infer<typeof pushPullSchema>;
export type PushPullMember = PushPull["members"][number];

/** A decoded, validated message. */
export type Message =
  | { type: MessageType.Ping; body: Ping }
  | { type: MessageType.IndirectPing; body: IndirectPing }
  | { type: MessageType.Ack; body: { seq: number } }
  | { type: MessageType.Nack; body: { seq: number } }
  | { type: MessageType.Alive; body: Alive }
  | { type: MessageType.Suspect; body: Suspect }
  | { type: MessageType.Dead; body: Dead }
  | { type: MessageType.PushPull; body: PushPull };

const schemas: Record<number, z.ZodType> = {
  [MessageType.Ping]: pingSchema,
  [MessageType.IndirectPing]: indirectPingSchema,
  [MessageType.Ack]: ackSchema,
  [MessageType.Nack]: nackSchema,
  [MessageType.Alive]: aliveSchema,
  [MessageType.Suspect]: suspectSchema,
  [MessageType.Dead]: deadSchema,
  [MessageType.PushPull]: pushPullSchema,
};

/** Encodes one message into an envelope. */
export function encodeMessage(m: Message): Uint8Array {
  return encodeEnvelope(wireVersion, m.type, m.body);
}

/** Bundles already-encoded messages into one packet (a single one is sent as is). */
export function encodeCompound(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  return encodeEnvelope(wireVersion, MessageType.Compound, parts);
}

/** Per-part CBOR overhead inside a compound (byte-string header, conservative). */
export const compoundPartOverhead = 5;
/** Fixed CBOR overhead of a compound envelope (conservative). */
export const compoundOverhead = 8;

/**
 * Decodes a packet into messages; a compound yields each part. Throws DecodeError for anything
 * malformed, unknown or invalid (the caller counts and drops it). Nested compounds are refused.
 */
export function decodePacket(bytes: Uint8Array, maxBytes: number): Message[] {
  if (bytes.length > maxBytes) throw new DecodeError(`packet of ${bytes.length} bytes too large`);
  const env = decodeEnvelope(bytes, wireVersion);
  if (env.type === MessageType.Compound) {
    const parts = compoundSchema.safeParse(env.body);
    if (!parts.success) throw new DecodeError("malformed compound packet");
    return parts.data.map((p) => {
      const inner = decodeEnvelope(p, wireVersion);
      if (inner.type === MessageType.Compound) throw new DecodeError("nested compound packet");
      return validate(inner.type, inner.body);
    });
  }
  return [validate(env.type, env.body)];
}

/** Decodes one stream message (push-pull). */
export function decodeStreamMessage(bytes: Uint8Array): Message {
  const env = decodeEnvelope(bytes, wireVersion);
  return validate(env.type, env.body);
}

function validate(type: number, body: unknown): Message {
  const schema = schemas[type];
  if (!schema) throw new DecodeError(`unknown message type ${type}`);
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new DecodeError(
      `invalid ${MessageType[type]}: ${issue?.path.join(".") || "body"}: ${issue?.message}`,
    );
  }
  return { type, body: r.data } as Message;
}
