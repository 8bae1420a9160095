/**
 * @module
 * Helpers for proxy tests and benchmarks: hand-built snapshots and small upstream servers on
 * ephemeral loopback ports. Not used by the proxy itself.
 */
import type { StreamConn } from "../../proxy/io/net.ts";
import type {
  ClusterConfig,
  EndpointConfig,
  HostPort,
  ProxyTuning,
  RouteConfig,
  Snapshot,
  VirtualHostConfig,
} from "../../lib/mod.ts";
import { headerName, headerValue, newHead, parseHead } from "../../proxy/head.ts";
import {
  ChunkedScanner,
  ConnReader,
  encoder,
  Framing,
  pumpChunked,
  pumpLength,
  pumpUntilClose,
  writeAll,
} from "../../proxy/http1.ts";
import { closeServer } from "./sockets.ts";

/** Tuning with Envoy-like defaults, shortened where tests need it. */
export function testTuning(overrides: Partial<ProxyTuning> = {}): ProxyTuning {
  return {
    connectTimeoutMs: 5000,
    routeTimeoutMs: 15000,
    upstreamIdleTimeoutMs: 60_000,
    maxIdlePerEndpoint: 128,
    drainTimeoutMs: 1000,
    requestHeadersTimeoutMs: 10_000,
    downstreamIdleTimeoutMs: 60_000,
    requestBodyTimeoutMs: 30_000,
    maxDownstreamConnections: 10_000,
    network: "deno",
    ...overrides,
  };
}

/** An endpoint for `addr`. */
export function endpoint(addr: HostPort, extra: Partial<EndpointConfig> = {}): EndpointConfig {
  return {
    key: `${addr.hostname}:${addr.port}`,
    hostname: addr.hostname,
    port: addr.port,
    node: "",
    labels: {},
    weight: 1,
    healthy: true,
    viaInbound: false,
    ...extra,
  };
}

/** One outbound service of {@linkcode buildSnapshot}. */
export interface TestService {
  endpoints: EndpointConfig[];
  /** Routes; default one route "/" to the service's own cluster. */
  routes?: RouteConfig[];
  timeoutMs?: number;
  connectTimeoutMs?: number;
}

/** Builds a snapshot with outbound services and inbound (local) services. */
export function buildSnapshot(options: {
  version?: number;
  outbound?: Record<string, TestService>;
  inbound?: Record<string, HostPort>;
  tuning?: Partial<ProxyTuning>;
}): Snapshot {
  const tuning = testTuning(options.tuning);
  const clusters = new Map<string, ClusterConfig>();
  const outbound = new Map<string, VirtualHostConfig>();
  const inbound = new Map<string, ClusterConfig>();
  for (const [service, s] of Object.entries(options.outbound ?? {})) {
    const name = `outbound|${service}`;
    clusters.set(name, {
      name,
      service,
      protocol: "http",
      endpoints: s.endpoints,
      loadBalancer: { kind: "round_robin" },
      connectTimeoutMs: s.connectTimeoutMs ?? tuning.connectTimeoutMs,
    });
    outbound.set(service, {
      name: service,
      domains: [service],
      routes: s.routes ?? [{
        name: "default",
        match: { pathPrefix: "/" },
        destinations: [{ cluster: name, weight: 100 }],
        timeoutMs: s.timeoutMs ?? tuning.routeTimeoutMs,
      }],
    });
  }
  for (const [service, addr] of Object.entries(options.inbound ?? {})) {
    const name = `inbound|${service}`;
    const cluster: ClusterConfig = {
      name,
      service,
      protocol: "http",
      endpoints: [endpoint(addr)],
      loadBalancer: { kind: "round_robin" },
      connectTimeoutMs: tuning.connectTimeoutMs,
    };
    clusters.set(name, cluster);
    inbound.set(service, cluster);
  }
  return { version: options.version ?? 1, outbound, inbound, clusters, tuning };
}

/** A Deno.serve upstream on an ephemeral loopback port. */
export interface TestUpstream {
  addr: HostPort;
  /** Requests seen, in order. */
  requests: { method: string; url: string; headers: Headers }[];
  close(): Promise<void>;
}

/** Starts an upstream whose responses come from `handler` (default: 200 "ok <port>"). */
export function startUpstream(
  handler?: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>,
): Promise<TestUpstream> {
  const requests: TestUpstream["requests"] = [];
  let port = 0;
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: (addr) => {
        port = addr.port;
        const bound = { hostname: addr.hostname, port: addr.port };
        resolve({
          addr: bound,
          requests,
          close: () => server.shutdown(),
        });
      },
    }, (req, info) => {
      requests.push({ method: req.method, url: req.url, headers: req.headers });
      if (handler) return handler(req, info);
      return new Response(`ok ${port}`);
    });
  });
}

/** A raw TCP server that answers every HTTP request with a fixed keep-alive reply. */
export interface RawUpstream {
  addr: HostPort;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** TCP connections open now. */
  readonly open: number;
  /** Every byte received so far, on all connections, as text. */
  readonly received: string;
  close(): Promise<void>;
}

/**
 * Starts a raw HTTP/1.1 upstream that counts TCP connections (Deno.serve hides them). It
 * answers each request head with `reply` (nothing when it is "", so the request stays busy)
 * and does not frame request bodies (tests send none, or only look at `received`).
 */
export function startRawUpstream(
  reply: (n: number) => string = (n) =>
    `HTTP/1.1 200 OK\r\ncontent-length: ${String(n).length}\r\n\r\n${n}`,
): RawUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let connections = 0;
  let served = 0;
  let received = "";
  const encoder = new TextEncoder();
  const serve = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(65536);
    let pending = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        const text = new TextDecoder().decode(buf.subarray(0, n));
        received += text;
        pending += text;
        let end: number;
        while ((end = pending.indexOf("\r\n\r\n")) >= 0) {
          pending = pending.slice(end + 4);
          served++;
          const answer = reply(served);
          if (answer !== "") await conn.write(encoder.encode(answer));
        }
      }
    } catch {
      // Closed by the test.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };
  const acceptLoop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      connections++;
      conns.add(conn);
      const t = serve(conn).finally(() => tasks.delete(t));
      tasks.add(t);
    }
  })();
  const bound = listener.addr;
  return {
    addr: { hostname: bound.hostname, port: bound.port },
    get connections() {
      return connections;
    },
    get open() {
      return conns.size;
    },
    get received() {
      return received;
    },
    close: () => closeServer(listener, acceptLoop, conns, tasks),
  };
}

/** A response as seen by {@linkcode TestClient}. */
export interface TestResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Map<string, string>;
  body: string;
}

/** Decodes a complete chunked body (test-side, whole message in memory). */
function dechunk(raw: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let i = 0;
  for (let guard = 0; guard < 1_000_000; guard++) {
    let lineEnd = raw.indexOf(10, i);
    const line = new TextDecoder().decode(raw.subarray(i, lineEnd)).trim();
    const size = parseInt(line.split(";")[0], 16);
    i = lineEnd + 1;
    if (size === 0) break;
    parts.push(raw.subarray(i, i + size));
    i += size + 2;
    lineEnd = 0;
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A keep-alive HTTP/1.1 client over one TCP connection that sends exactly the bytes given
 * (absolute-form targets, any Host, hop-by-hop headers), so tests see what the proxy does.
 */
export class TestClient {
  readonly #reader: ConnReader;
  readonly #head = newHead();
  readonly #scanner = new ChunkedScanner();

  private constructor(readonly conn: Deno.TcpConn) {
    this.#reader = new ConnReader(conn);
  }

  static async connect(addr: HostPort): Promise<TestClient> {
    return new TestClient(await Deno.connect({ hostname: addr.hostname, port: addr.port }));
  }

  /** Sends `head` (request line and header lines, no trailing blank line) and `body`. */
  async request(head: string, body?: string | Uint8Array, method = "GET"): Promise<TestResponse> {
    const bodyBytes = typeof body === "string" ? encoder.encode(body) : body;
    let text = head.replace(/\r?\n/g, "\r\n");
    if (bodyBytes) text += `\r\ncontent-length: ${bodyBytes.length}`;
    await writeAll(this.conn, encoder.encode(text + "\r\n\r\n"));
    if (bodyBytes) await writeAll(this.conn, bodyBytes);
    return await this.readResponse(method);
  }

  /** Reads one response (skipping 1xx interim ones). */
  async readResponse(method = "GET"): Promise<TestResponse> {
    const h = this.#head;
    const headers = new Map<string, string>();
    for (let i = 0; i < 10; i++) {
      const end = await this.#reader.readHeadEnd();
      if (end < 0) throw new Error("connection closed before a response");
      parseHead(this.#reader.buf, this.#reader.start, end, h, false);
      headers.clear();
      for (let j = 0; j < h.count; j++) {
        const name = headerName(h, j);
        const value = headerValue(h, j);
        const prev = headers.get(name);
        headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
      }
      this.#reader.start = end;
      if (h.status >= 200) break;
    }
    const sink = new CollectingConn();
    const noBody = method === "HEAD" || h.status === 204 || h.status === 304;
    if (!noBody) {
      if (h.framing === Framing.Length) {
        await pumpLength(this.#reader, sink.asConn(), h.contentLength);
      } else if (h.framing === Framing.Chunked) {
        await pumpChunked(this.#reader, sink.asConn(), this.#scanner);
      } else if (h.framing === Framing.UntilClose) {
        await pumpUntilClose(this.#reader, sink.asConn());
      }
    }
    let bytes = sink.bytes();
    if (!noBody && h.framing === Framing.Chunked) bytes = dechunk(bytes);
    return { status: h.status, headers, body: new TextDecoder().decode(bytes) };
  }

  /** Sends raw bytes. */
  async send(bytes: Uint8Array | string): Promise<void> {
    await writeAll(this.conn, typeof bytes === "string" ? encoder.encode(bytes) : bytes);
  }

  /** True when the peer closed the connection (reads EOF) within `ms`. */
  async closedByPeer(ms = 2000): Promise<boolean> {
    const timer = setTimeout(() => this.close(), ms);
    try {
      return this.#reader.buffered === 0 && !(await this.#reader.fill());
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Collects bytes written through a minimal Deno.Conn shape (only `write` is used). */
class CollectingConn {
  #parts: Uint8Array[] = [];
  asConn(): StreamConn {
    return {
      write: (p: Uint8Array) => {
        this.#parts.push(p.slice());
        return Promise.resolve(p.length);
      },
    } as unknown as StreamConn;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of this.#parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** One request on a fresh connection, closed afterwards. */
export async function oneRequest(
  addr: HostPort,
  head: string,
  body?: string | Uint8Array,
): Promise<TestResponse> {
  const c = await TestClient.connect(addr);
  try {
    return await c.request(head, body, head.split(" ")[0]);
  } finally {
    c.close();
  }
}
