import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, formatBytes, openStorage } from './storage.js';

const HELP = `usage: berth du [REPOSITORY] [--config FILE] [--json]

Storage accounting: per repository the blob bytes its manifests reference, the bytes
unique to it (what deleting it frees) and the bytes shared with other repositories; the
store's total, what no manifest references, and what \`berth gc\` would reclaim now.

  --config FILE   YAML configuration (also BERTH_CONFIG)
  --json          print the report as JSON`;

export async function duCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: COMMON_OPTIONS, allowPositionals: true });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1) {
    console.error('berth du: at most one repository');
    return 2;
  }
  const storage = openStorage(values.config, env);
  try {
    const usage = await storage.lifecycle.usage(positionals[0]);
    if (!usage) {
      console.error(`berth du: repository "${positionals[0]}" is not known`);
      return 1;
    }
    if (values.json) {
      console.log(JSON.stringify(usage, null, 2));
      return 0;
    }
    const rows = usage.repositories.map((r) => [
      r.repository,
      String(r.tags),
      String(r.manifests),
      formatBytes(r.referencedBytes),
      formatBytes(r.uniqueBytes),
      formatBytes(r.sharedBytes),
    ]);
    const header = ['REPOSITORY', 'TAGS', 'MANIFESTS', 'REFERENCED', 'UNIQUE', 'SHARED'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [header, ...rows]) {
      console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
    }
    const t = usage.totals;
    console.log('');
    console.log(`store:        ${t.blobs} blob(s), ${formatBytes(t.blobBytes)}; ${t.files} file(s) on disk, ${formatBytes(t.fileBytes)}`);
    console.log(`manifests:    ${t.manifests} in ${t.repositories} repositor${t.repositories === 1 ? 'y' : 'ies'}, ${formatBytes(t.manifestBytes)} (in the index)`);
    console.log(`referenced:   ${formatBytes(t.referencedBytes)}`);
    console.log(`unreferenced: ${formatBytes(t.unreferencedBytes)}`);
    console.log(`reclaimable:  ${formatBytes(t.reclaimableBytes)} (berth gc now)`);
    return 0;
  } finally {
    await storage.close();
  }
}
