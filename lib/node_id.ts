/**
 * @module
 * The node's stable id, kept in `<data-dir>/node-id`: generated at first start and read back
 * on every restart, so the cluster can tell a restarted node (same id, refutes its old state)
 * from a new node that took the same name (new id, replaces the old entry).
 */

/** The file in the data directory that holds the id. */
export const nodeIdFile = "node-id";

const uuidShape = /^[0-9a-f-]{36}$/;

/**
 * Reads the node's id from `dataDir`, creating the directory and a new id on first start. A
 * file that does not hold an id (truncated, edited) is replaced by a new id; any other read
 * failure is thrown. The new id is written to a temporary file and renamed, so a crash never
 * leaves half an id behind.
 */
export async function loadNodeId(dataDir: string): Promise<string> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = `${dataDir}/${nodeIdFile}`;
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (uuidShape.test(id)) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = crypto.randomUUID();
  await Deno.writeTextFile(`${path}.tmp`, id + "\n");
  await Deno.rename(`${path}.tmp`, path);
  return id;
}
