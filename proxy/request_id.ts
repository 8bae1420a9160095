/**
 * @module
 * Generated `x-request-id`s: a random UUID drawn once per process with its last 12 hex digits
 * replaced by a counter, so ids stay UUID-shaped and unique per node (2^48 requests) while
 * costing a string concatenation instead of a random UUID per request. The upstream head
 * writes the serial as hex digits (no string built per request); the access log turns a
 * serial back into the id only when it writes an entry.
 */

const requestIdPrefix = crypto.randomUUID().slice(0, 24);
/** Random start, so that two processes sharing a prefix by chance still differ. */
let requestIdCounter = Math.floor(Math.random() * 2 ** 40);

/** The header line up to the serial's 12 hex digits. */
export const requestIdLineStart = `x-request-id: ${requestIdPrefix}`;

/** The next request id's counter value. */
export function nextRequestSerial(): number {
  return requestIdCounter++ % 2 ** 48;
}

/** The id a serial stands for (what the x-request-id line carries), for the access log. */
export function requestIdOf(serial: number): string {
  return requestIdPrefix + serial.toString(16).padStart(12, "0");
}
