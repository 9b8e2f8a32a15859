import type { Config } from '../config.js';
import { oci } from '../errors.js';
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
 *   1. `?ns=<host>`, as containerd sends it when Berth mirrors the registry `<host>`: an
 *      upstream (by name or by its URL's host) selects that upstream; Berth itself (the
 *      host the request was sent to, or one of `http.hostnames`) means no `ns`; any other
 *      registry is refused with 404 NAME_UNKNOWN, so that a pull of `quay.io/x` never gets
 *      a local `x` or another upstream's;
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
  private readonly own: ReadonlySet<string>;
  private readonly local: RegExp[];
  private readonly defaultUpstream: string;

  constructor(config: Config['proxy'], hostnames: readonly string[] = []) {
    for (const u of config.upstreams) {
      this.byName.set(u.name, u.name);
      this.byHost.set(new URL(u.url).host, u.name);
    }
    this.own = new Set(hostnames.map((h) => h.toLowerCase()));
    this.local = config.local.map(globToRegExp);
    this.defaultUpstream = config.defaultUpstream;
  }

  /**
   * The mirror serving `name`, or undefined for a local repository. `host` is the host
   * (and port) the client sent the request to. Throws NAME_UNKNOWN for an `ns` naming a
   * registry Berth neither is nor mirrors.
   */
  resolve(name: string, ns: string | undefined, host: string): MirrorTarget | undefined {
    if (ns !== undefined && ns !== '') {
      // A repeated ns (an array from the query parser) names no registry.
      const registry = String(ns).toLowerCase();
      const upstream = this.byName.get(registry) ?? this.byHost.get(registry);
      if (upstream !== undefined) return target(upstream, name);
      if (registry !== host.toLowerCase() && !this.own.has(registry)) {
        throw oci('NAME_UNKNOWN', `registry "${ns}" is not mirrored here (no upstream is configured for it), so "${name}" is not served`, {
          name,
          ns,
        });
      }
    }
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
