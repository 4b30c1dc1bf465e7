import { readdir, readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import type { PathRecord, Response } from '../backend.js';

/**
 * sys/host-info with node:os, in the shape of Vault's (gopsutil's JSON field names). Like Vault, it collects
 * what it can: a part the platform will not give (no /proc, no statfs) is left out with a warning.
 */

function cpuInfo(): Record<string, unknown>[] {
  return os.cpus().map((cpu, index) => ({
    cpu: index,
    modelName: cpu.model,
    mhz: cpu.speed,
    cores: 1,
  }));
}

/** Per-CPU times in seconds (Node gives milliseconds), as gopsutil's TimesStat. */
function cpuTimes(): Record<string, unknown>[] {
  return os.cpus().map((cpu, index) => ({
    cpu: `cpu${index}`,
    user: cpu.times.user / 1000,
    system: cpu.times.sys / 1000,
    idle: cpu.times.idle / 1000,
    nice: cpu.times.nice / 1000,
    irq: cpu.times.irq / 1000,
  }));
}

async function diskUsage(path: string): Promise<Record<string, unknown>> {
  const stats = await statfs(path);
  const total = stats.blocks * stats.bsize;
  const free = stats.bavail * stats.bsize;
  const used = (stats.blocks - stats.bfree) * stats.bsize;
  const inodesUsed = stats.files - stats.ffree;
  return {
    path,
    fstype: '',
    total,
    free,
    used,
    usedPercent: used + free > 0 ? (used / (used + free)) * 100 : 0,
    inodesTotal: stats.files,
    inodesUsed,
    inodesFree: stats.ffree,
    inodesUsedPercent: stats.files > 0 ? (inodesUsed / stats.files) * 100 : 0,
  };
}

/** MemAvailable from /proc/meminfo where there is one (the kernel's estimate); free memory elsewhere. */
async function memory(): Promise<Record<string, unknown>> {
  const total = os.totalmem();
  const free = os.freemem();
  let available = free;
  const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const match = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  if (match) available = Number(match[1]) * 1024;
  const used = total - available;
  return { total, available, used, usedPercent: total > 0 ? (used / total) * 100 : 0, free };
}

async function host(): Promise<Record<string, unknown>> {
  const uptime = Math.floor(os.uptime());
  const release = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const field = (name: string): string => new RegExp(`^${name}="?([^"\\n]*)"?$`, 'm').exec(release)?.[1] ?? '';
  const procs = (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name)).length;
  return {
    hostname: os.hostname(),
    uptime,
    bootTime: Math.floor(Date.now() / 1000) - uptime,
    procs,
    os: process.platform,
    platform: field('ID'),
    platformFamily: field('ID_LIKE'),
    platformVersion: field('VERSION_ID'),
    kernelVersion: os.release(),
    kernelArch: os.machine(),
  };
}

async function hostInfo(): Promise<Response> {
  const warnings: string[] = [];
  const data: Record<string, unknown> = { timestamp: new Date().toISOString() };
  const collect = async (name: string, part: () => unknown): Promise<void> => {
    try {
      data[name] = await part();
    } catch (err) {
      warnings.push(`error collecting ${name} information: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  await collect('cpu', cpuInfo);
  await collect('cpu_times', cpuTimes);
  await collect('disk', async () => [await diskUsage('/')]);
  await collect('host', host);
  await collect('memory', memory);
  return warnings.length > 0 ? { data, warnings } : { data };
}

export function hostInfoPaths(): PathRecord[] {
  return [
    {
      pattern: 'host-info/?',
      summary: 'CPU, CPU times, disk usage, host and memory statistics of the machine the server runs on.',
      // Vault does not require sudo here (host-info is not among its root paths): a policy must grant read.
      operations: { read: hostInfo },
    },
  ];
}
