#!/usr/bin/env bash
# Plants each bug of issue 7 in turn in a git worktree of gilcheck (its uncommitted changes are
# discarded), runs the explorer's test binaries, and prints which tests fail (verify/README.md).
#   git worktree add ../wt-plant HEAD && scripts/plant-issue7-bugs.sh ../wt-plant
set -u
cd "${1:?usage: $0 WORKTREE (a git worktree of gilcheck; its changes are discarded)}"
plant() { # name, file, the text to replace, its replacement
  local name="$1" file="$2" old="$3" new="$4"
  git checkout -q -- .
  python3 - "$file" "$old" "$new" <<'PY'
import sys
p,old,new=sys.argv[1:4]
s=open(p).read()
assert s.count(old)>=1, (p, old)
s=s.replace(old,new,1)
open(p,'w').write(s)
PY
  echo "== $name"
  nice cargo test --release --no-fail-fast --test state_cache --test verdicts --test explore_rules --test cli --test schedule_fuzz 2>&1 | grep -E "^test .*FAILED|^test result" | sed 's/^/   /'
}
plant "fingerprint without int values" src/explore/world.rs "Object::Int(i) => i.hash(h)," "Object::Int(_) => {}"
plant "fingerprint without lock state" src/explore/world.rs "Object::Lock(l) => l.is_locked().hash(h)," "Object::Lock(_) => {}"
plant "fingerprint without the interval" src/explore/world.rs "host.interval_us.hash(&mut h);" ""
plant "cache ignores preemptions left" src/explore/oracles.rs "(had >= left || self.ignore_preemptions_left)" "(true || self.ignore_preemptions_left)"
plant "minimization from bound 1" src/explore/engine.rs "return s.fail_minimized(e, why, &how, 0);" "return s.fail_minimized(e, why, &how, 1);"
plant "lock take not a preemption" src/explore/world.rs "                // A lock taken while the GIL's holder could go on is a preemption (EX-3).
                self.preemptions += 1;" ""
plant "outcome comparison ignores output" src/explore/engine.rs "(e.outcome != *reference)" "(e.outcome.state != reference.state)"
plant "replay ignores --threads" src/main.rs "if let Some(t) = shape.threads
        && t != h.threads" "if let Some(t) = shape.threads
        && t != h.threads && false"
plant "replay ignores --iterations" src/main.rs "if let Some(i) = shape.iterations
        && i != h.iterations" "if let Some(i) = shape.iterations
        && i != h.iterations && false"
git checkout -q -- .
