/**
 * @module
 * What a node's snapshot is compiled from, gathered in one place: the node config (read live,
 * since a reload replaces it), the service catalog membership builds, the policy resources in
 * the store, and which local services fail their active health check. Each compile takes the
 * next version number, so `weft routes` and `GET /v1/status` show that a swap happened.
 */
import {
  type CatalogEndpoint,
  compileSnapshot,
  type NodeConfig,
  type Snapshot,
  type SnapshotInput,
} from "./mod.ts";

/** The policy kinds the snapshot compiler reads from the store. */
export type PolicyKind = "ServiceEntry" | "VirtualService" | "DestinationRule";

/** Live policy resources of one kind, as the compiler takes them. */
export type PolicyResources = NonNullable<SnapshotInput["serviceEntries"]>;

/** Where a node's snapshot inputs come from; each is read at every compile. */
export interface NodeSnapshotSources {
  config(): NodeConfig;
  /** Service endpoints of every member (empty before membership starts). */
  catalog(): readonly CatalogEndpoint[];
  /** Live policy resources of a kind (empty before the store opens). */
  resources(kind: PolicyKind): PolicyResources;
}

/** Compiles a node's numbered snapshots from its live inputs. */
export class NodeSnapshots {
  #version = 0;
  readonly #unhealthyLocal = new Set<string>();

  constructor(private readonly sources: NodeSnapshotSources) {}

  /** Local services whose health check fails: advertised so, and kept out of balancing. */
  get unhealthyLocalServices(): ReadonlySet<string> {
    return this.#unhealthyLocal;
  }

  /** Records a local service's health-check verdict for the next compile. */
  noteHealth(service: string, healthy: boolean): void {
    if (healthy) this.#unhealthyLocal.delete(service);
    else this.#unhealthyLocal.add(service);
  }

  /** The inputs as they are now (exposed so tests can check the assembly without compiling). */
  input(): SnapshotInput {
    const config = this.sources.config();
    return {
      nodeName: config.name,
      localServices: config.services,
      catalog: this.sources.catalog(),
      serviceEntries: this.sources.resources("ServiceEntry"),
      virtualServices: this.sources.resources("VirtualService"),
      destinationRules: this.sources.resources("DestinationRule"),
      upstreams: config.upstreams,
      tuning: config.proxy,
      unhealthyLocalServices: this.#unhealthyLocal,
    };
  }

  /** Compiles the current inputs into the next version. */
  next(): Snapshot {
    return compileSnapshot(this.input(), ++this.#version);
  }
}
