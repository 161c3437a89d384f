import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  isActiveAt,
  parseState,
  serializeState,
  StateParseError,
} from "../mod.ts";

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
    assert.equal(isActiveAt(s, Date.parse("2030-01-01T09:59:59Z")), false);
    assert.equal(isActiveAt(s, Date.parse("2030-01-01T11:00:00Z")), true);
    assert.equal(isActiveAt(s, Date.parse("2030-01-01T12:00:00Z")), false);
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
