/**
 * The OCI distribution error codes, each with its HTTP status. Errors are values
 * (RegistryError) until the one error handler renders `{"errors":[…]}`.
 */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a blob unknown to the repository' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Not in the OCI table: CNCF Distribution's code for a page size `n` that is not a number.
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  // Not in the OCI table; CNCF Distribution uses it when a mirrored upstream cannot be reached.
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  // Berth's own: the file system under storage.root is full. Clients show an error code
  // they do not know with its message (docker: `unknown: …`), as they do Distribution's.
  STORAGE_FULL: { status: 507, message: "the registry's storage is full" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class RegistryError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly detail?: unknown,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message ?? ERROR_CODES[code].message);
    this.status = options.status ?? ERROR_CODES[code].status;
    this.headers = options.headers ?? {};
  }

  toJSON() {
    return { errors: [{ code: this.code, message: this.message, detail: this.detail ?? null }] };
  }
}

/** Shorthand used across services: `throw oci('BLOB_UNKNOWN', …)`. */
export function oci(
  code: ErrorCode,
  message?: string,
  detail?: unknown,
  options?: { status?: number; headers?: Record<string, string> },
): RegistryError {
  return new RegistryError(code, message, detail, options);
}
