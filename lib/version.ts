/**
 * @module
 * The release version, shown by `weft version` and the admin API.
 */
export const VERSION = "0.1.0";
