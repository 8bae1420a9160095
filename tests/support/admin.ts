/**
 * @module
 * An admin API as a node serves it (lib/admin/app.ts with the policy routes mounted, the Host
 * and Origin guard in front) on an ephemeral loopback port, over a fresh in-memory store, and a
 * raw HTTP/1.1 client for the requests `fetch` will not send (a chosen `Host`, a chunked body).
 */
import { createAdminApp, serveAdmin } from "../../lib/admin/app.ts";
import { resourceRoutes } from "../../lib/admin/resources.ts";
import { PolicyStore } from "../../lib/store/store.ts";
import { readUntil, writeAll } from "./sockets.ts";

/** A running admin API for tests; `close` stops the server and the store. */
export interface TestAdmin {
  /** `127.0.0.1:PORT`, as `--admin` takes it. */
  admin: string;
  port: number;
  store: PolicyStore;
  /** How many times `POST /v1/reload` reached the node. */
  reloads: number;
  close(): Promise<void>;
}

/** Starts the admin API on 127.0.0.1:0; `maxBodyBytes` bounds `POST /v1/resources`. */
export async function startTestAdmin(
  opts: { maxBodyBytes?: number; adminHost?: string } = {},
): Promise<TestAdmin> {
  const store = await PolicyStore.open({ nodeId: "n1" });
  const t = { reloads: 0 };
  const app = createAdminApp({
    node: () => ({ name: "n1", id: "id-n1", version: "test", startedAt: "" }),
    members: () => [],
    services: () => [],
    routes: () => ({ version: 1, warnings: [], outbound: [], inbound: [] }),
    status: () => {
      throw new Error("not in these tests");
    },
    reload: () => Promise.resolve({ snapshotVersion: ++t.reloads }),
    metrics: () => "weft_up 1\n",
    mount: (a) =>
      a.route("/", resourceRoutes({ store, nodeName: "n1", maxBodyBytes: opts.maxBodyBytes })),
    adminHost: opts.adminHost ?? "127.0.0.1",
  });
  const { server, addr } = await serveAdmin(app, { hostname: "127.0.0.1", port: 0 });
  return {
    admin: `127.0.0.1:${addr.port}`,
    port: addr.port,
    store,
    get reloads() {
      return t.reloads;
    },
    async close() {
      await server.shutdown();
      await store.close();
    },
  };
}

/** A parsed raw response: status and body text. */
export interface RawResponse {
  status: number;
  body: string;
}

/**
 * Sends one request over a new connection exactly as given (`headers` as written, so `Host`
 * and `Origin` are whatever the test says) with `Connection: close`, and reads the answer.
 */
export async function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = new TextEncoder().encode(body);
    const lines = [`${method} ${path} HTTP/1.1`, "connection: close"];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (method !== "GET") lines.push(`content-length: ${bytes.length}`);
    await writeAll(conn, new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`));
    await writeAll(conn, bytes);
    return parseResponse(await readUntil(conn, () => false));
  } finally {
    conn.close();
  }
}

/** Status and body of a whole `Connection: close` response (chunked bodies decoded). */
export function parseResponse(all: Uint8Array): RawResponse {
  const text = new TextDecoder().decode(all);
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) throw new Error(`no response head in ${JSON.stringify(text.slice(0, 200))}`);
  const head = text.slice(0, split);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  let body = text.slice(split + 4);
  if (/^transfer-encoding: *chunked/im.test(head)) {
    let out = "";
    for (let rest = body; rest.length > 0;) {
      const eol = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, eol), 16);
      if (!(size > 0)) break;
      out += rest.slice(eol + 2, eol + 2 + size);
      rest = rest.slice(eol + 4 + size);
    }
    body = out;
  }
  return { status, body };
}
