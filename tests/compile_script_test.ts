/**
 * @module
 * compile.sh checks its input before compiling: a DENORT_BIN that is not an executable file
 * is a one-line user error (exit 2). The compile itself needs a Deno runtime download, so it
 * is not run here.
 */
import { assertEquals, assertMatch } from "./support/assert.ts";

Deno.test("compile.sh rejects a DENORT_BIN that is not executable", async () => {
  const script = new URL("../compile.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [script],
    env: { DENORT_BIN: "/nonexistent/denort" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  assertMatch(
    new TextDecoder().decode(out.stderr).trim(),
    /^compile\.sh: DENORT_BIN=\/nonexistent\/denort is not an executable file$/,
  );
});
