#!/usr/bin/env bash
# The one-command GPU check: on a machine with an NVIDIA GPU, builds mmgrad with CUDA for that
# GPU and runs everything that needs one, then prints one summary.
#
#   scripts/gpu_check.sh [BUILD_DIR]      (default build-gpu/; logs in BUILD_DIR/gpu_check/)
#
# Steps (each logged; a failing step does not stop the others):
#   1. configure + build (CUDA for the GPU present, lessons, tests, benchmarks)
#   2. the GPU suites: test_cuda (parity of every backend kernel, no cudaMalloc in a steady
#      training loop) and test_op_list (CPU/CUDA parity of every op case, forward and gradients)
#   3. the whole ctest suite (a CUDA build must not break the CPU tests)
#   4. every lesson's --quick test on the GPU (MMGRAD_TEST_DEVICE=cuda)
#   5. bench_cuda (the GPU benchmark rows)
# Exit status: 0 when every step passed, 1 when one failed, 2 when there is no GPU to check.
# On a machine without Debian's packages (the lent GPU machines), run scripts/gpu_bundle.sh here
# first and carry .gpu_deps along: this script then builds against it and reads Fashion-MNIST
# from it.
# If $OUT is set (the device tool's output folder) the logs and summary are copied there too.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
logs=$build/gpu_check
jobs=$(nproc 2>/dev/null || echo 4)
start=$(date +%s)

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU found (nvidia-smi -L failed): nothing to check here" >&2
  exit 2
fi
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [[ ! -x $nvcc ]] && ! command -v nvcc >/dev/null 2>&1; then
  echo "gpu_check: no nvcc (looked for $nvcc and on PATH): install the CUDA Toolkit" >&2
  exit 2
fi
[[ -x $nvcc ]] || nvcc=$(command -v nvcc)

# Dependencies carried by scripts/gpu_bundle.sh (a machine without Debian's packages): CMake finds
# the headers under its prefix, the tests and lessons find Fashion-MNIST there.
extra=()
if [[ -d .gpu_deps/root/usr ]]; then
  prefix=$(pwd)/.gpu_deps/root/usr
  extra+=("-DCMAKE_PREFIX_PATH=$prefix")
  [[ -d $prefix/share/datasets/fashion-mnist ]] && export MMGRAD_DATA=$prefix/share/datasets/fashion-mnist
  export LD_LIBRARY_PATH=$prefix/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

mkdir -p "$logs"
gpu=$(nvidia-smi -L | head -n 1)
# The GPU's compute capability, e.g. "9.0" -> 90; CMake's "native" needs a working driver too.
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '. ')
arch=${cc:-native}

declare -a names results times
step() {  # step NAME COMMAND...: runs the command with its output in $logs/NAME.log
  local name=$1
  shift
  local t0=$(date +%s)
  echo "== $name: $*"
  if "$@" >"$logs/$name.log" 2>&1; then results+=("ok"); else results+=("FAILED"); fi
  names+=("$name")
  times+=("$(($(date +%s) - t0))")
  echo "   ${results[-1]} (${times[-1]} s), log: $logs/$name.log"
}

step configure cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMMGRAD_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch" -DMMGRAD_BUILD_TESTS=ON \
  -DMMGRAD_BUILD_LESSONS=ON -DMMGRAD_BUILD_BENCH=ON "${extra[@]}"
step build cmake --build "$build" -j "$jobs" --target all bench_cuda bench_all
# ctest --output-on-failure shows each failing test's output in the log; -j: the GPU suites run
# one test at a time (-j 1) so two processes do not share the GPU while timing cudaMalloc.
step gpu_tests bash -c "cd '$build' && ctest --output-on-failure -j 1 -R 'test_cuda:|cuda parity'"
step all_tests bash -c "cd '$build' && ctest --output-on-failure -j $jobs"
step lessons_on_gpu bash -c "cd '$build' && MMGRAD_TEST_DEVICE=cuda ctest --output-on-failure -j 1 -R test_lesson_"
step bench_cuda "$build/bench/bench_cuda"

# A GPU or lesson test that skipped here (it prints "[skipped: ...]") checked nothing: count them.
# (In all_tests a data test may skip legitimately: the real Debian Fashion-MNIST path is absent.)
skipped=$(cat "$logs"/gpu_tests.log "$logs"/lessons_on_gpu.log 2>/dev/null | grep -c '(Skipped)' || true)
summary=$logs/summary.txt
{
  echo "mmgrad GPU check: $gpu (sm_$arch), $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  for i in "${!names[@]}"; do
    printf '  %-15s %-7s %5s s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
  done
  for f in gpu_tests all_tests lessons_on_gpu; do
    line=$(grep -E 'tests passed|tests failed out of' "$logs/$f.log" 2>/dev/null | tail -n 1)
    [[ -n $line ]] && echo "  $f: $line"
  done
  echo "  tests reported skipped: $skipped (expected 0 on a GPU machine)"
  echo "  total: $(($(date +%s) - start)) s"
} | tee "$summary"
if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then cp "$logs"/*.log "$summary" "$OUT"/ 2>/dev/null; fi

for r in "${results[@]}"; do [[ $r == ok ]] || exit 1; done
[[ $skipped -eq 0 ]] || exit 1
exit 0
