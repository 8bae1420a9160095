/**
 * @module
 * Parsing user input into resources: YAML (multi-document) and JSON forms, every error
 * reported with its document and path, and nothing returned when anything is wrong.
 */
import assert from "node:assert/strict";
import { UserError } from "../lib/errors.ts";
import { findKind, parseResources } from "../lib/resources/registry.ts";

const good = `apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: httpbin
spec:
  hosts: [httpbin.org]
  ports:
    - number: 80
      protocol: HTTP
      name: http
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: db
  namespace: prod
  labels: {team: data}
spec:
  hosts: [db.internal]
  ports: [{number: 5432, protocol: TCP, name: pg}]
  resolution: STATIC
  endpoints:
    - address: 10.0.0.5
      weight: 2
`;

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error("expected a UserError");
}

Deno.test("multi-document YAML becomes validated resources with defaults", () => {
  const rs = parseResources(good);
  assert.equal(rs.length, 2);
  assert.equal(rs[0].metadata.namespace, "default");
  assert.equal(rs[1].metadata.namespace, "prod");
  assert.deepEqual(rs[1].metadata.labels, { team: "data" });
});

Deno.test("JSON object, array and List forms are accepted", () => {
  const one = parseResources(JSON.stringify(parseResources(good)[0]));
  assert.equal(one.length, 1);
  const arr = parseResources(JSON.stringify(parseResources(good)));
  assert.equal(arr.length, 2);
  const list = parseResources(JSON.stringify({ kind: "List", items: parseResources(good) }));
  assert.equal(list.length, 2);
});

Deno.test("every schema error is reported with document and path", () => {
  const bad = good.replace("hosts: [httpbin.org]", "hosts: [httpbin.org]\n  subjectAltNames: [x]")
    .replace("address: 10.0.0.5", "address: db.example");
  const err = userError(() => parseResources(bad));
  const paths = err.details.map((d) => d.path);
  assert(paths.includes("[doc 1] spec.subjectAltNames"), paths.join(", "));
  assert(paths.includes("[doc 2] spec.endpoints[0].address"), paths.join(", "));
  assert.match(err.message, /^\[doc 1\] spec\.subjectAltNames: unknown field/);
});

Deno.test("unknown kinds, versions, bad names and missing fields are named", () => {
  const err = userError(() =>
    parseResources(JSON.stringify([
      {
        apiVersion: "networking.istio.io/v2",
        kind: "ServiceEntry",
        metadata: { name: "Bad_Name" },
        spec: { hosts: ["a"] },
      },
      { apiVersion: "networking.istio.io/v1", kind: "Gateway", metadata: { name: "g" }, spec: {} },
      { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "x" } },
      {
        apiVersion: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: { name: "y" },
        spec: { hosts: [] },
        status: {},
      },
    ]))
  );
  const paths = err.details.map((d) => d.path);
  for (
    const p of [
      "[doc 1] apiVersion",
      "[doc 1] metadata.name",
      "[doc 2] kind",
      "[doc 3] spec",
      "[doc 4] status",
      "[doc 4] spec.hosts",
    ]
  ) {
    assert(paths.includes(p), `${p} missing from ${paths.join(", ")}`);
  }
});

Deno.test("invalid YAML and JSON are one clear error each", () => {
  const yamlMessage = userError(() => parseResources("kind: [unclosed")).message;
  assert.match(yamlMessage, /invalid YAML at line \d+, column \d+: \w/);
  assert.equal(yamlMessage.match(/at line/g)?.length, 1, `position given once: ${yamlMessage}`);
  assert.doesNotMatch(yamlMessage, /:$/);
  assert.match(userError(() => parseResources('{"kind": ')).message, /invalid JSON/);
  assert.match(userError(() => parseResources("")).message, /no resources/);
  assert.match(
    userError(() => parseResources(good + "---\n" + good)).details[0].message,
    /also defined/,
  );
});

Deno.test("kinds are found by short name, plural and group", () => {
  assert.equal(findKind("se")?.kind, "ServiceEntry");
  assert.equal(findKind("serviceentries")?.kind, "ServiceEntry");
  assert.equal(findKind("serviceentry.networking.istio.io")?.kind, "ServiceEntry");
  assert.equal(findKind("nope"), undefined);
});
