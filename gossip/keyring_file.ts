/**
 * @module
 * Where a node's gossip keys come from: `--encrypt-key` (the primary), `extraEncryptKeys`
 * (accepted for decryption during a rotation) and a keyring file (one base64 key per line,
 * `#` comments, primary first). Each bad key is a {@linkcode UserError} naming where it was
 * given (the flag, the config field, or the file and line) and why it is bad.
 */
import type { NodeConfig } from "../lib/config.ts";
import { errorMessage, UserError } from "../lib/errors.ts";
import { parseKey } from "./keyring.ts";

/** A key as written, and where it was written (for error messages). */
export interface KeySource {
  key: string;
  field: string;
}

/** The keys of a keyring file's text: blank lines and `#` comments skipped, order kept. */
export function parseKeyringText(text: string, path: string): KeySource[] {
  return text.split("\n")
    .map((line, i) => ({
      key: line.replace(/#.*/, "").trim(),
      field: `--keyring ${path}:${i + 1}`,
    }))
    .filter((k) => k.key !== "");
}

/** Reads a keyring file; a file that cannot be read is the user's to fix. */
export function readKeyringFile(
  path: string,
  readTextFile: (path: string) => string = Deno.readTextFileSync,
): KeySource[] {
  let text: string;
  try {
    text = readTextFile(path);
  } catch (err) {
    throw new UserError(`--keyring: cannot read "${path}": ${errorMessage(err)}`);
  }
  return parseKeyringText(text, path);
}

/** The config fields that name gossip keys. */
export type GossipKeySettings = Pick<NodeConfig, "encryptKey" | "extraEncryptKeys" | "keyringFile">;

/**
 * The gossip keys a config names, primary first (`--encrypt-key`, then `extraEncryptKeys`,
 * then the keyring file's lines); empty when encryption is off. Throws a UserError for the
 * first key that is not 32 bytes of base64.
 */
export function gossipKeysOf(
  c: GossipKeySettings,
  readTextFile?: (path: string) => string,
): Uint8Array[] {
  const sources: KeySource[] = [
    ...(c.encryptKey ? [{ key: c.encryptKey, field: "--encrypt-key" }] : []),
    ...c.extraEncryptKeys.map((key, i) => ({ key, field: `extraEncryptKeys[${i}]` })),
    ...(c.keyringFile ? readKeyringFile(c.keyringFile, readTextFile) : []),
  ];
  return sources.map(({ key, field }) => {
    const parsed = parseKey(key, field);
    if (typeof parsed === "string") throw new UserError(parsed);
    return parsed;
  });
}
