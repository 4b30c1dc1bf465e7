/** The envelope is the core's (a wrapped response is stored in it); the HTTP layer answers with it. */
export { envelope, errorBody } from '../core/envelope.js';
