import type { AuditSinkFactory } from '../core/audit-broker.js';
import { fileSinkFactory, type FileDeviceConfig } from './file.js';
import { socketSink } from './socket.js';

/** What the server configuration says about audit devices. */
export interface AuditDevicesConfig {
  file?: FileDeviceConfig;
}

/** Audit device types. Adding one is its file plus one line here. */
export function auditDeviceFactories(config: AuditDevicesConfig = {}): Record<string, AuditSinkFactory> {
  return {
    file: fileSinkFactory(config.file ?? {}),
    socket: socketSink,
  };
}
