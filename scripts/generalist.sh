#!/usr/bin/env bash
# The CPU generalist recipe (issue 12): build the data, train one checkpoint on every
# registered task plus captions and chat, then evaluate it. Every stage skips work that
# is already done, so re-running continues where a previous run stopped.
#
#   scripts/generalist.sh            # what `make generalist` runs
#   DATA=/big/disk RUN=runs/try2 scripts/generalist.sh
#
# Needs the offline text/image sources once: `make data-sources` (Debian packages).
set -euo pipefail
GATO=${GATO:-.venv/bin/gato}
DATA=${DATA:-data}
RUN=${RUN:-runs/cpu-generalist}
CONFIG=${CONFIG:-configs/cpu-generalist.toml}
WORKERS=${WORKERS:-2}
CONTROL_EPISODES=${CONTROL_EPISODES:-300}  # classic control: short episodes
ATARI_EPISODES=${ATARI_EPISODES:-30}       # Atari: 2,000-20,000 frames each
EVAL_EPISODES=${EVAL_EPISODES:-50}         # the paper's 50 rollouts per task
EVAL_SEED=${EVAL_SEED:-2000000}            # fresh seeds: collection uses 0.., scores 1000000..

echo "== data: scenes, captions, corpus, dialogues, tokenizer"
"$GATO" data all --data-dir "$DATA"

echo "== data: expert demonstrations (episodes below 80% of the expert score are dropped)"
for task in cartpole acrobot mountaincar pendulum mountaincar-continuous; do
    "$GATO" data collect --task "$task" --episodes "$CONTROL_EPISODES" \
        --out "$DATA/episodes/$task" --workers "$WORKERS"
done
for task in pong breakout freeway boxing; do
    "$GATO" data collect --task "$task" --episodes "$ATARI_EPISODES" \
        --out "$DATA/episodes/$task" --workers "$WORKERS"
done

echo "== train"
if compgen -G "$RUN/step_*" >/dev/null; then
    "$GATO" train --out "$RUN" --resume
else
    "$GATO" train --config "$CONFIG" --out "$RUN" --set "data.dir=\"$DATA\""
fi

echo "== evaluate"
"$GATO" eval --checkpoint "$RUN" --task all --episodes "$EVAL_EPISODES" --envs 10 \
    --seed "$EVAL_SEED" --json "$RUN/eval.json" --plot "$RUN/scores.png"
"$GATO" eval-vl --checkpoint "$RUN" --json > "$RUN/eval-vl.json"
cat "$RUN/eval-vl.json"
