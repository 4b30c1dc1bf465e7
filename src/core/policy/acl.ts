/**
 * The ACL a token's policies compile to, and the authorization check made on every request. Mirrors Vault's
 * vault/acl.go: rules for the same pattern are merged across policies; an exact rule beats any glob; among globs
 * the single highest-priority match decides (there is no union across different patterns).
 */
import { checkParameters } from './parameters.js';
import type { Capability, ParameterRules, PathRules, Policy } from './policy.js';

export type Operation = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list';

export interface CheckResult {
  allowed: boolean;
  /** Capabilities of the rule that decided, as sys/capabilities reports them (["deny"] when none). */
  capabilities: string[];
  /** Whether that rule grants sudo; callers must require it on root-protected paths. */
  sudo: boolean;
  /** Why access was refused, for logs/audit; clients should only ever see "permission denied". */
  reason?: string;
}

export interface CheckOptions {
  /** TTL in seconds of the response wrapping the client asked for, if any (checked against *_wrapping_ttl). */
  wrapTTL?: number;
}

const BIT: Record<Capability, number> = {
  deny: 1,
  create: 2,
  read: 4,
  update: 8,
  delete: 16,
  list: 32,
  sudo: 64,
  patch: 128,
};
const GRANTS = (Object.keys(BIT) as Capability[]).filter((c) => c !== 'deny');

// Vault checks parameters on every operation that can carry them, read (query parameters) included.
const PARAMETER_OPERATIONS = new Set<Operation>(['read', 'create', 'update', 'patch']);

interface Permissions {
  bits: number;
  allowedParameters: ParameterRules;
  deniedParameters: ParameterRules;
  requiredParameters: string[];
  minWrappingTTL: number;
  maxWrappingTTL: number;
}

/** A non-exact rule with what Vault's priority ordering needs; offsets/lengths are in UTF-8 bytes like Go's. */
interface GlobRule {
  pattern: string; // without the trailing "*"
  bytes: Buffer;
  isPrefix: boolean;
  firstWildcard: number;
  wildcards: number;
  segments: string[];
  perms: Permissions;
}

const fromRules = (r: PathRules): Permissions => ({
  bits: r.capabilities.reduce((bits, c) => bits | BIT[c], 0),
  allowedParameters: structuredClone(r.allowedParameters),
  deniedParameters: structuredClone(r.deniedParameters),
  requiredParameters: [...r.requiredParameters],
  minWrappingTTL: r.minWrappingTTL,
  maxWrappingTTL: r.maxWrappingTTL,
});

/** Vault's merge for one parameter map: an empty list (any value) absorbs the other side, else values add up. */
function mergeParameters(into: ParameterRules, from: ParameterRules): void {
  for (const [name, values] of Object.entries(from)) {
    const existing = Object.hasOwn(into, name) ? into[name] : undefined;
    into[name] = values.length === 0 || existing?.length === 0 ? [] : [...values, ...(existing ?? [])];
  }
}

/** Folds another rule for the same pattern into `p` (NewACL in vault/acl.go). */
function merge(p: Permissions, r: PathRules): void {
  if (p.bits & BIT.deny) return; // an explicit deny already won; nothing else matters
  const add = fromRules(r);
  if (add.bits & BIT.deny) {
    p.bits = BIT.deny;
    p.allowedParameters = {};
    p.deniedParameters = {};
    return;
  }
  p.bits |= add.bits;
  // Shorter wrapping TTL bounds win, keeping wrapped responses as short-lived as any policy asks.
  if (add.maxWrappingTTL > 0 && (p.maxWrappingTTL === 0 || add.maxWrappingTTL < p.maxWrappingTTL)) {
    p.maxWrappingTTL = add.maxWrappingTTL;
  }
  if (add.minWrappingTTL > 0 && (p.minWrappingTTL === 0 || add.minWrappingTTL < p.minWrappingTTL)) {
    p.minWrappingTTL = add.minWrappingTTL;
  }
  mergeParameters(p.allowedParameters, add.allowedParameters);
  mergeParameters(p.deniedParameters, add.deniedParameters);
  for (const name of add.requiredParameters) if (!p.requiredParameters.includes(name)) p.requiredParameters.push(name);
}

/** Vault treats "+" as a segment wildcard only when it is a whole segment's start: "+", "+/…" or "…/+…". */
const hasSegmentWildcards = (path: string): boolean => path === '+' || path.startsWith('+/') || path.includes('/+');

/** Priority order of Vault's docs and acl.go; > 0 when `a` beats `b`. */
function comparePriority(a: GlobRule, b: GlobRule): number {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard - b.firstWildcard; // later wildcard wins
  if (a.isPrefix !== b.isPrefix) return a.isPrefix ? -1 : 1; // not ending in "*" wins
  if (a.wildcards !== b.wildcards) return b.wildcards - a.wildcards; // fewer "+" wins
  if (a.bytes.length !== b.bytes.length) return a.bytes.length - b.bytes.length; // longer wins
  return Buffer.compare(a.bytes, b.bytes); // lexicographically greater wins
}

function matchesSegments(rule: GlobRule, parts: string[]): boolean {
  const segs = rule.segments;
  if (parts.length < segs.length || (!rule.isPrefix && parts.length !== segs.length)) return false;
  return segs.every((seg, i) => {
    const part = parts[i] ?? '';
    return seg === '+' || seg === part || (rule.isPrefix && i === segs.length - 1 && part.startsWith(seg));
  });
}

const capabilityNames = (bits: number): string[] =>
  bits & BIT.deny || bits === 0 ? ['deny'] : GRANTS.filter((c) => bits & BIT[c]).sort();

export class ACL {
  /** True for the root policy: everything is allowed, including sudo. */
  readonly root: boolean = false;
  private readonly exact = new Map<string, Permissions>();
  private readonly prefix = new Map<string, Permissions>(); // key: pattern without its trailing "*"
  private readonly segment = new Map<string, Permissions>(); // key: full pattern with "+" (and maybe "*")
  private globRules: GlobRule[] = [];

  constructor(policies: readonly Policy[]) {
    for (const policy of policies) {
      if (policy.name === 'root') {
        // Root tokens carry only the root policy in Vault; mixing it with others is a bug upstream of here.
        if (policies.length !== 1) throw new Error('other policies present along with root');
        this.root = true;
      }
      for (const rule of policy.paths) {
        const [table, key] = hasSegmentWildcards(rule.path)
          ? [this.segment, rule.path]
          : rule.path.endsWith('*')
            ? [this.prefix, rule.path.slice(0, -1)]
            : [this.exact, rule.path];
        const existing = table.get(key);
        if (existing) merge(existing, rule);
        else table.set(key, fromRules(rule));
      }
    }
    this.globRules = [...this.segment].map(([full, perms]) => {
      const isPrefix = full.endsWith('*');
      const pattern = isPrefix ? full.slice(0, -1) : full;
      const segments = pattern.split('/');
      return {
        pattern,
        bytes: Buffer.from(pattern),
        isPrefix,
        firstWildcard: Buffer.byteLength(full.slice(0, full.indexOf('+'))),
        wildcards: segments.filter((s) => s === '+').length,
        segments,
        perms,
      };
    });
  }

  /** The ACL of a root token. */
  static root(): ACL {
    return new ACL([{ name: 'root', raw: '', paths: [] }]);
  }

  /** Authorizes one request. `params` are the request's data (body, or query for reads); names are case-insensitive. */
  check(
    path: string,
    operation: Operation,
    params: Record<string, unknown> = {},
    opts: CheckOptions = {},
  ): CheckResult {
    if (this.root) return { allowed: true, capabilities: ['root'], sudo: true };
    const p = this.lookup(trimLeadingSlashes(path), operation);
    if (!p)
      return { allowed: false, capabilities: ['deny'], sudo: false, reason: 'no policy grants access to this path' };
    const base = { capabilities: capabilityNames(p.bits), sudo: (p.bits & BIT.sudo) !== 0 };
    const deny = (reason: string): CheckResult => ({ allowed: false, ...base, reason });

    if (p.bits & BIT.deny) return deny('access to this path is explicitly denied');
    if (!(p.bits & BIT[operation])) return deny(`the "${operation}" capability is required`);
    // As in Vault, a wrapping TTL bound makes wrapping mandatory: no wrap TTL fails both checks.
    if (p.maxWrappingTTL > 0 && (opts.wrapTTL === undefined || opts.wrapTTL > p.maxWrappingTTL)) {
      return deny(`response wrapping with a TTL of at most ${p.maxWrappingTTL}s is required`);
    }
    if (p.minWrappingTTL > 0 && (opts.wrapTTL === undefined || opts.wrapTTL < p.minWrappingTTL)) {
      return deny(`response wrapping with a TTL of at least ${p.minWrappingTTL}s is required`);
    }
    if (p.minWrappingTTL > 0 && p.maxWrappingTTL > 0 && p.maxWrappingTTL < p.minWrappingTTL) {
      return deny('merged policies set max_wrapping_ttl below min_wrapping_ttl'); // possible only across policies
    }
    if (PARAMETER_OPERATIONS.has(operation)) {
      const refused = checkParameters(p, params);
      if (refused) return deny(refused);
    }
    return { allowed: true, ...base };
  }

  /**
   * Whether any rule grants something at or under `prefix` (a mount path): sys/internal/ui/mounts shows a mount
   * only to tokens that can do something in it, as Vault's does.
   */
  grantsUnder(prefix: string): boolean {
    if (this.root) return true;
    const overlaps = (pattern: string, isPrefix: boolean): boolean =>
      pattern.startsWith(prefix) || (isPrefix && prefix.startsWith(pattern));
    const grants = (p: Permissions): boolean => (p.bits & BIT.deny) === 0 && p.bits !== 0;
    for (const [path, p] of this.exact) if (overlaps(path, false) && grants(p)) return true;
    for (const [path, p] of this.prefix) if (overlaps(path, true) && grants(p)) return true;
    const mountSegments = prefix.split('/').filter((seg) => seg !== '');
    return this.globRules.some(
      (r) =>
        grants(r.perms) &&
        mountSegments.every((seg, i) => r.segments[i] === undefined || r.segments[i] === '+' || r.segments[i] === seg),
    );
  }

  /** What sys/capabilities(-self) reports for a path: sorted names, ["deny"] if none, ["root"] for root. */
  capabilities(path: string): string[] {
    if (this.root) return ['root'];
    // Vault resolves capabilities with list-operation matching (trailing-slash fallback included).
    const p = this.lookup(trimLeadingSlashes(path), 'list');
    return p ? capabilityNames(p.bits) : ['deny'];
  }

  /**
   * The rule that governs `path`. LIST requests reach here with a trailing "/" (the HTTP layer adds it, as Vault's
   * does), so list also tries the path without it: a policy on "secret" or "+/secret" allows listing "secret/".
   * Both are weighed, and a deny governing either wins: before, the rule for the path without "/" was taken as soon
   * as one matched, so `list` on "secret/metadata/*" listed "secret/metadata/private/" despite a deny on
   * "secret/metadata/private/*" (the trailing-slash confusion Vault fixed in its ACL too).
   */
  private lookup(path: string, operation: Operation): Permissions | undefined {
    if (operation !== 'list') return this.exact.get(path) ?? this.nonExact(path);
    const trimmed = trimOneSlash(path);
    const slashed = path.endsWith('/');
    const withPath = this.exact.get(path) ?? this.nonExact(path);
    const without = slashed ? (this.exact.get(trimmed) ?? this.nonExact(trimmed)) : undefined;
    for (const found of [withPath, without]) if (found && (found.bits & BIT.deny) !== 0) return found;
    const exact = this.exact.get(path) ?? this.exact.get(trimmed);
    if (exact) return exact;
    return without ?? withPath;
  }

  private nonExact(path: string): Permissions | undefined {
    // Longest matching prefix glob: among plain "*" globs that is always the highest priority.
    let prefixKey: string | undefined;
    for (const key of this.prefix.keys()) {
      if (path.startsWith(key) && (prefixKey === undefined || key.length > prefixKey.length)) prefixKey = key;
    }
    const prefixPerms = prefixKey === undefined ? undefined : this.prefix.get(prefixKey);
    if (this.globRules.length === 0) return prefixPerms;

    let best: GlobRule | undefined;
    if (prefixKey !== undefined && prefixPerms) {
      const bytes = Buffer.from(prefixKey);
      best = {
        pattern: prefixKey,
        bytes,
        isPrefix: true,
        firstWildcard: bytes.length,
        wildcards: 0,
        segments: [],
        perms: prefixPerms,
      };
    }
    const parts = path.split('/');
    for (const rule of this.globRules) {
      if (matchesSegments(rule, parts) && (!best || comparePriority(rule, best) > 0)) best = rule;
    }
    return best?.perms;
  }
}

const trimLeadingSlashes = (path: string): string => path.replace(/^\/+/, '');
const trimOneSlash = (path: string): string => (path.endsWith('/') ? path.slice(0, -1) : path);
