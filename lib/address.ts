/**
 * @module
 * `HOST:PORT` addresses as used by flags, config and gossip metadata.
 */

/** A parsed socket address. */
export interface HostPort {
  hostname: string;
  port: number;
}

/**
 * Parses `HOST:PORT` (IPv6 as `[::1]:80`). Returns an error message instead of throwing, so
 * callers can name the field.
 */
export function parseHostPort(value: string): HostPort | string {
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) return `expected HOST:PORT, got "${value}"`;
  const hostname = m[1] ?? m[2];
  const port = Number(m[3]);
  if (!hostname) return `missing host in "${value}"`;
  if (port > 65535) return `port ${port} is out of range 0-65535 in "${value}"`;
  return { hostname, port };
}

/** Formats an address back to `HOST:PORT`. */
export function formatHostPort(a: HostPort): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
