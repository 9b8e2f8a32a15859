import type { ManifestPut } from '../db/index.js';
import { z } from 'zod';
import { tryParseDigest } from '../digest.js';
import { oci } from '../errors.js';
import type { ManifestKind } from '../db/images.js';
import { IMAGE_CONFIG_TYPES, MediaType, SUPPORTED_MANIFEST_TYPES } from './media-types.js';

const digestString = z.string().refine((value) => tryParseDigest(value) !== undefined, 'invalid digest');
const mediaTypeString = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/, 'invalid media type');
const annotations = z.record(z.string(), z.string()).optional();

const descriptor = z.object({
  mediaType: mediaTypeString,
  digest: digestString,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations,
  artifactType: mediaTypeString.optional(),
  platform: z
    .object({ architecture: z.string(), os: z.string() })
    .loose()
    .optional(),
}).loose();
export type Descriptor = z.infer<typeof descriptor>;

const imageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: mediaTypeString.optional(),
  config: descriptor,
  layers: z.array(descriptor),
  subject: descriptor.optional(),
  annotations,
}).loose();

const imageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: mediaTypeString.optional(),
  manifests: z.array(descriptor),
  subject: descriptor.optional(),
  annotations,
}).loose();

/** What the registry needs to know about a manifest to store and serve it. */
export interface ParsedManifest {
  mediaType: string;
  /**
   * `index` (OCI index, Docker manifest list), `image` (a manifest whose config is an image
   * config, without artifactType) or `artifact` (any other manifest).
   */
  kind: ManifestKind;
  /** The config and every layer (foreign ones too) of a manifest; null and [] for an index. */
  config: Descriptor | null;
  layers: Descriptor[];
  /** artifactType as the referrers API reports it: explicit, else the config's media type. */
  artifactType: string | null;
  subject: string | null;
  annotations: Record<string, string> | null;
  /** Config and layers that must be present in the repository. */
  blobs: Descriptor[];
  /** Child manifests (of an index) that must be present in the repository. */
  children: Descriptor[];
}

/**
 * Validates a manifest body against its media type. `contentType` is the request's
 * Content-Type; the body's own mediaType is used when it is absent and must agree
 * with it when both are given.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw oci('MANIFEST_INVALID', `manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw oci('MANIFEST_INVALID', 'manifest must be a JSON object');
  }
  const fields = json as { mediaType?: unknown; schemaVersion?: unknown };
  const declared = typeof fields.mediaType === 'string' ? fields.mediaType : undefined;
  const header = contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
  const mediaType = header && header !== 'application/json' && header !== 'application/octet-stream' ? header : declared;

  if (fields.schemaVersion === 1 || mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed) {
    throw oci('MANIFEST_INVALID', 'Docker image manifest schema 1 is not supported; push with schema 2 or OCI', {
      mediaType: mediaType ?? null,
    });
  }
  if (declared !== undefined && mediaType !== undefined && declared !== mediaType) {
    throw oci('MANIFEST_INVALID', `Content-Type ${mediaType} does not match the manifest's mediaType ${declared}`);
  }
  // OCI manifests may omit mediaType; their shape then tells which kind they are.
  const kind = mediaType ?? ('manifests' in (json as object) ? MediaType.ociIndex : MediaType.ociManifest);
  if (!SUPPORTED_MANIFEST_TYPES.includes(kind)) {
    throw oci('MANIFEST_INVALID', `unsupported manifest media type "${kind}"`, { supported: SUPPORTED_MANIFEST_TYPES });
  }

  if (kind === MediaType.ociIndex || kind === MediaType.dockerManifestList) {
    const index = check(imageIndex, json);
    return {
      mediaType: kind,
      kind: 'index',
      config: null,
      layers: [],
      artifactType: index.artifactType ?? null,
      subject: index.subject?.digest ?? null,
      annotations: index.annotations ?? null,
      blobs: [],
      children: index.manifests,
    };
  }
  const manifest = check(imageManifest, json);
  if (kind === MediaType.dockerManifest && (manifest.subject || manifest.artifactType)) {
    throw oci('MANIFEST_INVALID', 'subject and artifactType are OCI fields, not valid in a Docker manifest');
  }
  const image = manifest.artifactType === undefined && IMAGE_CONFIG_TYPES.includes(manifest.config.mediaType);
  return {
    mediaType: kind,
    kind: image ? 'image' : 'artifact',
    config: manifest.config,
    layers: manifest.layers,
    artifactType: manifest.artifactType ?? manifest.config.mediaType,
    subject: manifest.subject?.digest ?? null,
    annotations: manifest.annotations ?? null,
    // Foreign layers (with urls) live elsewhere and are not required here.
    blobs: [manifest.config, ...manifest.layers].filter((d) => !d.urls || d.urls.length === 0),
    children: [],
  };
}

/** The index row for a parsed manifest body. */
export function manifestRow(body: Buffer, digest: string, parsed: ParsedManifest): ManifestPut {
  return {
    digest,
    mediaType: parsed.mediaType,
    artifactType: parsed.artifactType,
    subject: parsed.subject,
    annotations: parsed.annotations && JSON.stringify(parsed.annotations),
    size: body.length,
    content: body,
    blobs: parsed.blobs.map((d) => d.digest),
    children: parsed.children.map((d) => d.digest),
  };
}

function check<T>(schema: z.ZodType<T>, json: unknown): T {
  const result = schema.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw oci('MANIFEST_INVALID', `manifest invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, issues);
  }
  return result.data;
}
