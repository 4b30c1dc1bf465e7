/**
 * A failure of one item the caller caused (bad base64, a forged ciphertext, a key version out of range). In a
 * batch it becomes that item's `error`; alone it is a 400. Its message never holds key material or plaintext.
 */
export class UserError extends Error {}
