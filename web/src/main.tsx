import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, setCsrfToken, type SessionInfo } from './api.js';
import { App } from './components.js';
import { ImagePage } from './pages/image.js';
import { LayerPage } from './pages/layer.js';
import { RepositoriesPage } from './pages/repositories.js';
import { RepositoryPage } from './pages/repository.js';
import { SignInPage } from './pages/sign-in.js';
import { StoragePage } from './pages/storage.js';
import { interceptLinks, navigate, parseRoute, paths, useLocation, type Route } from './router.js';
import './styles.css';

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'repositories':
      return <RepositoriesPage />;
    case 'repository':
      return <RepositoryPage name={route.name} />;
    case 'image':
      return <ImagePage name={route.name} reference={route.reference} />;
    case 'layer':
      return <LayerPage digest={route.digest} />;
    case 'storage':
      return <StoragePage />;
    case 'sign-in':
      return <SignInPage />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            There is no page here. <a href="/">Repositories</a>
          </p>
        </>
      );
  }
}

function Navigation({ route, session, onSignOut }: { route: Route; session: SessionInfo | null; onSignOut: () => void }) {
  const current = (pages: Route['page'][]) => (pages.includes(route.page) ? 'page' : undefined);
  return (
    <header class="top">
      <a class="brand" href="/">
        Berth
      </a>
      <nav aria-label="Main">
        <a href="/" aria-current={current(['repositories', 'repository', 'image', 'layer'])}>
          Repositories
        </a>
        <a href={paths.storage()} aria-current={current(['storage'])}>
          Storage
        </a>
      </nav>
      <div class="account">
        {!session || session.mode === 'none' ? null : session.user ? (
          <>
            <span class="user" title={session.groups.length > 0 ? `groups: ${session.groups.join(', ')}` : undefined}>
              {session.user}
            </span>
            <button type="button" class="small" onClick={onSignOut}>
              Sign out
            </button>
          </>
        ) : route.page === 'sign-in' ? null : (
          <a href={paths.signIn(location.pathname + location.search)}>Sign in</a>
        )}
      </div>
    </header>
  );
}

function Root() {
  const location = useLocation();
  const route = parseRoute(location.pathname);
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [error, setError] = useState<unknown>(null);

  const refreshSession = useCallback(async () => {
    try {
      const next = await api.session();
      setCsrfToken(next.csrfToken);
      setSession(next);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void refreshSession();
  }, []);

  const signOut = async () => {
    try {
      await api.signOut();
    } finally {
      setCsrfToken(null);
      await refreshSession();
      navigate('/');
    }
  };

  if (error) {
    return (
      <p class="notice" role="alert">
        Berth did not answer: {String((error as Error).message ?? error)}. Reload the page to try again.
      </p>
    );
  }
  // The page renders at once and loads its data beside the session: one round trip less before content.
  return (
    <App.Provider value={{ session, refreshSession }}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Navigation route={route} session={session} onSignOut={signOut} />
      <main id="main">
        {/* A new page per location: its state (loaded data, open dialogs) starts afresh. */}
        <Page key={location.pathname} route={route} />
      </main>
    </App.Provider>
  );
}

interceptLinks();
render(<Root />, document.getElementById('app')!);
