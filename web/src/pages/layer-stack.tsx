import { api, type LayerUsage, type Manifest } from '../api.js';
import { useLoad } from '../components.js';
import { formatBytes, shortDigest } from '../format.js';
import { paths } from '../router.js';

const ROW = 30;
const GAP = 4;
const WIDTH = 640;
/** Blocks span this much of the picture at most; the rest holds their labels. */
const BLOCK = 300;
const MIN_BLOCK = 24;
/** Room on the left for the bracket marking the shared base. */
const LEFT = 20;

/** The bottom layers every one of which some other image uses too: a shared base. */
function sharedBase(manifest: Manifest): number {
  const layers = manifest.layers ?? [];
  let count = 0;
  while (count < layers.length && layers[count]!.sharedWith.images > 0) count++;
  return count;
}

/** Other images holding the base's top layer at the same position: they have the same base (a layer names its whole stack below). */
function baseImages(usage: LayerUsage | undefined, manifest: Manifest, top: number) {
  return (usage?.images ?? [])
    .filter((image) => image.index === top && !(image.repository === manifest.repository && image.digest === manifest.digest))
    .sort((a, b) => a.repository.localeCompare(b.repository) || a.digest.localeCompare(b.digest));
}

/**
 * The image's layers as a stack, bottom layer at the bottom, each block as wide as its
 * compressed size allows (on a logarithmic scale, so small layers stay visible). Layers
 * other images use too are drawn in the accent colour with the number of those images;
 * a bracket marks the shared base (the bottom layers shared with other images) and the
 * images it is shared with are listed beside it.
 */
export function LayerStack({ manifest }: { manifest: Manifest }) {
  const layers = manifest.layers ?? [];
  const base = sharedBase(manifest);
  const top = layers[base - 1];
  const usage = useLoad(() => (top ? api.layer(top.digest) : Promise.resolve(undefined)), `${manifest.digest} ${top?.digest ?? ''}`);
  const others = baseImages(usage.data, manifest, base - 1);

  const largest = Math.max(...layers.map((l) => l.size), 1);
  const width = (size: number) => MIN_BLOCK + (BLOCK - MIN_BLOCK) * (Math.log10(size + 1) / Math.log10(largest + 1));
  const height = layers.length * (ROW + GAP);
  const y = (index: number) => height - (index + 1) * (ROW + GAP);
  const sharedCount = layers.filter((l) => l.sharedWith.images > 0).length;
  const summary =
    `${layers.length} ${layers.length === 1 ? 'layer' : 'layers'}, ${sharedCount} shared with other images` +
    (base > 0 ? `; the bottom ${base === 1 ? 'layer is a base' : `${base} layers are a base`} other images share` : '');

  return (
    <figure class="stack">
      <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={summary} preserveAspectRatio="xMinYMin meet">
        {layers.map((layer) => {
          const shared = layer.sharedWith.images > 0;
          const w = width(layer.size);
          return (
            <g key={layer.index} class={shared ? 'layer shared' : 'layer'}>
              <rect x={LEFT} y={y(layer.index)} width={w} height={ROW} rx={4} />
              <text x={LEFT + 8} y={y(layer.index) + ROW / 2 + 5} class="inside">
                {layer.index}
              </text>
              <text x={LEFT + w + 10} y={y(layer.index) + ROW / 2 + 5}>
                {formatBytes(layer.size)} · {shortDigest(layer.digest).slice(7)}
                {shared ? ` · shared with ${layer.sharedWith.images} ${layer.sharedWith.images === 1 ? 'image' : 'images'}` : ''}
              </text>
            </g>
          );
        })}
        {base > 0 && (
          <path
            class="bracket"
            d={`M ${LEFT - 6} ${y(base - 1)} h -8 V ${height - GAP} h 8`}
            fill="none"
          />
        )}
      </svg>
      <figcaption>
        <span class="legend shared">shared with other images</span> <span class="legend">only in this image</span>
        {base > 0 && (
          <p>
            Base: the bottom {base === 1 ? 'layer is' : `${base} layers are`} also the bottom of{' '}
            {others.length === 0 ? (
              usage.loading ? (
                'other images'
              ) : (
                'other images (in repositories you may not see, or at other positions)'
              )
            ) : (
              <>
                {others.slice(0, 8).map((image, i) => (
                  <>
                    {i > 0 && ', '}
                    <a href={paths.image(image.repository, image.tags[0] ?? image.digest)}>
                      {image.repository}
                      {image.tags[0] ? `:${image.tags[0]}` : `@${shortDigest(image.digest)}`}
                    </a>
                  </>
                ))}
                {others.length > 8 && (
                  <>
                    {' '}
                    and <a href={paths.layer(top!.digest)}>{others.length - 8} more</a>
                  </>
                )}
              </>
            )}
            .
          </p>
        )}
      </figcaption>
    </figure>
  );
}
