/**
 * @module
 * Hash key extraction for each Istio `consistentHash` source, and cookie generation.
 */
import type { HashPolicy } from "../../lib/mod.ts";
import { cookieValue, hashKeyFor, type HashKeyRequest, queryValue } from "./hash_key.ts";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

function request(headers: Record<string, string>, extra: Partial<HashKeyRequest> = {}) {
  const h = new Headers(headers);
  return { headers: h, ...extra };
}

Deno.test("header policy takes the header value, undefined when absent", () => {
  const policy: HashPolicy = { kind: "header", name: "x-user" };
  assertEquals(hashKeyFor(policy, request({ "x-user": "alice" })), "alice", "present");
  assertEquals(hashKeyFor(policy, request({})), undefined, "absent");
});

Deno.test("source IP policy uses the client address", () => {
  const policy: HashPolicy = { kind: "source_ip" };
  assertEquals(hashKeyFor(policy, request({}, { sourceIp: "127.0.0.9" })), "127.0.0.9", "ip");
  assertEquals(hashKeyFor(policy, request({})), undefined, "no ip");
});

Deno.test("query parameter policy decodes raw query strings and URLSearchParams", () => {
  const policy: HashPolicy = { kind: "query_parameter", name: "user id" };
  assertEquals(hashKeyFor(policy, request({}, { query: "?a=1&user+id=b%20c" })), "b c", "raw");
  const parsed = new URLSearchParams("user%20id=z");
  assertEquals(hashKeyFor(policy, request({}, { query: parsed })), "z", "parsed");
  assertEquals(queryValue("flag&x=1", "flag"), "", "valueless parameter");
  assertEquals(queryValue("x=1", "y"), undefined, "absent");
});

Deno.test("cookie policy reads the cookie and does not generate without ttl", () => {
  const policy: HashPolicy = { kind: "cookie", name: "affinity" };
  const req = request({ cookie: 'a=1; affinity="xyz"; b=2' });
  assertEquals(hashKeyFor(policy, req), "xyz", "quoted value");
  assertEquals(hashKeyFor(policy, request({ cookie: "a=1" })), undefined, "missing, no ttl");
  assertEquals(cookieValue("x=1;y=2", "y"), "2", "no spaces");
});

Deno.test("cookie policy with ttl generates a stable cookie and asks to set it", () => {
  const policy: HashPolicy = { kind: "cookie", name: "affinity", ttlMs: 60_000, path: "/" };
  const set: string[] = [];
  const first = hashKeyFor(
    policy,
    request({}, { sourceIp: "127.0.0.5", setCookie: (v) => set.push(v) }),
  );
  const second = hashKeyFor(policy, request({}, { sourceIp: "127.0.0.5" }));
  assertEquals(first, second, "same client, same generated key");
  assertEquals(set.length, 1, "one Set-Cookie");
  assertEquals(set[0], `affinity=${first}; Path=/; Max-Age=60; HttpOnly`, "Set-Cookie value");
  const present = hashKeyFor(
    policy,
    request({ cookie: `affinity=${first}` }, { setCookie: () => set.push("again") }),
  );
  assertEquals(present, first, "cookie round-trips");
  assertEquals(set.length, 1, "no Set-Cookie when the cookie is present");
  const session: string[] = [];
  hashKeyFor(
    { kind: "cookie", name: "s", ttlMs: 0 },
    request({}, {
      sourceIp: "127.0.0.1",
      setCookie: (v) => session.push(v),
    }),
  );
  assertEquals(session[0].includes("Max-Age"), false, "ttl 0 makes a session cookie");
});
