#!/usr/bin/env bash
# Wall time of the whole course per profile: runs every notebook with papermill, one after the other.
#   bash bench/course_walltime.sh            # smoke and cpu (targets on 2 cores: ≤ 5 and ≤ 25 minutes)
#   bash bench/course_walltime.sh gpu        # one profile
# Per-notebook seconds: $RUNS/bench-<profile>/course_run.json; totals: $RESULTS/course_<profile>.json
# (defaults RUNS=runs, RESULTS=bench/results); ONLY="00 02" runs only those notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-bench/results}
RUNS=${RUNS:-runs}
ONLY=${ONLY:-}
mkdir -p "$RESULTS"
for profile in "${@:-smoke cpu}"; do
  for p in $profile; do
    start=$(date +%s.%N)
    status=0
    # shellcheck disable=SC2086  # ONLY is a list of notebook numbers
    $PY -m companion course --profile "$p" --out "$RUNS/bench-$p" ${ONLY:+--only $ONLY} || status=$?
    end=$(date +%s.%N)
    $PY - "$p" "$start" "$end" "$status" "$RUNS/bench-$p/course_run.json" "$RESULTS/course_$p.json" <<'PY'
import json, sys
p, start, end, status, run_file, out_file = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:]
try:
    rows = json.load(open(run_file))
except (OSError, ValueError) as err:  # the course run stopped before writing its record
    rows = {"error": str(err)}
out = {"profile": p, "wall_seconds": round(end - start, 1), "exit_status": status, "notebooks": rows}
json.dump(out, open(out_file, "w"), indent=2)
print(f"course, profile {p}: {out['wall_seconds']} s ({out['wall_seconds'] / 60:.1f} min), exit {status}")
PY
  done
done
