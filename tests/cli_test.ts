/**
 * @module
 * The `weft` command line as users meet it: exit codes, one-line errors, help and version.
 */
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { freePort } from "./support/sockets.ts";

const mainTs = new URL("../main.ts", import.meta.url).pathname;

async function weft(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", mainTs, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1", WEFT_ADMIN: "" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function oneLine(s: string): string {
  const lines = s.trim().split("\n");
  assertEquals(lines.length, 1, `expected one line, got:\n${s}`);
  assert(!s.includes("    at "), "no stack trace");
  return lines[0];
}

Deno.test("unknown flag exits 2 naming the flag", async () => {
  const r = await weft("agent", "--bogus", "1");
  assertEquals(r.code, 2);
  assertMatch(oneLine(r.stderr), /unknown flag --bogus/);
});

Deno.test("bad flag values exit 2 naming the flag and the reason", async () => {
  const cases: [string[], RegExp][] = [
    [["agent", "--admin-addr", "nope"], /--admin-addr: expected HOST:PORT/],
    [["agent", "--service", "reviews=notaport"], /--service: port "notaport"/],
    [["agent", "--log-level", "loud"], /--log-level: .*debug/],
    [["agent", "--upstream", "echo=huge"], /--upstream: port "huge"/],
    [["agent", "--upstream", "Bad Name=9000"], /--upstream: service: /],
    [["agent", "--join", "host-without-port"], /--join: expected HOST:PORT/],
    [["agent", "--config", "/nonexistent/weft.yaml"], /--config: cannot read/],
  ];
  for (const [args, re] of cases) {
    const r = await weft(...args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(oneLine(r.stderr), re);
  }
});

Deno.test("a gossip key of the wrong size exits 2 before the data directory is made", async () => {
  const parent = await Deno.makeTempDir({ prefix: "weft-cli-key-" });
  try {
    const dataDir = `${parent}/data`;
    const shortKey = btoa(String.fromCharCode(...new Uint8Array(16)));
    const r = await weft("agent", "--data-dir", dataDir, "--encrypt-key", shortKey);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(oneLine(r.stderr), /--encrypt-key: must decode to 32 bytes/);
    const made = await Deno.stat(dataDir).then(() => true, () => false);
    assertEquals(made, false, "nothing written for a refused start");
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("an invalid config file exits 2 naming the field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/weft.yaml`,
      "adminAddr: 127.0.0.1:15000\nservices:\n  - name: reviews\n    port: 70000\n",
    );
    const r = await weft("agent", "--config", `${dir}/weft.yaml`);
    assertEquals(r.code, 2);
    assertMatch(r.stderr.split("\n")[0], /services\[0\]\.port/);
    await Deno.writeTextFile(`${dir}/bad.yaml`, "a: [unclosed\n");
    const r2 = await weft("agent", "--config", `${dir}/bad.yaml`);
    assertEquals(r2.code, 2);
    assertMatch(oneLine(r2.stderr), /not valid YAML/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unknown command exits 2; help and --help exit 0", async () => {
  const r = await weft("frobnicate");
  assertEquals(r.code, 2);
  assertMatch(oneLine(r.stderr), /unknown command "frobnicate"/);
  for (
    const args of [["help"], ["--help"], ["agent", "--help"], ["members", "--help"], [
      "help",
      "agent",
    ]]
  ) {
    const h = await weft(...args);
    assertEquals(h.code, 0, args.join(" "));
    assertMatch(h.stdout, /Usage: weft/);
  }
});

Deno.test("version prints the Weft and Deno versions", async () => {
  const r = await weft("version", "-o", "json");
  assertEquals(r.code, 0);
  const v = JSON.parse(r.stdout);
  assertEquals(v.deno, Deno.version.deno);
  assertMatch(v.version, /^\d+\.\d+\.\d+/);
});

Deno.test("operating commands exit 1 with a clear line when no node answers", async () => {
  const r = await weft("members", "--admin", "127.0.0.1:1");
  assertEquals(r.code, 1);
  assertMatch(oneLine(r.stderr), /cannot reach the Weft admin API at http:\/\/127\.0\.0\.1:1/);
});

Deno.test("an address in use exits 1 with one line naming the address and its flag", async () => {
  const flags = [
    "--admin-addr",
    "--outbound-addr",
    "--inbound-addr",
    "--gossip-addr",
    "--p2p-addr",
  ];
  const runs = flags.map(async (taken) => {
    const dataDir = await Deno.makeTempDir({ prefix: "weft-cli-inuse-" });
    const ports = new Map(flags.map((f) => [f, freePort()]));
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: ports.get(taken)! });
    try {
      const args = ["agent", "--name", "inuse", "--data-dir", dataDir, "--log-level", "error"];
      for (const f of flags) args.push(f, `127.0.0.1:${ports.get(f)}`);
      const r = await weft(...args);
      assertEquals(r.code, 1, `${taken}: ${r.stderr}`);
      const expected = `cannot listen on 127.0.0.1:${ports.get(taken)} (`;
      const line = oneLine(r.stderr);
      assert(line.startsWith(`weft: ${expected}`), `${taken}: ${line}`);
      assert(line.endsWith(`${taken}): address already in use`), `${taken}: ${line}`);
    } finally {
      blocker.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  });
  await Promise.all(runs);
});
