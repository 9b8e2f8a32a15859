import { useState } from 'preact/hooks';
import { api, ApiError, setCsrfToken } from '../api.js';
import { Heading, useApp, usePage } from '../components.js';
import { navigate, parseRoute } from '../router.js';

/** Where to go after signing in: the page that asked, if it is one of ours. */
function nextPage(): string {
  const next = new URLSearchParams(location.search).get('next') ?? '/';
  return next.startsWith('/') && !next.startsWith('//') && parseRoute(next.split('?')[0]!).page !== 'not-found' ? next : '/';
}

export function SignInPage() {
  usePage('Sign in');
  const { session, refreshSession } = useApp();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  if (!session) return <Heading>Sign in</Heading>;
  if (session.mode === 'none') {
    return (
      <>
        <Heading>Sign in</Heading>
        <p>This registry runs without authentication: everyone sees everything, no sign-in needed.</p>
      </>
    );
  }
  if (session.user) {
    return (
      <>
        <Heading>Sign in</Heading>
        <p>
          You are signed in as <strong>{session.user}</strong>. <a href="/">Repositories</a>
        </p>
      </>
    );
  }

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await api.signIn(username, password);
      setCsrfToken(answer.csrfToken);
      await refreshSession();
      navigate(nextPage(), { replace: true });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 401) setError('Wrong user name or password.');
      else if (err instanceof ApiError && err.status === 429) setError(`Too many failed sign-ins: ${err.message}. Wait a few minutes.`);
      else setError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <>
      <Heading>Sign in</Heading>
      <form class="sign-in" onSubmit={submit}>
        <p class="muted">With your Berth user name and password (the ones docker login uses).</p>
        <label for="username">User name</label>
        <input
          id="username"
          name="username"
          autoComplete="username"
          required
          value={username}
          onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
        />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </>
  );
}
