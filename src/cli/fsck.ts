import { parseArgs } from 'node:util';
import { fsck } from '../gc/fsck.js';
import { COMMON_OPTIONS, formatBytes, openStorage, printList } from './storage.js';

const HELP = `usage: berth fsck [--repair] [--config FILE] [--json] [--verbose]

Re-hashes every blob file and reconciles the index with the files both ways: corrupt
and missing blobs, manifests whose bytes or references are wrong, dangling tags. Exits 1
when it finds problems it did not repair.

  --repair        move corrupt blob files to quarantine/, remove the rows of corrupt and
                  missing blobs and every manifest (and tag) that can no longer be pulled
                  completely, leaving the index consistent
  --config FILE   YAML configuration (also BERTH_CONFIG)
  --json          print the report as JSON
  --verbose       list every problem (default: the first 50)`;

export async function fsckCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...COMMON_OPTIONS, repair: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const storage = openStorage(values.config, env);
  try {
    const limit = values.verbose ? Infinity : 50;
    if (!values.json) {
      console.log(`fsck of ${storage.config.storage.root}${values.repair ? ' (repairing)' : ''}`);
    }
    const report = await fsck(storage.files, storage.index, { repair: values.repair ?? false });
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      console.log(
        `checked ${report.blobFiles} blob file(s) (${formatBytes(report.bytesHashed)} hashed) and ${report.manifests} manifest(s)`,
      );
      console.log(`${report.problems.length} problem(s)`);
      printList(
        report.problems.map(
          (p) => `  ${p.kind.padEnd(22)} ${p.repository ? `${p.repository}${p.tag ? `:${p.tag}` : ''} ` : ''}${p.digest}: ${p.detail}`,
        ),
        limit,
      );
      if (report.orphans.length > 0) {
        const bytes = report.orphans.reduce((n, o) => n + o.size, 0);
        console.log(`${report.orphans.length} orphan blob file(s) (${formatBytes(bytes)}) without an index row: gc removes them`);
      }
      if (report.strays.length > 0) {
        console.log(`${report.strays.length} file(s) under blobs/ not named like a blob (left alone):`);
        printList(report.strays.map((s) => `  ${s}`), limit);
      }
      const r = report.repaired;
      if (r) {
        console.log(
          `repaired: ${r.quarantined.length} file(s) quarantined, ${r.blobRows.length} blob row(s), ` +
            `${r.manifests.length} manifest(s) and ${r.tags.length} tag(s) removed`,
        );
        printList(r.quarantined.map((q) => `  quarantined  ${q}`), limit);
        printList(r.manifests.map((m) => `  manifest     ${m.repository}@${m.digest}`), limit);
        printList(r.tags.map((t) => `  tag          ${t.repository}:${t.tag}`), limit);
      }
    }
    return report.problems.length > 0 && !report.repaired ? 1 : 0;
  } finally {
    await storage.close();
  }
}
