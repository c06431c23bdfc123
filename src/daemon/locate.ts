/**
 * `assetfs locate PATH` (the platform's id, version and status of a path in the mount) and
 * `assetfs locate --id SOURCE ID` (the path of a platform id), answered by the running daemon over its
 * control socket (docs/semantics.md#platform-ids). The daemon's side is Vfs.locate / Vfs.pathOfId.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { callControl, controlSocketPath } from './control.js';
import type { Located } from '../vfs/ids.js';

/** What `POST /locate` answers (mount paths absolute). */
export interface LocateAnswer extends Located {
  readonly path: string;
}

/** One `label: value` line per field; id, version and status always (`-` when the platform has none). */
export function renderLocated(r: LocateAnswer): string {
  const rows: [string, string | undefined][] = [
    ['path', r.path],
    ['source', r.source],
    ['id', r.id ?? '-'],
    ['version', r.version ?? '-'],
    ['status', r.status ?? '-'],
    ['content type', r.contentType],
    ['by id', r.byIdPath],
  ];
  return rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`).join('\n');
}

export function addLocateCommand(program: Command, opts: { defaultConfig: string; run: (fn: () => Promise<void>) => Promise<void>; usage: (line: string) => Error }): void {
  program
    .command('locate')
    .description("print a path's platform id, version and status; with --id, the path of a platform id")
    .argument('<path>', 'a file or folder inside the mount (with --id: the source name)')
    .argument('[id]', 'with --id: the platform id, as `user.assetfs.id` shows it')
    .option('--id', 'print the path of <id> in source <path>', false)
    .option('--json', 'machine-readable output', false)
    .option('-c, --config <file>', 'config file of the daemon to ask', opts.defaultConfig)
    .option('--socket <path>', 'control socket (default: <cacheDir>/control.sock from the config)')
    .action((first: string, id: string | undefined, o: { id: boolean; json: boolean; config: string; socket?: string }) =>
      opts.run(async () => {
        if (o.id ? !id : id !== undefined) throw opts.usage('usage: assetfs locate PATH, or assetfs locate --id SOURCE ID');
        const socket = o.socket ?? controlSocketPath((await loadConfig(o.config)).cacheDir);
        if (o.id) {
          const r = (await callControl(socket, 'POST', '/locate-id', { source: first, id })) as { path: string };
          process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${r.path}\n`);
          return;
        }
        const r = (await callControl(socket, 'POST', '/locate', { path: resolve(first) })) as LocateAnswer;
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${renderLocated(r)}\n`);
      }),
    );
}
