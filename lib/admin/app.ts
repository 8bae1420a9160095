/**
 * @module
 * The admin HTTP API (hono): read-only views of the node, reload, Prometheus metrics and the
 * dashboard. The node's parts are passed in as functions, so this module knows nothing of
 * gossip or the proxy. Errors are JSON `{"error", "details"}` as the CLI contract says.
 */
import { Hono } from "hono";
import { errorMessage, UserError } from "../errors.ts";
import { dashboardHtml } from "./dashboard.ts";

/** What the admin API shows and does; each function reads live state. */
export interface AdminDeps {
  node(): { name: string; id: string; version: string; startedAt: string };
  members(): unknown[];
  services(): unknown[];
  routes(): unknown;
  status(): unknown;
  reload(): Promise<{ snapshotVersion: number }>;
  metrics(): string;
  /** Extra routes (policy resources) mounted by the composition root. */
  mount?: (app: Hono) => void;
}

/** Builds the admin app. Serve it with `Deno.serve(..., app.fetch)`. */
export function createAdminApp(deps: AdminDeps): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof UserError) {
      return c.json({ error: err.message, details: err.details }, 400);
    }
    return c.json({ error: errorMessage(err), details: [] }, 500);
  });
  app.notFound((c) =>
    c.json({ error: `No admin endpoint ${c.req.method} ${c.req.path}`, details: [] }, 404)
  );
  app.get("/", (c) => c.html(dashboardHtml(deps.node().name)));
  app.get("/v1/node", (c) => c.json(deps.node()));
  app.get("/v1/members", (c) => c.json({ members: deps.members() }));
  app.get("/v1/services", (c) => c.json({ services: deps.services() }));
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
