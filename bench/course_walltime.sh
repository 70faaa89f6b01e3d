#!/usr/bin/env bash
# Wall time of the whole course per profile: runs every notebook with papermill, one after the other.
#   bash bench/course_walltime.sh            # smoke and cpu (targets on 2 cores: ≤ 5 and ≤ 25 minutes)
#   bash bench/course_walltime.sh gpu        # one profile
# Per-notebook seconds: runs/bench-<profile>/course_run.json; totals: bench/results/course_<profile>.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p bench/results
for profile in "${@:-smoke cpu}"; do
  for p in $profile; do
    start=$(date +%s.%N)
    status=0
    $PY -m companion course --profile "$p" --out "runs/bench-$p" || status=$?
    end=$(date +%s.%N)
    $PY - "$p" "$start" "$end" "$status" <<'PY'
import json, sys
p, start, end, status = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = json.load(open(f"runs/bench-{p}/course_run.json"))
out = {"profile": p, "wall_seconds": round(end - start, 1), "exit_status": status, "notebooks": rows}
json.dump(out, open(f"bench/results/course_{p}.json", "w"), indent=2)
print(f"course, profile {p}: {out['wall_seconds']} s ({out['wall_seconds'] / 60:.1f} min), exit {status}")
PY
  done
done
