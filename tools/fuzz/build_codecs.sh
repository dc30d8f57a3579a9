#!/usr/bin/env bash
# Builds libpng and libjpeg-turbo from Debian's sources (the same versions the product links) as static libraries
# instrumented for libFuzzer and AddressSanitizer, into out/fuzz-libs, so the png and jpeg fuzz targets get
# coverage feedback from inside the decoders. tools/fuzz.sh uses them when they exist (pkg-config).
# Needs deb-src entries for apt (added here as /etc/apt/sources.list.d/psedge-deb-src.sources if none exist),
# cmake, make, and the Swift toolchain's clang.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
prefix=$root/out/fuzz-libs
src=$root/out/fuzz-src
flags="-O1 -g -fsanitize=fuzzer-no-link,address -fPIC"

if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    > /etc/apt/sources.list.d/psedge-deb-src.sources
  apt-get update -qq
fi
command -v cmake >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null

mkdir -p "$src" "$prefix"
cd "$src"
[ -d libpng1.6-* ] 2>/dev/null || apt-get source -qq libpng1.6 >/dev/null 2>&1
[ -d libjpeg-turbo-* ] 2>/dev/null || apt-get source -qq libjpeg-turbo >/dev/null 2>&1

( cd libpng1.6-*/ && CC=clang CFLAGS="$flags" ./configure -q --prefix="$prefix" --disable-shared --enable-static \
    --disable-hardware-optimizations >/dev/null && make -s -j2 >/dev/null && make -s install >/dev/null )
( mkdir -p jpeg-build && cd jpeg-build && CC=clang cmake -S ../libjpeg-turbo-*/ -B . -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_INSTALL_PREFIX="$prefix" -DENABLE_SHARED=0 -DENABLE_STATIC=1 -DWITH_SIMD=0 \
    -DWITH_TURBOJPEG=0 >/dev/null && make -s -j2 >/dev/null && make -s install >/dev/null )
# Debian's pkg-config name for libjpeg is libjpeg.pc, as libjpeg-turbo installs it.
ls "$prefix"/lib*/pkgconfig/
echo "instrumented codecs in $prefix"
