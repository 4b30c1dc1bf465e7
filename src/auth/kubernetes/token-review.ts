export interface ReviewTarget {
  host: string;
  caCert: string | undefined;
  /** Bearer for the TokenReview call: the configured reviewer JWT, or the JWT under review itself. */
  reviewerJwt: string;
}

export interface ReviewedIdentity {
  namespace: string;
  serviceAccountName: string;
  uid: string;
  audiences: string[];
}

/** The API server could not be asked: a server-side problem (503), not the caller's. */
export class ReviewUnavailable extends Error {}

/**
 * Asks the cluster's TokenReview API whether `jwt` is a live service-account token. Only the API server can say
 * (it knows about deleted service accounts and bound-pod tokens); Cofre never trusts the JWT's claims alone.
 */
export async function reviewToken(
  target: ReviewTarget,
  jwt: string,
  audiences: string[],
): Promise<ReviewedIdentity | undefined> {
  // Loaded on first login: the client library is large and most servers never use this auth method.
  const { AuthenticationV1Api, KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    {
      name: 'target',
      server: target.host,
      skipTLSVerify: false,
      ...(target.caCert ? { caData: Buffer.from(target.caCert).toString('base64') } : {}),
    },
    { name: 'reviewer', token: target.reviewerJwt },
  );
  const api = kc.makeApiClient(AuthenticationV1Api);
  let review;
  try {
    review = await api.createTokenReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: jwt, audiences } },
    });
  } catch (err) {
    const code = (err as { code?: number }).code;
    // The reviewer itself was refused: a configuration problem the operator must see, never the JWT's content.
    const reason = code
      ? `the API server answered ${code}`
      : `the API server could not be reached (${(err as Error).message})`;
    throw new ReviewUnavailable(`TokenReview failed: ${reason}`);
  }
  const status = review.status;
  if (!status?.authenticated || !status.user?.username) return undefined;
  const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(status.user.username);
  if (!match) return undefined;
  return {
    namespace: match[1]!,
    serviceAccountName: match[2]!,
    uid: status.user.uid ?? '',
    audiences: status.audiences ?? [],
  };
}
