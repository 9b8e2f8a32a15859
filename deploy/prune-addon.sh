#!/bin/sh
# Keeps of better-sqlite3, in a production node_modules (after `npm prune --omit=dev`),
# only the compiled addon it loads: its C sources (sqlite3 amalgamation), object files,
# static library and test extension are build leftovers, ~30 of its 32 MB.
set -eu
modules=${1:-node_modules}
package="$modules/better-sqlite3"
addon="$package/build/Release/better_sqlite3.node"
if [ ! -f "$addon" ]; then
  echo "prune-addon: $addon is missing (was better-sqlite3 built?)" >&2
  exit 1
fi
mv "$addon" "$package/better_sqlite3.node.keep"
rm -rf "$package/build" "$package/deps" "$package/src" "$package/binding.gyp"
mkdir -p "$package/build/Release"
mv "$package/better_sqlite3.node.keep" "$addon"
