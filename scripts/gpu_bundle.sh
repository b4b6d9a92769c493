#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that has CUDA, CMake and a compiler but
# no Debian packages and no network (the workplace's lent GPU machines): Eigen, doctest, stb and
# zlib headers and the Fashion-MNIST files, unpacked from their Debian packages into
# .gpu_deps/root/ (ignored by git). Run it here, where apt-get works; then carry .gpu_deps to the
# GPU machine with the working tree and run scripts/gpu_check.sh there, which finds it.
#
#   scripts/gpu_bundle.sh          (about 45 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu_deps
packages=(libeigen3-dev doctest-dev libstb-dev zlib1g-dev zlib1g dataset-fashion-mnist)

command -v apt-get >/dev/null 2>&1 || { echo "gpu_bundle: needs apt-get (Debian)" >&2; exit 1; }
tmp=$(mktemp -d)
chmod a+rwx "$tmp"  # apt-get download runs as _apt where it can
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "${packages[@]}" >/dev/null) || {
  echo "gpu_bundle: apt-get download failed (run 'apt-get update' first?)" >&2
  exit 1
}
rm -rf "$dest.new"
mkdir -p "$dest.new/root"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dest.new/root"; done
rm -rf "$dest.new/root/usr/share/doc" "$dest.new/root/usr/share/man"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "gpu_bundle: $(du -sh "$dest" | cut -f1) in $dest/ (${packages[*]})"
