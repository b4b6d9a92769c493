#!/usr/bin/env bash
# Installs what mmgrad needs on a Debian machine, and nothing when it is already there.
#   scripts/deps.sh          install missing packages (apt-get, with sudo when not root)
#   scripts/deps.sh --check  only report what is missing (exit 1 if anything is)
#   scripts/deps.sh --ci     also clang-format (CI's formatting check, `make format-check`)
set -euo pipefail

packages=(cmake g++ make ninja-build pkgconf libeigen3-dev doctest-dev libstb-dev zlib1g-dev dataset-fashion-mnist)
if [[ "${1:-}" == "--ci" ]]; then
  packages+=(clang-format)
  shift
fi
optional=(graphviz)  # `dot`, to render autograd graphs as SVG

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
missing_opt=()
for p in "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_opt+=("$p")
done

if [[ ${#missing[@]} -eq 0 && ${#missing_opt[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  echo "missing packages: ${missing[*]} ${missing_opt[*]}"
  [[ ${#missing[@]} -eq 0 ]]
  exit
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "mmgrad: these Debian packages are missing: ${missing[*]}" >&2
  echo "This system has no apt-get; install the equivalents (Eigen 3.4, doctest, stb, zlib," >&2
  echo "Fashion-MNIST in /usr/share/datasets/fashion-mnist or \$MMGRAD_DATA) by hand." >&2
  exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "mmgrad: need root (or sudo) to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "mmgrad: installing ${missing[*]} ${missing_opt[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}" "${missing_opt[@]}"; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  # graphviz is optional: graphs are still written as .dot without it
  $sudo apt-get install -y --no-install-recommends "${missing_opt[@]}" || true
fi
