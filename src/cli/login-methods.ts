import { readFileSync } from 'node:fs';
import { usageError } from './errors.js';
import { promptSecret } from './input.js';

/** Where a pod finds its own service-account token, as Vault's CLI does for the kubernetes method. */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A login request: the path under the method's mount, and the body, never shown. */
interface LoginCall {
  path: string;
  body: Record<string, unknown>;
}

interface LoginMethod {
  usage: string;
  call(data: Record<string, unknown>): Promise<LoginCall>;
}

function required(data: Record<string, unknown>, name: string, method: string): string {
  const value = data[name];
  if (typeof value !== 'string' || value === '') throw usageError(`-method=${method} needs ${name}=...`);
  return value;
}

/**
 * The auth methods `cofre login -method=NAME key=value...` knows, by type. Each turns the key=value arguments into
 * its login request; a secret the user did not give is prompted for, never taken from the command line history.
 */
export const LOGIN_METHODS: Record<string, LoginMethod> = {
  userpass: {
    usage: 'username=NAME [password=PASSWORD]  (prompted when not given)',
    async call(data) {
      const { username: _username, ...rest } = data;
      const username = required(data, 'username', 'userpass');
      const password =
        typeof data.password === 'string' ? data.password : await promptSecret('Password (will be hidden): ');
      return { path: `login/${encodeURIComponent(username)}`, body: { ...rest, password } };
    },
  },
  approle: {
    usage: 'role_id=ID secret_id=SECRET_ID',
    async call(data) {
      required(data, 'role_id', 'approle');
      return { path: 'login', body: data };
    },
  },
  jwt: {
    usage: 'role=ROLE jwt=TOKEN  (or jwt=@file)',
    async call(data) {
      required(data, 'jwt', 'jwt');
      return { path: 'login', body: data };
    },
  },
  kubernetes: {
    usage: `role=ROLE [jwt=TOKEN]  (default: the pod's token, ${SERVICE_ACCOUNT_TOKEN})`,
    async call(data) {
      required(data, 'role', 'kubernetes');
      if (data.jwt !== undefined) return { path: 'login', body: data };
      let jwt: string;
      try {
        jwt = readFileSync(SERVICE_ACCOUNT_TOKEN, 'utf8').trim();
      } catch {
        throw usageError(`-method=kubernetes needs jwt=... outside a pod (no ${SERVICE_ACCOUNT_TOKEN})`);
      }
      return { path: 'login', body: { ...data, jwt } };
    },
  },
};
