/**
 * @module
 * IP address parsing and sockaddr encoding for the FFI socket backends (IPv4, IPv6, RFC 5952 output).
 */
import { parseIp, parseIpv6, sockaddrBytes, sockaddrHost, writeSockaddr } from "./libc.ts";
import { assertEquals } from "../../tests/support/assert.ts";

const hex = (bytes: Uint8Array | null) =>
  bytes ? [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("") : null;

Deno.test("parseIpv6 reads full, shortened and IPv4-suffixed forms", () => {
  assertEquals(hex(parseIpv6("::1")), "00000000000000000000000000000001");
  assertEquals(hex(parseIpv6("::")), "00000000000000000000000000000000");
  assertEquals(hex(parseIpv6("fe80::1:2")), "fe800000000000000000000000010002");
  assertEquals(hex(parseIpv6("2001:DB8:0:0:1:0:0:1")), "20010db8000000000001000000000001");
  assertEquals(hex(parseIpv6("1::")), "00010000000000000000000000000000");
  assertEquals(hex(parseIpv6("::ffff:10.0.0.1")), "00000000000000000000ffff0a000001");
  assertEquals(hex(parseIpv6("1:2:3:4:5:6:10.0.0.1")), "0001000200030004000500060a000001");
});

Deno.test("parseIpv6 refuses what is not one address", () => {
  for (
    const bad of [
      "127.0.0.1",
      "reviews",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "1:2:3:4:5:6:7::8",
      "12345::1",
      "fe80::1%eth0",
      "::ffff:10.0.0.256",
      "1.2.3.4::",
      "1:2:3:4:5:6:1.2.3.4:8",
      "g::1",
      "",
    ]
  ) {
    assertEquals(parseIpv6(bad), null, bad);
  }
});

Deno.test("parseIp tells the families apart", () => {
  assertEquals(parseIp("10.1.2.3")?.length, 4);
  assertEquals(parseIp("::1")?.length, 16);
  assertEquals(parseIp("reviews.default"), null);
});

Deno.test("sockaddrHost writes addresses as Deno writes a peer's", () => {
  const sa = new Uint8Array(sockaddrBytes);
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["::", "::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of two equal runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays
    ["fe80:0:0:0:0:0:0:0", "fe80::"],
    ["::ffff:127.0.0.1", "::ffff:127.0.0.1"],
    ["2001:DB8::ABCD", "2001:db8::abcd"],
  ];
  for (const [input, expected] of cases) {
    const length = writeSockaddr(sa, parseIp(input)!, 8080);
    assertEquals(length, input.includes(":") ? 28 : 16);
    assertEquals((sa[2] << 8) | sa[3], 8080);
    assertEquals(sockaddrHost(sa), expected, input);
  }
});
