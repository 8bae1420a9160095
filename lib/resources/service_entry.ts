/**
 * @module
 * `ServiceEntry` (networking.istio.io): adds a host the mesh does not discover by itself
 * (an external API, a VM, a database) so that applications can reach it through the outbound
 * listener. Field names and meaning follow Istio; fields Weft does not implement (for example
 * `workloadSelector` or `subjectAltNames`) are rejected by the strict schema with their path.
 */
import { z } from "../schema.ts";
import type { KindDefinition } from "./kind.ts";

/** Istio's port protocols that Weft can carry. HTTPS and TLS are forwarded as opaque TCP. */
export const serviceEntryProtocolSchema = z.enum(["HTTP", "HTTP2", "GRPC", "TCP", "HTTPS", "TLS"]);
export type ServiceEntryProtocol = z.infer<typeof serviceEntryProtocolSchema>;

const portNumber = z.number().int().min(1).max(65535);

/** A port of the service (`ports[]`). */
export const servicePortSchema = z.object({
  number: portNumber,
  protocol: serviceEntryProtocolSchema,
  name: z.string().min(1).max(63),
  /** Port on the endpoints when it differs from `number` (Istio `targetPort`). */
  targetPort: portNumber.optional(),
}).strict();
export type ServicePort = z.infer<typeof servicePortSchema>;

/** One endpoint (Istio's WorkloadEntry fields that Weft supports). */
export const serviceEntryEndpointSchema = z.object({
  /** IP address (STATIC) or hostname (DNS). */
  address: z.string().min(1).max(253),
  /** Port name -> port on this endpoint, overriding the service port's target. */
  ports: z.record(z.string(), portNumber).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  /** Relative weight for load balancing; Istio's default is 1 (0 means unset). */
  weight: z.number().int().min(0).max(1_000_000).optional(),
}).strict();
export type ServiceEntryEndpoint = z.infer<typeof serviceEntryEndpointSchema>;

const hostName = z.string().min(1).max(253).regex(
  /^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/,
  "must be a DNS name, optionally with a leading '*.'",
);

/** The `spec` of a ServiceEntry. */
export const serviceEntrySpecSchema = z.object({
  hosts: z.array(hostName).min(1, "must list at least one host"),
  addresses: z.array(z.string().min(1)).optional(),
  ports: z.array(servicePortSchema).optional(),
  location: z.enum(["MESH_EXTERNAL", "MESH_INTERNAL"]).optional(),
  /** Istio's default is NONE: the destination address of the connection is used as is. */
  resolution: z.enum(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]).optional(),
  endpoints: z.array(serviceEntryEndpointSchema).optional(),
  exportTo: z.array(z.string().min(1)).optional(),
}).strict();
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpecSchema>;

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** True for an IPv4 or IPv6 literal (STATIC endpoints must be addresses, not names). */
export function isIpAddress(value: string): boolean {
  return ipv4.test(value) || (value.includes(":") && /^[0-9a-fA-F:.]+$/.test(value));
}

/** Cross-field rules Istio enforces and zod cannot express. */
function validateServiceEntry(spec: ServiceEntrySpec): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const resolution = spec.resolution ?? "NONE";
  const ports = spec.ports ?? [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  ports.forEach((p, i) => {
    if (names.has(p.name)) {
      issues.push({ path: `spec.ports[${i}].name`, message: `duplicate port name "${p.name}"` });
    }
    if (numbers.has(p.number)) {
      issues.push({
        path: `spec.ports[${i}].number`,
        message: `duplicate port number ${p.number}`,
      });
    }
    names.add(p.name);
    numbers.add(p.number);
  });
  const endpoints = spec.endpoints ?? [];
  if (resolution === "STATIC" && endpoints.length === 0) {
    issues.push({
      path: "spec.endpoints",
      message: "resolution STATIC needs at least one endpoint",
    });
  }
  if (resolution === "NONE" && endpoints.length > 0) {
    issues.push({ path: "spec.endpoints", message: "endpoints need resolution STATIC or DNS" });
  }
  endpoints.forEach((ep, i) => {
    if (resolution === "STATIC" && !isIpAddress(ep.address)) {
      issues.push({
        path: `spec.endpoints[${i}].address`,
        message: `"${ep.address}" is not an IP address (required by resolution STATIC)`,
      });
    }
    for (const name of Object.keys(ep.ports ?? {})) {
      if (!names.has(name)) {
        issues.push({
          path: `spec.endpoints[${i}].ports.${name}`,
          message: `no service port is named "${name}"`,
        });
      }
    }
  });
  if (resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") {
    spec.hosts.forEach((h, i) => {
      if (h.startsWith("*") && endpoints.length === 0) {
        issues.push({
          path: `spec.hosts[${i}]`,
          message: `wildcard host "${h}" cannot be resolved by DNS without endpoints`,
        });
      }
    });
  }
  return issues;
}

/** The ServiceEntry kind for the registry. */
export const serviceEntryKind: KindDefinition<ServiceEntrySpec> = {
  kind: "ServiceEntry",
  apiVersions: [
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
  ],
  spec: serviceEntrySpecSchema,
  validate: validateServiceEntry,
};
