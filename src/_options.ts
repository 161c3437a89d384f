/** The one option checker: unknown keys, with a did-you-mean. */

/**
 * The known name closest to `name` (by edits, ignoring case), when it is close enough
 * to be a typo.
 */
export function closest(
  name: string,
  known: Iterable<string>,
): string | undefined {
  const a = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const b = k.toLowerCase();
    // Levenshtein, one row at a time: row[j] is the distance from a's first i
    // characters to b's first j.
    let row = [...Array(b.length + 1).keys()];
    for (let i = 0; i < a.length; i++) {
      const next = [i + 1];
      for (let j = 0; j < b.length; j++) {
        next.push(
          Math.min(row[j + 1] + 1, next[j] + 1, row[j] + +(a[i] !== b[j])),
        );
      }
      row = next;
    }
    if (row[b.length] < bestDistance) [best, bestDistance] = [k, row[b.length]];
  }
  return best && name.length > 1 &&
      bestDistance <= Math.max(1, Math.min(3, Math.floor(best.length / 3)))
    ? best
    : undefined;
}

/**
 * The one option checker: throws a `TypeError` unless `options` is a plain object whose
 * keys are all `known`, naming an unknown key, the closest known one ("did you mean"),
 * or what `aliases` says to write instead (`until` → `endsAt`). `what` names the
 * options in messages, such as `"createMaintenance"`; `hint` ends a message about an
 * unknown key.
 */
export function checkOptions(
  options: unknown,
  what: string,
  known: readonly string[],
  aliases: Readonly<Record<string, string>> = {},
  hint = "",
): asserts options is object {
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new TypeError(
      `${what} options must be an object, an options object such as { ${
        known[0]
      } }`,
    );
  }
  for (const k of Object.keys(options)) {
    if (known.includes(k)) continue;
    const instead = Object.hasOwn(aliases, k) ? aliases[k] : closest(k, known);
    throw new TypeError(
      `unknown ${what} option "${k}"${
        instead ? `; did you mean ${instead}?` : ""
      } (known: ${known.join(", ")})${hint}`,
    );
  }
}

/**
 * Throws a `TypeError` for an option set to a value of another type than `types`
 * names (`"function"`, `"boolean"`, ...), saying what it must be; `hints` adds advice
 * per option.
 */
export function checkTypes(
  options: object,
  types: Readonly<Record<string, string>>,
  hints: Readonly<Record<string, string>> = {},
): void {
  for (const k in types) {
    const v = (options as Record<string, unknown>)[k];
    if (v !== undefined && typeof v !== types[k]) {
      throw new TypeError(
        `${k} must be ${
          types[k] === "boolean" ? "true or false" : `a ${types[k]}`
        }${hints[k] ?? ""}`,
      );
    }
  }
}
