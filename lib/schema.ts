/**
 * @module
 * The one import of zod, the schema library that validates node config, policy resources and
 * gossip messages. Everything else imports `z` from here, so the pinned version and any
 * change of library are one file's business (the architecture test enforces this).
 */
export { z } from "zod";
