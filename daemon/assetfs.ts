// Entry point of the `assetfs` command (bin/assetfs.js runs the compiled form of this file).
import { main } from '../src/daemon/cli.js';

// The AWS SDK warns on every start that future releases will need Node 22: noise for our users.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'NodeVersionSupportWarning' && !/require node >=22/.test(w.message)) process.stderr.write(`assetfs: warning: ${w.name}: ${w.message}\n`);
});

await main(process.argv);
