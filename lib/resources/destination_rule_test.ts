/**
 * @module
 * DestinationRule schema and cross-field checks (what a rule compiles to is tested in
 * `lib/compile/destination_rules_test.ts`).
 */
import { destinationRuleKind } from "./destination_rule.ts";
import { formatPath } from "../errors.ts";
import { reviewsRule as reviews } from "../../tests/support/destination_rules.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Issues as `path: message` lines, zod's and `validate`'s together. */
function issuesOf(kind: typeof destinationRuleKind, spec: unknown): string[] {
  const parsed = kind.spec.safeParse(spec);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => {
      const keys = i.code === "unrecognized_keys" ? ` ${i.keys.join(",")}` : "";
      return `${formatPath(i.path)}: ${i.message}${keys}`;
    });
  }
  return (kind.validate?.(parsed.data) ?? []).map((i) => `${i.path}: ${i.message}`);
}

function expectIssue(spec: unknown, path: string, fragment: string): void {
  const issues = issuesOf(destinationRuleKind, spec);
  assert(
    issues.some((i) => i.startsWith(`${path}:`) && i.includes(fragment)),
    `expected "${path}: …${fragment}…", got ${JSON.stringify(issues)}`,
  );
}

Deno.test("accepts a DestinationRule with policies and subsets", () => {
  const issues = issuesOf(destinationRuleKind, reviews);
  assert(issues.length === 0, `refused: ${issues}`);
});

Deno.test("refuses inconsistent or unsupported settings with their path", () => {
  const lb = (loadBalancer: unknown) => ({ host: "r", trafficPolicy: { loadBalancer } });
  expectIssue(
    lb({ consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } }),
    "trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    "prime",
  );
  expectIssue(
    lb({ consistentHash: { useSourceIp: true, httpHeaderName: "x" } }),
    "trafficPolicy.loadBalancer.consistentHash",
    "exactly one",
  );
  expectIssue(
    lb({ consistentHash: { useSourceIp: true, ringHash: {}, maglev: {} } }),
    "trafficPolicy.loadBalancer.consistentHash",
    "only one of",
  );
  expectIssue(
    lb({ simple: "RANDOM", consistentHash: { useSourceIp: true } }),
    "trafficPolicy.loadBalancer",
    "either simple or consistentHash",
  );
  expectIssue(lb({ simple: "FASTEST" }), "trafficPolicy.loadBalancer.simple", "");
  expectIssue(
    { host: "r", trafficPolicy: { outlierDetection: { interval: "often" } } },
    "trafficPolicy.outlierDetection.interval",
    "not a duration",
  );
  expectIssue(
    { host: "r", subsets: [{ name: "a" }, { name: "a" }] },
    "subsets[1].name",
    "duplicate subset",
  );
  expectIssue(
    { host: "r", trafficPolicy: { tls: { mode: "ISTIO_MUTUAL" } } },
    "trafficPolicy",
    "tls",
  );
  expectIssue({ host: "http://r" }, "host", "host name");
});
