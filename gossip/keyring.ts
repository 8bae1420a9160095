/**
 * @module
 * Gossip encryption: AES-256-GCM through WebCrypto with a primary key (used to encrypt) and
 * extra keys (accepted for decryption), so keys rotate without a flag day: install the new key
 * everywhere, make it primary everywhere, then remove the old one.
 *
 * Wire form: `[0x01][12-byte random nonce][ciphertext + 16-byte tag]`.
 */

const encryptedMarker = 0x01;
const nonceBytes = 12;
const tagBytes = 16;

/** Parses a base64 key and checks it is 32 bytes; returns a one-line reason on error. */
export function parseKey(base64: string, field = "--encrypt-key"): Uint8Array | string {
  let raw: Uint8Array;
  try {
    raw = Uint8Array.from(atob(base64.trim()), (c) => c.charCodeAt(0));
  } catch {
    return `${field}: not valid base64`;
  }
  if (raw.length !== 32) return `${field}: must decode to 32 bytes (AES-256), got ${raw.length}`;
  return raw;
}

/** A set of AES-256-GCM keys; the first is the primary. */
export class Keyring {
  #keys: { raw: Uint8Array; key: CryptoKey }[] = [];

  private constructor() {}

  /** Builds a keyring; `keys[0]` is the primary. Each key must be 32 bytes. */
  static async create(keys: readonly Uint8Array[]): Promise<Keyring> {
    if (keys.length === 0) throw new Error("keyring: at least one key is required");
    const ring = new Keyring();
    for (const k of keys) await ring.addKey(k);
    return ring;
  }

  /** Adds a decryption key (becomes primary if the ring is empty). */
  async addKey(raw: Uint8Array): Promise<void> {
    if (raw.length !== 32) throw new Error(`keyring: key must be 32 bytes, got ${raw.length}`);
    if (this.#keys.some((k) => sameBytes(k.raw, raw))) return;
    const key = await crypto.subtle.importKey(
      "raw",
      raw.slice() as Uint8Array<ArrayBuffer>,
      "AES-GCM",
      false,
      ["encrypt", "decrypt"],
    );
    this.#keys.push({ raw: raw.slice(), key });
  }

  /**
   * Replaces every key at once (the first becomes primary), as a config reload does: the new
   * keys are imported first, so a bad key leaves the ring as it was.
   */
  async replaceAll(keys: readonly Uint8Array[]): Promise<void> {
    if (keys.length === 0) throw new Error("keyring: at least one key is required");
    const next = await Keyring.create(keys);
    this.#keys = next.#keys;
  }

  /** Makes an installed key the primary. */
  usePrimary(raw: Uint8Array): void {
    const i = this.#keys.findIndex((k) => sameBytes(k.raw, raw));
    if (i < 0) throw new Error("keyring: key is not installed");
    const [k] = this.#keys.splice(i, 1);
    this.#keys.unshift(k);
  }

  /** Removes a non-primary key. */
  removeKey(raw: Uint8Array): void {
    const i = this.#keys.findIndex((k) => sameBytes(k.raw, raw));
    if (i === 0) throw new Error("keyring: cannot remove the primary key");
    if (i > 0) this.#keys.splice(i, 1);
  }

  get size(): number {
    return this.#keys.length;
  }

  /** Bytes added to every message by encryption. */
  static readonly overhead = 1 + nonceBytes + tagBytes;

  async encrypt(plain: Uint8Array): Promise<Uint8Array> {
    const nonce = crypto.getRandomValues(new Uint8Array(nonceBytes));
    const ct = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce },
        this.#keys[0].key,
        plain as Uint8Array<ArrayBuffer>,
      ),
    );
    const out = new Uint8Array(1 + nonceBytes + ct.length);
    out[0] = encryptedMarker;
    out.set(nonce, 1);
    out.set(ct, 1 + nonceBytes);
    return out;
  }

  /** Decrypts with any installed key; undefined when no key fits or the input is malformed. */
  async decrypt(bytes: Uint8Array): Promise<Uint8Array | undefined> {
    if (bytes.length < 1 + nonceBytes + tagBytes || bytes[0] !== encryptedMarker) {
      return undefined;
    }
    const nonce = bytes.slice(1, 1 + nonceBytes);
    const ct = bytes.slice(1 + nonceBytes);
    for (const k of this.#keys) {
      try {
        return new Uint8Array(
          await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, k.key, ct),
        );
      } catch {
        // wrong key: try the next one
      }
    }
    return undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
