import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type SessionInfo } from './api.js';
import { ago, exactBytes, formatBytes, shortDigest } from './format.js';
import { paths } from './router.js';

export interface AppState {
  /** Who is signed in; null until the first answer (pages load their data meanwhile). */
  session: SessionInfo | null;
  /** Reloads the session (after signing in or out). */
  refreshSession(): Promise<void>;
}

export const App = createContext<AppState>(null as unknown as AppState);
export const useApp = () => useContext(App);

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** Loads `load()` when `key` changes; a stale answer (an older key's) is dropped. */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: unknown; loading: boolean }>({ key, loading: true });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    setState((s) => ({ key, loading: true, ...(s.key === key && { data: s.data }) }));
    load().then(
      (data) => current && setState({ key, data, loading: false }),
      (error: unknown) => current && setState({ key, error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, [key, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const fresh = state.key === key;
  return { data: fresh ? state.data : undefined, error: fresh ? state.error : undefined, loading: !fresh || state.loading, reload };
}

/** Sets the document title and moves focus to the page heading, so screen readers announce the new page. */
export function usePage(title: string): void {
  useEffect(() => {
    document.title = `${title} · Berth`;
  }, [title]);
}

export function Heading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    // Focus follows navigation, but never away from a field the user is typing in.
    if (document.activeElement === document.body || document.activeElement === null) ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** An error answer as a sentence, with the way out (signing in) when there is one. */
export function ErrorNotice({ error, what }: { error: unknown; what: string }) {
  const { session } = useApp();
  if (error instanceof ApiError) {
    if (error.status === 401) {
      return (
        <div class="notice" role="alert">
          <p>
            Sign in to see {what}. <a href={paths.signIn(location.pathname + location.search)}>Sign in</a>
          </p>
        </div>
      );
    }
    const text =
      error.status === 403
        ? `${session?.user ?? 'You'} may not see ${what}.`
        : error.status === 404
          ? `Not found: ${what} (${error.message}).`
          : `Could not load ${what}: ${error.message} (${error.code}, HTTP ${error.status}).`;
    return (
      <div class="notice" role="alert">
        <p>{text}</p>
      </div>
    );
  }
  return (
    <div class="notice" role="alert">
      <p>
        Could not load {what}: {String((error as Error)?.message ?? error)}.
      </p>
    </div>
  );
}

export function Bytes({ value }: { value: number | null | undefined }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  return (
    <span class="bytes" title={exactBytes(value)} data-bytes={value}>
      {formatBytes(value)}
    </span>
  );
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={new Date(iso).toLocaleString()}>
      {ago(iso)}
    </time>
  );
}

export function Digest({ value }: { value: string }) {
  return (
    <code class="digest" title={value}>
      {shortDigest(value)}
    </code>
  );
}

/**
 * Copies `text`. The asynchronous clipboard needs a secure context (HTTPS or localhost);
 * a registry on a plain-HTTP LAN address gets the older selection-and-copy path.
 */
async function copy(text: string): Promise<boolean> {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused: try the other way.
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'offscreen';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  return ok;
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [status, setStatus] = useState('');
  const click = async () => {
    setStatus((await copy(text)) ? 'Copied' : 'Copy failed: select the text');
    setTimeout(() => setStatus(''), 2000);
  };
  return (
    <span class="copy">
      <button type="button" class="small" onClick={click} aria-label={`${label}: ${text}`} title={text} data-copy={text}>
        {label}
      </button>
      <span role="status" class="copy-status">
        {status}
      </span>
    </span>
  );
}

/** A command with its copy button. */
export function Command({ text }: { text: string }) {
  return (
    <div class="command">
      <code>{text}</code>
      <CopyButton text={text} label="Copy" />
    </div>
  );
}

/**
 * A modal confirmation (the platform's <dialog>: focus moves in and stays, Escape cancels).
 * `onConfirm` runs the action; its error is shown in the dialog.
 */
export function Confirm({
  title,
  children,
  action,
  onConfirm,
  onClose,
}: {
  title: string;
  children: ComponentChildren;
  action: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      ref.current?.close();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.message} (${err.code}, HTTP ${err.status})` : String(err));
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{title}</h2>
      {children}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="buttons">
        <button type="button" onClick={() => ref.current?.close()} disabled={busy}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={confirm} disabled={busy}>
          {busy ? 'Working…' : action}
        </button>
      </div>
    </dialog>
  );
}

export function Platforms({ platforms }: { platforms: ReadonlyArray<{ os: string; architecture: string; variant: string | null }> }) {
  if (platforms.length === 0) return <span class="muted">—</span>;
  return <span>{platforms.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/')).join(', ')}</span>;
}

/** "Load more" for a paginated list. */
export function More({ next, onMore, loading }: { next: string | null; onMore: () => void; loading: boolean }) {
  if (next === null) return null;
  return (
    <p>
      <button type="button" onClick={onMore} disabled={loading}>
        {loading ? 'Loading…' : 'Load more'}
      </button>
    </p>
  );
}
