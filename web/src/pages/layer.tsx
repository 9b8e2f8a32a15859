import { api } from '../api.js';
import { Bytes, Digest, ErrorNotice, Heading, Loading, useLoad, usePage } from '../components.js';
import { platformName, shortDigest } from '../format.js';
import { paths } from '../router.js';

/** A layer and every image (that the caller may see) using it, with its position in each. */
export function LayerPage({ digest }: { digest: string }) {
  usePage(`Layer ${shortDigest(digest)}`);
  const layer = useLoad(() => api.layer(digest), digest);
  const l = layer.data;
  return (
    <>
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href="/">Repositories</a>
      </nav>
      <Heading>
        Layer <span class="reference">{shortDigest(digest)}</span>
      </Heading>
      {layer.error ? (
        <ErrorNotice error={layer.error} what={`layer ${shortDigest(digest)}`} />
      ) : !l ? (
        <Loading what="the layer" />
      ) : (
        <>
          <dl class="facts">
            <div>
              <dt>Compressed</dt>
              <dd>
                <Bytes value={l.size} />
              </dd>
            </div>
            <div>
              <dt>Uncompressed</dt>
              <dd>
                <Bytes value={l.uncompressedSize} />
              </dd>
            </div>
            <div>
              <dt>Media type</dt>
              <dd>
                <code>{l.mediaType}</code>
              </dd>
            </div>
            <div>
              <dt>Digest</dt>
              <dd>
                <code class="digest wrap">{l.digest}</code>
              </dd>
            </div>
            {l.diffId && (
              <div>
                <dt>Diff ID</dt>
                <dd>
                  <code class="digest wrap">{l.diffId}</code>
                </dd>
              </div>
            )}
          </dl>
          <section aria-labelledby="images-heading">
            <h2 id="images-heading">
              Used by {l.images.length} {l.images.length === 1 ? 'image' : 'images'}
            </h2>
            <div class="table-wrap">
              <table class="cards" id="layer-images">
                <thead>
                  <tr>
                    <th scope="col">Image</th>
                    <th scope="col">Digest</th>
                    <th scope="col">Platform</th>
                    <th scope="col" class="num">
                      Layer #
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {l.images.map((image) => (
                    <tr key={`${image.repository}@${image.digest}`}>
                      <td data-label="Image">
                        <a href={paths.image(image.repository, image.tags[0] ?? image.digest)}>
                          {image.repository}
                          {image.tags.length > 0 ? `:${image.tags.join(', ')}` : ''}
                        </a>
                      </td>
                      <td data-label="Digest">
                        <a href={paths.image(image.repository, image.digest)}>
                          <Digest value={image.digest} />
                        </a>
                      </td>
                      <td data-label="Platform">{image.platform ? platformName(image.platform) : <span class="muted">—</span>}</td>
                      <td data-label="Layer #" class="num">
                        {image.index}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        </>
      )}
    </>
  );
}
