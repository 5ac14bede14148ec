#!/usr/bin/env bash
# The state-space benchmark of issue 9: SPIN 6.5 on bench/spin/increment.pml beside
# `gilcheck check seed-locked-increment` (--python every and 3.9) at the sizes below, and the
# time to the first counterexample of the seed's unsafe increment at 4 x 10 000 under 3.9,
# SPIN against each gilcheck engine. Prints a markdown table and writes it into
# BENCHMARKS.md between the <!-- statespace --> markers.
#
#   bench/statespace.sh                            # every size, --time-limit 300 per gilcheck run
#   SIZES="2x2 4x2" TIMEOUT=60 JOBS_SIZE=4x2 bench/statespace.sh
#
# Needs spin and gcc (Debian packages `spin`, `gcc`: installed with apt-get when missing and
# the script runs as root) and GNU time (/usr/bin/time, package `time`) for peak memory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
sizes="${SIZES:-2x2 3x2 4x2 4x4 2x100}"
timeout="${TIMEOUT:-300}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

need() {
    local cmd="$1" pkg="$2"
    command -v "$cmd" > /dev/null && return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get > /dev/null; then
        echo "== apt-get install $pkg" >&2
        apt-get install -y "$pkg" > /dev/null 2>&1 || { apt-get update > /dev/null 2>&1 && apt-get install -y "$pkg" > /dev/null 2>&1; }
    fi
    command -v "$cmd" > /dev/null || { echo "!! $cmd is missing (Debian package $pkg)" >&2; exit 2; }
}
need spin spin
need gcc gcc
[[ -x /usr/bin/time ]] || need /usr/bin/time time

echo "== cargo build --release" >&2
(cd "$root" && cargo build --release --quiet)
gilcheck="$root/target/release/gilcheck"

# spin_run THREADS ITERATIONS LOCKED(0/1) -> "states|seconds|MB|errors"
spin_run() {
    local t="$1" k="$2" locked="$3" d="$work/spin-$1x$2-$3"
    mkdir -p "$d" && cp "$here/spin/increment.pml" "$d/"
    local flags="-DTHREADS=$t -DITERATIONS=$k"
    [[ "$locked" == 1 ]] && flags="$flags -DLOCKED"
    (cd "$d" && spin $flags -a increment.pml > /dev/null && gcc -O2 -DSAFETY -o pan pan.c 2> /dev/null)
    local out
    # The search stack as deep as the longest run (each iteration is at most 8 steps).
    out="$(cd "$d" && /usr/bin/time -f 'TIME %e %M' ./pan -m$((t * k * 8 + 100)) 2>&1)"
    local states seconds mem errors
    states="$(sed -nE 's/^ *([0-9e+.]+) states, stored.*/\1/p' <<< "$out" | head -n 1 || true)"
    seconds="$(sed -nE 's/^TIME ([0-9.]+) .*/\1/p' <<< "$out")"
    mem="$(sed -nE 's/^TIME [0-9.]+ ([0-9]+)/\1/p' <<< "$out")"
    errors="$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' <<< "$out" | head -n 1)"
    echo "$states|$seconds|$((mem / 1024))|$errors"
}

# gilcheck_run ARGS... -> "verdict|states|executions|seconds|MB"
gilcheck_run() {
    local out status
    set +e
    # gilcheck's own --time-limit ends the search with what it covered; `timeout` only guards.
    out="$(timeout $((timeout + 120)) /usr/bin/time -f 'TIME %e %M' "$gilcheck" check "$@" --time-limit "$timeout" 2>&1)"
    status=$?
    set -e
    local seconds mem verdict states execs
    seconds="$(sed -nE 's/^TIME ([0-9.]+) .*/\1/p' <<< "$out")"
    mem="$(sed -nE 's/^TIME [0-9.]+ ([0-9]+)/\1/p' <<< "$out")"
    if [[ "$status" == 124 ]]; then
        echo "killed at $((timeout + 120)) s|–|–|>${timeout}|–"
        return
    fi
    case "$(grep -m 1 -E '^(PASS|FAIL|INCONCLUSIVE)' <<< "$out" || true)" in
        PASS*exhaustive,*) verdict="exhaustive" ;;
        PASS*) verdict="not exhaustive" ;;
        FAIL*)
            local k
            k="$( { grep -oE 'steps, [0-9][0-9 ]* preemptions?\):' <<< "$out" || true; } | head -n 1 | sed -E 's/steps, //; s/ preemptions?\)://; s/ //g')"
            verdict="counterexample, ${k:-?} preemption(s), $(grep -q 'not minimized' <<< "$out" && echo 'not minimized' || echo 'minimal')" ;;
        *) verdict="exit $status" ;;
    esac
    # (no match is an empty field, not an error)
    states="$( { grep -oE '[0-9][0-9 ]* distinct states' <<< "$out" || true; } | head -n 1 | sed 's/ distinct states//; s/ //g')"
    execs="$( { grep -oE '(by|first) [0-9][0-9 ]* executions' <<< "$out" || true; } | head -n 1 | sed -E 's/(by|first) //; s/ executions//; s/ //g')"
    if [[ -z "$execs" ]]; then
        execs="$( { grep -oE 'at execution [0-9][0-9 ]*' <<< "$out" || true; } | head -n 1 | sed 's/at execution //; s/ //g')"
    fi
    echo "$verdict|${states:-–}|${execs:-–}|$seconds|$((${mem:-0} / 1024))"
}

table="$work/table.md"
{
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), SPIN $(spin -V | sed -nE 's/Spin Version ([0-9.]+).*/\1/p'), gilcheck $(cd "$root" && git rev-parse --short HEAD); each gilcheck run given --time-limit ${timeout}."
    echo
    echo "| size | SPIN states | SPIN s | SPIN MB | gilcheck every | states | executions | s | MB | gilcheck 3.9 | states | executions | s | MB | time every / SPIN |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$table"
for size in $sizes; do
    t="${size%x*}"; k="${size#*x}"
    echo "== $t threads x $k iterations" >&2
    IFS='|' read -r s_states s_sec s_mb s_err <<< "$(spin_run "$t" "$k" 1)"
    IFS='|' read -r e_verdict e_states e_execs e_sec e_mb <<< "$(gilcheck_run seed-locked-increment --python every --threads "$t" --iterations "$k")"
    IFS='|' read -r n_verdict n_states n_execs n_sec n_mb <<< "$(gilcheck_run seed-locked-increment --python 3.9 --threads "$t" --iterations "$k")"
    ratio="–"
    if [[ "$e_verdict" == exhaustive ]]; then
        ratio="$(awk -v a="$e_sec" -v b="$s_sec" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else printf "> %.0f×", a / 0.01 }')"
    fi
    echo "| $t × $k | $s_states | $s_sec | $s_mb | $e_verdict | $e_states | $e_execs | $e_sec | $e_mb | $n_verdict | $n_states | $n_execs | $n_sec | $n_mb | $ratio |" >> "$table"
done
{
    echo
    echo "First counterexample of the unsafe increment at 4 threads × 10 000 iterations:"
    echo
    echo "| tool | verdict | s | MB |"
    echo "|---|---|---|---|"
} >> "$table"
echo "== unsafe increment, 4 x 10000" >&2
IFS='|' read -r s_states s_sec s_mb s_err <<< "$(spin_run 4 10000 0)"
echo "| SPIN (every interleaving, no GIL) | $([[ "$s_err" -ge 1 ]] && echo "assertion violated" || echo "none") | $s_sec | $s_mb |" >> "$table"
for engine in pct random dfs; do
    IFS='|' read -r v st ex sec mb <<< "$(gilcheck_run seed-unsafe-increment --python 3.9 --threads 4 --iterations 10000 --engine "$engine")"
    echo "| gilcheck --python 3.9 --engine $engine | $v | $sec | $mb |" >> "$table"
done
{
    echo
    echo "--jobs (EX-19) on seed-locked-increment --python every at ${JOBS_SIZE:-4x4}:"
    echo
    echo "| jobs | verdict | states | executions | s | MB |"
    echo "|---|---|---|---|---|---|"
} >> "$table"
t="${JOBS_SIZE:-4x4}"; k="${t#*x}"; t="${t%x*}"
declare -A jobs_sec
for jobs in 1 2; do
    echo "== --jobs $jobs" >&2
    IFS='|' read -r v st ex sec mb <<< "$(gilcheck_run seed-locked-increment --python every --threads "$t" --iterations "$k" --jobs "$jobs")"
    jobs_sec[$jobs]="$sec"
    echo "| $jobs | $v | $st | $ex | $sec | $mb |" >> "$table"
done
echo >> "$table"
echo "Speed-up of --jobs 2 over --jobs 1: $(awk -v a="${jobs_sec[1]}" -v b="${jobs_sec[2]}" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "–" }')" >> "$table"

cat "$table"
bench="$root/BENCHMARKS.md"
if [[ -f "$bench" ]] && grep -q '<!-- statespace -->' "$bench"; then
    awk -v table="$table" '
        /<!-- statespace -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
        /<!-- \/statespace -->/ { skip = 0 }
        !skip { print }
    ' "$bench" > "$work/bench.md" && cp "$work/bench.md" "$bench"
    echo "== wrote the table into $bench" >&2
fi
