// The content of a kubernetes.io/dockerconfigjson Secret (its `.dockerconfigjson` key) from three KV fields, so an
// imagePullSecret can come from Cofre: the operator's CofreSecret templates and the in-pod agent's templates both
// offer it as the `dockerconfigjson` helper. The shape is the one the kubelet reads: auths.<registry>.{username,
// password, auth}, auth being base64 of "username:password".

export class DockerConfigError extends Error {}

const REQUIRED = ['registry', 'username', 'password'] as const;

/** Errors name the missing field, never a value. */
export function dockerConfigJson(fields: Record<string, unknown>): string {
  for (const key of REQUIRED) {
    if (typeof fields[key] !== 'string' || fields[key] === '') {
      throw new DockerConfigError(
        `dockerconfigjson needs a non-empty string field "${key}" (registry, username, password)`,
      );
    }
  }
  const { registry, username, password } = fields as Record<(typeof REQUIRED)[number], string>;
  const entry: Record<string, string> = {
    username,
    password,
    auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64'),
  };
  if (typeof fields.email === 'string' && fields.email !== '') entry.email = fields.email;
  return JSON.stringify({ auths: { [registry]: entry } });
}
