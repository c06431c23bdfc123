#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks, then builds. Idempotent; used by `npm test`, `npm run demo`
# and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# fuse3: libfuse3.so.3 and fusermount3 (unmounting falls back to it where fusermount is missing); libfuse3-dev and pkg-config: npm ci compiles our fuse-native
# (vendor/fuse-native) against libfuse 3.
command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
ldconfig -p 2>/dev/null | grep -q 'libfuse3\.so\.3' || need_apt+=(fuse3)
[ -f /usr/include/fuse3/fuse.h ] || need_apt+=(libfuse3-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# rsync: the mount tests copy trees into the mount with `rsync -a`, as users do.
command -v rsync >/dev/null 2>&1 || need_apt+=(rsync)
# attr: getfattr/setfattr, with which the mount tests read the read-only user.assetfs.* attributes.
command -v getfattr >/dev/null 2>&1 && command -v setfattr >/dev/null 2>&1 || need_apt+=(attr)
# python3: the notify test receives the daemon's sd_notify datagrams on a unix socket (Node cannot bind
# one). systemd: systemd-notify, which the daemon reports through, and systemd-analyze, which verifies
# the unit (test/fuse/boot-mount.test.ts, test/unit/systemd-unit.test.ts).
[ -x /usr/bin/python3 ] || need_apt+=(python3)
command -v systemd-notify >/dev/null 2>&1 && command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# curl: the metrics test scrapes GET /metrics over the control socket with `curl --unix-socket`, as operators do.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# redis-server, redis-cli: the shared tier's tests start their own Redis on a unix socket
# (test/helpers/redis-server.ts) and corrupt its keys with redis-cli (test/fuse/shared-*.test.ts).
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-server)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}: run as root, or: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

# npm ci installs the lab too (a file: devDependency), with azurite and s3rver as its dependencies.
stamp=node_modules/.assetfs-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: npm ci (better-sqlite3 compiles from source: about 2 minutes)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
# The native addons must really load: npm 11 may skip install scripts it has not been allowed to run.
if ! node -e "require('better-sqlite3')(':memory:').close()" 2>/dev/null; then
  echo "setup: building better-sqlite3"
  npm rebuild better-sqlite3 --loglevel=error
fi
# A build from before the move to libfuse 3, or older than its patched source, would still load: rebuild it.
addon=vendor/fuse-native/build/Release/fuse.node
if [ -f "$addon" ] && { ! ldd "$addon" | grep -q 'libfuse3\.so' || [ vendor/fuse-native/fuse-native.c -nt "$addon" ]; }; then
  echo "setup: rebuilding fuse-native (libfuse 3, patched source)"
  rm -rf vendor/fuse-native/build && npm rebuild fuse-native --loglevel=error
fi
node -e "require('fuse-native')" || { echo "setup: fuse-native does not load (see above)" >&2; exit 1; }

# The daemon and the lab (lab/, @assetfs/lab: emulators, storage servers, sample media), which the
# root tsconfig references: `assetfs demo` and the bench run lab/dist.
npx tsc -b
