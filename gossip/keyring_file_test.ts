/**
 * @module
 * Gossip keys from flags, config and a keyring file: order, comments, and named errors.
 */
import { assertEquals, assertThrows } from "../tests/support/assert.ts";
import { UserError } from "../lib/errors.ts";
import { gossipKeysOf, parseKeyringText } from "./keyring_file.ts";

const keyA = btoa(String.fromCharCode(...new Uint8Array(32).fill(1)));
const keyB = btoa(String.fromCharCode(...new Uint8Array(32).fill(2)));
const keyC = btoa(String.fromCharCode(...new Uint8Array(32).fill(3)));
const none = { encryptKey: undefined, extraEncryptKeys: [], keyringFile: undefined };

Deno.test("a keyring file's keys skip blank lines and comments and keep their line numbers", () => {
  assertEquals(parseKeyringText(`# primary\n${keyA}  # new\n\n  ${keyB}\n#${keyC}\n`, "k.txt"), [
    { key: keyA, field: "--keyring k.txt:2" },
    { key: keyB, field: "--keyring k.txt:4" },
  ]);
});

Deno.test("keys come primary first: --encrypt-key, extraEncryptKeys, then the keyring file", () => {
  const keys = gossipKeysOf(
    { encryptKey: keyA, extraEncryptKeys: [keyB], keyringFile: "ring" },
    () => `${keyC}\n`,
  );
  assertEquals(keys.map((k) => k[0]), [1, 2, 3]);
});

Deno.test("no key anywhere means encryption is off", () => {
  assertEquals(gossipKeysOf(none), []);
});

Deno.test("a bad key names the file and line it is on", () => {
  const err = assertThrows(
    () => gossipKeysOf({ ...none, keyringFile: "ring" }, () => `${keyA}\nc2hvcnQ=\n`),
    UserError,
  );
  assertEquals(err.message, "--keyring ring:2: must decode to 32 bytes (AES-256), got 5");
});

Deno.test("a bad extra key names its config field", () => {
  const err = assertThrows(
    () => gossipKeysOf({ ...none, extraEncryptKeys: [keyA, "!!"] }),
    UserError,
  );
  assertEquals(err.message, "extraEncryptKeys[1]: not valid base64");
});

Deno.test("a keyring file that cannot be read is a user error naming the flag and the path", () => {
  const err = assertThrows(
    () =>
      gossipKeysOf({ ...none, keyringFile: "/nope/ring" }, () => {
        throw new Deno.errors.NotFound("No such file or directory");
      }),
    UserError,
  );
  assertEquals(err.message, '--keyring: cannot read "/nope/ring": No such file or directory');
});
