/**
 * @module
 * A demo upstream service: answers every request with JSON naming the service, its instance
 * and version, so a demo can show who answered. Run as
 * `deno run --allow-net demo/upstream.ts NAME INSTANCE VERSION PORT`.
 */

/** Starts one demo service on 127.0.0.1:`port` (0 picks a free port). */
export function serveDemoService(
  name: string,
  instance: string,
  version: string,
  port: number,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    return Response.json({
      service: name,
      instance,
      version,
      method: req.method,
      path: url.pathname,
      requestId: req.headers.get("x-request-id"),
    });
  });
}

if (import.meta.main) {
  const [name, instance, version, port] = Deno.args;
  const server = serveDemoService(name, instance, version, Number(port));
  console.log(`demo service ${name}/${instance} on 127.0.0.1:${server.addr.port}`);
}
