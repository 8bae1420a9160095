/**
 * @module
 * The admin API against hostile input, over real HTTP to a server on an ephemeral port: a web
 * page's requests (a foreign `Host` under DNS rebinding, a foreign `Origin`, a `text/plain`
 * body a browser sends without a preflight) are refused and apply nothing; a chunked body is
 * cut off at the limit instead of being held whole; YAML alias bombs and deep nesting are a
 * clear 400 naming the limit; `weft apply` still works.
 */
import { YAML_MAX_ALIAS_COUNT, YAML_MAX_DEPTH } from "../lib/yaml.ts";
import { assert, assertEquals, assertLess, assertMatch } from "./support/assert.ts";
import { parseResponse, rawRequest, startTestAdmin, type TestAdmin } from "./support/admin.ts";
import { readUntil } from "./support/sockets.ts";

const seYaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example]
  ports: [{number: 80, protocol: HTTP, name: http}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;

async function withAdmin(
  fn: (a: TestAdmin) => Promise<void>,
  opts: { maxBodyBytes?: number; adminHost?: string } = {},
): Promise<void> {
  const a = await startTestAdmin(opts);
  try {
    await fn(a);
  } finally {
    await a.close();
  }
}

function errorOf(body: string): { error: string; details: { path: string; message: string }[] } {
  const json = JSON.parse(body);
  assert(typeof json.error === "string" && Array.isArray(json.details), body);
  return json;
}

Deno.test("admin: a foreign Host is refused with 403 naming the header, and applies nothing", async () => {
  await withAdmin(async (a) => {
    // What a rebinding page sends: its own name, the admin port, a simple text/plain POST.
    for (const type of ["text/plain", "application/yaml"]) {
      const r = await rawRequest(a.port, "POST", "/v1/resources", {
        host: `rebind.attacker.example:${a.port}`,
        "content-type": type,
      }, seYaml);
      assertEquals(r.status, 403);
      const e = errorOf(r.body);
      assertMatch(e.error, /^Host header: expected localhost, 127\.0\.0\.0\/8, \[::1\]/);
      assertMatch(e.error, /got "rebind\.attacker\.example:\d+"/);
      assertEquals(e.details[0].path, "headers.host");
    }
    assertEquals(a.store.stats().count, 0);
    const reload = await rawRequest(a.port, "POST", "/v1/reload", { host: "evil.example" });
    assertEquals(reload.status, 403);
    assertEquals(a.reloads, 0);
    // Reads leak under rebinding too: refused, except the scrape and health paths.
    for (const path of ["/", "/v1/members", "/v1/resources", "/v1/store"]) {
      assertEquals((await rawRequest(a.port, "GET", path, { host: "evil.example" })).status, 403);
    }
    assertEquals(
      await rawRequest(a.port, "GET", "/metrics", { host: "10.9.8.7:15000" }),
      { status: 200, body: "weft_up 1\n" },
    );
    assertEquals(
      (await rawRequest(a.port, "GET", "/healthz", { host: "evil.example" })).status,
      200,
    );
    // Every loopback name is the node itself.
    for (
      const host of ["localhost", `LOCALHOST:${a.port}`, "127.0.0.1", "127.3.2.1:1", "[::1]:9"]
    ) {
      const r = await rawRequest(a.port, "POST", "/v1/reload", { host });
      assertEquals(r.status, 200, `${host}: ${r.body}`);
    }
    // Look-alikes are not.
    for (const host of ["localhost.evil.example", "127.0.0.1.evil.example", "127.0.0.1@evil", ""]) {
      assertEquals((await rawRequest(a.port, "POST", "/v1/reload", { host })).status, 403, host);
    }
    assertEquals(a.reloads, 5);
  });
});

Deno.test("admin: the host of --admin-addr is accepted; a wildcard address accepts IP literals", async () => {
  await withAdmin(async (a) => {
    assertEquals(
      (await rawRequest(a.port, "GET", "/v1/node", { host: "10.1.2.3:15000" })).status,
      200,
    );
    assertEquals((await rawRequest(a.port, "GET", "/v1/node", { host: "10.1.2.4" })).status, 403);
    const r = await rawRequest(a.port, "GET", "/v1/node", { host: "evil.example" });
    assertMatch(errorOf(r.body).error, /or 10\.1\.2\.3 \(--admin-addr\), got "evil\.example"/);
  }, { adminHost: "10.1.2.3" });
  await withAdmin(async (a) => {
    for (const host of ["192.168.1.5:15000", "[fd00::5]:15000"]) {
      assertEquals((await rawRequest(a.port, "GET", "/v1/node", { host })).status, 200, host);
    }
    // A wildcard bind does not make a DNS name safe: rebinding is exactly that.
    assertEquals(
      (await rawRequest(a.port, "GET", "/v1/node", { host: "evil.example" })).status,
      403,
    );
  }, { adminHost: "0.0.0.0" });
});

Deno.test("admin: a state-changing request from a foreign Origin is refused with 403", async () => {
  await withAdmin(async (a) => {
    const host = `127.0.0.1:${a.port}`;
    for (const origin of ["http://evil.example", `http://localhost:${a.port}`, "null"]) {
      const r = await rawRequest(a.port, "POST", "/v1/resources", {
        host,
        origin,
        "content-type": "application/yaml",
      }, seYaml);
      assertEquals(r.status, 403, origin);
      const e = errorOf(r.body);
      assertEquals(e.details[0].path, "headers.origin");
      assertMatch(e.error, /^Origin header: expected http:\/\/127\.0\.0\.1:\d+ or none, got "/);
      const del = await rawRequest(a.port, "DELETE", "/v1/resources/ServiceEntry/default/x", {
        host,
        origin,
      });
      assertEquals(del.status, 403);
    }
    assertEquals(a.store.stats().count, 0);
    // A page of the admin API itself (the dashboard) is its own origin; reads pass as well.
    const same = await rawRequest(a.port, "POST", "/v1/resources", {
      host,
      origin: `http://${host}`,
      "content-type": "application/yaml",
    }, seYaml);
    assertEquals(same.status, 200, same.body);
    assertEquals(a.store.stats().count, 1);
    const read = await rawRequest(a.port, "GET", "/v1/store", { host, origin: "http://evil" });
    assertEquals(read.status, 200);
  });
});

Deno.test("admin: POST /v1/resources takes JSON or YAML only: 415 names what it got", async () => {
  await withAdmin(async (a) => {
    const url = `http://${a.admin}/v1/resources`;
    for (
      const [type, got] of [
        ["text/plain", '"text/plain"'],
        ["application/x-www-form-urlencoded", '"application/x-www-form-urlencoded"'],
        [undefined, "none"],
      ] as const
    ) {
      const res = await fetch(url, {
        method: "POST",
        // A Uint8Array body gets no implicit content type, so `undefined` sends none.
        body: new TextEncoder().encode(seYaml),
        headers: type ? { "content-type": type } : {},
      });
      assertEquals(res.status, 415);
      const e = errorOf(await res.text());
      assertEquals(
        e.error,
        "Content-Type: expected one of application/json, application/yaml, " +
          `application/x-yaml, text/yaml, got ${got}`,
      );
      assertEquals(e.details[0].path, "headers.content-type");
    }
    assertEquals(a.store.stats().count, 0);
    for (const type of ["application/yaml; charset=utf-8", "application/x-yaml", "text/yaml"]) {
      const res = await fetch(url, {
        method: "POST",
        body: seYaml,
        headers: { "content-type": type },
      });
      assertEquals(res.status, 200, type);
      await res.body?.cancel();
    }
    assertEquals(a.store.stats().count, 1);
  });
});

Deno.test("admin: a chunked body over the limit is cut off at the limit with 413", async () => {
  const limit = 64 * 1024;
  const total = 64 * 1024 * 1024;
  await withAdmin(async (a) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: a.port });
    const enc = new TextEncoder();
    await conn.write(enc.encode(
      `POST /v1/resources HTTP/1.1\r\nhost: ${a.admin}\r\ncontent-type: application/yaml\r\n` +
        "transfer-encoding: chunked\r\n\r\n",
    ));
    let answered = false;
    const answer = readUntil(conn, (all) => new TextDecoder().decode(all).includes("}"))
      .finally(() => (answered = true));
    const chunk = enc.encode(`10000\r\n${"#".repeat(0x10000)}\r\n`);
    let sent = 0;
    let writeFailed = false;
    const writer = (async () => {
      try {
        while (sent < total && !answered) {
          for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
          sent += 0x10000;
        }
        if (!answered) await conn.write(enc.encode("0\r\n\r\n"));
      } catch {
        writeFailed = true; // the server closed the connection on us: it stopped reading
      }
    })();
    const res = parseResponse(await answer);
    conn.close(); // a write still blocked on a server that stopped reading ends here
    await writer;
    assertEquals(res.status, 413);
    assertEquals(errorOf(res.body).error, `Request body exceeds ${limit} bytes`);
    // The answer came while most of the body was still unsent: the server did not read it.
    assertLess(sent, total / 4, `sent ${sent} of ${total} bytes (write failed: ${writeFailed})`);
    assertEquals(a.store.stats().count, 0);
  }, { maxBodyBytes: limit });
});

Deno.test("admin: YAML alias bombs and deep nesting are a 400 naming the limit", async () => {
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"];
  for (const n of ["b", "c", "d", "e", "f", "g"]) {
    const prev = String.fromCharCode(n.charCodeAt(0) - 1);
    bomb.push(`${n}: &${n} [${Array(9).fill(`*${prev}`).join(", ")}]`);
  }
  const flow = `kind: ServiceEntry\nspec: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`;
  const block = Array.from({ length: 200 }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n") + " 1";
  await withAdmin(async (a) => {
    for (
      const [name, body, message] of [
        [
          "alias bomb",
          bomb.join("\n"),
          `aliases expand beyond the limit of ${YAML_MAX_ALIAS_COUNT}`,
        ],
        [
          "flow nesting",
          flow,
          `nesting deeper than the limit of ${YAML_MAX_DEPTH} levels at line 2`,
        ],
        [
          "block nesting",
          block,
          `nesting deeper than the limit of ${YAML_MAX_DEPTH} levels at line`,
        ],
      ]
    ) {
      const res = await fetch(`http://${a.admin}/v1/resources`, {
        method: "POST",
        body,
        headers: { "content-type": "application/yaml" },
      });
      const e = errorOf(await res.text());
      assertEquals(res.status, 400, `${name}: ${e.error}`);
      assert(e.error.startsWith(`invalid YAML: ${message}`), `${name}: ${e.error}`);
      assertEquals(e.details[0].path, "(yaml)");
    }
    // Nesting up to the limit is fine (it fails validation, not parsing).
    const deep = `kind: ServiceEntry\nspec: ${"[".repeat(YAML_MAX_DEPTH - 1)}${
      "]".repeat(YAML_MAX_DEPTH - 1)
    }`;
    const ok = await fetch(`http://${a.admin}/v1/resources`, {
      method: "POST",
      body: deep,
      headers: { "content-type": "application/yaml" },
    });
    const e = errorOf(await ok.text());
    assertEquals(ok.status, 400);
    assert(!e.error.includes("limit"), e.error);
    assertEquals(a.store.stats().count, 0);
  });
});

Deno.test("cli: weft apply passes the guard (loopback Host, JSON body) and applies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withAdmin(async (a) => {
      const file = `${dir}/se.yaml`;
      await Deno.writeTextFile(file, seYaml);
      const main = new URL("../main.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", main, "apply", "-f", file, "--admin", a.admin],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const dec = new TextDecoder();
      assertEquals([out.code, dec.decode(out.stderr)], [0, ""]);
      assertEquals(dec.decode(out.stdout), "serviceentry.networking.istio.io/httpbin created\n");
      assertEquals(a.store.stats().count, 1);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
