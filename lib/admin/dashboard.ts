/**
 * @module
 * A single-page dashboard served at `/` by the admin API: members, services and routes,
 * refreshed from the JSON endpoints every two seconds. No build step, no external assets.
 */

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export function dashboardHtml(nodeName: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Weft · ${escapeHtml(nodeName)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;min-width:40rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.alive{color:#080}.suspect{color:#b60}.dead,.left{color:#a00}code{font-size:12px}
</style></head><body>
<h1>Weft node <span id="node">${escapeHtml(nodeName)}</span></h1>
<h2>Members</h2><table id="members"><tr><th>name</th><th>address</th><th>state</th><th>incarnation</th><th>services</th></tr></table>
<h2>Services</h2><table id="services"><tr><th>service</th><th>endpoints</th></tr></table>
<h2>Status</h2><pre id="status"></pre>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
async function refresh() {
  try {
    const m = await (await fetch("/v1/members")).json();
    document.getElementById("members").innerHTML = "<tr><th>name</th><th>address</th><th>state</th><th>incarnation</th><th>services</th></tr>" +
      m.members.map((x) => "<tr><td>" + esc(x.name) + "</td><td>" + esc(x.address) + "</td><td class=" + esc(x.state) + ">" + esc(x.state) + "</td><td>" + esc(x.incarnation) + "</td><td>" + esc((x.services || []).map((s) => s.name).join(", ")) + "</td></tr>").join("");
    const s = await (await fetch("/v1/services")).json();
    document.getElementById("services").innerHTML = "<tr><th>service</th><th>endpoints</th></tr>" +
      s.services.map((x) => "<tr><td>" + esc(x.name) + "</td><td>" + esc(x.endpoints.map((e) => e.node + " " + e.address + (e.healthy ? "" : " (unhealthy)")).join("; ")) + "</td></tr>").join("");
    document.getElementById("status").textContent = JSON.stringify(await (await fetch("/v1/status")).json(), null, 2);
  } catch (e) { document.getElementById("status").textContent = "admin API unreachable: " + e; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
}
