/**
 * @module
 * The node id in the data directory: created once, kept across restarts, repaired if bad.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "../tests/support/assert.ts";
import { loadNodeId } from "./node_id.ts";

Deno.test("the first load creates the data directory and an id; later loads return it", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dataDir = `${root}/nested/data`;
    const id = await loadNodeId(dataDir);
    assertMatch(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assertEquals((await Deno.readTextFile(`${dataDir}/node-id`)).trim(), id);
    assertEquals(await loadNodeId(dataDir), id);
    const names = [...Deno.readDirSync(dataDir)].map((e) => e.name);
    assertEquals(names, ["node-id"], "no temporary file is left behind");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a node-id file that holds no id is replaced by a new id", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dataDir}/node-id`, "not-an-id\n");
    const id = await loadNodeId(dataDir);
    assertNotEquals(id, "not-an-id");
    assertEquals((await Deno.readTextFile(`${dataDir}/node-id`)).trim(), id);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a node-id that cannot be read for another reason is an error, not a new id", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dataDir}/node-id`); // a directory where the file should be
    let thrown: unknown;
    try {
      await loadNodeId(dataDir);
    } catch (err) {
      thrown = err;
    }
    assert(thrown instanceof Error, "loadNodeId must throw");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
