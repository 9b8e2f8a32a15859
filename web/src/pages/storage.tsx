import { useState } from 'preact/hooks';
import { api, ApiError, type GcReport, type Storage } from '../api.js';
import { Bytes, ErrorNotice, Heading, Loading, Time, useApp, useLoad, usePage } from '../components.js';
import { formatBytes, percent } from '../format.js';
import { paths } from '../router.js';

const CHART_ROWS = 20;
const TABLE_ROWS = 100;

/** Unique and shared bytes of the largest repositories as stacked horizontal bars. */
function SharingChart({ repositories }: { repositories: Storage['perRepository'] }) {
  const rows = repositories.slice(0, CHART_ROWS);
  const largest = Math.max(...rows.map((r) => r.totalBytes), 1);
  const ROW = 26;
  const LABEL = 190;
  const BAR = 330;
  const height = rows.length * ROW;
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${LABEL + BAR + 110} ${height}`}
        role="img"
        aria-label={`Unique and shared bytes of the ${rows.length} largest repositories; the table below lists the numbers`}
      >
        {rows.map((r, i) => {
          const unique = (BAR * r.uniqueBytes) / largest;
          const shared = (BAR * r.sharedBytes) / largest;
          const y = i * ROW;
          return (
            <g key={r.name}>
              <text x={LABEL - 8} y={y + 17} text-anchor="end" class="label">
                {r.name.length > 26 ? `…${r.name.slice(-25)}` : r.name}
              </text>
              <rect x={LABEL} y={y + 4} width={Math.max(unique, r.uniqueBytes > 0 ? 1 : 0)} height={ROW - 8} class="unique" />
              <rect x={LABEL + unique} y={y + 4} width={Math.max(shared, r.sharedBytes > 0 ? 1 : 0)} height={ROW - 8} class="shared" />
              <text x={LABEL + unique + shared + 6} y={y + 17} class="value">
                {formatBytes(r.totalBytes)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        <span class="legend unique">unique to the repository</span> <span class="legend shared">shared with other repositories</span>
      </figcaption>
    </figure>
  );
}

function GcControls({ onDone }: { onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<GcReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (dryRun: boolean) => {
    setBusy(true);
    setError(null);
    try {
      setReport(await api.collect(dryRun));
      if (!dryRun) onDone();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.message} (${err.code}, HTTP ${err.status})` : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="gc">
      <div class="buttons">
        <button type="button" onClick={() => run(true)} disabled={busy}>
          Preview collection
        </button>
        <button type="button" class="primary" onClick={() => run(false)} disabled={busy}>
          {busy ? 'Collecting…' : 'Collect garbage now'}
        </button>
      </div>
      <p role="status" aria-live="polite">
        {report &&
          `${report.dryRun ? 'A collection would free' : 'The collection freed'} ${formatBytes(report.reclaimedBytes)}: ` +
            `${report.manifests.length} manifest(s), ${report.tags.length} tag(s), ${report.blobs.count} blob(s).`}
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * What the registry stores: bytes on disk, bytes saved because images share blobs, each
 * repository's unique and shared bytes, the last collection, and the mirror cache.
 * Administrators start a collection here.
 */
export function StoragePage() {
  usePage('Storage');
  const { session } = useApp();
  const storage = useLoad(() => api.storage(), 'storage');
  const [showAll, setShowAll] = useState(false);
  const s = storage.data;
  const repositories = s ? [...s.perRepository].sort((a, b) => b.totalBytes - a.totalBytes || a.name.localeCompare(b.name)) : [];
  const listed = showAll ? repositories : repositories.slice(0, TABLE_ROWS);

  return (
    <>
      <Heading>Storage</Heading>
      {storage.error ? (
        <ErrorNotice error={storage.error} what="storage figures" />
      ) : !s ? (
        <Loading what="storage figures" />
      ) : (
        <>
          <dl class="facts big" id="totals">
            <div>
              <dt>Stored</dt>
              <dd>
                <Bytes value={s.storedBytes} />
              </dd>
            </div>
            <div>
              <dt>Saved by sharing</dt>
              <dd>
                <Bytes value={s.savedBytes} /> <span class="muted">({percent(s.savedBytes, s.logicalBytes)})</span>
              </dd>
            </div>
            <div>
              <dt>Without sharing</dt>
              <dd>
                <Bytes value={s.logicalBytes} />
              </dd>
            </div>
            <div>
              <dt>Repositories</dt>
              <dd>{s.repositoryCount.toLocaleString('en')}</dd>
            </div>
            <div>
              <dt>Tags</dt>
              <dd>{s.tagCount.toLocaleString('en')}</dd>
            </div>
            <div>
              <dt>Manifests</dt>
              <dd>{s.manifestCount.toLocaleString('en')}</dd>
            </div>
            <div>
              <dt>Blobs</dt>
              <dd>{s.blobCount.toLocaleString('en')}</dd>
            </div>
          </dl>

          <section aria-labelledby="gc-heading">
            <h2 id="gc-heading">Garbage collection</h2>
            {s.lastGc ? (
              <p id="last-gc">
                Last run <Time iso={s.lastGc.at} />: freed <Bytes value={s.lastGc.reclaimedBytes} /> ({s.lastGc.blobsRemoved} blob(s),{' '}
                {s.lastGc.manifestsRemoved} manifest(s)) in {s.lastGc.durationMs} ms.
              </p>
            ) : (
              <p id="last-gc" class="muted">
                No collection has run since the server started.
              </p>
            )}
            {session?.admin && <GcControls onDone={storage.reload} />}
          </section>

          {s.mirror && (
            <section aria-labelledby="mirror-heading">
              <h2 id="mirror-heading">Mirror cache</h2>
              <dl class="facts">
                <div>
                  <dt>Cached</dt>
                  <dd>
                    <Bytes value={s.mirror.cacheBytes} />
                  </dd>
                </div>
                <div>
                  <dt>Hit ratio</dt>
                  <dd>{(100 * s.mirror.hitRatio).toFixed(1)}%</dd>
                </div>
                <div>
                  <dt>Hits / misses</dt>
                  <dd>
                    {s.mirror.hits.toLocaleString('en')} / {s.mirror.misses.toLocaleString('en')}
                  </dd>
                </div>
              </dl>
            </section>
          )}

          <section aria-labelledby="per-repo-heading">
            <h2 id="per-repo-heading">Per repository</h2>
            {repositories.length === 0 ? (
              <p class="muted">No repositories.</p>
            ) : (
              <>
                <SharingChart repositories={repositories} />
                <div class="table-wrap">
                  <table class="cards" id="per-repository">
                    <thead>
                      <tr>
                        <th scope="col">Repository</th>
                        <th scope="col" class="num">
                          Total
                        </th>
                        <th scope="col" class="num">
                          Unique
                        </th>
                        <th scope="col" class="num">
                          Shared
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {listed.map((r) => (
                        <tr key={r.name}>
                          <td data-label="Repository">
                            <a href={paths.repository(r.name)}>{r.name}</a>
                          </td>
                          <td data-label="Total" class="num">
                            <Bytes value={r.totalBytes} />
                          </td>
                          <td data-label="Unique" class="num">
                            <Bytes value={r.uniqueBytes} />
                          </td>
                          <td data-label="Shared" class="num">
                            <Bytes value={r.sharedBytes} />
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                {!showAll && repositories.length > TABLE_ROWS && (
                  <p>
                    <button type="button" onClick={() => setShowAll(true)}>
                      Show all {repositories.length.toLocaleString('en')} repositories
                    </button>
                  </p>
                )}
              </>
            )}
          </section>
        </>
      )}
    </>
  );
}
