/**
 * Limits on the shape of a JSON request body, checked on its text before JSON.parse sees it: Vault's listener
 * limits (max_json_depth, max_json_string_value_length, max_json_object_entry_count,
 * max_json_array_element_count) with Vault's defaults. They keep a body within the 4 MiB size limit from costing
 * more than its size: 50,000 levels of nesting would overflow the stack of whatever walks the parsed value
 * (field parsing, audit hashing, storage encoding), and one object with 200,000 keys is a hash-flooding and
 * memory cost no Vault API needs.
 *
 * The scan is a single loop over the characters with an explicit stack, so no input can make it recurse. It
 * does not validate the JSON (JSON.parse does that next); on malformed input it only has to stop.
 */

export interface JsonLimits {
  maxDepth: number;
  /** In UTF-8 bytes of the string as written (escapes count as sent), keys included, as Vault measures it. */
  maxStringValueLength: number;
  maxObjectEntryCount: number;
  maxArrayElementCount: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = {
  maxDepth: 500,
  maxStringValueLength: 1024 * 1024,
  maxObjectEntryCount: 10_000,
  maxArrayElementCount: 10_000,
};

const [QUOTE, BACKSLASH, COMMA] = [0x22, 0x5c, 0x2c];
const [OPEN_OBJECT, CLOSE_OBJECT, OPEN_ARRAY, CLOSE_ARRAY] = [0x7b, 0x7d, 0x5b, 0x5d];

/** The message for the first limit the body exceeds, or undefined when it is within all of them. */
export function jsonLimitExceeded(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): string | undefined {
  // One entry per open container: whether it is an object, and how many commas it holds so far.
  const objects: boolean[] = [];
  const commas: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end.bytes > limits.maxStringValueLength) {
        return `JSON string value exceeds allowed length (max_json_string_value_length ${limits.maxStringValueLength} bytes)`;
      }
      i = end.index;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      objects.push(c === OPEN_OBJECT);
      commas.push(0);
      if (objects.length > limits.maxDepth) {
        return `JSON input exceeds allowed nesting depth (max_json_depth ${limits.maxDepth})`;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      objects.pop();
      commas.pop();
    } else if (c === COMMA && commas.length > 0) {
      const top = commas.length - 1;
      const count = ++commas[top]! + 1; // the entries once the one after this comma is there
      if (objects[top] && count > limits.maxObjectEntryCount) {
        return `JSON object exceeds allowed entry count (max_json_object_entry_count ${limits.maxObjectEntryCount})`;
      }
      if (!objects[top] && count > limits.maxArrayElementCount) {
        return `JSON array exceeds allowed element count (max_json_array_element_count ${limits.maxArrayElementCount})`;
      }
    }
  }
  return undefined;
}

/** Where the string opened at `start` closes (text.length when it does not), and its UTF-8 length as written. */
function stringEnd(text: string, start: number): { index: number; bytes: number } {
  let bytes = 0;
  let i = start + 1;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      i++; // the escaped character cannot end the string
      bytes += 2;
    } else {
      // Surrogate halves count 2 each: a pair is the 4 bytes of its code point.
      bytes += c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 2 : 3;
    }
  }
  return { index: i, bytes };
}
