import { globToRegExp } from '../glob.js';

/** A retention rule as configured (`gc.retention`), durations already in milliseconds. */
export interface RetentionRule {
  repositories: string;
  keepLast?: number | undefined;
  deleteOlderThan?: number | undefined;
  keepTags?: string | undefined;
}

export interface TagRow {
  name: string;
  digest: string;
  /** When the tag was last pushed (ms since the epoch). */
  updatedAt: number;
}

/** The first rule whose glob matches `repository`, if any. */
export function ruleFor(rules: readonly RetentionRule[], repository: string): RetentionRule | undefined {
  return rules.find((rule) => globToRegExp(rule.repositories).test(repository));
}

/**
 * The tags a rule removes: a tag goes only when every condition the rule sets allows
 * it: it does not match `keepTags`, it is not among the `keepLast` most recently pushed
 * of the tags that do not match, and it is older than `deleteOlderThan`. A rule with
 * neither count nor age removes nothing.
 */
export function expiredTags(rule: RetentionRule, tags: readonly TagRow[], now: number): TagRow[] {
  if (rule.keepLast === undefined && rule.deleteOlderThan === undefined) return [];
  const keepPattern = rule.keepTags === undefined ? undefined : new RegExp(`^(?:${rule.keepTags})$`);
  // Newest first; ties broken by name so the choice is stable. `keepLast` counts among
  // the tags `keepTags` does not already keep.
  const ordered = tags
    .filter((tag) => !keepPattern?.test(tag.name))
    .sort((a, b) => b.updatedAt - a.updatedAt || a.name.localeCompare(b.name));
  return ordered.filter((tag, position) => {
    if (rule.keepLast !== undefined && position < rule.keepLast) return false;
    if (rule.deleteOlderThan !== undefined && tag.updatedAt > now - rule.deleteOlderThan) return false;
    return true;
  });
}
