export { ACL, type CheckOptions, type CheckResult, type Operation } from './acl.js';
export {
  assertPolicyDeletable,
  assertPolicyWritable,
  DEFAULT_POLICY_NAME,
  DEFAULT_POLICY_TEXT,
  defaultPolicy,
  isRootPolicy,
  ROOT_POLICY_NAME,
  rootPolicy,
} from './builtin.js';
export { checkParameters, globMatch, type ParameterConstraints } from './parameters.js';
export {
  CAPABILITIES,
  normalizePolicyName,
  parseDurationSeconds,
  parsePolicy,
  type Capability,
  type ParameterRules,
  type PathRules,
  type Policy,
} from './policy.js';
