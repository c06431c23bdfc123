/** A real pino logger whose JSON lines land in an array, for tests that check what is logged. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface LogLine {
  readonly msg: string;
  readonly [key: string]: unknown;
}

export function capturingLogger(level = 'info'): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}
