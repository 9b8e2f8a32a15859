import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type RepositorySummary } from '../api.js';
import { Bytes, ErrorNotice, Heading, Time, usePage } from '../components.js';
import { navigate, paths, useLocation } from '../router.js';

/** Repositories per page: a screenful or two, however many the registry holds. */
const PAGE_SIZE = 50;
/** Typing pauses this long before the search runs. */
const DEBOUNCE_MS = 150;

interface Listing {
  repositories: RepositorySummary[];
  next: string | null;
}

/** The list's URL: the query and the cursor of the page shown (both optional). */
function listUrl(q: string, last: string | null): string {
  const params = new URLSearchParams();
  if (q !== '') params.set('q', q);
  if (last) params.set('last', last);
  const search = params.toString();
  return search === '' ? '/' : `/?${search}`;
}

/**
 * Every repository the caller may pull, sorted by name, a page at a time (the API's
 * cursor), searched as you type with the matching of `docker search`: a case-insensitive
 * part of the repository's name or of one of its tags.
 */
export function RepositoriesPage() {
  usePage('Repositories');
  const initial = new URLSearchParams(location.search);
  const [q, setQ] = useState(initial.get('q') ?? '');
  // Cursors of the pages walked so far: Previous goes back along them.
  const [cursors, setCursors] = useState<Array<string | null>>(initial.get('last') ? [null, initial.get('last')] : [null]);
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const last = cursors[cursors.length - 1] ?? null;
  const firstRun = useRef(true);
  // The URL this page last wrote: any other location (a link, Back) is followed.
  const written = useRef<string | null>(null);
  const location_ = useLocation();
  useEffect(() => {
    if (written.current === null || location_.key === written.current) return;
    const q = location_.search.get('q') ?? '';
    const last = location_.search.get('last');
    setQ(q);
    setCursors(last ? [null, last] : [null]);
  }, [location_.key]);

  useEffect(() => {
    const controller = new AbortController();
    // The first load runs at once; later ones wait for typing to pause.
    const delay = firstRun.current ? 0 : DEBOUNCE_MS;
    firstRun.current = false;
    setLoading(true);
    const timer = setTimeout(() => {
      api.repositories(q.trim(), last, PAGE_SIZE, controller.signal).then(
        (answer) => {
          setListing(answer);
          setError(null);
          setLoading(false);
        },
        (err: unknown) => {
          if (controller.signal.aborted) return;
          setError(err);
          setLoading(false);
        },
      );
    }, delay);
    written.current = listUrl(q.trim(), last);
    if (written.current !== location.pathname + location.search) navigate(written.current, { replace: true });
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [q, last]);

  const pageNumber = cursors.length;
  const shown = listing?.repositories ?? [];
  return (
    <>
      <Heading>Repositories</Heading>
      <form class="search" role="search" onSubmit={(e) => e.preventDefault()}>
        <label for="search">Search repositories and tags</label>
        <input
          id="search"
          type="search"
          value={q}
          autoComplete="off"
          spellcheck={false}
          placeholder="e.g. team/app or 1.2"
          onInput={(e) => {
            setQ((e.target as HTMLInputElement).value);
            setCursors([null]);
          }}
        />
      </form>
      <p class="muted" role="status" aria-live="polite">
        {loading
          ? q.trim() === ''
            ? 'Loading repositories…'
            : `Searching for “${q.trim()}”…`
          : listing
            ? shown.length === 0
              ? q.trim() === ''
                ? 'No repositories yet.'
                : `No repository matches “${q.trim()}”.`
              : `Page ${pageNumber}: ${shown.length} ${shown.length === 1 ? 'repository' : 'repositories'}${q.trim() === '' ? '' : ` matching “${q.trim()}”`}.`
            : ''}
      </p>
      {error ? <ErrorNotice error={error} what="the repositories" /> : null}
      {shown.length > 0 && (
        <div class="table-wrap">
          <table class="cards" aria-busy={loading}>
            <thead>
              <tr>
                <th scope="col">Repository</th>
                <th scope="col" class="num">
                  Tags
                </th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Last push</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.name}>
                  <td data-label="Repository">
                    <a href={paths.repository(r.name)} class="repo-name">
                      {r.name}
                    </a>
                    {r.description && <div class="muted description">{r.description}</div>}
                  </td>
                  <td data-label="Tags" class="num">
                    {r.tagCount}
                  </td>
                  <td data-label="Size" class="num">
                    <Bytes value={r.sizeBytes} />
                  </td>
                  <td data-label="Last push">
                    <Time iso={r.lastPushedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {listing && (cursors.length > 1 || listing.next) && (
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled={cursors.length <= 1 || loading} onClick={() => setCursors(cursors.slice(0, -1))}>
            Previous page
          </button>
          <button type="button" disabled={!listing.next || loading} onClick={() => listing.next && setCursors([...cursors, listing.next])}>
            Next page
          </button>
        </nav>
      )}
      {listing && shown.length === 0 && q.trim() === '' && (
        <p>
          Push an image to start: <code>docker push {location.host}/team/app:1.0</code>
        </p>
      )}
    </>
  );
}
