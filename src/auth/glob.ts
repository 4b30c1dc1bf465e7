/**
 * Vault's glob (go-glob), for bound names, namespaces and claims: "*" matches any run of characters, nothing else is special. Matched without regular
 * expressions, by the usual backtrack-to-the-last-star walk, so a long claim value against a pattern with many
 * stars takes time proportional to their product, never exponential.
 */
export function globMatches(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
