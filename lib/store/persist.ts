/**
 * @module
 * Durable storage of the policy store in the data dir: an append-only log plus a compacted
 * snapshot. Each record is `[length u32 BE][crc32 u32 BE][cbor envelope]`; one record holds
 * one batch, so a batch is either wholly on disk or not at all. A write is acknowledged only
 * after `fdatasync`. On start the snapshot is loaded and the log replayed; a torn or corrupt
 * tail (a crash mid-write, a bad sector) is detected by length or checksum, truncated with a
 * warning, and every record before it is kept.
 */
import { join } from "node:path";
import { decodeEnvelope, encodeEnvelope } from "../codec.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";

/** On-disk format version of records; bump on incompatible change. */
const recordVersion = 1;
/** Record types: a batch of changes (log) and the whole store (snapshot). */
const batchRecord = 1;
const snapshotRecord = 2;
const headerBytes = 8;
/** Refuse absurd lengths from a corrupt header instead of allocating them. */
const maxRecordBytes = 256 * 1024 * 1024;

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3), as zlib and PNG compute it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Frames a payload as one record. */
export function frameRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(headerBytes + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, crc32(payload));
  out.set(payload, headerBytes);
  return out;
}

/** Result of scanning a file of records: the valid payloads and where validity ends. */
export interface RecordScan {
  payloads: Uint8Array[];
  /** Byte offset just past the last valid record. */
  validBytes: number;
  /** Why the scan stopped before the end of the file, if it did. */
  problem?: string;
}

/** Reads records until the end or the first torn/corrupt one. */
export function scanRecords(bytes: Uint8Array): RecordScan {
  const payloads: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < headerBytes) {
      return { payloads, validBytes: offset, problem: `torn record header at byte ${offset}` };
    }
    const length = view.getUint32(offset);
    const crc = view.getUint32(offset + 4);
    if (length > maxRecordBytes || offset + headerBytes + length > bytes.length) {
      return { payloads, validBytes: offset, problem: `torn record at byte ${offset}` };
    }
    const payload = bytes.subarray(offset + headerBytes, offset + headerBytes + length);
    if (crc32(payload) !== crc) {
      return { payloads, validBytes: offset, problem: `checksum mismatch at byte ${offset}` };
    }
    payloads.push(payload);
    offset += headerBytes + length;
  }
  return { payloads, validBytes: offset };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** What {@linkcode PolicyLog.open} recovered. `T` is one stored item (an entry). */
export interface Recovered<T> {
  /** Snapshot items first, then log batches in append order. */
  items: T[];
  /** Records replayed from the log (compaction resets this). */
  logRecords: number;
  /** Bytes cut from the log tail because they were torn or corrupt. */
  truncatedBytes: number;
}

/**
 * Append-only log + snapshot for a list of items. Items are encoded with cbor (via
 * `lib/codec`) and decoded back by `decodeItem`, which throws on invalid content; a record
 * whose items do not decode counts as corrupt.
 */
export class PolicyLog<T> {
  #file: Deno.FsFile;
  #records: number;
  #closed = false;

  private constructor(
    private readonly dir: string,
    file: Deno.FsFile,
    records: number,
    private readonly encodeItem: (item: T) => unknown,
    private readonly log: Logger,
  ) {
    this.#file = file;
    this.#records = records;
  }

  /** Path of the log file in `dir`. */
  static logPath(dir: string): string {
    return join(dir, "policy.log");
  }

  /** Path of the snapshot file in `dir`. */
  static snapshotPath(dir: string): string {
    return join(dir, "policy.snapshot");
  }

  /** Opens (creating) the files in `dir` and recovers their content. */
  static async open<T>(
    dir: string,
    codec: { encode: (item: T) => unknown; decode: (raw: unknown) => T },
    log: Logger,
  ): Promise<{ store: PolicyLog<T>; recovered: Recovered<T> }> {
    await Deno.mkdir(dir, { recursive: true });
    const items: T[] = [];
    const decodeBatch = (payload: Uint8Array, type: number): T[] => {
      const env = decodeEnvelope(payload, recordVersion);
      if (env.type !== type || !Array.isArray(env.body)) {
        throw new Error(`unexpected record type ${env.type}`);
      }
      return env.body.map(codec.decode);
    };

    const snapPath = PolicyLog.snapshotPath(dir);
    const snapBytes = await readIfExists(snapPath);
    if (snapBytes) {
      const scan = scanRecords(snapBytes);
      try {
        if (scan.problem || scan.payloads.length !== 1) {
          throw new Error(scan.problem ?? `expected 1 record, found ${scan.payloads.length}`);
        }
        items.push(...decodeBatch(scan.payloads[0], snapshotRecord));
      } catch (err) {
        // The snapshot is renamed into place atomically, so this is disk damage. Keep the
        // file for inspection and go on with the log; peers fill in the rest via sync.
        const aside = `${snapPath}.corrupt-${Date.now()}`;
        await Deno.rename(snapPath, aside);
        log.error("policy snapshot is corrupt; moved aside", {
          path: aside,
          reason: errorMessage(err),
        });
      }
    }

    const logPath = PolicyLog.logPath(dir);
    const logBytes = (await readIfExists(logPath)) ?? new Uint8Array();
    const scan = scanRecords(logBytes);
    let validBytes = scan.validBytes;
    let problem = scan.problem;
    let records = 0;
    for (let i = 0; i < scan.payloads.length; i++) {
      try {
        items.push(...decodeBatch(scan.payloads[i], batchRecord));
        records++;
      } catch (err) {
        // The checksum matched but the content does not decode: cut here as well.
        validBytes = scan.payloads[i].byteOffset - logBytes.byteOffset - headerBytes;
        problem = `undecodable record at byte ${validBytes}: ${errorMessage(err)}`;
        break;
      }
    }
    const truncatedBytes = logBytes.length - validBytes;
    if (truncatedBytes > 0) {
      log.warn("policy log has a torn or corrupt tail; truncating it", {
        path: logPath,
        reason: problem,
        keptBytes: validBytes,
        truncatedBytes,
        keptRecords: records,
      });
      await Deno.truncate(logPath, validBytes);
    }
    const file = await Deno.open(logPath, { append: true, create: true });
    if (truncatedBytes > 0) await file.syncData();
    return {
      store: new PolicyLog(dir, file, records, codec.encode, log),
      recovered: { items, logRecords: records, truncatedBytes },
    };
  }

  /** Records in the log since the last compaction. */
  get records(): number {
    return this.#records;
  }

  /** Appends one batch and returns once it is on stable storage (fdatasync). */
  async append(batch: readonly T[]): Promise<void> {
    if (this.#closed) throw new Error("policy log is closed");
    const payload = encodeEnvelope(recordVersion, batchRecord, batch.map(this.encodeItem));
    await writeAll(this.#file, frameRecord(payload));
    await this.#file.syncData();
    this.#records++;
  }

  /**
   * Writes `all` as the new snapshot (tmp file, fsync, rename, fsync of the directory) and
   * then empties the log. A crash between the two steps only replays records that the
   * snapshot already holds, which is harmless because merging is idempotent.
   */
  async compact(all: readonly T[]): Promise<void> {
    if (this.#closed) throw new Error("policy log is closed");
    const snapPath = PolicyLog.snapshotPath(this.dir);
    const tmp = `${snapPath}.tmp`;
    const payload = encodeEnvelope(recordVersion, snapshotRecord, all.map(this.encodeItem));
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      await writeAll(f, frameRecord(payload));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, snapPath);
    await syncDirectory(this.dir);
    await this.#file.truncate(0);
    await this.#file.sync();
    this.#records = 0;
    this.log.debug("policy log compacted", { items: all.length, bytes: payload.length });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** fsync of a directory makes a rename durable; not every platform allows it, so best effort. */
async function syncDirectory(dir: string): Promise<void> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch {
    // Not supported here (e.g. Windows); the rename is still atomic, only less durable.
  } finally {
    f?.close();
  }
}
