/**
 * @module
 * The policy admin routes and the `apply`/`get`/`delete` commands against a real HTTP
 * server on an ephemeral port, plus the ServiceEntry -> snapshot compilation.
 */
import assert from "node:assert/strict";
import { resourceRoutes } from "../lib/admin/resources.ts";
import { PolicyStore } from "../lib/store/store.ts";
import { applyCommand, deleteCommand, getCommand } from "../cli/resources.ts";
import { compileSnapshot } from "../lib/mod.ts";
import { proxyTuningSchema } from "../lib/config.ts";
import { parseResources } from "../lib/resources/registry.ts";

const seYaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example]
  ports: [{number: 80, protocol: HTTP, name: http, targetPort: 8080}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}, {address: 127.0.0.2, weight: 3, ports: {http: 9090}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: ext, namespace: prod}
spec:
  hosts: [api.external.test]
  ports: [{number: 443, protocol: TLS, name: tls}, {number: 80, protocol: HTTP, name: http}]
  resolution: DNS
`;

async function withServer(
  memberDigests: () => { node: string; digest: string; alive: boolean }[],
  fn: (admin: string, store: PolicyStore) => Promise<void>,
): Promise<void> {
  const store = await PolicyStore.open({ nodeId: "n1" });
  const app = resourceRoutes({ store, nodeName: "n1", memberDigests });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  try {
    await fn(`127.0.0.1:${server.addr.port}`, store);
  } finally {
    await server.shutdown();
    await store.close();
  }
}

function sink() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) };
}

Deno.test("admin: invalid input answers 400 with every path and applies nothing", async () => {
  await withServer(() => [], async (admin, store) => {
    const bad = seYaml.replace("hosts: [api.external.test]", "hosts: []\n  bogus: 1");
    for (
      const [body, type] of [
        [bad, "application/yaml"],
        ["kind: [", "application/yaml"],
        ['{"kind":', "application/json"],
      ]
    ) {
      const res = await fetch(`http://${admin}/v1/resources`, {
        method: "POST",
        body,
        headers: { "content-type": type },
      });
      assert.equal(res.status, 400);
      const json = await res.json();
      assert(typeof json.error === "string" && json.details.length > 0);
      if (body === bad) {
        const paths = json.details.map((d: { path: string }) => d.path);
        assert(paths.includes("[doc 2] spec.hosts"), paths.join(","));
        assert(paths.includes("[doc 2] spec.bogus"), paths.join(","));
      }
    }
    assert.equal(store.stats().count, 0); // doc 1 was valid, yet nothing was applied
  });
});

Deno.test("admin: apply, dry run, list, get, delete and store view", async () => {
  const others = [{ node: "n2", digest: "old", alive: true }, {
    node: "n3",
    digest: "x",
    alive: false,
  }];
  await withServer(() => others, async (admin, store) => {
    const post = (q = "") =>
      fetch(`http://${admin}/v1/resources${q}`, {
        method: "POST",
        body: seYaml,
        headers: { "content-type": "application/yaml" },
      }).then((r) => r.json());
    assert.deepEqual(
      (await post("?dryRun=true")).results.map((r: { result: string }) => r.result),
      [
        "created",
        "created",
      ],
    );
    assert.equal(store.stats().count, 0);
    assert.deepEqual((await post()).results.map((r: { result: string }) => r.result), [
      "created",
      "created",
    ]);
    assert.deepEqual((await post()).results.map((r: { result: string }) => r.result), [
      "unchanged",
      "unchanged",
    ]);
    const list = await (await fetch(`http://${admin}/v1/resources?kind=se&namespace=prod`)).json();
    assert.deepEqual(
      list.items.map((i: { resource: { metadata: { name: string } } }) => i.resource.metadata.name),
      ["ext"],
    );
    assert.equal(
      await fetch(`http://${admin}/v1/resources/ServiceEntry/default/nope`).then(async (
        r,
      ) => (await r.body?.cancel(), r.status)),
      404,
    );
    const one = await (await fetch(`http://${admin}/v1/resources/serviceentry/default/httpbin`))
      .json();
    assert.equal(one.resource.spec.hosts[0], "httpbin.example");
    const view = await (await fetch(`http://${admin}/v1/store`)).json();
    assert.equal(view.count, 2);
    assert.equal(view.digest, store.digest());
    assert.deepEqual(view.lagging, ["n2"]); // n3 is dead, so it is not waited for
    const del = await fetch(`http://${admin}/v1/resources/ServiceEntry/prod/ext`, {
      method: "DELETE",
    });
    assert.equal(del.status, 200);
    await del.body?.cancel();
    const again = await fetch(`http://${admin}/v1/resources/ServiceEntry/prod/ext`, {
      method: "DELETE",
    });
    assert.equal(again.status, 404);
    await again.body?.cancel();
  });
});

Deno.test("cli: apply, get and delete print kubectl-like lines; errors exit 1 or 2", async () => {
  let peerDigest = "lagging";
  const dir = await Deno.makeTempDir();
  try {
    await withServer(
      () => [{ node: "n2", digest: peerDigest, alive: true }],
      async (admin, store) => {
        const file = `${dir}/se.yaml`;
        await Deno.writeTextFile(file, seYaml);
        const s = sink();
        assert.equal(await applyCommand(["-f", file], { admin, ...s }), 0);
        assert.deepEqual(s.out, [
          "serviceentry.networking.istio.io/httpbin created",
          "serviceentry.networking.istio.io/ext created (namespace prod)",
        ]);

        const w = sink();
        assert.equal(
          await applyCommand(["-f", file, "--wait", "--timeout", "300ms"], {
            admin,
            ...w,
            waitPollMs: 20,
          }),
          1,
        );
        assert.match(w.err.join("\n"), /n2/);
        peerDigest = store.digest();
        const w2 = sink();
        assert.equal(
          await applyCommand(["-f", "-", "--wait"], {
            admin,
            ...w2,
            readStdin: () => Promise.resolve(seYaml),
            waitPollMs: 20,
          }),
          0,
        );
        assert.match(w2.out.at(-1)!, /converged on 2 nodes/);

        const g = sink();
        assert.equal(await getCommand(["se", "-n", "prod"], { admin, ...g }), 0);
        assert.match(g.out[0], /^NAME\s+HOSTS\s+LOCATION\s+RESOLUTION\s+AGE$/);
        assert.match(g.out[1], /^ext\s+api\.external\.test\s+DNS/);
        const y = sink();
        assert.equal(
          await getCommand(["serviceentry", "httpbin", "-o", "yaml"], { admin, ...y }),
          0,
        );
        assert.equal(parseResources(y.out.join("\n"))[0].metadata.name, "httpbin");

        const d = sink();
        assert.equal(await deleteCommand(["se", "httpbin"], { admin, ...d }), 0);
        assert.deepEqual(d.out, ["serviceentry.networking.istio.io/httpbin deleted"]);
        const nf = sink();
        assert.equal(await deleteCommand(["se", "httpbin"], { admin, ...nf }), 1);
        assert.match(nf.err[0], /NotFound/);

        const bad = sink();
        await Deno.writeTextFile(file, seYaml.replace("protocol: HTTP,", "protocol: SMTP,"));
        assert.equal(await applyCommand(["-f", file], { admin, ...bad }), 2);
        assert.match(bad.err[0], /^weft: \[doc 1\] spec\.ports\[0\]\.protocol/);
        const badFlag = sink();
        assert.equal(await getCommand(["se", "--bogus"], { admin, ...badFlag }), 2);
        assert.equal(badFlag.err.length, 1);
      },
    );
    // Nothing listens there any more: an operational failure with a clear line.
    const down = sink();
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    assert.equal(await getCommand(["se"], { admin: `127.0.0.1:${port}`, ...down }), 1);
    assert.match(down.err[0], /cannot reach the Weft admin API/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("snapshot: ServiceEntries become outbound hosts; mesh services keep precedence", () => {
  const tuning = proxyTuningSchema.parse({});
  const resources = parseResources(seYaml);
  const snap = compileSnapshot({
    nodeName: "n1",
    localServices: [{
      name: "api.external.test",
      port: 7000,
      host: "127.0.0.1",
      protocol: "http",
      labels: {},
    }],
    catalog: [],
    tuning,
    serviceEntries: resources,
  }, 1);
  const vh = snap.outbound.get("httpbin.example")!;
  assert.deepEqual(vh.domains, ["httpbin.example", "httpbin.example:80"]);
  const cluster = snap.clusters.get(vh.routes[0].destinations[0].cluster)!;
  assert.deepEqual(cluster.endpoints.map((e) => [e.key, e.weight, e.viaInbound]), [
    ["127.0.0.1:8080", 1, false],
    ["127.0.0.2:9090", 3, false],
  ]);
  // The local service of the same name wins over the DNS entry.
  assert.equal(
    snap.outbound.get("api.external.test")!.routes[0].destinations[0].cluster,
    "outbound|api.external.test",
  );
  assert.equal(snap.clusters.get("outbound|api.external.test")!.endpoints[0].port, 7000);
  // Without the local service, DNS resolution targets the host itself, one cluster per port.
  const snap2 = compileSnapshot({
    nodeName: "n1",
    localServices: [],
    catalog: [],
    tuning,
    serviceEntries: resources,
  }, 2);
  assert.equal(
    snap2.clusters.get("outbound|api.external.test")!.endpoints[0].key,
    "api.external.test:443",
  );
  assert.equal(snap2.clusters.get("outbound|api.external.test")!.protocol, "tcp");
  assert.equal(snap2.clusters.get("outbound|api.external.test:80")!.protocol, "http");
});
