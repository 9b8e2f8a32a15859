import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';
import { expiredTags, ruleFor } from '../../src/gc/retention.js';
import { globToRegExp } from '../../src/glob.js';

const HOUR = 3_600_000;
const now = 1_000 * HOUR;
const tag = (name: string, hoursAgo: number) => ({ name, digest: `sha256:${name}`, updatedAt: now - hoursAgo * HOUR });

describe('retention rules', () => {
  it('globs: * within a component, ** across components', () => {
    expect(globToRegExp('team/*').test('team/app')).toBe(true);
    expect(globToRegExp('team/*').test('team/a/b')).toBe(false);
    expect(globToRegExp('team/**').test('team/a/b')).toBe(true);
    expect(globToRegExp('*').test('library/alpine')).toBe(false);
    expect(globToRegExp('**').test('library/alpine')).toBe(true);
    expect(globToRegExp('a.b/c').test('axb/c')).toBe(false);
    const rules = [{ repositories: 'ci/**', keepLast: 1 }, { repositories: '**', keepLast: 5 }];
    expect(ruleFor(rules, 'ci/x/y')).toBe(rules[0]);
    expect(ruleFor(rules, 'team/x')).toBe(rules[1]);
    expect(ruleFor(rules.slice(0, 1), 'team/x')).toBeUndefined();
  });

  it('a tag goes only when every condition the rule sets allows it', () => {
    const tags = [tag('v1.0.0', 100), tag('a', 90), tag('b', 50), tag('c', 10), tag('v2.0.0', 5), tag('d', 1)];
    const names = (rule: Parameters<typeof expiredTags>[0]) => expiredTags(rule, tags, now).map((t) => t.name).sort();
    expect(names({ repositories: '**', keepLast: 2 })).toEqual(['a', 'b', 'c', 'v1.0.0']);
    expect(names({ repositories: '**', keepLast: 2, keepTags: 'v\\d+\\.\\d+\\.\\d+' })).toEqual(['a', 'b']);
    expect(names({ repositories: '**', deleteOlderThan: 48 * HOUR })).toEqual(['a', 'b', 'v1.0.0']);
    expect(names({ repositories: '**', keepLast: 4, deleteOlderThan: 60 * HOUR })).toEqual(['a', 'v1.0.0']);
    expect(names({ repositories: '**', keepLast: 0 })).toHaveLength(6);
    // The pattern matches whole tags only.
    expect(names({ repositories: '**', keepLast: 0, keepTags: 'v1' })).toHaveLength(6);
    expect(names({ repositories: '**' })).toEqual([]);
  });

  it('configuration: defaults, durations, JSON rules from the environment, and refusals', () => {
    const defaults = parseConfig(undefined);
    expect(defaults.gc).toEqual({ interval: HOUR, gracePeriod: HOUR, untaggedAfter: 'never', keepReferrers: true, retention: [] });
    const config = parseConfig('gc:\n  untaggedAfter: 7d\n  retention:\n    - repositories: "ci/*"\n      deleteOlderThan: 30d\n', {
      BERTH_GC_GRACE_PERIOD: '10m',
    });
    expect(config.gc.untaggedAfter).toBe(7 * 24 * HOUR);
    expect(config.gc.gracePeriod).toBe(10 * 60_000);
    expect(config.gc.retention).toEqual([{ repositories: 'ci/*', deleteOlderThan: 30 * 24 * HOUR }]);
    const fromEnv = parseConfig(undefined, {
      BERTH_GC_RETENTION: '[{"repositories":"team/**","keepLast":3,"keepTags":"v.*"}]',
      BERTH_GC_UNTAGGED_AFTER: 'never',
      BERTH_GC_INTERVAL: '0',
    });
    expect(fromEnv.gc.retention).toEqual([{ repositories: 'team/**', keepLast: 3, keepTags: 'v.*' }]);
    expect(fromEnv.gc.interval).toBe(0);
    expect(() => parseConfig('gc:\n  retention:\n    - repositories: x\n')).toThrow(/keepLast or deleteOlderThan/);
    expect(() => parseConfig('gc:\n  retention:\n    - repositories: x\n      keepLast: 1\n      keepTags: "("\n')).toThrow(
      /invalid regular expression/,
    );
    expect(() => parseConfig('gc:\n  untaggedAfter: sometimes\n')).toThrow(ConfigError);
  });
});
