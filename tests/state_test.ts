import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { enabledState } from "../src/_enable.ts";
import {
  isActive,
  parseState,
  serializeState,
  StateParseError,
  toSnapshot,
} from "../src/_state.ts";
import { instantHelp, parseInstant } from "../src/_state.ts";

describe("parseState", () => {
  it("reads absent and empty text as off", () => {
    assert.deepEqual(parseState(null), { enabled: false });
    assert.deepEqual(parseState(""), { enabled: false });
    assert.deepEqual(parseState("  \n"), { enabled: false });
  });
  it("reads the Django file format 1/0", () => {
    assert.equal(parseState("1").enabled, true);
    assert.equal(parseState("1\n").enabled, true);
    assert.equal(parseState("0").enabled, false);
  });
  it("reads upstream Django's JSON schedule", () => {
    const s = parseState(
      '{"start":"2030-01-01T10:00:00Z","end":"2030-01-01T12:00:00Z"}',
    );
    assert.equal(s.enabled, true);
    assert.equal(s.startsAt, "2030-01-01T10:00:00.000Z");
    assert.equal(s.endsAt, "2030-01-01T12:00:00.000Z");
    assert.equal(
      isActive(toSnapshot(s), Date.parse("2030-01-01T09:59:59Z")),
      false,
    );
    assert.equal(
      isActive(toSnapshot(s), Date.parse("2030-01-01T11:00:00Z")),
      true,
    );
    assert.equal(
      isActive(toSnapshot(s), Date.parse("2030-01-01T12:00:00Z")),
      false,
    );
  });
  it("round-trips this package's JSON", () => {
    const state = {
      enabled: true,
      message: "Back at 14:00 <b>",
      retryAfter: 600,
      endsAt: "2030-01-01T14:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
    };
    assert.deepEqual(parseState(serializeState(state)), state);
  });
  for (
    const bad of [
      "2",
      "{oops",
      "[]",
      '"on"',
      '{"enabled":"yes"}',
      '{"enabled":true,"message":5}',
      '{"enabled":true,"retryAfter":-1}',
      '{"enabled":true,"retryAfter":1.5}',
      '{"enabled":true,"endsAt":"tomorrow"}',
      '{"enabled":true,"bypass":"nothex"}',
      "\u0000\u0001\u0002",
      "x".repeat(70_000),
    ]
  ) {
    it(`rejects corrupt text ${JSON.stringify(bad.slice(0, 30))}`, () => {
      assert.throws(() => parseState(bad), StateParseError);
    });
  }
});

describe("parseInstant: RFC 3339, with a zone", () => {
  it("reads dates (UTC midnight) and date-times with Z or an offset", () => {
    const at14 = Date.UTC(2030, 0, 1, 14);
    assert.equal(parseInstant("2030-01-01"), Date.UTC(2030, 0, 1));
    assert.equal(parseInstant("2030-01-01T14:00:00Z"), at14);
    assert.equal(parseInstant("2030-01-01T14:00Z"), at14);
    assert.equal(parseInstant("2030-01-01 14:00:00z"), at14);
    assert.equal(parseInstant("2030-01-01t14:00:00Z"), at14);
    assert.equal(parseInstant("2030-01-01T16:00:00+02:00"), at14);
    assert.equal(parseInstant("2030-01-01T09:30:00-04:30"), at14);
    assert.equal(parseInstant("2030-01-01T14:00:00.25Z"), at14 + 250);
    assert.equal(parseInstant("2030-01-01T14:00:00.123456789Z"), at14 + 123);
  });

  it("refuses a date-time without a zone: each server would read its own", () => {
    for (
      const naive of [
        "2030-01-01T14:00",
        "2030-01-01T14:00:00",
        "2030-01-01 14:00:00.5",
      ]
    ) {
      assert.ok(Number.isNaN(parseInstant(naive)), naive);
      assert.throws(
        () => parseState(`{"enabled":true,"endsAt":"${naive}"}`),
        (e: Error) =>
          e instanceof StateParseError && /no time zone/.test(e.message) &&
          e.message.includes(`${naive}Z`),
      );
    }
  });

  it("refuses times, offsets and years that do not exist or do not fit", () => {
    for (
      const bad of [
        "2030-01-01T24:00:00Z",
        "2030-01-01T14:60:00Z",
        "2030-12-31T23:59:60Z", // a leap second
        "2030-01-01T14:00:00+24:00",
        "2030-01-01T14:00:00+02:60",
        "2030-01-01T14:00:00+0200", // RFC 3339 needs the colon
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:00:00-05:00", // past year 9999 in UTC
        "2030-01-01T14Z",
        "2030-01-01T14:00:00 Z",
        "2030-01-01 (x) 10:00",
        "2030-01-01 14:00 GMT+0200",
      ]
    ) {
      assert.ok(Number.isNaN(parseInstant(bad)), bad);
    }
    assert.equal(
      parseInstant("9999-12-31T23:59:59.999Z"),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    );
  });

  it("enable() says to add the zone", async () => {
    await assert.rejects(
      enabledState({ endsAt: "2030-01-01T14:00" }, Date.now()),
      (e: Error) =>
        e instanceof TypeError && /no time zone/.test(e.message) &&
        e.message.includes("2030-01-01T14:00+02:00"),
    );
  });
});

describe("parseInstant: days that do not exist, instants before 1970", () => {
  it("refuses month 0 or 13, day 0, and a day past the month's end", () => {
    for (
      const bad of [
        "2030-02-30T00:00:00Z",
        "2030-02-29", // not a leap year
        "2030-04-31",
        "2030-13-01",
        "2030-00-10",
        "2030-03-00",
      ]
    ) {
      assert.ok(Number.isNaN(parseInstant(bad)), bad);
    }
    assert.equal(parseInstant("2028-02-29"), Date.UTC(2028, 1, 29));
    assert.equal(parseInstant("2030-12-31"), Date.UTC(2030, 11, 31));
  });
  it("refuses an offset that puts the instant before 1970 in UTC, or a year before 1970", () => {
    assert.ok(Number.isNaN(parseInstant("1970-01-01T00:30:00+01:00")));
    assert.ok(Number.isNaN(parseInstant("1969-12-31T23:00:00-02:00")));
    assert.equal(parseInstant("1970-01-01T01:00:00+01:00"), 0);
  });
});

describe("instantHelp: advice on a time that is not one", () => {
  const RANGE = /holds instants from 1970 to 9999 only/;
  it("a well-formed instant before 1970 or after 9999 is out of range", () => {
    for (
      const t of [
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00", // an offset carries it into 1969
        "9999-12-31T23:00:00-05:00", // and this one into 10000
        "10000-01-01T00:00:00Z",
        "+010000-01-01T00:00:00Z", // as Date#toISOString writes it
        "-000001-01-01",
        "0070-01-01", // not 1970 (Date.UTC reads 70 as 1970)
        "10000-02-29", // a leap year
      ]
    ) {
      assert.ok(Number.isNaN(parseInstant(t)), t);
      assert.match(instantHelp(t), RANGE, t);
    }
  });
  it("a day that does not exist, another spelling or another type gets none", () => {
    for (
      const t of [
        "2030-02-30T00:00:00Z",
        "10001-02-29", // not a leap year
        "+002030-01-01T00:00:00Z", // in range but not RFC 3339
        "+2030-01-01",
        "2030-01-01T24:00:00Z",
        "tomorrow",
        "2030-01-01Z",
        5,
        Symbol("x"),
        null,
      ]
    ) {
      assert.equal(instantHelp(t), "", String(t));
    }
    assert.ok(Number.isNaN(parseInstant("+002030-01-01T00:00:00Z")));
  });
  it("a date and time without a zone: add one (even out of range)", () => {
    for (const t of ["2030-01-01T14:00", "1969-01-01 10:00:00.5"]) {
      assert.match(instantHelp(t), /no time zone: add Z/, t);
      assert.ok(instantHelp(t).includes(`${t}Z`), t);
    }
  });
});

describe("parseState: edges", () => {
  it("reads JSON true, false, 1.0 and 0.0 as on and off", () => {
    assert.deepEqual(parseState("true"), { enabled: true });
    assert.deepEqual(parseState("false\n"), { enabled: false });
    assert.deepEqual(parseState("1.0"), { enabled: true });
    assert.deepEqual(parseState("0.0"), { enabled: false });
  });
  it("upstream Django's schedule with only an end is on until then", () => {
    const s = parseState('{"end":"2030-01-01T12:00:00Z"}');
    assert.equal(s.enabled, true);
    assert.equal(s.startsAt, undefined);
    assert.equal(s.endsAt, "2030-01-01T12:00:00.000Z");
  });
  it('a schedule with "enabled" that is not a boolean is corrupt, not on', () => {
    for (const enabled of ['"false"', '"no"', "null", "0"]) {
      assert.throws(
        () =>
          parseState(
            `{"enabled":${enabled},"start":"2030-01-01T10:00:00Z"}`,
          ),
        StateParseError,
        enabled,
      );
    }
  });
  it("bypass must be exactly salt:hash in hex, nothing after it", () => {
    const ok = `${"a".repeat(32)}:${"b".repeat(64)}`;
    assert.equal(
      parseState(`{"enabled":true,"bypass":"${ok}"}`).bypass,
      ok,
    );
    for (const bad of [`${ok}x`, `${ok}:${ok}`, `x${ok}`]) {
      assert.throws(
        () => parseState(`{"enabled":true,"bypass":"${bad}"}`),
        StateParseError,
        bad,
      );
    }
  });
  it("seconds up to 31536000 (a year), not one more", () => {
    assert.equal(
      parseState('{"enabled":true,"retryAfter":31536000}').retryAfter,
      31_536_000,
    );
    for (const key of ["retryAfter", "refresh"]) {
      assert.throws(
        () => parseState(`{"enabled":true,"${key}":31536001}`),
        StateParseError,
        key,
      );
    }
  });
  it("text up to 64 KiB is read; one character more is corrupt", () => {
    const sized = (n: number) => {
      const head = '{"enabled":true,"pad":"';
      return head + "x".repeat(n - head.length - 2) + '"}';
    };
    assert.equal(sized(65_536).length, 65_536);
    assert.equal(parseState(sized(65_536)).enabled, true);
    assert.throws(() => parseState(sized(65_537)), /larger than 64 KiB/);
  });
  it("a date that is not one gets no advice about time zones", () => {
    assert.throws(
      () => parseState('{"enabled":true,"endsAt":"tomorrow"}'),
      (e: Error) =>
        e instanceof StateParseError && !/time zone/.test(e.message),
    );
  });
});

describe("serializeState and isActive: edges", () => {
  it("serializeState stamps updatedAt when the state has none", () => {
    const before = Date.now();
    const s = parseState(serializeState({ enabled: true }));
    assert.ok(s.updatedAt !== undefined, "no updatedAt");
    const at = Date.parse(s.updatedAt);
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, s.updatedAt);
  });
  it("isActive: in force from the very instant startsAt", () => {
    const s = {
      enabled: true,
      startsAt: "2030-01-01T10:00:00.000Z",
      endsAt: "2030-01-01T12:00:00.000Z",
    };
    assert.equal(isActive(toSnapshot(s), Date.parse(s.startsAt) - 1), false);
    assert.equal(isActive(toSnapshot(s), Date.parse(s.startsAt)), true);
  });
});
