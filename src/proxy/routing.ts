import type { Config } from '../config.js';
import { globToRegExp } from '../glob.js';

/** A repository request that the pull-through cache answers. */
export interface MirrorTarget {
  /** The configured upstream's name. */
  upstream: string;
  /** The repository on the upstream, e.g. library/busybox. */
  remote: string;
  /** The local repository holding the cached content, e.g. docker.io/library/busybox. */
  cache: string;
}

/**
 * Decides whether a repository name is local or mirrored, and from where. In order:
 *   1. `?ns=<host>` naming an upstream (by name or by its URL's host), as containerd sends it;
 *   2. a first path component naming an upstream: `/v2/ghcr.io/org/tool/…`;
 *   3. a name matching a `proxy.local` glob is local;
 *   4. anything else goes to `proxy.defaultUpstream` when one is set, as Docker's
 *      `registry-mirrors` sends it (a single component becomes `library/<name>`);
 *   5. otherwise the name is local.
 * All three ways into one upstream share one cache: `<upstream name>/<remote>`.
 */
export class MirrorRouting {
  private readonly byName = new Map<string, string>();
  private readonly byHost = new Map<string, string>();
  private readonly local: RegExp[];
  private readonly defaultUpstream: string;

  constructor(config: Config['proxy']) {
    for (const u of config.upstreams) {
      this.byName.set(u.name, u.name);
      this.byHost.set(new URL(u.url).host, u.name);
    }
    this.local = config.local.map(globToRegExp);
    this.defaultUpstream = config.defaultUpstream;
  }

  resolve(name: string, ns: string | undefined): MirrorTarget | undefined {
    const nsUpstream = ns === undefined ? undefined : (this.byName.get(ns) ?? this.byHost.get(ns));
    if (nsUpstream !== undefined) return target(nsUpstream, name);
    const slash = name.indexOf('/');
    if (slash > 0) {
      const prefixed = this.byName.get(name.slice(0, slash));
      if (prefixed !== undefined) return target(prefixed, name.slice(slash + 1));
    }
    if (this.local.some((glob) => glob.test(name))) return undefined;
    if (this.defaultUpstream !== '') return target(this.defaultUpstream, name.includes('/') ? name : `library/${name}`);
    return undefined;
  }
}

function target(upstream: string, remote: string): MirrorTarget {
  return { upstream, remote, cache: `${upstream}/${remote}` };
}
