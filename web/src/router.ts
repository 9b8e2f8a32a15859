// Client-side navigation: real URLs (each page can be bookmarked and reloaded; Berth serves
// the same document at each), history.pushState, and clicks on same-origin links taken over.
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'repositories' }
  | { page: 'repository'; name: string }
  | { page: 'image'; name: string; reference: string }
  | { page: 'layer'; digest: string }
  | { page: 'storage' }
  | { page: 'sign-in' }
  | { page: 'not-found' };

/**
 * Pages by path. An image is named as docker names it: `/repositories/team/app:1.0` or
 * `/repositories/team/app@sha256:…` (repository names contain neither `:` nor `@`).
 */
export function parseRoute(pathname: string): Route {
  if (pathname === '/' || pathname === '/repositories' || pathname === '/repositories/') return { page: 'repositories' };
  if (pathname === '/storage') return { page: 'storage' };
  if (pathname === '/sign-in') return { page: 'sign-in' };
  if (pathname.startsWith('/layers/') && pathname.length > 8) return { page: 'layer', digest: pathname.slice(8) };
  if (!pathname.startsWith('/repositories/')) return { page: 'not-found' };
  const rest = decodeURIComponent(pathname.slice('/repositories/'.length)).replace(/\/$/, '');
  if (rest === '') return { page: 'repositories' };
  const at = rest.indexOf('@');
  if (at > 0) return { page: 'image', name: rest.slice(0, at), reference: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) return { page: 'image', name: rest.slice(0, colon), reference: rest.slice(colon + 1) };
  return { page: 'repository', name: rest };
}

export const paths = {
  repositories: (q = '') => (q === '' ? '/' : `/?q=${encodeURIComponent(q)}`),
  repository: (name: string) => `/repositories/${name}`,
  /** An image by tag or digest. */
  image: (name: string, reference: string) => `/repositories/${name}${reference.includes(':') ? '@' : ':'}${reference}`,
  layer: (digest: string) => `/layers/${digest}`,
  storage: () => '/storage',
  signIn: (next?: string) => (next && next !== '/' ? `/sign-in?next=${encodeURIComponent(next)}` : '/sign-in'),
};

const CHANGE = 'berth:navigate';

export function navigate(url: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  dispatchEvent(new Event(CHANGE));
}

/** The current location, re-rendering on every navigation. */
export function useLocation(): { pathname: string; search: URLSearchParams; key: string } {
  const read = () => ({ pathname: location.pathname, search: new URLSearchParams(location.search), key: location.pathname + location.search });
  const [current, setCurrent] = useState(read);
  useEffect(() => {
    const update = () => setCurrent(read());
    addEventListener('popstate', update);
    addEventListener(CHANGE, update);
    return () => {
      removeEventListener('popstate', update);
      removeEventListener(CHANGE, update);
    };
  }, []);
  return current;
}

/** Same-origin links to pages navigate without reloading; modified clicks (new tab) stay the browser's. */
export function interceptLinks(): void {
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest?.('a');
    if (!link || link.target || link.hasAttribute('download') || link.origin !== location.origin) return;
    if (parseRoute(link.pathname).page === 'not-found') return;
    event.preventDefault();
    if (link.pathname + link.search !== location.pathname + location.search) navigate(link.pathname + link.search + link.hash);
  });
}
