/**
 * Whether stderr is systemd's journal, without loading the logger (the mount helper asks too).
 */
import { fstatSync } from 'node:fs';

/** stderr is the journal: systemd sets JOURNAL_STREAM to its `dev:ino` (systemd.exec(5)). */
export function stderrIsJournal(env: NodeJS.ProcessEnv): boolean {
  if (!env.JOURNAL_STREAM) return false;
  try {
    const st = fstatSync(2);
    return env.JOURNAL_STREAM === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}
