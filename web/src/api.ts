// The JSON API the pages read (/_berth/api, described in the README's "Browse API"), and
// the registry and admin endpoints the actions call. Nothing else.

export interface Platform {
  os: string;
  architecture: string;
  variant: string | null;
}

export interface RepositorySummary {
  name: string;
  tagCount: number;
  manifestCount: number;
  sizeBytes: number;
  lastPushedAt: string | null;
  description: string | null;
}

export interface Repository extends RepositorySummary {
  actions: { pull: boolean; push: boolean; delete: boolean };
}

export type Kind = 'image' | 'index' | 'artifact';

export interface Tag {
  name: string;
  digest: string;
  mediaType: string;
  kind: Kind;
  platforms: Platform[];
  sizeBytes: number;
  pushedAt: string | null;
}

export interface ManifestSummary {
  digest: string;
  mediaType: string;
  kind: Kind;
  artifactType: string | null;
  subject: string | null;
  tags: string[];
  platforms: Platform[];
  sizeBytes: number;
  pushedAt: string | null;
  referrerCount: number;
}

export interface Layer {
  index: number;
  digest: string;
  diffId: string | null;
  mediaType: string;
  size: number;
  uncompressedSize: number | null;
  createdBy: string | null;
  sharedWith: { images: number; repositories: number };
}

export interface HistoryEntry {
  created: string | null;
  createdBy: string | null;
  comment: string | null;
  emptyLayer: boolean;
  layerIndex: number | null;
}

export interface Referrer {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  annotations: Record<string, string> | null;
}

export interface ImageConfig {
  digest: string;
  mediaType: string;
  size: number;
  created: string | null;
  author: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[] | null;
  workingDir: string | null;
  user: string | null;
  labels: Record<string, string> | null;
  exposedPorts: string[] | null;
}

export interface Manifest {
  repository: string;
  digest: string;
  mediaType: string;
  kind: Kind;
  artifactType: string | null;
  subject: string | null;
  tags: string[];
  pushedAt: string | null;
  sizeBytes: number;
  annotations: Record<string, string> | null;
  /** How the layers compared with the config's diff_ids (images only). */
  verification: 'verified' | 'mismatch' | 'unverifiable' | 'invalid' | 'unchecked' | null;
  config: ImageConfig | null;
  layers: Layer[] | null;
  history: HistoryEntry[] | null;
  platforms: Array<Platform & { digest: string; sizeBytes: number }> | null;
  referrers: Referrer[];
}

export interface LayerUsage {
  digest: string;
  size: number;
  uncompressedSize: number | null;
  diffId: string | null;
  mediaType: string;
  images: Array<{ repository: string; digest: string; tags: string[]; index: number; platform: Platform | null }>;
}

export interface Storage {
  storedBytes: number;
  logicalBytes: number;
  savedBytes: number;
  blobCount: number;
  manifestCount: number;
  repositoryCount: number;
  tagCount: number;
  perRepository: Array<{ name: string; totalBytes: number; uniqueBytes: number; sharedBytes: number }>;
  lastGc: { at: string; reclaimedBytes: number; blobsRemoved: number; manifestsRemoved: number; durationMs: number } | null;
  mirror: { cacheBytes: number; hits: number; misses: number; hitRatio: number } | null;
}

export interface SessionInfo {
  mode: 'none' | 'basic' | 'token';
  user: string | null;
  groups: string[];
  admin: boolean;
  csrfToken: string | null;
}

export interface GcReport {
  dryRun: boolean;
  reclaimedBytes: number;
  manifests: unknown[];
  tags: unknown[];
  blobs: { count: number; bytes: number };
}

/** An error answer of the registry: its status and OCI code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;

/** The session's CSRF token, sent with every change. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

interface Options {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

/** A request to Berth; resolves with the JSON answer (undefined for an empty one), rejects with ApiError. */
export async function request<T>(path: string, options: Options = {}): Promise<T> {
  const method = options.method ?? 'GET';
  // X-Requested-With: Berth then leaves out the Basic challenge that would open the browser's own password dialog.
  const headers: Record<string, string> = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-Berth-CSRF'] = csrfToken;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    ...(options.signal && { signal: options.signal }),
  });
  const text = await response.text();
  if (!response.ok) {
    let code = 'UNKNOWN';
    let message = `${response.status} ${response.statusText}`;
    try {
      const error = (JSON.parse(text) as { errors?: Array<{ code: string; message: string }> }).errors?.[0];
      if (error) ({ code, message } = error);
    } catch {
      // Not the registry's error body: the status says enough.
    }
    throw new ApiError(response.status, code, message);
  }
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

const enc = encodeURIComponent;
const query = (params: Record<string, string | number | boolean | null | undefined>) => {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${enc(String(v))}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
};

/** Repository names and references are URL-safe by their grammar; they go into paths as they are. */
export const api = {
  session: () => request<SessionInfo>('/_berth/api/session'),
  signIn: (username: string, password: string) => request<SessionInfo>('/_berth/api/session', { method: 'POST', body: { username, password } }),
  signOut: () => request<void>('/_berth/api/session', { method: 'DELETE' }),
  repositories: (q: string, last: string | null, n: number, signal?: AbortSignal) =>
    request<{ repositories: RepositorySummary[]; next: string | null }>(`/_berth/api/repositories${query({ q, n, last })}`, signal ? { signal } : {}),
  repository: (name: string) => request<Repository>(`/_berth/api/repositories/${name}`),
  tags: (name: string, last: string | null) => request<{ tags: Tag[]; next: string | null }>(`/_berth/api/repositories/${name}/tags${query({ n: 100, last })}`),
  manifests: (name: string, tagged: boolean | null, last: string | null) =>
    request<{ manifests: ManifestSummary[]; next: string | null }>(`/_berth/api/repositories/${name}/manifests${query({ tagged, n: 100, last })}`),
  manifest: (name: string, reference: string) => request<Manifest>(`/_berth/api/repositories/${name}/manifests/${reference}`),
  layer: (digest: string) => request<LayerUsage>(`/_berth/api/layers/${digest}`),
  storage: () => request<Storage>('/_berth/api/storage'),
  deleteManifest: (name: string, reference: string) => request<void>(`/v2/${name}/manifests/${reference}`, { method: 'DELETE' }),
  collect: (dryRun: boolean) => request<GcReport>(`/_berth/admin/gc${dryRun ? '?dryRun=true' : ''}`, { method: 'POST' }),
};
