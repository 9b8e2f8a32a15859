/**
 * Docker token scopes: `repository:team/app:pull,push`, `registry:catalog:*`. The type
 * may carry a resource class (`repository(plugin):…`), which is ignored; the name may
 * contain colons (a host:port prefix), so the actions start after the last one.
 */
export interface ResourceAccess {
  type: string;
  name: string;
  actions: string[];
}

export function parseScopes(values: ReadonlyArray<string>): ResourceAccess[] {
  const out: ResourceAccess[] = [];
  for (const value of values) {
    for (const item of value.split(' ')) {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first <= 0 || last <= first + 1) continue;
      const type = item.slice(0, first).replace(/\(.*\)$/, '');
      const actions = item.slice(last + 1).split(',').filter((a) => a !== '');
      out.push({ type, name: item.slice(first + 1, last), actions });
    }
  }
  return out;
}

export function formatScopes(items: ReadonlyArray<ResourceAccess>): string {
  return items.map((i) => `${i.type}:${i.name}:${i.actions.join(',')}`).join(' ');
}

/** Whether an access list (a token's `access` claim) grants `action` on the resource. */
export function covers(access: ReadonlyArray<ResourceAccess>, type: string, name: string, action: string): boolean {
  return access.some((a) => a.type === type && a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}

export const CATALOG_SCOPE: ResourceAccess = { type: 'registry', name: 'catalog', actions: ['*'] };
export const ADMIN_SCOPE: ResourceAccess = { type: 'registry', name: 'admin', actions: ['*'] };
