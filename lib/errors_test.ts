/**
 * @module
 * How listen failures and user errors are worded, whichever socket layer raised them.
 */
import { ListenError, listenFailureReason, listening } from "./errors.ts";
import { assertEquals, assertRejects } from "../tests/support/assert.ts";

Deno.test("listen failures are told plainly, whichever socket layer worded them", () => {
  assertEquals(
    listenFailureReason(new Deno.errors.AddrInUse("os error 98")),
    "address already in use",
  );
  assertEquals(
    listenFailureReason(new Error("bind 127.0.0.1: errno 98")),
    "address already in use",
  );
  // libp2p wraps Node's error, stack and all, in a multi-line message.
  const libp2p =
    "Some configured addresses failed to be listened on\n\n  /ip4/127.0.0.1/tcp/7947: " +
    "Error: listen EADDRINUSE: address already in use 127.0.0.1:7947\n      at doListen";
  assertEquals(listenFailureReason(new Error(libp2p)), "address already in use");
  assertEquals(listenFailureReason(new Error("errno 99")), "no such address on this host");
  assertEquals(
    listenFailureReason(new Error("Permission denied (os error 13)")),
    "permission denied (ports below 1024 need privileges)",
  );
  assertEquals(listenFailureReason(new Error("p2p.key: bad key file")), null);
});

Deno.test("listening names the listener, and lets other failures through unchanged", async () => {
  const err = await assertRejects(
    () =>
      listening("admin API, --admin-addr", "127.0.0.1:15000", () => {
        throw new Deno.errors.AddrInUse("Address already in use (os error 98)");
      }),
    ListenError,
  );
  assertEquals(
    err.message,
    "cannot listen on 127.0.0.1:15000 (admin API, --admin-addr): address already in use",
  );
  const other = new Error("disk full");
  const passed = await assertRejects(() => listening("x", "y", () => Promise.reject(other)), Error);
  assertEquals(passed, other);
});
