/** Cofre's API client: one import for the CLI, the operator and agents. */
export { apiUrl, VaultClient } from './client.js';
export type { ClientConfig, RequestOptions } from './client.js';
export { ApiError, ClientError, UnreachableError } from './errors.js';
export { streamRequest } from './stream.js';
export type { StreamRequest } from './stream.js';
export type { TlsSettings } from './transport.js';
export { connectionReason } from './unreachable.js';
export type { Secret, SecretAuth } from './wire.js';
export { ChangeStream } from './events.js';
export type { ChangeEvent, ChangeStreamOptions } from './events.js';
