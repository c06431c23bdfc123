// Entry point of the `assetfs` command (bin/assetfs.js runs the compiled form of this file).
import { main } from '../src/daemon/cli.js';

await main(process.argv);
