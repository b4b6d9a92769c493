#!/usr/bin/env bash
# make exercise TASK=1.2   builds task 1.2's checker with your exercises/tasks/1.2_*.cpp and runs it
# make exercises           builds and checks every task: a progress table (done / not done / wrong)
# The task list is the mmgrad_exercise(...) lines of exercises/CMakeLists.txt.
set -u
BUILD=${1:?build folder}
TASK=${2:-}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# id <tab> function <tab> lesson <tab> title, one line per task
tasks() {
  sed -n 's/^mmgrad_exercise(\([^ ]*\) \([^ ]*\) \([^ ]*\) "\(.*\)")$/\1\t\2\t\3\t\4/p' \
    "$ROOT/exercises/CMakeLists.txt"
}

build_task() {  # $1 = id; prints the compiler's output only when the build fails
  local log
  log=$(cmake --build "$BUILD" -j "$JOBS" --target "exercise_${1//./_}" 2>&1) && return 0
  echo "$log" | grep -E "error|Error" | grep -v "^gmake" | head -20
  return 1
}

if [ -z "$TASK" ]; then
  echo "usage: make exercise TASK=<id>      (make exercises shows every task and its state)"
  echo
  tasks | awk -F'\t' '{ printf "  %-5s %-40s lesson %s\n", $1, $4, $3 }'
  exit 2
fi

if [ "$TASK" = "--all" ]; then
  done_count=0
  total=0
  printf '%-5s %-44s %-22s %s\n' task title lesson state
  while IFS=$'\t' read -r id fn lesson title; do
    total=$((total + 1))
    if ! build_task "$id" >/dev/null; then
      state="does not compile (make exercise TASK=$id shows why)"
    else
      "$BUILD/exercises/exercise_${id//./_}" --quiet
      case $? in
        0) state="done"; done_count=$((done_count + 1)) ;;
        77) state="not done yet" ;;
        *) state="WRONG (make exercise TASK=$id shows why)" ;;
      esac
    fi
    printf '%-5s %-44s %-22s %s\n' "$id" "$title" "$lesson" "$state"
  done < <(tasks)
  echo
  echo "$done_count of $total tasks done"
  exit 0
fi

line=$(tasks | awk -F'\t' -v t="$TASK" '$1 == t')
if [ -z "$line" ]; then
  echo "make exercise: there is no task '$TASK'. The tasks are:"
  tasks | awk -F'\t' '{ printf "  %-5s %s\n", $1, $4 }'
  exit 2
fi
fn=$(echo "$line" | cut -f2)
if ! build_task "$TASK"; then
  echo
  echo "task $TASK: exercises/tasks/${TASK}_$fn.cpp does not compile (the first errors are above)"
  exit 1
fi
exec "$BUILD/exercises/exercise_${TASK//./_}"
