import { parseArgs } from 'node:util';
import type { GcReport } from '../gc/collector.js';
import { COMMON_OPTIONS, formatBytes, openStorage, printList } from './storage.js';

const HELP = `usage: berth gc [--dry-run] [--config FILE] [--json] [--verbose]

Collects garbage in the data directory of the configuration (safe while the server runs):
applies the retention rules and the untagged-manifest policy (gc.*), then removes blobs no
manifest references that are older than gc.gracePeriod, and orphan files.

  --dry-run       print what would be removed, remove nothing
  --config FILE   YAML configuration (also BERTH_CONFIG)
  --json          print the report(s) as JSON: {"plan": …, "result": …}
  --verbose       list every tag and manifest (default: the first 20 of each)`;

export async function gcCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...COMMON_OPTIONS, 'dry-run': { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const storage = openStorage(values.config, env);
  try {
    const limit = values.verbose ? Infinity : 20;
    const plan = await storage.lifecycle.collect({ dryRun: true });
    if (!values.json) {
      console.log(`gc in ${storage.config.storage.root} (grace period ${storage.config.gc.gracePeriod / 1000}s)`);
      printReport('will remove', plan, limit);
    }
    if (values['dry-run']) {
      if (values.json) console.log(JSON.stringify({ plan }, null, 2));
      else console.log('dry run: nothing was removed');
      return 0;
    }
    const result = await storage.lifecycle.collect({
      onPhase: (phase) => !values.json && console.log(phase === 'index' ? 'removing index rows…' : 'sweeping blob files…'),
    });
    if (values.json) console.log(JSON.stringify({ plan, result }, null, 2));
    else printReport('removed', result, limit);
    return 0;
  } finally {
    await storage.close();
  }
}

function printReport(verb: string, report: GcReport, limit: number): void {
  console.log(
    `${verb}: ${report.tags.length} tag(s), ${report.manifests.length} manifest(s), ` +
      `${report.blobs.count} blob row(s) (${formatBytes(report.blobs.bytes)}), ` +
      `${report.files.count} blob file(s) (${formatBytes(report.files.bytes)} reclaimed)`,
  );
  printList(report.tags.map((t) => `  tag       ${t.repository}:${t.tag}  (${t.digest})`), limit);
  printList(report.manifests.map((m) => `  manifest  ${m.repository}@${m.digest}  ${m.reason}`), limit);
  if (report.interrupted) console.log('interrupted: the run stopped early');
}
