/**
 * @module
 * The common shape of policy resources (Istio-style) and of a kind's definition. Each kind
 * lives in its own file and exports a {@linkcode KindDefinition}; the registry combines them.
 */
import type { z } from "../schema.ts";

/** Object metadata, as in Kubernetes. */
export interface ResourceMetadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

/** A validated resource. `spec` has the type of its kind's schema. */
export interface Resource<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ResourceMetadata;
  spec: Spec;
}

/** One resource kind: its name, the API group versions it accepts, and its spec schema. */
export interface KindDefinition<Spec = unknown> {
  /** e.g. `VirtualService`. */
  kind: string;
  /** Accepted `apiVersion` values, preferred first (e.g. `networking.istio.io/v1`). */
  apiVersions: readonly string[];
  /** Strict zod schema of `spec`: unknown fields are errors naming their path. */
  spec: z.ZodType<Spec>;
  /** Checks across fields that zod cannot express; returns issues with paths under `spec`. */
  validate?: (spec: Spec) => { path: string; message: string }[];
}
