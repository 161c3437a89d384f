import { adminRoutes } from "../src/admin.ts";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { clientIp, connectionIp } from "../src/_engine.ts";
import {
  compileIpRules,
  compilePathRules,
  isCanonicalPath,
  parseIp,
} from "../src/_rules.ts";
import { createMaintenance } from "../src/maintenance.ts";
import { decide, type DecisionRules } from "../src/_engine.ts";
import { MemoryStore } from "../stores/memory.ts";
import { toSnapshot } from "../src/_state.ts";

describe("isCanonicalPath", () => {
  it("accepts the one spelling routing and exemption agree on", () => {
    for (
      const p of ["/", "/status", "/status/db", "/a.b/c.d", "/x%20y", "/..x"]
    ) {
      assert.equal(isCanonicalPath(p), true, p);
    }
  });
  it("rejects dot segments, empty segments, backslashes, encoded slash or dot", () => {
    for (
      const p of [
        "",
        "status",
        "/status/../x",
        "/status/./x",
        "/status/..",
        "//status",
        "/status//x",
        "/status\\..\\x",
        "/status/%2e%2e/x",
        "/status/%2E%2E/x",
        "/status%2fx",
        "/status%2F..%2Fx",
        "/status%5cx",
      ]
    ) {
      assert.equal(isCanonicalPath(p), false, p);
    }
  });
});

describe("compilePathRules", () => {
  it("a string matches that path and everything below it, nothing else", () => {
    const exempt = compilePathRules(["/status"]);
    assert.equal(exempt("/status"), true);
    assert.equal(exempt("/status/"), true);
    assert.equal(exempt("/status/db"), true);
    assert.equal(exempt("/status/db/deep"), true);
    assert.equal(exempt("/statusx"), false);
    assert.equal(exempt("/statu"), false);
    assert.equal(exempt("/"), false);
    assert.equal(exempt("/x/status"), false);
  });
  it("a trailing slash in the rule means the same as none", () => {
    const exempt = compilePathRules(["/static/"]);
    assert.equal(exempt("/static"), true);
    assert.equal(exempt("/static/app.css"), true);
    assert.equal(exempt("/staticx"), false);
  });
  it('"/" exempts every canonical path', () => {
    const exempt = compilePathRules(["/"]);
    assert.equal(exempt("/"), true);
    assert.equal(exempt("/anything/below"), true);
    assert.equal(exempt("//anything"), false);
  });
  it("a RegExp is tested against the path", () => {
    const exempt = compilePathRules([/^\/api\/public\//, /\.css$/]);
    assert.equal(exempt("/api/public/x"), true);
    assert.equal(exempt("/theme/site.css"), true);
    assert.equal(exempt("/api/private/x"), false);
  });
  it("a global or sticky RegExp gives the same answer every time (no lastIndex)", () => {
    const exempt = compilePathRules([/^\/status/g, /health/y]);
    for (let i = 0; i < 5; i++) {
      assert.equal(exempt("/status/db"), true, `call ${i}`);
      assert.equal(exempt("/healthz"), true, `call ${i}`);
    }
  });
  it("non-canonical spellings never borrow an exempt prefix, for strings or RegExps", () => {
    const exempt = compilePathRules(["/status", /^\/public/]);
    for (
      const p of [
        "/status/../admin",
        "/status/./x",
        "//status",
        "//status/x",
        "/status//x",
        "/status/%2e%2e/admin",
        "/status/%2E%2e/admin",
        "/status%2f..%2fadmin",
        "/status\\..\\admin",
        "/public/../admin",
        "//public",
      ]
    ) {
      assert.equal(exempt(p), false, p);
    }
  });
  it("is case-sensitive, as routing is: /STATUS is not /status", () => {
    const exempt = compilePathRules(["/status"]);
    assert.equal(exempt("/STATUS"), false);
    assert.equal(exempt("/Status/db"), false);
  });
  it("a string rule is compared as routing spells the path (percent-decoded)", () => {
    for (const rule of ["/café", "/caf%C3%A9", "/caf%c3%a9"]) {
      const exempt = compilePathRules([rule]);
      assert.equal(exempt("/café"), true, rule);
      assert.equal(exempt("/café/menu"), true, rule);
      assert.equal(exempt("/cafe"), false, rule);
    }
    assert.equal(compilePathRules(["/a b"])("/a b"), true);
    assert.equal(compilePathRules(["/a%20b"])("/a b"), true);
  });
  it("no rules or an empty list exempts nothing", () => {
    assert.equal(compilePathRules(undefined)("/x"), false);
    assert.equal(compilePathRules([])("/x"), false);
  });
  it("throws a TypeError saying what to write for a bad rule or list", () => {
    for (
      const bad of [
        ["healthz"],
        ["/a/../b"],
        ["/a//b"],
        ["/a/./b"],
        [""],
        ["/status?x=1"],
        ["/status#top"],
        [5],
        [null],
      ]
    ) {
      assert.throws(
        () => compilePathRules(bad as unknown as string[]),
        (e: Error) =>
          e instanceof TypeError && /ignorePaths/.test(e.message) &&
          /starts\s+with "\/"/.test(e.message),
        JSON.stringify(bad),
      );
    }
    for (const bad of [null, "/healthz", {}, 5]) {
      assert.throws(
        () => compilePathRules(bad as unknown as string[]),
        (e: Error) =>
          e instanceof TypeError && /must be an array/.test(e.message),
        JSON.stringify(bad),
      );
    }
  });
});

describe("parseIp", () => {
  it("normalizes v4, v6, brackets, zones and IPv4-mapped v6", () => {
    assert.equal(parseIp("10.0.0.1")?.text, "10.0.0.1");
    assert.equal(parseIp(" 10.0.0.1 ")?.text, "10.0.0.1");
    assert.equal(parseIp("::1")?.text, "::1");
    assert.equal(parseIp("[::1]")?.text, "::1");
    assert.equal(parseIp("fe80::1%eth0")?.text, "fe80::1");
    assert.equal(parseIp("2001:0db8:0:0:0:0:0:1")?.text, "2001:db8::1");
    assert.equal(parseIp("::ffff:10.0.0.1")?.text, "10.0.0.1");
    assert.equal(parseIp("::ffff:0a00:0001")?.text, "10.0.0.1");
  });
  it("returns undefined for what is not an address", () => {
    for (
      const bad of ["", "abc", "999.1.1.1", "1.2.3", "1::2::3", "10.0.0.1/8"]
    ) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });
});

describe("compileIpRules", () => {
  it("matches exact v4 and v6 addresses, in any spelling", () => {
    const exempt = compileIpRules(["10.0.0.1", "2001:db8::1"]);
    assert.equal(exempt("10.0.0.1"), true);
    assert.equal(exempt("10.0.0.2"), false);
    assert.equal(exempt("2001:db8::1"), true);
    assert.equal(exempt("2001:0db8:0000:0000:0000:0000:0000:0001"), true);
    assert.equal(exempt("[2001:db8::1]"), true);
    assert.equal(exempt("2001:db8::2"), false);
  });
  it("matches v4 and v6 CIDR ranges", () => {
    const exempt = compileIpRules([
      "10.0.0.0/8",
      "192.168.1.0/24",
      "2001:db8::/32",
    ]);
    assert.equal(exempt("10.255.1.2"), true);
    assert.equal(exempt("11.0.0.1"), false);
    assert.equal(exempt("192.168.1.77"), true);
    assert.equal(exempt("192.168.2.1"), false);
    assert.equal(exempt("2001:db8:abcd::9"), true);
    assert.equal(exempt("2001:db9::1"), false);
  });
  it("treats an IPv4-mapped v6 client as its v4 address, against v4 rules", () => {
    const exempt = compileIpRules(["10.0.0.1", "172.16.0.0/12"]);
    assert.equal(exempt("::ffff:10.0.0.1"), true);
    assert.equal(exempt("::ffff:172.20.1.1"), true);
    assert.equal(exempt("::ffff:10.0.0.2"), false);
  });
  it("reads a mapped-v6 rule as the v4 address or range it maps", () => {
    const exempt = compileIpRules([
      "::ffff:10.0.0.1",
      "::ffff:192.168.0.0/112",
    ]);
    assert.equal(exempt("10.0.0.1"), true);
    assert.equal(exempt("192.168.44.1"), true);
    assert.equal(exempt("192.169.0.1"), false);
  });
  it("a /0 range: v4 all v4; v6 all v6", () => {
    assert.equal(compileIpRules(["0.0.0.0/0"])("203.0.113.9"), true);
    assert.equal(compileIpRules(["0.0.0.0/0"])("2001:db8::1"), false);
    assert.equal(compileIpRules(["::/0"])("2001:db8::1"), true);
  });
  it("a RegExp is tested against the normalized address", () => {
    const exempt = compileIpRules([/^10\./, /^fd/g]);
    assert.equal(exempt("10.3.3.3"), true);
    assert.equal(exempt("::ffff:10.3.3.3"), true);
    assert.equal(exempt("fd00::1"), true);
    assert.equal(exempt("fd00::1"), true); // no lastIndex carried over
    assert.equal(exempt("11.3.3.3"), false);
  });
  it("an unknown or unparsable client address is never exempt", () => {
    const exempt = compileIpRules(["0.0.0.0/0", "::/0", /.*/]);
    assert.equal(exempt(undefined), false);
    assert.equal(exempt(""), false);
    assert.equal(exempt("not-an-ip"), false);
  });
  it("throws TypeError/RangeError naming the bad rule and showing good ones", () => {
    for (const bad of ["999.1.1.1", "10.0.0.0/8/1", "localhost", ""]) {
      assert.throws(
        () => compileIpRules([bad]),
        (e: Error) =>
          e instanceof TypeError && e.message.includes(JSON.stringify(bad)) &&
          /10\.0\.0\.0\/8/.test(e.message),
        bad,
      );
    }
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/x", "10.0.0.0/-1"]) {
      assert.throws(
        () => compileIpRules([bad]),
        (e: Error) =>
          e instanceof RangeError && e.message.includes(JSON.stringify(bad)),
        bad,
      );
    }
    assert.throws(() => compileIpRules([5 as unknown as string]), TypeError);
    for (const bad of [null, "10.0.0.1", {}]) {
      assert.throws(
        () => compileIpRules(bad as unknown as string[]),
        (e: Error) =>
          e instanceof TypeError && /must be an array/.test(e.message),
        JSON.stringify(bad),
      );
    }
  });
});

describe("clientIp", () => {
  const req = (xff?: string) =>
    new Request("http://x/", {
      headers: xff === undefined ? {} : { "x-forwarded-for": xff },
    });
  it("ignores X-Forwarded-For with no trusted proxy", () => {
    assert.equal(clientIp(req("10.0.0.1"), "127.0.0.1", 0), "127.0.0.1");
  });
  it("takes the address N hops from the right with N trusted proxies", () => {
    const r = req("1.1.1.1, 2.2.2.2, 3.3.3.3");
    assert.equal(clientIp(r, "127.0.0.1", 1), "3.3.3.3");
    assert.equal(clientIp(r, "127.0.0.1", 2), "2.2.2.2");
    assert.equal(clientIp(r, "127.0.0.1", 3), "1.1.1.1");
  });
  it("is undefined, never the peer (a proxy), when the header is missing, short, empty or not an IP", () => {
    assert.equal(clientIp(req(), "10.0.0.5", 1), undefined);
    assert.equal(clientIp(req(""), "10.0.0.5", 1), undefined);
    assert.equal(clientIp(req("1.1.1.1"), "10.0.0.5", 2), undefined);
    assert.equal(clientIp(req("10.0.0.7,"), "10.0.0.5", 1), undefined);
    assert.equal(clientIp(req("1.1.1.1, "), "10.0.0.5", 1), undefined);
    assert.equal(clientIp(req("1.1.1.1, ,2.2.2.2"), "10.0.0.5", 2), undefined);
    assert.equal(clientIp(req("unknown"), "10.0.0.5", 1), undefined);
    assert.equal(clientIp(req("host:8080"), "10.0.0.5", 1), undefined);
    assert.equal(
      clientIp(req("1.1.1.1,  2001:db8::1 "), "10.0.0.5", 1),
      "2001:db8::1",
    );
  });
});

describe("clientIp: a port a proxy added to the hop", () => {
  const req = (xff: string) =>
    new Request("http://x/", { headers: { "x-forwarded-for": xff } });
  it("is dropped: the address is what a rule names", () => {
    assert.equal(clientIp(req("1.1.1.1:8080"), "10.0.0.5", 1), "1.1.1.1");
    assert.equal(
      clientIp(req("9.9.9.9, [2001:db8::1]:443"), "10.0.0.5", 1),
      "2001:db8::1",
    );
    assert.equal(clientIp(req("1.1.1.1:123456"), "10.0.0.5", 1), undefined);
  });
});

describe("decide (the pure decision, Django's order)", () => {
  const base: DecisionRules = {
    forced: undefined,
    skipForTests: false,
    ip: (ip) => ip === "10.0.0.1",
    path: (p) => p === "/healthz",
    redirectPath: "/down",
  };
  const on = toSnapshot({ enabled: true });
  const off = toSnapshot({ enabled: false });
  const t = Date.now();
  const facts = (path: string, ip?: string, force?: boolean) => ({
    path,
    ip,
    force,
  });

  it("per-route force wins over everything", () => {
    assert.equal(
      decide(base, off, t, facts("/", undefined, true)),
      "maintenance",
    );
    assert.equal(
      decide(
        { ...base, forced: false },
        off,
        t,
        facts("/healthz", "10.0.0.1", true),
      ),
      "maintenance",
    );
    assert.equal(decide(base, on, t, facts("/", undefined, false)), "pass");
  });
  it("then the state, or the forced setting", () => {
    assert.equal(decide(base, off, t, facts("/")), "pass");
    assert.equal(decide(base, on, t, facts("/")), "maintenance");
    assert.equal(
      decide({ ...base, forced: true }, off, t, facts("/")),
      "maintenance",
    );
    assert.equal(decide({ ...base, forced: false }, on, t, facts("/")), "pass");
  });
  it("a window not started or already ended passes", () => {
    const later = toSnapshot({
      enabled: true,
      startsAt: new Date(t + 60_000).toISOString(),
    });
    const over = toSnapshot({
      enabled: true,
      endsAt: new Date(t - 1).toISOString(),
    });
    assert.equal(decide(base, later, t, facts("/")), "pass");
    assert.equal(decide(base, over, t, facts("/")), "pass");
  });
  it("then tests, client IP, paths and the redirect target pass", () => {
    assert.equal(
      decide({ ...base, skipForTests: true }, on, t, facts("/")),
      "pass",
    );
    assert.equal(decide(base, on, t, facts("/", "10.0.0.1")), "pass");
    assert.equal(decide(base, on, t, facts("/", "10.0.0.2")), "maintenance");
    assert.equal(decide(base, on, t, facts("/healthz")), "pass");
    assert.equal(decide(base, on, t, facts("/down")), "pass");
    assert.equal(decide(base, on, t, facts("/down/x")), "maintenance");
  });
});

describe("compileIpRules: range edges", () => {
  it("a /32 or /128 range is that one address", () => {
    const exempt = compileIpRules(["10.0.0.1/32", "2001:db8::1/128"]);
    assert.equal(exempt("10.0.0.1"), true);
    assert.equal(exempt("10.0.0.2"), false);
    assert.equal(exempt("2001:db8::1"), true);
    assert.equal(exempt("2001:db8::2"), false);
  });
  it("host bits in a range are ignored: 192.168.1.1/24 is 192.168.1.0/24", () => {
    const exempt = compileIpRules(["192.168.1.1/24", "2001:db8::1/32"]);
    assert.equal(exempt("192.168.1.77"), true);
    assert.equal(exempt("192.168.2.1"), false);
    assert.equal(exempt("2001:db8:abcd::9"), true);
  });
  it("::ffff:0:0/96 is every IPv4 client; ::/0 is every IPv6 client, no IPv4 one", () => {
    const mapped = compileIpRules(["::ffff:0:0/96"]);
    assert.equal(mapped("203.0.113.9"), true);
    assert.equal(mapped("::ffff:10.1.1.1"), true);
    assert.equal(mapped("2001:db8::1"), false);
    const v6 = compileIpRules(["::/0"]);
    assert.equal(v6("2001:db8::1"), true);
    assert.equal(v6("203.0.113.9"), false);
    assert.equal(v6("::ffff:203.0.113.9"), false);
  });
});

describe("connectionIp: the peer address from each runtime's connection info", () => {
  const req = new Request("http://x/", {
    headers: { "x-forwarded-for": "6.6.6.6" },
  });
  it("Deno.serve: info.remoteAddr.hostname", () => {
    assert.equal(
      connectionIp(req, { remoteAddr: { hostname: "10.0.0.1", port: 1 } }),
      "10.0.0.1",
    );
  });
  it("Bun.serve: server.requestIP(req).address", () => {
    const env = {
      requestIP: (r: Request) => {
        assert.equal(r, req);
        return { address: "::1", port: 1 };
      },
    };
    assert.equal(connectionIp(req, env), "::1");
    assert.equal(connectionIp(req, { requestIP: () => null }), undefined);
    const throwing = {
      requestIP: () => {
        throw new Error("not a server");
      },
    };
    assert.equal(connectionIp(req, throwing), undefined);
  });
  it("@hono/node-server: incoming.socket.remoteAddress", () => {
    assert.equal(
      connectionIp(req, {
        incoming: { socket: { remoteAddress: "10.0.0.3" } },
      }),
      "10.0.0.3",
    );
  });
  it("nothing known (app.fetch alone, a string, null): undefined, never a header", () => {
    for (const env of [undefined, null, "10.0.0.1", 5, {}]) {
      assert.equal(connectionIp(req, env), undefined, String(env));
    }
  });
});

describe("route marks: the admin routes' exemption", () => {
  it("an app route before an admin mount with its own onError is not exempted by it", async () => {
    const mm = createMaintenance({ store: new MemoryStore() });
    await mm.enable({ message: "down" });
    const admin = adminRoutes(mm, { authorize: () => false });
    admin.onError((e, c) => c.text(String(e), 500)); // Hono then wraps each handler
    const app = new Hono();
    app.use(mm.middleware());
    app.get("/admin", (c) => c.text("admin panel"));
    app.route("/admin", admin);
    app.all("*", (c) => c.text("app"));
    const panel = await app.fetch(new Request("http://l/admin"));
    assert.equal(panel.status, 503);
    assert.doesNotMatch(await panel.text(), /admin panel/);
    // The admin route no app route shadows still answers (here: 401).
    const on = await app.fetch(
      new Request("http://l/admin/on", { method: "POST" }),
    );
    assert.equal(on.status, 401);
  });
});
