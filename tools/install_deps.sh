#!/usr/bin/env bash
# Installs the Debian packages PSEdge builds against (skipped when already present).
set -euo pipefail
pkgs="libsqlite3-dev gcc-aarch64-linux-gnu qemu-user libopenblas-dev libpng-dev libjpeg62-turbo-dev libprotobuf-c-dev protobuf-c-compiler pkg-config python3-venv"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install:$missing" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
