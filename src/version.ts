import { readFileSync } from 'node:fs';

/** Berth's version, from package.json (one directory above both src/ and dist/), read once. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** What every request Berth sends says it is: upstream registries, their token servers, webhook receivers, JWKS hosts. */
export const USER_AGENT = `berth/${VERSION}`;
