#!/usr/bin/env bash
# Runs the Swift test suite under a sanitizer (docs/SANITIZERS.md). Run before a release.
#
#   bash tools/sanitize.sh address|thread|undefined [swift test arguments, e.g. --filter NPYTests]
#
# Builds into .build-<sanitizer>/ (the normal .build is untouched), with every Swift module and every C
# target of the package instrumented; the psedge binary the CLI tests spawn is the instrumented one too.
# System libraries (OpenBLAS, libpng, libjpeg, protobuf-c, SQLite) are not instrumented.
# Fixtures must exist (bash tools/make_fixtures.sh). Exits non-zero on any test failure or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:-}
case "$sanitizer" in
  address|thread|undefined) shift ;;
  *) echo "usage: bash tools/sanitize.sh address|thread|undefined [swift test arguments]" >&2; exit 2 ;;
esac
scratch=.build-$sanitizer
suppressions=$(pwd)/tools/sanitizers
# halt_on_error: a report fails the run instead of scrolling past. LeakSanitizer runs with ASan.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$suppressions/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$suppressions/tsan.supp"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# One OpenBLAS thread: its uninstrumented worker threads would only add noise under TSan.
export OPENBLAS_NUM_THREADS=1

# swiftc has no UBSan on Linux: for `undefined`, the C targets (kernels, codec shims, protobuf-c code) are
# instrumented and the runtime linked through clang; Swift's own overflow and bounds checks cover the rest.
if [ "$sanitizer" = undefined ]; then
  flags=(-Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined)
else
  flags=(--sanitize="$sanitizer")
fi
swift build --build-tests "${flags[@]}" --scratch-path "$scratch"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build "${flags[@]}" --scratch-path "$scratch" --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:" "$log"; then
  echo "sanitize.sh: $sanitizer reported errors (see above)" >&2
  status=1
fi
summary=$(grep -E "Executed [0-9]+ tests?, with [0-9]+ failures?" "$log" | tail -n 1 || true)
echo "sanitize.sh ($sanitizer): ${summary:-no test summary} — exit $status"
exit $status
