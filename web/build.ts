// Builds the web UI into dist/web (part of `npm run build`): one script and one style
// sheet bundled by esbuild with content-hashed names, the icon, index.html pointing at
// them, and a brotli and a gzip copy of each asset for clients that accept them.
// `--report` prints each asset's size, raw and compressed.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, '..', 'dist', 'web');
const assets = join(out, 'assets');

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src', 'main.tsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  // Browsers of the last few years: no transpiling of what they all run.
  target: ['chrome100', 'firefox100', 'safari15.4'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: assets,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const built = Object.keys(result.metafile.outputs).map((file) => basename(file));
const script = built.find((f) => f.endsWith('.js'));
const styles = built.find((f) => f.endsWith('.css'));
if (!script || !styles) throw new Error(`expected a script and a style sheet, got ${built.join(', ')}`);

const iconSource = readFileSync(join(here, 'src', 'icon.svg'));
const icon = `icon-${createHash('sha256').update(iconSource).digest('hex').slice(0, 8)}.svg`;
copyFileSync(join(here, 'src', 'icon.svg'), join(assets, icon));

const html = readFileSync(join(here, 'index.html'), 'utf8')
  .replace('{{script}}', `/assets/${script}`)
  .replace('{{styles}}', `/assets/${styles}`)
  .replace('{{icon}}', `/assets/${icon}`);
writeFileSync(join(out, 'index.html'), html);

const report: string[] = [];
for (const file of [script, styles, icon]) {
  const bytes = readFileSync(join(assets, file));
  const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
  const gz = gzipSync(bytes, { level: 9 });
  writeFileSync(join(assets, `${file}.br`), br);
  writeFileSync(join(assets, `${file}.gz`), gz);
  report.push(`${file}: ${bytes.length} B, brotli ${br.length} B, gzip ${gz.length} B`);
}
if (process.argv.includes('--report')) console.log(report.join('\n'));
