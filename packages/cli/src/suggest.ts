/**
 * "Did you mean": the closest known name to a mistyped command, group or option, by edit
 * distance (Damerau–Levenshtein, optimal string alignment: a swap of two neighbours counts
 * one), offered only when it is close enough to be a typo rather than another word.
 */

/** The edit distance between `a` and `b` (insertions, deletions, substitutions, swaps). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `typed`, if it is within a typo's reach (at most 2 edits, and at
 * most a third of the longer word's length, rounded up), else `undefined`. A known name that
 * starts with `typed` (an abbreviation of 3+ characters) counts as close too.
 */
export function closest(typed: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const distance = editDistance(typed.toLowerCase(), name.toLowerCase());
    const reach = Math.min(2, Math.ceil(Math.max(typed.length, name.length) / 3));
    const prefix = typed.length >= 3 && name.startsWith(typed);
    if ((distance <= reach || prefix) && distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "X"?` for a mistyped name, or nothing. */
export function didYouMean(typed: string, known: Iterable<string>, quote = '"'): string {
  const name = closest(typed, known);
  return name === undefined ? '' : ` (did you mean ${quote}${name}${quote}?)`;
}
