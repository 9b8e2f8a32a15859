import { parseArgs } from 'node:util';
import { validateRepositoryName } from '../names.js';
import { COMMON_OPTIONS, formatBytes, openStorage } from './storage.js';

const HELP = `usage: berth repo rm NAME [--dry-run] [--config FILE] [--json]

Deletes a repository: all its tags, manifests and blob links. Blobs no other repository
uses are removed by the next \`berth gc\`.

  --dry-run       print what would be removed, remove nothing
  --config FILE   YAML configuration (also BERTH_CONFIG)
  --json          print the result as JSON`;

export async function repoCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...COMMON_OPTIONS, 'dry-run': { type: 'boolean' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [sub, name, ...extra] = positionals;
  if (sub !== 'rm' || name === undefined || extra.length > 0) {
    console.error(HELP);
    return 2;
  }
  try {
    validateRepositoryName(name);
  } catch (err) {
    console.error(`berth repo rm: ${(err as Error).message}`);
    return 2;
  }
  const storage = openStorage(values.config, env);
  try {
    const plan = storage.lifecycle.removeRepository(name, { dryRun: true });
    if (!plan) {
      console.error(`berth repo rm: repository "${name}" is not known`);
      return 1;
    }
    const describe = (r: typeof plan) =>
      `${r.tags} tag(s), ${r.manifests} manifest(s), ${r.links} blob link(s); ${formatBytes(r.uniqueBytes)} unique to it`;
    if (!values.json) console.log(`will remove repository ${name}: ${describe(plan)}`);
    if (values['dry-run']) {
      if (values.json) console.log(JSON.stringify({ plan }, null, 2));
      else console.log('dry run: nothing was removed');
      return 0;
    }
    const result = storage.lifecycle.removeRepository(name);
    if (values.json) console.log(JSON.stringify({ plan, result }, null, 2));
    else if (!result) console.log(`repository ${name} was already gone`);
    else console.log(`removed repository ${name}: ${describe(result)}; run \`berth gc\` to reclaim the unique bytes`);
    return 0;
  } finally {
    await storage.close();
  }
}
