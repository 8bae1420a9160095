/**
 * @module
 * The admin HTTP API (hono): read-only views of the node, reload, Prometheus metrics and the
 * dashboard. The node's parts are passed in as functions, so this module knows nothing of
 * gossip or the proxy. Errors are JSON `{"error", "details"}` as the CLI contract says. Every
 * request passes the Host and Origin check of lib/admin/guard.ts first.
 */
import { Hono } from "hono";
import { errorMessage, UserError } from "../errors.ts";
import type { HostPort } from "../address.ts";
import type {
  ErrorResponse,
  MemberInfo,
  MembersResponse,
  NodeInfo,
  ReloadResponse,
  RoutesResponse,
  ServiceInfo,
  ServicesResponse,
  StatusResponse,
} from "./api_types.ts";
import { dashboardHtml } from "./dashboard.ts";
import { adminGuard } from "./guard.ts";

/** What the admin API shows and does; each function reads live state. */
export interface AdminDeps {
  node(): NodeInfo;
  members(): MemberInfo[];
  services(): ServiceInfo[];
  routes(): RoutesResponse;
  status(): StatusResponse;
  reload(): Promise<ReloadResponse>;
  metrics(): string;
  /** Extra routes (policy resources) mounted by the composition root. */
  mount?: (app: Hono) => void;
  /**
   * The host of `--admin-addr`: a `Host` naming it is accepted besides the loopback names
   * (lib/admin/guard.ts); omitted, only loopback names are.
   */
  adminHost?: string;
}

/** Builds the admin app. Serve it with `Deno.serve(..., app.fetch)`. */
export function createAdminApp(deps: AdminDeps): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof UserError) {
      return c.json<ErrorResponse>({ error: err.message, details: err.details }, 400);
    }
    return c.json<ErrorResponse>({ error: errorMessage(err), details: [] }, 500);
  });
  app.notFound((c) =>
    c.json<ErrorResponse>(
      { error: `No admin endpoint ${c.req.method} ${c.req.path}`, details: [] },
      404,
    )
  );
  app.use("*", adminGuard(deps.adminHost));
  app.get("/", (c) => c.html(dashboardHtml(deps.node().name)));
  app.get("/v1/node", (c) => c.json(deps.node()));
  app.get("/v1/members", (c) => c.json<MembersResponse>({ members: deps.members() }));
  app.get("/v1/services", (c) => c.json<ServicesResponse>({ services: deps.services() }));
  app.get("/v1/routes", (c) => c.json(deps.routes()));
  app.get("/v1/status", (c) => c.json(deps.status()));
  app.post("/v1/reload", async (c) => c.json(await deps.reload()));
  app.get(
    "/metrics",
    (c) => c.body(deps.metrics(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  app.get("/healthz", (c) => c.text("ok"));
  deps.mount?.(app);
  return app;
}

/** A running admin server and the address it bound (the real port when asked for port 0). */
export interface AdminServer {
  server: Deno.HttpServer;
  addr: HostPort;
}

/** Serves the admin app at `at`; resolves once it listens. */
export async function serveAdmin(app: Hono, at: HostPort): Promise<AdminServer> {
  const { promise: bound, resolve } = Promise.withResolvers<HostPort>();
  const server = Deno.serve({
    hostname: at.hostname,
    port: at.port,
    onListen: ({ hostname, port }) => resolve({ hostname, port }),
  }, app.fetch);
  return { server, addr: await bound };
}
