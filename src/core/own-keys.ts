/**
 * Reading and writing plain objects by keys that come from requests. Such a key may be "constructor",
 * "toString" or "__proto__": read plainly, it finds a member of Object.prototype (a lookup table answers a
 * function where it holds none); written plainly, "__proto__" changes the object's prototype instead of adding
 * the key, which is then lost.
 */

/** The value the object itself holds under key, never one inherited from its prototype. */
export function getOwn<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Sets key as an own, enumerable property, whatever its name. */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
