import type { LayerContents } from '../blobstore/layers.js';
import type { Descriptor } from './parse.js';

/** `verify.layers`: what a push must satisfy (see config/default.yaml). */
export type VerifyMode = 'strict' | 'enforce' | 'warn' | 'off';

/**
 * How an image's layers compared with its config: all match (`verified`), some do not or
 * are not valid layers (`mismatch`), some could not be checked (`unverifiable`: an empty
 * diff_ids list, a layer too large for its size to uncompress, another digest algorithm),
 * not checked at all (`unchecked`), or the config is not a valid image config (`invalid`).
 */
export type Verification = 'verified' | 'mismatch' | 'unverifiable' | 'unchecked' | 'invalid';

/** A layer that does not match the config: the detail of a refused push. */
export interface LayerMismatch {
  layer: number;
  digest: string;
  mediaType: string;
  /** The config's `rootfs.diff_ids[layer]`. */
  expected: string | null;
  /** The layer's uncompressed digest, or null when it is not a valid layer (`reason`). */
  computed: string | null;
  reason?: string;
}

export interface LayerCheck {
  result: Verification;
  /** One line saying what is wrong or unverifiable (absent when verified). */
  message?: string;
  mismatches: LayerMismatch[];
}

/** The compression a layer's media type promises: `…tar+gzip`, Docker's `…tar.gzip`, and zstd alike. */
export function promisedCompression(mediaType: string): 'gzip' | 'zstd' | undefined {
  if (/[+.]gzip$/.test(mediaType)) return 'gzip';
  if (/[+.]zstd$/.test(mediaType)) return 'zstd';
  return undefined;
}

/**
 * Compares each layer's uncompressed digest with the config's diff_id for it. A layer's
 * registry digest is that of its compressed bytes; its diff_id is that of the tar inside,
 * and clients check it after pulling (`docker pull` fails with "diff id mismatch"). The
 * uncompressed digest is computed as clients do, from the bytes (gzip and zstd are
 * recognised by their magic numbers, anything else is taken as it is); a layer whose
 * media type says gzip or zstd must also be that. Foreign layers absent from the
 * repository are skipped (`present`).
 */
export async function checkLayers(
  layers: readonly Descriptor[],
  diffIds: readonly string[],
  present: (digest: string) => boolean,
  contentsOf: (digest: string) => Promise<LayerContents | undefined>,
): Promise<LayerCheck> {
  if (layers.length === 0 && diffIds.length === 0) return { result: 'verified', mismatches: [] };
  if (diffIds.length === 0) {
    return { result: 'unverifiable', message: `the image config lists no diff_ids for its ${layers.length} layer(s)`, mismatches: [] };
  }
  if (diffIds.length !== layers.length) {
    return {
      result: 'mismatch',
      message: `the image config lists ${diffIds.length} diff_ids for ${layers.length} layer(s)`,
      mismatches: [],
    };
  }
  const contents = await Promise.all(
    layers.map((l) => (l.urls && l.urls.length > 0 && !present(l.digest) ? Promise.resolve(null) : contentsOf(l.digest))),
  );
  const mismatches: LayerMismatch[] = [];
  const unverifiable: string[] = [];
  layers.forEach((layer, i) => {
    const found = contents[i];
    if (found === null) return; // a foreign layer the registry does not hold
    const expected = diffIds[i]!;
    const base = { layer: i, digest: layer.digest, mediaType: layer.mediaType, expected };
    if (found === undefined) {
      unverifiable.push(`layer ${i} (${layer.digest}) is not in the store`);
      return;
    }
    const promised = promisedCompression(layer.mediaType);
    if (found.format === 'invalid') {
      mismatches.push({ ...base, computed: null, reason: found.error ?? 'not a valid layer' });
      return;
    }
    if (promised !== undefined && found.format !== promised) {
      const actual = found.format === 'none' ? 'not compressed' : `${found.format}-compressed`;
      mismatches.push({ ...base, computed: null, reason: `its media type says ${promised} but its bytes are ${actual}` });
      return;
    }
    const computed = found.format === 'none' ? layer.digest : found.digest;
    if (computed === undefined) {
      unverifiable.push(`layer ${i} (${layer.digest}): ${found.error ?? 'its uncompressed digest is unknown'}`);
      return;
    }
    if (computed.split(':')[0] !== expected.split(':')[0]) {
      unverifiable.push(`layer ${i} (${layer.digest}): diff_id ${expected} uses another digest algorithm`);
      return;
    }
    if (computed !== expected) mismatches.push({ ...base, computed });
  });
  if (mismatches.length > 0) return { result: 'mismatch', message: describe(mismatches), mismatches };
  if (unverifiable.length > 0) return { result: 'unverifiable', message: unverifiable.join('; '), mismatches };
  return { result: 'verified', mismatches };
}

function describe(mismatches: readonly LayerMismatch[]): string {
  const first = mismatches[0]!;
  const what = first.reason
    ? `is not a valid layer (${first.reason}); the config's rootfs.diff_ids[${first.layer}] is ${first.expected}`
    : `uncompresses to ${first.computed}, but the config's rootfs.diff_ids[${first.layer}] is ${first.expected}`;
  const more = mismatches.length > 1 ? ` (and ${mismatches.length - 1} more layer(s))` : '';
  return `layer ${first.layer} (${first.digest}) ${what}${more}`;
}
