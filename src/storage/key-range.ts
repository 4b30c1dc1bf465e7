/** Key ranges shared by the storage adapters: a prefix scan is a range [prefix, prefixEnd(prefix)). */

/**
 * The smallest string above every string that starts with prefix, or undefined if there is none. SQLite's
 * BINARY collation and PostgreSQL's "C" collation compare UTF-8 bytes, whose order is code point order, so bumping the last code point works.
 */
export function prefixEnd(prefix: string): string | undefined {
  const chars = Array.from(prefix);
  while (chars.length > 0) {
    const cp = chars.pop()?.codePointAt(0) ?? 0;
    if (cp < 0x10ffff) {
      const next = cp + 1 >= 0xd800 && cp + 1 <= 0xdfff ? 0xe000 : cp + 1; // surrogates are not characters
      return chars.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}
