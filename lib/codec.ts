/**
 * @module
 * The only cbor-x import: versioned envelopes for everything that crosses the wire or the
 * disk. A decode failure is a {@linkcode DecodeError}, which callers count and drop.
 */
// Names cbor-extract in the module graph so npm resolution keeps the version pinned in
// deno.json (2.2.2; the builds of 2.2.3 are not all published). Only its package.json is
// loaded: cbor-x loads the native extractor itself when FFI is allowed and falls back to
// JavaScript otherwise, so the node needs no FFI permission.
import "cbor-extract/package.json" with { type: "json" };
import { Decoder, Encoder } from "cbor-x";

/** Raised for malformed, truncated or unknown-version input. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** CBOR-encodes a plain value (objects, arrays, strings, numbers, Uint8Array). */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes CBOR; any failure (including trailing garbage) becomes a DecodeError. */
export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw new DecodeError(`Malformed CBOR: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Wire envelope: `[version, type, body]`. */
export function encodeEnvelope(version: number, type: number, body: unknown): Uint8Array {
  return encoder.encode([version, type, body]);
}

/** Decodes an envelope and checks its version; returns the type and the undecoded-shape body. */
export function decodeEnvelope(
  bytes: Uint8Array,
  expectedVersion: number,
): { type: number; body: unknown } {
  const v = decodeValue(bytes);
  if (!Array.isArray(v) || v.length !== 3) {
    throw new DecodeError("Envelope is not a 3-element array");
  }
  const [version, type, body] = v;
  if (version !== expectedVersion) throw new DecodeError(`Unknown envelope version ${version}`);
  if (typeof type !== "number" || !Number.isInteger(type)) {
    throw new DecodeError("Envelope type is not an integer");
  }
  return { type, body };
}
