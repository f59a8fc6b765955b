#!/usr/bin/env bash
# DAgger rounds (Ross et al., 2011) on one task, from a trained run: round k lets the
# newest checkpoint play GAMES games, labels every state it visits with EXPERT's action
# (`gato data collect --dagger`), trains STEPS more steps on the demonstrations plus the
# stores of rounds 1..k (the run's own schedule continued with --resume, each store at
# weight 1 beside the demonstrations' 1), and plays EVAL_EPISODES greedy games. Every stage
# skips work already done, so re-running continues where a previous run stopped.
#
#   BASE=runs/pong-only scripts/dagger.sh
#   BASE=runs/pong-only ROUNDS=4 GAMES=16 OUT=runs/pong-dagger-b SEED=400000 scripts/dagger.sh
#
# Round k's run is OUT/round-k (a copy of the previous round's newest checkpoint, trained on),
# its store DATA/episodes/TASK-dagger-NAME-k with games from seed SEED + 1000 (k - 1), its
# evaluation OUT/round-k/eval.json (seeds from EVAL_SEED, the same every round), and
# OUT/rounds.tsv sums them up. BASE's own score is OUT/round-0.json.
set -euo pipefail
# One { ... } block: bash reads all of it before running any of it, so editing this
# file while a run is under way cannot change what that run does.
{
GATO=${GATO:-.venv/bin/gato}
DATA=${DATA:-data}
TASK=${TASK:-pong}
EXPERT=${EXPERT:-pong-ppo}
DEMOS=${DEMOS:-episodes/pong-rl}          # the base run's demonstrations, under DATA
BASE=${BASE:?set BASE to the trained run to start from}
OUT=${OUT:-$BASE-dagger}
NAME=${NAME:-$(basename "$OUT")}          # names this series' stores
ROUNDS=${ROUNDS:-3}
GAMES=${GAMES:-8}
ENVS=${ENVS:-8}                           # games the checkpoint plays at once
STEPS=${STEPS:-500}
SEED=${SEED:-300000}
EVAL_EPISODES=${EVAL_EPISODES:-10}
EVAL_SEED=${EVAL_SEED:-2000000}

newest() { compgen -G "$1/step_*" | sort | tail -n 1; }
step_of() { local s; s=$(basename "$1"); echo $((10#${s#step_})); }
# evaluate RUN JSON: unless JSON holds a finished evaluation (an interrupted one writes its
# partial results with "interrupted": true: run again)
evaluate() {
    if [[ -s $2 ]] && ! grep -q '"interrupted": true' "$2"; then return; fi
    "$GATO" eval --checkpoint "$1" --task "$TASK" --episodes "$EVAL_EPISODES" \
        --envs "$EVAL_EPISODES" --seed "$EVAL_SEED" --json "$2" --no-progress
}
score() {  # score JSON: "mean std normalised" of TASK in an eval report
    "${PYTHON:-.venv/bin/python}" - "$1" "$TASK" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
task = next(t for t in report["tasks"] if t["task"] == sys.argv[2])
print(f"{task['mean']:.1f}\t{task['std']:.1f}\t{task['normalised']:.3f}")
EOF
}

test -n "$(newest "$BASE")" || { echo "dagger.sh: no checkpoint in $BASE" >&2; exit 2; }
mkdir -p "$OUT"
echo "== round 0: $BASE"
evaluate "$BASE" "$OUT/round-0.json"
printf 'round\tstep\tstore_steps\tstore_mean\tmean\tstd\tnormalised\n' >"$OUT/rounds.tsv"
printf '0\t%s\t0\t-\t%s\n' "$(step_of "$(newest "$BASE")")" "$(score "$OUT/round-0.json")" \
    >>"$OUT/rounds.tsv"

previous=$BASE
mixture="{kind=\"episodes\", path=\"$DEMOS\", weight=1.0}"
for k in $(seq 1 "$ROUNDS"); do
    run=$OUT/round-$k
    store=episodes/$TASK-dagger-$NAME-$k
    start=$(newest "$previous")  # the checkpoint this round plays and trains on from
    echo "== round $k: collect $DATA/$store from $start"
    if ! compgen -G "$run/step_*" >/dev/null; then
        "$GATO" data collect --task "$TASK" --episodes "$GAMES" --seed $((SEED + 1000 * (k - 1))) \
            --out "$DATA/$store" --expert "$EXPERT" --dagger "$start" \
            --envs "$ENVS"
        # the copy lands whole or not at all: a killed copy must not pass for a checkpoint
        rm -rf "$run.tmp" && mkdir -p "$run.tmp"
        cp -r "$start" "$previous/metrics.jsonl" "$run.tmp/"
        rm -rf "$run" && mv "$run.tmp" "$run"
    fi
    mixture="$mixture, {kind=\"episodes\", path=\"$store\", weight=1.0}"
    target=$(( $(step_of "$start") + STEPS ))
    echo "== round $k: train to step $target"
    if [ "$(step_of "$(newest "$run")")" -lt "$target" ]; then
        "$GATO" train --out "$run" --resume --no-progress --set "train.steps=$target" \
            --set "data.dir=\"$DATA\"" --set "data.mixture=[$mixture]"
    fi
    echo "== round $k: evaluate"
    evaluate "$run" "$run/eval.json"
    made=$("${PYTHON:-.venv/bin/python}" -c "import json, sys
episodes = json.load(open(sys.argv[1]))['episodes']
print(sum(e['length'] for e in episodes), sum(e['score'] for e in episodes) / len(episodes), sep='\t')
" "$DATA/$store/manifest.json")
    printf '%s\t%s\t%s\t%s\n' "$k" "$target" "$made" "$(score "$run/eval.json")" \
        >>"$OUT/rounds.tsv"
    previous=$run
done
column -t "$OUT/rounds.tsv"
exit 0
}
