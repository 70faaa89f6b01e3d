#!/usr/bin/env bash
# On a CUDA machine: the gpu profile of the whole course and the bf16 throughput benchmark, all numbers in one
# file (bench/results/gpu.json). Targets on one H200: course ≤ 5 minutes; MiniLM bf16 fine-tuning ≥ 10,000
# samples/s at 128 tokens. Without CUDA it says so and runs the same scripts on the CPU with small settings,
# writing into runs/gpu-fallback/ (the committed CPU results in bench/results/ stay as they are).
#   bash bench/gpu.sh                     # uses .venv (make setup) or PY=python
#   STEPS=300 BATCH=256 bash bench/gpu.sh # throughput settings; ONLY="00 02" runs only those notebooks
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  $PY -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
  PROFILE=gpu; STEPS=${STEPS:-300}; BATCH=${BATCH:-256}; RESULTS=${RESULTS:-bench/results}
else
  echo "no CUDA device: falling back to the CPU with small settings (profile smoke, 10 steps)"
  PROFILE=smoke; STEPS=${STEPS:-10}; BATCH=${BATCH:-16}; RESULTS=${RESULTS:-runs/gpu-fallback}
fi
mkdir -p "$RESULTS"
$PY bench/throughput.py --steps "$STEPS" --batch "$BATCH" --max-length 128 --out "$RESULTS/gpu_throughput.json" \
  || echo "throughput benchmark failed: going on with the course"
PY=$PY RESULTS=$RESULTS bash bench/course_walltime.sh "$PROFILE" || echo "course run failed"
$PY - "$PROFILE" "$RESULTS" <<'PY'
import json, sys, torch, platform
p, results = sys.argv[1], sys.argv[2]
def read(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError) as err:
        return {"error": str(err)}
out = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
       "torch": torch.__version__, "profile": p, "throughput": read(f"{results}/gpu_throughput.json"),
       "course": read(f"{results}/course_{p}.json")}
json.dump(out, open(f"{results}/gpu.json", "w"), indent=2)
print(json.dumps({"course_seconds": out["course"].get("wall_seconds"),
                  "samples_per_s": {r["variant"]: r["samples_per_s"] for r in out["throughput"]}
                  if isinstance(out["throughput"], list) else out["throughput"]}, indent=1))
print(f"all numbers: {results}/gpu.json")
PY
