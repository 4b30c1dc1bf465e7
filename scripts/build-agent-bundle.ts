// Builds dist/agent/cofre.js: the in-pod agent as one ESM file, which `cofre agent -init` copies into install_to as
// app/cofre.js (src/kube/pod-agent/install.ts). An image whose production install has no esbuild runs this at build
// time, after `npm run build`:   node --import tsx scripts/build-agent-bundle.ts
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildBundle, PREBUILT_BUNDLE } from '../src/kube/pod-agent/install.js';

mkdirSync(path.dirname(PREBUILT_BUNDLE), { recursive: true });
await buildBundle(PREBUILT_BUNDLE);
writeFileSync(path.join(path.dirname(PREBUILT_BUNDLE), 'package.json'), '{ "type": "module" }\n');
process.stdout.write(`${PREBUILT_BUNDLE}\n`);
