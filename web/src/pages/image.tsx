import { useState } from 'preact/hooks';
import { api, type HistoryEntry, type Layer, type Manifest } from '../api.js';
import { Bytes, Command, Confirm, Digest, ErrorNotice, Heading, Loading, Time, useLoad, usePage } from '../components.js';
import { ago, formatBytes, platformName } from '../format.js';
import { navigate, paths } from '../router.js';
import { LayerStack } from './layer-stack.js';

const json = (value: unknown) => JSON.stringify(value);

const VERIFICATION: Record<NonNullable<Manifest['verification']>, string> = {
  verified: 'verified against the config',
  mismatch: 'do not match the config',
  unverifiable: 'could not be verified',
  invalid: 'config invalid',
  unchecked: 'not checked',
};

function ConfigSection({ manifest }: { manifest: Manifest }) {
  const config = manifest.config!;
  const labels = Object.entries(config.labels ?? {});
  const rows: Array<[string, preact.ComponentChildren]> = [
    ['Created', config.created ? <Time iso={config.created} /> : null],
    ['Author', config.author],
    ['Platform', platformName(config)],
    ['Entrypoint', config.entrypoint && <code>{json(config.entrypoint)}</code>],
    ['Command', config.cmd && <code>{json(config.cmd)}</code>],
    ['Working directory', config.workingDir && <code>{config.workingDir}</code>],
    ['User', config.user && <code>{config.user}</code>],
    ['Exposed ports', config.exposedPorts && config.exposedPorts.length > 0 ? config.exposedPorts.join(', ') : null],
  ];
  return (
    <section aria-labelledby="config-heading">
      <h2 id="config-heading">Configuration</h2>
      <dl class="config">
        {rows
          .filter(([, value]) => value !== null && value !== undefined && value !== '')
          .map(([term, value]) => (
            <div key={term}>
              <dt>{term}</dt>
              <dd>{value}</dd>
            </div>
          ))}
      </dl>
      <h3>Environment</h3>
      {config.env && config.env.length > 0 ? (
        <ul class="plain code-list" id="env">
          {config.env.map((line) => (
            <li key={line}>
              <code>{line}</code>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">None.</p>
      )}
      <h3>Labels</h3>
      {labels.length > 0 ? (
        <div class="table-wrap">
          <table id="labels">
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {labels.map(([key, value]) => (
                <tr key={key}>
                  <td>
                    <code>{key}</code>
                  </td>
                  <td class="wrap">{value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">None.</p>
      )}
    </section>
  );
}

function LayersSection({ layers }: { layers: Layer[] }) {
  const total = layers.reduce((sum, l) => sum + l.size, 0);
  return (
    <div class="table-wrap">
      <table class="cards" id="layers">
        <caption class="visually-hidden">Layers, bottom first</caption>
        <thead>
          <tr>
            <th scope="col" class="num">
              #
            </th>
            <th scope="col">Digest</th>
            <th scope="col" class="num">
              Compressed
            </th>
            <th scope="col" class="num">
              Uncompressed
            </th>
            <th scope="col">Media type</th>
            <th scope="col">Shared with</th>
          </tr>
        </thead>
        <tbody>
          {layers.map((layer) => (
            <tr key={`${layer.index}`} data-index={layer.index}>
              <td data-label="#" class="num">
                {layer.index}
              </td>
              <td data-label="Digest">
                <a href={paths.layer(layer.digest)}>
                  <Digest value={layer.digest} />
                </a>
              </td>
              <td data-label="Compressed" class="num compressed">
                <Bytes value={layer.size} />
              </td>
              <td data-label="Uncompressed" class="num uncompressed">
                <Bytes value={layer.uncompressedSize} />
              </td>
              <td data-label="Media type" class="wrap">
                <code>{layer.mediaType}</code>
              </td>
              <td data-label="Shared with" class="shared">
                {layer.sharedWith.images === 0 ? (
                  <span class="muted">no other image</span>
                ) : (
                  <a href={paths.layer(layer.digest)}>
                    {layer.sharedWith.images} {layer.sharedWith.images === 1 ? 'image' : 'images'}
                    {layer.sharedWith.repositories > 0 &&
                      ` in ${layer.sharedWith.repositories} other ${layer.sharedWith.repositories === 1 ? 'repository' : 'repositories'}`}
                  </a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={2}>
              Total ({layers.length} {layers.length === 1 ? 'layer' : 'layers'})
            </th>
            <td class="num">
              <Bytes value={total} />
            </td>
            <td colSpan={3} />
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

/** The history as `docker history` prints it: newest first, the size of each step's layer (0 B for steps without one). */
function HistorySection({ history, layers }: { history: HistoryEntry[]; layers: Layer[] }) {
  const newestFirst = [...history].reverse();
  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      {newestFirst.length === 0 ? (
        <p class="muted">The image configuration records no history.</p>
      ) : (
        <div class="table-wrap">
          <table class="cards" id="history">
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Created by</th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Comment</th>
              </tr>
            </thead>
            <tbody>
              {newestFirst.map((entry, i) => {
                const layer = entry.layerIndex === null ? undefined : layers[entry.layerIndex];
                const size = entry.emptyLayer || !layer ? 0 : (layer.uncompressedSize ?? layer.size);
                return (
                  <tr key={i}>
                    <td data-label="Created">{entry.created ? <time dateTime={entry.created}>{ago(entry.created)}</time> : <span class="muted">—</span>}</td>
                    <td data-label="Created by" class="wrap created-by">
                      <code>{entry.createdBy ?? ''}</code>
                    </td>
                    <td data-label="Size" class="num">
                      {formatBytes(size)}
                    </td>
                    <td data-label="Comment" class="wrap">
                      {entry.comment ?? ''}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function PlatformsSection({ manifest }: { manifest: Manifest }) {
  return (
    <section aria-labelledby="platforms-heading">
      <h2 id="platforms-heading">Platforms</h2>
      <div class="table-wrap">
        <table class="cards" id="platforms">
          <thead>
            <tr>
              <th scope="col">Platform</th>
              <th scope="col">Digest</th>
              <th scope="col" class="num">
                Size
              </th>
            </tr>
          </thead>
          <tbody>
            {(manifest.platforms ?? []).map((p) => (
              <tr key={p.digest}>
                <td data-label="Platform">{platformName(p) || 'unknown'}</td>
                <td data-label="Digest">
                  <a href={paths.image(manifest.repository, p.digest)}>
                    <Digest value={p.digest} />
                  </a>
                </td>
                <td data-label="Size" class="num">
                  <Bytes value={p.sizeBytes} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function ReferrersSection({ manifest }: { manifest: Manifest }) {
  return (
    <section aria-labelledby="referrers-heading" id="referrers">
      <h2 id="referrers-heading">Referrers</h2>
      {manifest.referrers.length === 0 ? (
        <p class="muted">No signatures, SBOMs or other artifacts refer to this manifest.</p>
      ) : (
        <div class="table-wrap">
          <table class="cards" id="referrers-table">
            <thead>
              <tr>
                <th scope="col">Artifact type</th>
                <th scope="col">Digest</th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Annotations</th>
              </tr>
            </thead>
            <tbody>
              {manifest.referrers.map((r) => (
                <tr key={r.digest}>
                  <td data-label="Artifact type" class="wrap">
                    <code>{r.artifactType ?? r.mediaType}</code>
                  </td>
                  <td data-label="Digest">
                    <a href={paths.image(manifest.repository, r.digest)}>
                      <Digest value={r.digest} />
                    </a>
                  </td>
                  <td data-label="Size" class="num">
                    <Bytes value={r.size} />
                  </td>
                  <td data-label="Annotations" class="wrap">
                    {Object.entries(r.annotations ?? {})
                      .map(([k, v]) => `${k}=${v}`)
                      .join(', ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/**
 * An image (or index, or artifact) by tag or digest: what it is, how to pull it, its
 * configuration, layers and history as docker shows them, the stack of its layers with
 * those other images share, its platforms (an index) and its referrers.
 */
export function ImagePage({ name, reference }: { name: string; reference: string }) {
  const byDigest = reference.includes(':');
  const title = `${name}${byDigest ? '@' : ':'}${reference}`;
  usePage(title);
  const manifest = useLoad(() => api.manifest(name, reference), title);
  const repository = useLoad(() => api.repository(name), name);
  const [confirming, setConfirming] = useState(false);
  const host = location.host;

  const m = manifest.data;
  return (
    <>
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href="/">Repositories</a> / <a href={paths.repository(name)}>{name}</a>
      </nav>
      <Heading>
        {name}
        <span class="reference">{byDigest ? `@${reference.slice(0, 19)}…` : `:${reference}`}</span>
      </Heading>
      {manifest.error ? (
        <ErrorNotice error={manifest.error} what={title} />
      ) : !m ? (
        <Loading what="the image" />
      ) : (
        <>
          <dl class="facts">
            <div>
              <dt>Kind</dt>
              <dd>{m.kind === 'index' ? 'multi-platform index' : m.kind === 'artifact' ? (m.artifactType ?? 'artifact') : 'image'}</dd>
            </div>
            <div>
              <dt>Digest</dt>
              <dd>
                <Digest value={m.digest} />
              </dd>
            </div>
            <div>
              <dt>Size</dt>
              <dd>
                <Bytes value={m.sizeBytes} />
              </dd>
            </div>
            <div>
              <dt>Pushed</dt>
              <dd>
                <Time iso={m.pushedAt} />
              </dd>
            </div>
            <div>
              <dt>Tags</dt>
              <dd>
                {m.tags.length === 0 ? (
                  <span class="muted">untagged</span>
                ) : (
                  m.tags.map((t, i) => (
                    <>
                      {i > 0 && ', '}
                      <a href={paths.image(name, t)}>{t}</a>
                    </>
                  ))
                )}
              </dd>
            </div>
            {m.verification && (
              <div>
                <dt>Layers</dt>
                <dd id="verification" title="how the layers compared with the diff_ids in the image configuration">
                  {VERIFICATION[m.verification]}
                </dd>
              </div>
            )}
            {m.subject && (
              <div>
                <dt>Refers to</dt>
                <dd>
                  <a href={paths.image(name, m.subject)}>
                    <Digest value={m.subject} />
                  </a>
                </dd>
              </div>
            )}
          </dl>
          <section aria-labelledby="pull-heading">
            <h2 id="pull-heading">Pull</h2>
            {!byDigest && <Command text={`docker pull ${host}/${name}:${reference}`} />}
            <Command text={`docker pull ${host}/${name}@${m.digest}`} />
            {repository.data?.actions.delete && (
              <p>
                <button type="button" class="danger" onClick={() => setConfirming(true)}>
                  Delete manifest…
                </button>
              </p>
            )}
          </section>
          {m.kind === 'index' && <PlatformsSection manifest={m} />}
          {m.config && <ConfigSection manifest={m} />}
          {m.layers && m.layers.length > 0 && (
            <section aria-labelledby="layers-heading">
              <h2 id="layers-heading">Layers</h2>
              <LayerStack manifest={m} />
              <LayersSection layers={m.layers} />
            </section>
          )}
          {m.history && <HistorySection history={m.history} layers={m.layers ?? []} />}
          <ReferrersSection manifest={m} />
          {confirming && (
            <Confirm
              title="Delete this manifest?"
              action="Delete manifest"
              onClose={() => setConfirming(false)}
              onConfirm={async () => {
                await api.deleteManifest(name, m.digest);
                navigate(paths.repository(name));
              }}
            >
              <p>
                The manifest <code class="digest">{`${name}@${m.digest}`}</code> goes
                {m.tags.length > 0 ? `, with its tags ${m.tags.join(', ')}` : ''}. Clients can no longer pull it; its layers go with
                the next garbage collection unless other images use them.
              </p>
            </Confirm>
          )}
        </>
      )}
    </>
  );
}
