import type { AuditSinkFactory } from '../core/audit-broker.js';
import { fileSink } from './file.js';
import { socketSink } from './socket.js';

/** Audit device types. Adding one is its file plus one line here. */
export const auditDevices: Record<string, AuditSinkFactory> = {
  file: fileSink,
  socket: socketSink,
};
