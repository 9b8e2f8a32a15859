import type { Action } from './access.js';
import { globToRegExp } from '../glob.js';

/** Who is calling: nobody in particular, or a user (with the groups they belong to). */
export type Identity = { kind: 'anonymous' } | { kind: 'user'; name: string; groups: readonly string[] };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

/** Principal names with a meaning of their own in rules; no user may be called so. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['anonymous', 'authenticated', '*']);

export interface AccessRule {
  repositories: readonly string[];
  users: readonly string[];
  groups: readonly string[];
  actions: readonly Action[];
}

function matchesPrincipal(rule: AccessRule, identity: Identity): boolean {
  if (rule.users.includes('*')) return true;
  if (identity.kind === 'anonymous') return rule.users.includes('anonymous');
  return (
    rule.users.includes('authenticated') ||
    rule.users.includes(identity.name) ||
    identity.groups.some((group) => rule.groups.includes(group))
  );
}

/**
 * The ordered access rules: the first rule whose repository glob and principals match
 * decides which actions the caller has; no matching rule means no access.
 */
export class AccessRules {
  private readonly rules: ReadonlyArray<AccessRule & { patterns: RegExp[] }>;

  constructor(rules: readonly AccessRule[]) {
    this.rules = rules.map((rule) => ({ ...rule, patterns: rule.repositories.map(globToRegExp) }));
  }

  actions(identity: Identity, repository: string): ReadonlySet<Action> {
    for (const rule of this.rules) {
      if (rule.patterns.some((p) => p.test(repository)) && matchesPrincipal(rule, identity)) {
        return new Set(rule.actions);
      }
    }
    return new Set();
  }

  allows(identity: Identity, repository: string, action: Action): boolean {
    return this.actions(identity, repository).has(action);
  }
}
