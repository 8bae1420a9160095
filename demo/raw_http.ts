/**
 * @module
 * A minimal HTTP/1.1 client over a raw TCP connection, for the demo, tests and benchmarks:
 * it sends exactly the request line and headers given (including `Host` and absolute-URL
 * proxy requests, which `fetch` does not allow) and reads one response with
 * `Connection: close`.
 */

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/**
 * Sends one request to `hostname:port`. `target` is the request target: a path
 * (`/x`) or an absolute URL for proxy requests (`http://reviews/x`).
 */
export async function rawRequest(
  hostname: string,
  port: number,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = "",
  timeoutMs = 10_000,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname, port });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const lines = [`${method} ${target} HTTP/1.1`];
    const all: Record<string, string> = { connection: "close", ...headers };
    if (body) all["content-length"] = String(new TextEncoder().encode(body).length);
    for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n" + body));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16384);
    for (let i = 0; i < 100_000; i++) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(concat(chunks));
    const split = text.indexOf("\r\n\r\n");
    if (split < 0) throw new Error(`no complete response from ${hostname}:${port}`);
    const [statusLine, ...headerLines] = text.slice(0, split).split("\r\n");
    const map = new Map<string, string>();
    for (const h of headerLines) {
      const i = h.indexOf(":");
      map.set(h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim());
    }
    let rest = text.slice(split + 4);
    if (map.get("transfer-encoding")?.includes("chunked")) rest = dechunk(rest);
    return { status: Number(statusLine.split(" ")[1]), headers: map, body: rest };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by the timeout
    }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function dechunk(s: string): string {
  let out = "";
  let i = 0;
  for (let guard = 0; guard < 1_000_000 && i < s.length; guard++) {
    const eol = s.indexOf("\r\n", i);
    if (eol < 0) break;
    const size = parseInt(s.slice(i, eol), 16);
    if (!size) break;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
  return out;
}
