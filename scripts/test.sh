#!/usr/bin/env bash
# The whole test suite: setup, then unit/contract/emulator tests, then real FUSE mounts (one file at a
# time: each mounts its own daemon). Ends with one line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Stale FUSE mounts from an earlier killed run would break the mount tests.
# fusermount3 where fusermount is not installed (Debian's fuse3 ships only fusermount3).
um=$(command -v fusermount || command -v fusermount3 || echo fusermount)
grep -E ' fuse(\.assetfs)? ' /proc/mounts | awk '{print $2}' | grep -E 'assetfs' | while read -r m; do "$um" -uz "$m" 2>/dev/null || true; done

status=0
# vitest strips types without checking them: the tests are type-checked here, with what they import.
npx tsc -p test/tsconfig.json || { echo "test: type errors (above)"; status=1; }
npx vitest run test/unit test/contract test/emulators test/upload --reporter=default --reporter=json --outputFile.json="$out/a.json" || status=1
if [ -e /dev/fuse ]; then
  npx vitest run test/fuse --no-file-parallelism --reporter=default --reporter=json --outputFile.json="$out/b.json" || status=1
else
  echo "test: /dev/fuse is missing: FUSE mount tests skipped"
fi

node -e '
const fs = require("fs"); let p = 0, f = 0, s = 0;
for (const x of ["a", "b"]) {
  const file = process.argv[1] + "/" + x + ".json";
  if (!fs.existsSync(file)) continue;
  const r = JSON.parse(fs.readFileSync(file, "utf8"));
  p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests + (r.numTodoTests || 0);
}
console.log(`${p} passed, ${f} failed, ${s} skipped`);
if (p === 0) process.exit(1);
' "$out" || status=1
exit $status
