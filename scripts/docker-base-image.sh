#!/usr/bin/env bash
# Builds a local stand-in for the official node:20-slim image, for machines that reach no image
# registry (like these: only the npm registry and Debian's packages are reachable). It is a root
# filesystem brought in with `docker import`, holding:
#   - this machine's Node 20 binary at /usr/local/bin/node, and npm (a JS package) copied from the
#     host's node installation to /usr/local/lib/node_modules/npm, as in the official image;
#   - the shared libraries node and rocksdb-native's prebuilt .node link (found with ldd), which
#     includes libatomic;
#   - busybox (static) as /bin/sh and the usual tools (npm's lifecycle scripts run under sh, the
#     compose healthchecks use wget); CA certificates; a `node` user (uid 1000) like the official
#     image's. The CA bundle is this machine's, so node in the image (npm ci in the build stage)
#     trusts what the host trusts (NODE_EXTRA_CA_CERTS points at it).
# Pass the printed tag as the Dockerfile's BASE_IMAGE build argument:
#   docker build --network host --build-arg BASE_IMAGE="$(scripts/docker-base-image.sh)" -f deploy/Dockerfile .
#
# The tag is a hash of what goes in (node's version and binary, this script), so a rerun with the
# image present is instant. Needs root only to install busybox-static when it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

note() { echo "docker-base-image: $*" >&2; }

node_bin="$(command -v node)"
node_bin="$(readlink -f "$node_bin")"
npm_dir="$(readlink -f "$(dirname "$node_bin")/../lib/node_modules/npm")"
[[ -f "$npm_dir/bin/npm-cli.js" ]] || { note "npm not found next to $node_bin (looked in $npm_dir)"; exit 1; }
rocksdb_node="node_modules/rocksdb-native/prebuilds/linux-x64/rocksdb-native.node"
[[ -f "$rocksdb_node" ]] || { note "$rocksdb_node is missing: run npm ci first"; exit 1; }

# busybox, static (busybox-static) or not: a dynamic one's libraries are copied like node's.
if ! command -v busybox >/dev/null 2>&1; then
  note "installing busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }
fi
busybox_bin="$(readlink -f "$(command -v busybox)")"

# Contents only (not paths): the same inputs give the same tag in any clone.
hash="$( { "$node_bin" --version; for f in "$node_bin" "$busybox_bin" "$0" "$npm_dir/package.json"; do sha256sum <"$f"; done; } | sha256sum | cut -c1-16)"
tag="eddy-local-node:20-${hash}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

root="$(mktemp -d /tmp/eddy-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib/node_modules,etc/ssl/certs,tmp,root,home/node,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"

cp "$node_bin" "$root/usr/local/bin/node"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# Every library node, rocksdb-native (and busybox, if dynamic) link, at the path the loader resolved (symlinks followed).
for lib in $(ldd "$node_bin" "$rocksdb_node" "$busybox_bin" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
# Scripts start with #!/usr/bin/env node (npm's bin among them).
ln -s /bin/busybox "$root/usr/bin/env"

cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"

note "importing $tag"
# Files copied as root belong to root; /home/node belongs to the node user, as in the official image.
chown -R 0:0 "$root"
chown 1000:1000 "$root/home/node"
tar -C "$root" --numeric-owner -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' \
    - "$tag" >/dev/null
echo "$tag"
