import { useState } from 'preact/hooks';
import { api, type ManifestSummary, type Tag } from '../api.js';
import { Bytes, Command, Confirm, CopyButton, Digest, ErrorNotice, Heading, Loading, More, Platforms, Time, useLoad, usePage } from '../components.js';
import { shortDigest } from '../format.js';
import { navigate, paths } from '../router.js';

/** A paginated list: the items loaded so far and the cursor of the rest. */
function usePages<T>(load: (last: string | null) => Promise<{ items: T[]; next: string | null }>, key: string) {
  const first = useLoad(() => load(null), key);
  const [more, setMore] = useState<{ key: string; items: T[]; next: string | null } | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const extra = more?.key === key ? more : null;
  const items = [...(first.data?.items ?? []), ...(extra?.items ?? [])];
  const next = extra ? extra.next : (first.data?.next ?? null);
  const loadMore = async () => {
    if (!next) return;
    setLoadingMore(true);
    try {
      const page = await load(next);
      setMore({ key, items: [...(extra?.items ?? []), ...page.items], next: page.next });
    } finally {
      setLoadingMore(false);
    }
  };
  const reload = () => {
    setMore(null);
    first.reload();
  };
  return { ...first, items, next, loadMore, loadingMore, reload };
}

type Deletion = { kind: 'tag'; tag: Tag; otherTags: string[] } | { kind: 'manifest'; manifest: ManifestSummary };

/**
 * A repository: its tags (digest, platforms, size, push time, pull commands), the
 * referrers of each tagged image, and its untagged manifests. Users who may delete in it
 * get delete buttons for tags and manifests.
 */
export function RepositoryPage({ name }: { name: string }) {
  usePage(name);
  const repository = useLoad(() => api.repository(name), name);
  const tags = usePages(async (last) => {
    const page = await api.tags(name, last);
    return { items: page.tags, next: page.next };
  }, `${name} tags`);
  const tagged = usePages(async (last) => {
    const page = await api.manifests(name, true, last);
    return { items: page.manifests, next: page.next };
  }, `${name} tagged`);
  const untagged = usePages(async (last) => {
    const page = await api.manifests(name, false, last);
    return { items: page.manifests, next: page.next };
  }, `${name} untagged`);
  const [deletion, setDeletion] = useState<Deletion | null>(null);

  if (repository.error) {
    return (
      <>
        <Heading>{name}</Heading>
        <ErrorNotice error={repository.error} what={`repository ${name}`} />
      </>
    );
  }
  const repo = repository.data;
  const mayDelete = repo?.actions.delete ?? false;
  const host = location.host;
  const referrers = new Map(tagged.items.map((m) => [m.digest, m]));
  const tagsOf = (digest: string) => tags.items.filter((t) => t.digest === digest).map((t) => t.name);
  const refresh = () => {
    repository.reload();
    tags.reload();
    tagged.reload();
    untagged.reload();
  };

  return (
    <>
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href="/">Repositories</a>
      </nav>
      <Heading>{name}</Heading>
      {!repo ? (
        <Loading what="the repository" />
      ) : (
        <>
          {repo.description && <p class="lead">{repo.description}</p>}
          <dl class="facts">
            <div>
              <dt>Tags</dt>
              <dd>{repo.tagCount}</dd>
            </div>
            <div>
              <dt>Manifests</dt>
              <dd>{repo.manifestCount}</dd>
            </div>
            <div>
              <dt>Size</dt>
              <dd>
                <Bytes value={repo.sizeBytes} />
              </dd>
            </div>
            <div>
              <dt>Last push</dt>
              <dd>
                <Time iso={repo.lastPushedAt} />
              </dd>
            </div>
          </dl>
        </>
      )}

      <section aria-labelledby="tags-heading">
        <h2 id="tags-heading">Tags</h2>
        {tags.error ? (
          <ErrorNotice error={tags.error} what="the tags" />
        ) : tags.loading && tags.items.length === 0 ? (
          <Loading what="tags" />
        ) : tags.items.length === 0 ? (
          <p class="muted">No tags.</p>
        ) : (
          <div class="table-wrap">
            <table class="cards" id="tags">
              <thead>
                <tr>
                  <th scope="col">Tag</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Platforms</th>
                  <th scope="col" class="num">
                    Size
                  </th>
                  <th scope="col">Pushed</th>
                  <th scope="col">Referrers</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tags.items.map((tag) => {
                  const count = referrers.get(tag.digest)?.referrerCount ?? 0;
                  return (
                    <tr key={tag.name} data-tag={tag.name}>
                      <td data-label="Tag">
                        <a href={paths.image(name, tag.name)}>{tag.name}</a>
                      </td>
                      <td data-label="Digest">
                        <a href={paths.image(name, tag.digest)}>
                          <Digest value={tag.digest} />
                        </a>
                      </td>
                      <td data-label="Platforms">
                        {tag.kind === 'artifact' ? <span class="muted">artifact</span> : <Platforms platforms={tag.platforms} />}
                      </td>
                      <td data-label="Size" class="num">
                        <Bytes value={tag.sizeBytes} />
                      </td>
                      <td data-label="Pushed">
                        <Time iso={tag.pushedAt} />
                      </td>
                      <td data-label="Referrers">
                        {count > 0 ? <a href={`${paths.image(name, tag.digest)}#referrers`}>{count}</a> : <span class="muted">0</span>}
                      </td>
                      <td data-label="Actions" class="actions">
                        <CopyButton text={`docker pull ${host}/${name}:${tag.name}`} label="Copy pull" />
                        <CopyButton text={`docker pull ${host}/${name}@${tag.digest}`} label="Copy @digest" />
                        {mayDelete && (
                          <button
                            type="button"
                            class="small danger"
                            aria-label={`Delete tag ${tag.name}`}
                            onClick={() => setDeletion({ kind: 'tag', tag, otherTags: tagsOf(tag.digest).filter((t) => t !== tag.name) })}
                          >
                            Delete
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        <More next={tags.next} onMore={tags.loadMore} loading={tags.loadingMore} />
      </section>

      <section aria-labelledby="untagged-heading">
        <h2 id="untagged-heading">Untagged manifests</h2>
        {untagged.error ? (
          <ErrorNotice error={untagged.error} what="the untagged manifests" />
        ) : untagged.loading && untagged.items.length === 0 ? (
          <Loading what="untagged manifests" />
        ) : untagged.items.length === 0 ? (
          <p class="muted">None: every manifest has a tag.</p>
        ) : (
          <div class="table-wrap">
            <table class="cards" id="untagged">
              <thead>
                <tr>
                  <th scope="col">Digest</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Platforms</th>
                  <th scope="col" class="num">
                    Size
                  </th>
                  <th scope="col">Pushed</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {untagged.items.map((m) => (
                  <tr key={m.digest}>
                    <td data-label="Digest">
                      <a href={paths.image(name, m.digest)}>
                        <Digest value={m.digest} />
                      </a>
                    </td>
                    <td data-label="Kind">
                      {m.subject ? (
                        <>
                          {m.artifactType ?? m.kind} for <Digest value={m.subject} />
                        </>
                      ) : (
                        m.kind
                      )}
                    </td>
                    <td data-label="Platforms">
                      <Platforms platforms={m.platforms} />
                    </td>
                    <td data-label="Size" class="num">
                      <Bytes value={m.sizeBytes} />
                    </td>
                    <td data-label="Pushed">
                      <Time iso={m.pushedAt} />
                    </td>
                    <td data-label="Actions" class="actions">
                      <CopyButton text={`docker pull ${host}/${name}@${m.digest}`} label="Copy pull" />
                      {mayDelete && (
                        <button
                          type="button"
                          class="small danger"
                          aria-label={`Delete manifest ${shortDigest(m.digest)}`}
                          onClick={() => setDeletion({ kind: 'manifest', manifest: m })}
                        >
                          Delete
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <More next={untagged.next} onMore={untagged.loadMore} loading={untagged.loadingMore} />
      </section>

      {repo && (
        <section aria-labelledby="pull-heading">
          <h2 id="pull-heading">Pull</h2>
          <Command text={`docker pull ${host}/${name}${tags.items[0] ? `:${tags.items[0].name}` : ''}`} />
        </section>
      )}

      {deletion?.kind === 'tag' && (
        <Confirm
          title={`Delete tag ${deletion.tag.name}?`}
          action="Delete tag"
          onClose={() => setDeletion(null)}
          onConfirm={async () => {
            await api.deleteManifest(name, deletion.tag.name);
            refresh();
          }}
        >
          <p>
            The tag <strong>{`${name}:${deletion.tag.name}`}</strong> goes. The image it points at,{' '}
            <Digest value={deletion.tag.digest} />, stays
            {deletion.otherTags.length > 0 ? ` (tagged ${deletion.otherTags.join(', ')})` : ', pullable by digest until it is deleted'}.
          </p>
        </Confirm>
      )}
      {deletion?.kind === 'manifest' && (
        <Confirm
          title="Delete this manifest?"
          action="Delete manifest"
          onClose={() => setDeletion(null)}
          onConfirm={async () => {
            await api.deleteManifest(name, deletion.manifest.digest);
            if (repo && repo.manifestCount <= 1) navigate('/');
            else refresh();
          }}
        >
          <p>
            The manifest <code class="digest">{`${name}@${deletion.manifest.digest}`}</code> goes
            {deletion.manifest.tags.length > 0 ? `, with its tags ${deletion.manifest.tags.join(', ')}` : ''}. Clients can no
            longer pull it; its layers go with the next garbage collection unless other images use them.
          </p>
        </Confirm>
      )}
    </>
  );
}
