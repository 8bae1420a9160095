/**
 * @module
 * The network under the membership protocol: best-effort datagrams for probes and gossip, and
 * a reliable request/response exchange (TCP in production) for push-pull state sync. Addresses
 * are `HOST:PORT` strings, exactly as advertised in member state.
 */
import type { HostPort } from "../lib/address.ts";

/** Handles an inbound reliable request; the returned bytes are the response. */
export type RequestHandler = (from: string, bytes: Uint8Array) => Promise<Uint8Array>;

/** Packet and stream transport bound to one address. */
export interface Transport {
  /** The bound address (the real port when bound to port 0). */
  localAddr(): HostPort;
  /** Sends one datagram; never throws (loss is part of the model). */
  sendPacket(to: string, bytes: Uint8Array): void;
  /** Registers the single datagram handler. */
  onPacket(handler: (from: string, bytes: Uint8Array) => void): void;
  /** Reliable request/response; rejects on connect failure or after `timeoutMs`. */
  request(to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Registers the single reliable-request handler. */
  onRequest(handler: RequestHandler): void;
  /** Stops listening and releases sockets and timers. */
  close(): Promise<void>;
}

/** Largest reliable message accepted (push-pull of ~thousands of members fits). */
export const maxStreamBytes = 8 * 1024 * 1024;
