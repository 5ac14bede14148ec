#!/usr/bin/env bash
# Measures the seed's timing claims on real threads, and the explorer's speed. Timing varies
# from run to run and machine to machine, so it is measured here, never asserted in tests.
#
#   scripts/claims.sh            # build once, then print one line per claim
#   RUNS=5 scripts/claims.sh     # more runs per measurement (the median is printed)
#
# Each line gives the measured value and what the claim predicts.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
cargo build --release --quiet
G=./target/release/gilcheck

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The number after `label` on the program's own output line.
field() { grep -m1 "^$1" | sed -E "s|^$1 *([0-9.]+).*|\1|"; }

seq_t=(); thr_t=(); proc_t=()
for _ in $(seq "$RUNS"); do
  out=$($G run seed-cpu-bound)
  seq_t+=("$(echo "$out" | field 'Sequential:')"); thr_t+=("$(echo "$out" | field 'Threaded:')")
  proc_t+=("$($G run seed-cpu-bound --processes | field 'Processes:')")
done
s=$(printf '%s\n' "${seq_t[@]}" | median); t=$(printf '%s\n' "${thr_t[@]}" | median); p=$(printf '%s\n' "${proc_t[@]}" | median)
echo "claim 2  seed-cpu-bound (2 × 300000): sequential ${s}s, threaded ${t}s (claim: ≈ sequential), processes ${p}s (claim: ≈ 1/2 with 2 cores)"

# (the output is read whole first: `grep -m1` on a pipe would stop the program mid-write)
io=(); for _ in $(seq "$RUNS"); do out=$($G run io-bound); io+=("$(echo "$out" | grep -m1 'sleep(0.1):' | sed -E 's/.*sleep\(0.1\): ([0-9.]+)s.*/\1/')"); done
echo "claim 4  io-bound (4 threads × sleep(0.1)): $(printf '%s\n' "${io[@]}" | median)s in all (claim: ≈ 0.10s, not 0.40s)"

alone=(); beside=()
for _ in $(seq "$RUNS"); do
  out=$($G run convoy)
  alone+=("$(echo "$out" | field 'I/O call alone:')"); beside+=("$(echo "$out" | field 'I/O call beside a CPU-bound thread:')")
done
echo "convoy   per blocking call: alone $(printf '%s\n' "${alone[@]}" | median) ms, beside a CPU-bound thread $(printf '%s\n' "${beside[@]}" | median) ms (claim: ≈ one 5 ms switch interval)"

for v in 3.9 3.11; do
  got=(); for _ in $(seq "$RUNS"); do got+=("$($G run seed-unsafe-increment --python "$v" --switch-interval 1e-6 | sed -nE 's/^Expected: 40000, Got: ([0-9]+).*/\1/p')"); done
  echo "claim 3  seed-unsafe-increment --python $v, 1 µs interval: Got ${got[*]} of 40000 (claim: 3.9 loses updates, 3.11 never)"
done

start=$(date +%s.%N)
line=$($G check seed-locked-increment --python every --threads 2 --iterations 2 2>/dev/null)
end=$(date +%s.%N)
echo "explorer seed-locked-increment --python every, 2 × 2, every schedule: $(echo "$end - $start" | bc) s — $(echo "$line" | sed -E 's/.*explored, ([0-9 ]+) distinct states reached at decisions, by ([0-9 ]+) executions.*/\1 states, \2 executions/')"
