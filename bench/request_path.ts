/**
 * @module
 * The proxy's request path without sockets: the real `Proxy` and HTTP/1.1 session, with
 * in-process fake connections (32 clients sending `GET /` with `Host: upstream` back to back, an
 * upstream answering a 100-byte body at once). What it prints, microseconds of one thread per
 * proxied request, is parsing, routing, head building, promises and garbage collection: the
 * user-space work of a request, apart from the sockets and the kernel, steady enough to compare
 * two versions of the code (run them alternately).
 *
 * Run: `deno run -A bench/request_path.ts [--requests N] [--connections C]`.
 */
import { Registry, silentLogger } from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import { buildSnapshot, endpoint } from "../tests/support/proxy.ts";
import type { Network, StreamConn, StreamListener } from "../proxy/io/net.ts";
import { median, positiveFlag } from "./support.ts";

const encoder = new TextEncoder();
const requestBytes = encoder.encode("GET / HTTP/1.1\r\nHost: upstream\r\n\r\n");
const responseBytes = encoder.encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 10:00:00 GMT\r\n" +
    "Content-Type: text/plain\r\nContent-Length: 100\r\nConnection: keep-alive\r\n\r\n" +
    "x".repeat(100),
);
const peer: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 40000 };

/**
 * One end of an in-process connection whose peer answers every write with `answer`: the
 * client side sends its next request once the response was written, the upstream side
 * answers each request head. `messages` bounds how many answers it gives before end of stream.
 */
class FakeConn implements StreamConn {
  readonly remoteAddr = peer;
  #waiting: ((n: number | null) => void) | null = null;
  #into: Uint8Array | null = null;
  #ready: boolean;

  constructor(
    readonly answer: Uint8Array,
    public messages: number,
    readyAtOnce: boolean,
    readonly onEnd: () => void = () => {},
  ) {
    this.#ready = readyAtOnce;
  }

  #deliver(): void {
    const resolve = this.#waiting!;
    this.#waiting = null;
    if (this.messages-- <= 0) {
      resolve(null);
      this.onEnd();
      return;
    }
    this.#into!.set(this.answer);
    resolve(this.answer.length);
  }

  read(p: Uint8Array): Promise<number | null> {
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.#into = p;
      if (this.#ready) {
        this.#ready = false;
        this.#deliver();
      }
    });
  }

  #written(p: Uint8Array): void {
    // A client must see the upstream's 200: anything else (a local reply) measures the wrong path.
    if (this.answer === requestBytes && !(p[9] === 50 && p[10] === 48 && p[11] === 48)) {
      console.error(`unexpected response: ${new TextDecoder().decode(p.subarray(0, 80))}`);
      Deno.exit(1);
    }
    if (this.#waiting) queueMicrotask(() => this.#deliver());
    else this.#ready = true;
  }

  tryWrite(p: Uint8Array): number {
    this.#written(p);
    return p.length;
  }

  write(p: Uint8Array): Promise<number> {
    this.#written(p);
    return Promise.resolve(p.length);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {}

  setNoDelay(): void {}
}

/** Proxies `requests` requests over `connections` fake clients; resolves with the time taken. */
async function run(requests: number, connections: number): Promise<number> {
  let open = connections;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const clients: FakeConn[] = [];
  for (let i = 0; i < connections; i++) {
    const each = Math.floor(requests / connections);
    clients.push(new FakeConn(requestBytes, each, true, () => --open === 0 && finished()));
  }
  const outboundPort = 1;
  const network: Network = {
    name: "in-process",
    listen: (addr): StreamListener => ({
      addr,
      accept: () =>
        addr.port === outboundPort && clients.length > 0
          ? Promise.resolve(clients.pop()!)
          : new Promise<StreamConn>(() => {}),
      close() {},
    }),
    connect: () => Promise.resolve(new FakeConn(responseBytes, Number.MAX_SAFE_INTEGER, false)),
    settled: () => Promise.resolve(),
  };
  const snapshot = buildSnapshot({
    outbound: { upstream: { endpoints: [endpoint({ hostname: "127.0.0.1", port: 9 })] } },
  });
  const proxy = new Proxy({ snapshot, logger: silentLogger, metrics: new Registry(), network });
  const started = performance.now();
  await proxy.start({
    outbound: { hostname: "127.0.0.1", port: outboundPort },
    inbound: { hostname: "127.0.0.1", port: 2 },
  });
  await done;
  return performance.now() - started;
}

const requests = positiveFlag("--requests", 200_000, true);
const connections = positiveFlag("--connections", 32, true);
await run(50_000, connections); // warm-up: JIT
const perRequest: number[] = [];
for (let i = 0; i < 5; i++) perRequest.push((await run(requests, connections)) * 1000 / requests);
console.log(
  `request path: ${median(perRequest).toFixed(2)} us per request (median of 5 runs of ${requests}` +
    ` over ${connections} in-process connections; runs: ${
      perRequest.map((x) => x.toFixed(2)).join(" ")
    })`,
);
// Proxies started here keep fake accepts pending forever; the process ends with the script.
Deno.exit(0);
