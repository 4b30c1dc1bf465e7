// The Helm chart charts/cofre: `helm lint` passes, `helm template --include-crds | kubectl apply --dry-run=server`
// is accepted by a real kube-apiserver (with TLS and with tls_disable), the generated server configuration is one
// the server loads, the RBAC is the least the design asks for, and values.schema.json rejects bad values with a
// clear message. The injector's webhook carries the caBundle of the certificate it serves, kept across upgrades.
// helm and kubectl come from scripts/kube-tools.ts.
import assert from 'node:assert/strict';
import { runProcess } from './support.js';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { loadServerConfig } from '../src/cli/server-config.js';
import { kubeTools, type KubeTools } from '../scripts/kube-tools.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chart = path.join(repo, 'charts', 'cofre');
const external = Boolean(process.env.COFRE_TEST_KUBECONFIG);

const run = runProcess;

/** The documents of a multi-document YAML stream, by "Kind/name" (enough to find them; parsing is kubectl's job). */
function documents(yaml: string): Map<string, string> {
  const docs = new Map<string, string>();
  for (const doc of yaml.split(/^---$/m)) {
    const kind = /^kind: (\S+)$/m.exec(doc)?.[1];
    const name = /^metadata:\n(?:\s+.*\n)*?\s{2}name: (\S+)$/m.exec(doc)?.[1];
    if (kind && name) docs.set(`${kind}/${name}`, doc);
  }
  return docs;
}

describe('Helm chart charts/cofre', () => {
  let tools: KubeTools;
  let cluster: TestCluster;
  const ns = `cofre-chart-${Date.now().toString(36)}`;
  const helm = (...args: string[]) => run(tools.helm, args);
  const template = (...set: string[]) =>
    helm('template', 'cofre', chart, '--namespace', ns, '--include-crds', ...set.flatMap((s) => ['--set', s]));

  before(async () => {
    tools = await kubeTools();
    cluster = await startCluster({ name: 'helm-chart-test', controllerManager: false });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  });
  after(async () => {
    if (external && cluster) {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(cluster.kubeconfigPath);
      await kc
        .makeApiClient(k8s.CoreV1Api)
        .deleteNamespace({ name: ns })
        .catch(() => {});
    }
    await cluster?.stop();
  });

  it('passes helm lint --strict', async () => {
    const res = await helm('lint', chart, '--strict');
    assert.equal(res.code, 0, `helm lint failed:\n${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  for (const variant of [[], ['server.tls.disable=true', 'operator.replicas=2']]) {
    it(`helm template | kubectl apply --dry-run=server is accepted (${variant.join(', ') || 'defaults'})`, async (t) => {
      const rendered = await template(...variant);
      assert.equal(rendered.code, 0, rendered.stderr);
      const started = Date.now();
      const res = await run(
        tools.kubectl,
        ['--kubeconfig', cluster.kubeconfigPath, 'apply', '--dry-run=server', '-f', '-'],
        rendered.stdout,
      );
      t.diagnostic(`server dry-run took ${Date.now() - started} ms`);
      assert.equal(res.code, 0, `the API server rejected the chart:\n${res.stderr}\n${res.stdout}`);
      const applied = res.stdout.trim().split('\n');
      for (const want of [
        'customresourcedefinition.apiextensions.k8s.io/cofresecrets.cofre.dev',
        'customresourcedefinition.apiextensions.k8s.io/cofreconnections.cofre.dev',
        'customresourcedefinition.apiextensions.k8s.io/clustercofreconnections.cofre.dev',
        'statefulset.apps/cofre-server',
        'deployment.apps/cofre-operator',
        'service/cofre-server',
        'configmap/cofre-server-config',
        'serviceaccount/cofre-server',
        'serviceaccount/cofre-operator',
        'clusterrole.rbac.authorization.k8s.io/cofre-operator',
        'clusterrolebinding.rbac.authorization.k8s.io/cofre-operator',
        'clusterrolebinding.rbac.authorization.k8s.io/cofre-server-auth-delegator',
        'role.rbac.authorization.k8s.io/cofre-operator-leader-election',
        'rolebinding.rbac.authorization.k8s.io/cofre-operator-leader-election',
      ])
        assert.ok(
          applied.some((l) => l.startsWith(`${want} `) && l.endsWith('(server dry run)')),
          `${want} missing from:\n${res.stdout}`,
        );
    });
  }

  it('renders a server configuration the server loads: TLS by default, tls_disable on request', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cofre-chart-'));
    try {
      for (const [set, tlsDisable] of [
        [[], false],
        [['server.tls.disable=true'], true],
      ] as const) {
        const res = await helm(
          'template',
          'cofre',
          chart,
          '-n',
          ns,
          '--show-only',
          'templates/server-configmap.yaml',
          ...set.flatMap((s) => ['--set', s]),
        );
        assert.equal(res.code, 0, res.stderr);
        // The ConfigMap's only data key is a literal block; undo its 4-space indentation.
        const hcl = res.stdout
          .split(/^ {2}cofre\.hcl: \|\n/m)[1]
          ?.split('\n')
          .map((l) => l.replace(/^ {4}/, ''))
          .join('\n');
        assert.ok(hcl, res.stdout);
        const file = path.join(dir, `cofre-${tlsDisable}.hcl`);
        writeFileSync(file, hcl);
        const config = loadServerConfig(file);
        assert.deepEqual(config.storage, { type: 'sqlite', path: '/var/lib/cofre/cofre.db' });
        assert.equal(config.listener.address, '0.0.0.0:8200');
        assert.equal(config.listener.tlsDisable, tlsDisable);
        if (!tlsDisable) assert.equal(config.listener.tlsCertFile, '/etc/cofre/tls/tls.crt');
        assert.equal(config.apiAddr, `${tlsDisable ? 'http' : 'https'}://cofre-server.${ns}.svc:8200`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('grants the operator least privilege and the server only system:auth-delegator', async () => {
    const res = await template();
    assert.equal(res.code, 0, res.stderr);
    const docs = documents(res.stdout);
    const clusterRole = docs.get('ClusterRole/cofre-operator') ?? '';
    assert.ok(clusterRole, `no operator ClusterRole in:\n${[...docs.keys()].join('\n')}`);
    assert.doesNotMatch(clusterRole, /\*/, 'no wildcards');
    assert.doesNotMatch(clusterRole, /leases/, 'leases belong to a namespaced Role');
    assert.match(clusterRole, /resources: \[secrets, configmaps\]\n\s+verbs: \[get, create, patch, delete\]/);
    assert.match(clusterRole, /resources: \[serviceaccounts\/token\]\n\s+verbs: \[create\]/);
    assert.match(clusterRole, /resources: \[deployments, statefulsets, daemonsets\]\n\s+verbs: \[get, patch\]/);
    const role = docs.get('Role/cofre-operator-leader-election') ?? '';
    assert.match(role, new RegExp(`namespace: ${ns}`));
    assert.match(role, /resources: \[leases\]\n\s+verbs: \[get, create, update\]/);
    assert.match(docs.get('ClusterRoleBinding/cofre-server-auth-delegator') ?? '', /name: system:auth-delegator/);
    const sts = docs.get('StatefulSet/cofre-server') ?? '';
    assert.match(sts, /replicas: 1\n/);
    assert.match(sts, /command: \[cofre, server, --config, \/etc\/cofre\/cofre\.hcl\]/);
    assert.match(sts, /volumeClaimTemplates:/);
    assert.match(sts, /secretName: cofre-tls/);
    const operator = docs.get('Deployment/cofre-operator') ?? '';
    assert.match(operator, /--leader-elect=true/);
    // Metrics on the pod IP (where the probes and Prometheus reach them), not on every interface.
    assert.match(operator, /--metrics-bind-address=\$\(POD_IP\):9090/);
    assert.match(operator, /- name: POD_IP\n\s+valueFrom:\n\s+fieldRef:\n\s+fieldPath: status\.podIP/);
    assert.match(operator, /--concurrency=16/);
  });

  it('an agent-only install: the cluster agent Deployment with its RBAC, accepted by the API server', async () => {
    const set = [
      'server.enabled=false',
      'operator.enabled=false',
      'clusterAgent.enabled=true',
      'clusterAgent.cofreAddress=https://cofre.example.com:8200',
      'clusterAgent.caCertSecret.name=cofre-ca',
      `clusterAgent.namespaces={${ns}}`,
    ];
    const rendered = await template(...set);
    assert.equal(rendered.code, 0, rendered.stderr);
    const docs = documents(rendered.stdout);
    assert.equal(docs.get('StatefulSet/cofre-server'), undefined);
    assert.equal(docs.get('Deployment/cofre-operator'), undefined);
    const deployment = docs.get('Deployment/cofre-cluster-agent') ?? '';
    assert.ok(deployment, `no agent Deployment in:\n${[...docs.keys()].join('\n')}`);
    assert.match(deployment, /serviceAccountName: cofre-cluster-agent\n/);
    assert.match(deployment, /command:\n\s+- cofre\n\s+- cluster-agent\n/);
    assert.match(deployment, new RegExp(`- --namespace=${ns}\n`));
    assert.match(deployment, new RegExp(`- --delivery-namespaces=${ns}\n`));
    assert.match(deployment, /- --ca-cert=\/etc\/cofre-ca\/ca\.crt\n/);
    assert.match(deployment, /name: COFRE_ADDR\n\s+value: "https:\/\/cofre\.example\.com:8200"/);
    // The bootstrap token comes from the user's Secret, never from a value or an argument.
    assert.match(
      deployment,
      /name: COFRE_BOOTSTRAP_TOKEN\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: cofre-cluster-agent-bootstrap\n\s+key: token\n\s+optional: true/,
    );
    assert.doesNotMatch(deployment, /--bootstrap-token/);
    assert.match(deployment, /secretName: cofre-ca\n/);
    assert.match(deployment, /replicas: 1\n/);
    assert.match(
      docs.get('Role/cofre-cluster-agent-keys') ?? '',
      /resourceNames: \[cofre-cluster-agent-keys, cofre-cluster-agent-enrolment\]/,
    );
    const res = await run(
      tools.kubectl,
      ['--kubeconfig', cluster.kubeconfigPath, 'apply', '--dry-run=server', '-f', '-'],
      rendered.stdout,
    );
    assert.equal(res.code, 0, `the API server rejected the chart:\n${res.stderr}\n${res.stdout}`);
    assert.match(res.stdout, /deployment\.apps\/cofre-cluster-agent created \(server dry run\)/);
    assert.doesNotMatch(res.stdout, /cofre-server|cofre-operator/);
    // Off by default.
    const defaults = await template();
    assert.equal(documents(defaults.stdout).get('Deployment/cofre-cluster-agent'), undefined);
  });

  it('the injector: Deployment, Service, a webhook with the caBundle of its own CA, no RBAC, accepted by the API server', async () => {
    const rendered = await template('injector.enabled=true');
    assert.equal(rendered.code, 0, rendered.stderr);
    const docs = documents(rendered.stdout);
    const secret = docs.get('Secret/cofre-injector-tls') ?? '';
    assert.match(secret, /type: kubernetes\.io\/tls/);
    const field = (doc: string, key: string) =>
      new RegExp(`^\\s+${key.replace('.', '\\.')}: (\\S+)$`, 'm').exec(doc)?.[1];
    const pem = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString();
    const ca = new X509Certificate(pem(field(secret, 'ca.crt')));
    const serving = new X509Certificate(pem(field(secret, 'tls.crt')));
    assert.ok(ca.ca, 'ca.crt is a CA');
    assert.ok(serving.verify(ca.publicKey), 'the serving certificate is signed by the CA');
    assert.ok(serving.checkHost(`cofre-injector.${ns}.svc`), serving.subjectAltName);
    const webhook = docs.get(`MutatingWebhookConfiguration/cofre-injector-${ns}`) ?? '';
    assert.ok(webhook, `no webhook in:\n${[...docs.keys()].join('\n')}`);
    assert.equal(field(webhook, 'caBundle'), field(secret, 'ca.crt'));
    assert.match(webhook, /failurePolicy: Fail\n/);
    assert.match(webhook, /sideEffects: None\n/);
    assert.match(webhook, /objectSelector:\n\s+matchLabels:\n\s+cofre\.dev\/inject: 'true'\n/);
    assert.match(webhook, new RegExp(`values: \\[kube-system, ${ns}\\]`));
    assert.match(webhook, /operations: \[CREATE\]\n\s+resources: \[pods\]/);
    assert.match(webhook, new RegExp(`service:\\n\\s+name: cofre-injector\\n\\s+namespace: ${ns}\\n\\s+path: /mutate`));
    const deployment = docs.get('Deployment/cofre-injector') ?? '';
    assert.match(deployment, /replicas: 2\n/);
    assert.match(deployment, /command:\n\s+- cofre\n\s+- injector\n/);
    assert.match(deployment, /- --agent-image=localhost\/cofre:dev\n/);
    assert.match(deployment, /- --cofre-ca-cert=\/etc\/cofre-ca\/ca\.crt\n/);
    assert.match(deployment, /secretName: cofre-tls\n/, "the server's CA by default");
    assert.match(deployment, new RegExp(`name: COFRE_ADDR\\n\\s+value: "https://cofre-server\\.${ns}\\.svc:8200"`));
    assert.match(deployment, /secretName: cofre-injector-tls\n/);
    assert.match(deployment, /automountServiceAccountToken: false/);
    assert.match(deployment, /scheme: HTTPS/);
    assert.match(docs.get('Service/cofre-injector') ?? '', /port: 443\n\s+targetPort: https/);
    assert.match(docs.get('ServiceAccount/cofre-injector') ?? '', /automountServiceAccountToken: false/);
    // The webhook needs no API access: nothing binds its ServiceAccount.
    for (const [name, doc] of docs)
      if (/^(Cluster)?Role(Binding)?\//.test(name)) assert.doesNotMatch(doc, /cofre-injector/, name);
    const res = await run(
      tools.kubectl,
      ['--kubeconfig', cluster.kubeconfigPath, 'apply', '--dry-run=server', '-f', '-'],
      rendered.stdout,
    );
    assert.equal(res.code, 0, `the API server rejected the chart:\n${res.stderr}\n${res.stdout}`);
    for (const want of [
      'deployment.apps/cofre-injector',
      'service/cofre-injector',
      'secret/cofre-injector-tls',
      'serviceaccount/cofre-injector',
      `mutatingwebhookconfiguration.admissionregistration.k8s.io/cofre-injector-${ns}`,
      'poddisruptionbudget.policy/cofre-injector',
    ])
      assert.match(res.stdout, new RegExp(`^${want} created \\(server dry run\\)$`, 'm'));
    assert.match(docs.get('PodDisruptionBudget/cofre-injector') ?? '', /minAvailable: 1\n/);
    const single = documents((await template('injector.enabled=true', 'injector.replicas=1')).stdout);
    assert.equal(single.get('PodDisruptionBudget/cofre-injector'), undefined, 'no budget a single replica cannot keep');
    // Off by default.
    assert.equal(documents((await template()).stdout).get('Deployment/cofre-injector'), undefined);
  });

  it('the CSI provider: a DaemonSet with the host provider directory, least-privilege RBAC, accepted by the API server', async () => {
    const rendered = await template('csiProvider.enabled=true');
    assert.equal(rendered.code, 0, rendered.stderr);
    const docs = documents(rendered.stdout);
    const ds = docs.get('DaemonSet/cofre-csi-provider') ?? '';
    assert.match(ds, /command:\n\s+- cofre\n\s+- csi-provider\n/);
    assert.match(ds, /- --provider-dir=\/provider\n/);
    assert.match(ds, /hostPath:\n\s+path: \/var\/run\/secrets-store-csi-providers\n\s+type: DirectoryOrCreate/);
    assert.match(ds, /readOnlyRootFilesystem: true/);
    assert.match(ds, /drop: \[ALL\]/);
    assert.match(ds, /- --cofre-ca-cert=\/etc\/cofre-ca\/ca\.crt/, 'the server TLS Secret’s CA by default');
    const role = docs.get('ClusterRole/cofre-csi-provider') ?? '';
    assert.match(role, /resources: \[serviceaccounts\/token\]\n\s+verbs: \[create\]/);
    assert.match(role, /resources: \[pods\]\n\s+verbs: \[get\]/);
    assert.equal((role.match(/- apiGroups:/g) ?? []).length, 2, 'TokenRequest and reading a pod, nothing else');
    const res = await run(
      tools.kubectl,
      ['--kubeconfig', cluster.kubeconfigPath, 'apply', '--dry-run=server', '-f', '-'],
      rendered.stdout,
    );
    assert.equal(res.code, 0, `the API server rejected the chart:\n${res.stderr}\n${res.stdout}`);
    assert.match(res.stdout, /daemonset\.apps\/cofre-csi-provider created \(server dry run\)/);
    // Without minting: no RBAC, no service-account token in the pod.
    const noMint = documents((await template('csiProvider.enabled=true', 'csiProvider.kubernetesAccess=false')).stdout);
    assert.equal(noMint.get('ClusterRole/cofre-csi-provider'), undefined);
    assert.match(
      noMint.get('DaemonSet/cofre-csi-provider') ?? '',
      /automountServiceAccountToken: false[\s\S]*- --no-kubernetes/,
    );
  });

  it('the injector keeps its CA and certificate on upgrade (lookup), and leaves them to cert-manager when asked', async () => {
    const caOf = (yaml: string) => /^\s+ca\.crt: (\S+)$/m.exec(yaml)?.[1];
    const show = () => template('injector.enabled=true');
    // Without a cluster to look in, every render is a new pair.
    assert.notEqual(caOf((await show()).stdout), caOf((await show()).stdout));
    // A real install and upgrade: the upgrade reads the Secret back and keeps the CA the webhook trusts.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const hooks = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    const release = (verb: string, ...set: string[]) =>
      helm(
        verb,
        'cofre',
        chart,
        '-n',
        ns,
        '--kubeconfig',
        cluster.kubeconfigPath,
        ...['injector.enabled=true', 'server.enabled=false', 'operator.enabled=false', ...set].flatMap((v) => [
          '--set',
          v,
        ]),
      );
    const state = async () => {
      const secret = await core.readNamespacedSecret({ name: 'cofre-injector-tls', namespace: ns });
      const hook = await hooks.readMutatingWebhookConfiguration({ name: `cofre-injector-${ns}` });
      return { data: secret.data, caBundle: hook.webhooks![0]!.clientConfig.caBundle };
    };
    try {
      const installed = await release('install');
      assert.equal(installed.code, 0, installed.stderr);
      const before = await state();
      assert.equal(before.caBundle, before.data!['ca.crt']);
      const upgraded = await release('upgrade', 'injector.replicas=3');
      assert.equal(upgraded.code, 0, upgraded.stderr);
      assert.deepEqual(await state(), before);
    } finally {
      await helm('uninstall', 'cofre', '-n', ns, '--kubeconfig', cluster.kubeconfigPath);
    }

    const certManager = await template('injector.enabled=true', 'injector.certManager.enabled=true');
    assert.equal(certManager.code, 0, certManager.stderr);
    const docs = documents(certManager.stdout);
    assert.equal(docs.get('Secret/cofre-injector-tls'), undefined, 'cert-manager writes the Secret');
    assert.match(
      docs.get('Certificate/cofre-injector') ?? '',
      /secretName: cofre-injector-tls\n[\s\S]*- cofre-injector\.\S+\.svc\n/,
    );
    assert.match(docs.get('Certificate/cofre-injector-ca') ?? '', /isCA: true/);
    assert.match(docs.get('Issuer/cofre-injector-ca') ?? '', /secretName: cofre-injector-ca/);
    assert.match(docs.get('Issuer/cofre-injector-selfsigned') ?? '', /selfSigned: \{\}/);
    const webhook = docs.get(`MutatingWebhookConfiguration/cofre-injector-${ns}`) ?? '';
    assert.match(webhook, new RegExp(`cert-manager\\.io/inject-ca-from: ${ns}/cofre-injector\\n`));
    assert.doesNotMatch(webhook, /caBundle/);
  });

  it('host network and an emptyDir for the data on request (the test node, single-node trials), accepted by the API server', async () => {
    const set = ['server.hostNetwork=true', 'server.persistence.enabled=false', 'operator.hostNetwork=true'];
    const rendered = await template(...set);
    assert.equal(rendered.code, 0, rendered.stderr);
    const docs = documents(rendered.stdout);
    const sts = docs.get('StatefulSet/cofre-server') ?? '';
    const operator = docs.get('Deployment/cofre-operator') ?? '';
    for (const doc of [sts, operator]) assert.match(doc, /hostNetwork: true\n\s+dnsPolicy: ClusterFirstWithHostNet\n/);
    assert.doesNotMatch(sts, /volumeClaimTemplates/);
    assert.match(sts, /- name: data\n\s+emptyDir: \{\}\n/);
    const res = await run(
      tools.kubectl,
      ['--kubeconfig', cluster.kubeconfigPath, 'apply', '--dry-run=server', '-f', '-'],
      rendered.stdout,
    );
    assert.equal(res.code, 0, `the API server rejected the chart:\n${res.stderr}\n${res.stdout}`);
    // The defaults are unchanged: the pod network and a PersistentVolumeClaim.
    const defaults = documents((await template()).stdout);
    for (const name of ['StatefulSet/cofre-server', 'Deployment/cofre-operator'])
      assert.doesNotMatch(defaults.get(name) ?? '', /hostNetwork|dnsPolicy/, name);
    assert.match(defaults.get('StatefulSet/cofre-server') ?? '', /volumeClaimTemplates:/);
    assert.doesNotMatch(defaults.get('StatefulSet/cofre-server') ?? '', /- name: data\n\s+emptyDir/);
  });

  it('values.schema.json rejects bad values with a clear message', async () => {
    const cases: [string[], RegExp][] = [
      [['server.port=99999'], /at '\/server\/port': maximum: got 99,999, want 65,535/],
      [
        ['image.pullPolicy=Sometimes'],
        /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/,
      ],
      [['server.tls.secretName=Not_A_Name'], /at '\/server\/tls\/secretName'/],
      [
        ['operator.replicas=3', 'operator.leaderElection.enabled=false'],
        /leaderElection\/enabled': value must be true/,
      ],
      [['server.tlsDisable=true'], /additional properties 'tlsDisable' not allowed/],
      [['clusterAgent.bootstrapTokenSecret.name='], /at '\/clusterAgent\/bootstrapTokenSecret\/name'/],
      [['clusterAgent.reportInterval=0'], /at '\/clusterAgent\/reportInterval': minimum/],
      [['injector.timeoutSeconds=60'], /at '\/injector\/timeoutSeconds': maximum/],
      [['injector.agentImagePullPolicy=Sometimes'], /at '\/injector\/agentImagePullPolicy'/],
      [['injector.defaults.authPath=a b'], /at '\/injector\/defaults\/authPath'/],
      [['server.persistence.enabled=maybe'], /at '\/server\/persistence\/enabled': got string, want boolean/],
      [['operator.hostNetwork=yes'], /at '\/operator\/hostNetwork': got string, want boolean/],
    ];
    for (const [set, message] of cases) {
      const res = await template(...set);
      assert.notEqual(res.code, 0, `helm template accepted ${set.join(' ')}`);
      assert.match(res.stderr, /values don't meet the specifications of the schema/);
      assert.match(res.stderr, message);
    }
  });
});
