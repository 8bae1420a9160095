/**
 * @module
 * The demo's parts that tests use: its raw HTTP/1.1 client and its upstream service. Tests
 * reach `demo/` only through this file, so the demo can change with one place to follow.
 */
export { rawRequest, type RawResponse } from "../../demo/raw_http.ts";
export { serveDemoService } from "../../demo/upstream.ts";
