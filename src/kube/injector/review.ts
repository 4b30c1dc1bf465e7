/**
 * One AdmissionReview (admission.k8s.io/v1) in, one out: decides whether a pod is injected, left alone or
 * refused. Refusals carry a message for the user (kubectl prints it); the webhook's failurePolicy: Fail means an
 * opted-in pod that cannot be mutated is never started without its secrets.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { AnnotationError, parseAnnotations, type InjectorDefaults } from './annotations.js';
import { INJECT_LABEL } from './contract.js';
import { mutatePod, PodRefusedError, type AgentSettings, type PatchOperation } from './mutate.js';

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request?: {
    uid: string;
    kind?: { group?: string; version?: string; kind?: string };
    operation?: string;
    namespace?: string;
    object?: V1Pod;
  };
}

export interface AdmissionResponseReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    status?: { code: number; message: string };
  };
}

/** What happened to one request, for the log line (names only, never a value). */
export interface Outcome {
  decision: 'injected' | 'unchanged' | 'refused';
  reason?: string;
  operations?: number;
}

/** A request that is not an AdmissionReview at all: answered 400 over HTTP, not with a review. */
export class BadReviewError extends Error {}

export function readReview(body: unknown): AdmissionReview & { request: NonNullable<AdmissionReview['request']> } {
  const review = body as AdmissionReview | null;
  if (!review || typeof review !== 'object' || review.kind !== 'AdmissionReview')
    throw new BadReviewError('expected a JSON AdmissionReview');
  if (review.apiVersion !== 'admission.k8s.io/v1')
    throw new BadReviewError(`expected apiVersion admission.k8s.io/v1, got ${JSON.stringify(review.apiVersion)}`);
  if (!review.request || typeof review.request.uid !== 'string' || review.request.uid === '')
    throw new BadReviewError('the AdmissionReview has no request.uid');
  return review as AdmissionReview & { request: NonNullable<AdmissionReview['request']> };
}

function answer(uid: string, allowed: boolean, extra: Partial<AdmissionResponseReview['response']> = {}) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed, ...extra } } as const;
}

export function review(
  body: unknown,
  defaults: InjectorDefaults,
  settings: AgentSettings,
): { review: AdmissionResponseReview; outcome: Outcome } {
  const { request } = readReview(body);
  const pod = request.object;
  // Only pod creations are mutated: a pod's containers cannot change afterwards, and other kinds are not ours.
  if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE' || !pod)
    return { review: answer(request.uid, true), outcome: { decision: 'unchanged', reason: 'not a pod creation' } };
  // The objectSelector already filters on the label; checking again keeps a hand-written configuration without it
  // from injecting every pod.
  if (pod.metadata?.labels?.[INJECT_LABEL] !== 'true')
    return { review: answer(request.uid, true), outcome: { decision: 'unchanged', reason: 'not opted in' } };
  let ops: PatchOperation[];
  try {
    ops = mutatePod(pod, parseAnnotations(pod.metadata.annotations, defaults), settings);
  } catch (err) {
    if (!(err instanceof AnnotationError || err instanceof PodRefusedError)) throw err;
    const message = `cofre injector: ${err.message}`;
    return {
      review: answer(request.uid, false, { status: { code: 400, message } }),
      outcome: { decision: 'refused', reason: err.message },
    };
  }
  if (ops.length === 0)
    return { review: answer(request.uid, true), outcome: { decision: 'unchanged', reason: 'already injected' } };
  return {
    review: answer(request.uid, true, {
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
    }),
    outcome: { decision: 'injected', operations: ops.length },
  };
}
