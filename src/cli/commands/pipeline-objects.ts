import type { Command } from 'commander';
import { apiCommand, clientFrom, outputFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound } from '../errors.js';
import { stdio } from '../output.js';
import { checkObjectName } from './cluster.js';
import { listKeys } from './generic.js';

/** What differs between the multi-cluster objects' read, list and delete commands (deliveries, placements). */
export interface PipelineObjectKind {
  /** The singular name in messages: "delivery". */
  kind: string;
  /** The collection under sys/cofre/: "deliveries". */
  collection: string;
  readHelp: string;
  deleteHelp: string;
  /** The human-readable table of a read's data (-format=json and -field print the answer as it is). */
  table: (data: Record<string, unknown>) => string;
}

export const pipelineObjectPath = (collection: string, name: string): string => `sys/cofre/${collection}/${name}`;

/** `read <name>`, `list` and `delete <name>` of one kind of multi-cluster object, in the CLI's usual shapes. */
export function registerReadListDelete(parent: Command, spec: PipelineObjectKind): void {
  const { kind, collection } = spec;
  apiCommand(parent, 'read <name>', spec.readHelp).action(async (name: string, flags: CommonFlags) => {
    const output = outputFrom(flags);
    const objectName = checkObjectName(name, kind);
    const secret = await clientFrom(flags).read(pipelineObjectPath(collection, objectName));
    if (!secret?.data) throw notFound(`No ${kind} named: ${objectName}`);
    if (output.json || output.field) return output.secret(secret);
    output.out(spec.table(secret.data));
  });

  apiCommand(parent, 'list', `List the ${collection}`).action(async (flags: CommonFlags) => {
    const output = outputFrom(flags);
    const secret = await clientFrom(flags).list(`sys/cofre/${collection}`);
    if (output.field) return output.secret(secret ?? {});
    output.list(listKeys(secret, `sys/cofre/${collection}`));
  });

  apiCommand(parent, 'delete <name>', spec.deleteHelp, false).action(async (name: string, flags: CommonFlags) => {
    const objectName = checkObjectName(name, kind);
    await clientFrom(flags).delete(pipelineObjectPath(collection, objectName));
    stdio.stdout.write(`Success! Deleted ${kind}: ${objectName}\n`);
  });
}
