#!/usr/bin/env bash
# The CPU generalist recipe (issue 12): build the data, train one checkpoint on every
# registered task plus captions and chat, then evaluate it. Every stage skips work that
# is already done, so re-running continues where a previous run stopped.
#
#   scripts/generalist.sh            # what `make generalist` runs
#   DATA=/big/disk RUN=runs/try2 scripts/generalist.sh
#   ABLATIONS=0 scripts/generalist.sh    # skip the ablation runs
#   TRAIN_ARGS="--set model.dropout=0.0" RUN=runs/trial scripts/generalist.sh
#       # a trial: more `gato train` flags (split at spaces) for the run and its
#       # ablations alike, so the text-only and one-task models stay like-for-like
#
# Needs the offline text/image sources once: `make data-sources` (Debian packages).
set -euo pipefail
# The whole script is one { ... } block: bash reads all of it before running any of it,
# so editing this file while a run is under way cannot change what that run does.
{
GATO=${GATO:-.venv/bin/gato}
DATA=${DATA:-data}
RUN=${RUN:-runs/cpu-generalist}
CONFIG=${CONFIG:-configs/cpu-generalist.toml}
WORKERS=${WORKERS:-2}
CONTROL_EPISODES=${CONTROL_EPISODES:-300}  # classic control: short episodes
ATARI_EPISODES=${ATARI_EPISODES:-30}       # Atari: 2,000-20,000 frames each
EVAL_EPISODES=${EVAL_EPISODES:-50}         # the paper's 50 rollouts per task
EVAL_SEED=${EVAL_SEED:-2000000}            # fresh seeds: collection uses 0.., scores 1000000..
EVAL_ENVS=${EVAL_ENVS:-25}                 # episodes played in lockstep (one batched forward)
ABLATIONS=${ABLATIONS:-1}
PROMPTED_EPISODES=${PROMPTED_EPISODES:-$EVAL_EPISODES}  # the prompted evaluation
ABLATION_DIR=${ABLATION_DIR:-$RUN-ablations}
read -r -a TRAIN_ARGS <<<"${TRAIN_ARGS:-}"

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

# train CONFIG OUT: a run of CONFIG under OUT (with TRAIN_ARGS), continued with --resume
# if it has checkpoints (the run keeps the settings it started with)
train() {
    if compgen -G "$2/step_*" >/dev/null; then
        "$GATO" train --out "$2" --resume
    else
        "$GATO" train --config "$1" --out "$2" --set "data.dir=\"$DATA\"" \
            ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"}
    fi
}

# explore_stores TASK EPISODES "P HOLD" "P HOLD": two noise-injection stores of TASK (`gato data
# collect --explore P --explore-hold HOLD`, seeds 500000.. and 600000..), TASK-explore1/2.
explore_stores() {
    local task=$1 episodes=$2 k=0 setting p hold
    for setting in "$3" "$4"; do
        k=$((k + 1))
        read -r p hold <<<"$setting"
        "$GATO" data collect --task "$task" --episodes "$episodes" --seed "$((k + 4))00000" \
            --explore "$p" --explore-hold "$hold" --out "$DATA/episodes/$task-explore$k" \
            --workers "$WORKERS"
    done
}

echo "== data: Pendulum noise-injection stores (the mixture trains on them)"
explore_stores pendulum "$CONTROL_EPISODES" "0.1 10" "0.3 20"

echo "== train"
train "$CONFIG" "$RUN"

echo "== evaluate"
# evaluate JSON ARGS...: `gato eval ARGS --json JSON` unless JSON holds a finished evaluation
# (an interrupted one writes its partial results with "interrupted": true: run again)
evaluate() {
    if [[ -s $1 ]] && ! grep -q '"interrupted": true' "$1"; then echo "kept $1"; return; fi
    "$GATO" eval --episodes "$EVAL_EPISODES" --envs "$EVAL_ENVS" --seed "$EVAL_SEED" \
        --json "$@"
}
# eval_vl CHECKPOINT JSON [ARGS...]: captions, zero-shot labels and chat perplexity
eval_vl() {
    if [[ -s $2 ]]; then echo "kept $2"; return; fi
    "$GATO" eval-vl --checkpoint "$1" --json "${@:3}" > "$2.tmp" && mv "$2.tmp" "$2"
}

evaluate "$RUN/eval.json" --checkpoint "$RUN" --task all --plot "$RUN/scores.png"
# DESIGN.md's protocol, the paper's: each episode prompted with the end of a demonstration
# (without one, MountainCar and MountainCarContinuous look alike: same two observations)
EVAL_EPISODES=$PROMPTED_EPISODES evaluate "$RUN/eval-prompted.json" --checkpoint "$RUN" \
    --task all --prompt-store "$DATA/episodes"
# (`gato eval --task all` above already measured the captions, zero-shot labels and chat
# perplexity into eval.json's metrics; eval_vl is for the text-only model below)

if [[ $ABLATIONS == 1 ]]; then
    echo "== ablation: one task alone on its share of the mixture's tokens"
    for task in cartpole freeway pendulum breakout pong; do
        train "configs/ablations/$task-only.toml" "$ABLATION_DIR/$task-only"
        evaluate "$ABLATION_DIR/$task-only/eval.json" --checkpoint "$ABLATION_DIR/$task-only" \
            --task "$task"
    done
    echo "== ablation: text only, on the dialogue tokens the generalist saw"
    train configs/ablations/text-only.toml "$ABLATION_DIR/text-only"
    # (it saw no images: its caption rows only show what text alone gets; the scenes' size)
    eval_vl "$ABLATION_DIR/text-only" "$ABLATION_DIR/text-only/eval-vl.json" --image-size 64
    echo "== ablation: continuous actions decoded by the median bin instead of the argmax"
    evaluate "$RUN/eval-median.json" --checkpoint "$RUN" --task pendulum \
        --action-decoding median
    evaluate "$RUN/eval-median-mcc.json" --checkpoint "$RUN" --task mountaincar-continuous \
        --action-decoding median
fi
# The investigations in docs/results/findings.md (DAgger rounds, noise injection for
# Breakout, 8x8 patches, action dropout on and off) ran on the first version of this
# recipe: `git checkout fcf9ed9 && scripts/generalist.sh` repeats them.
exit
}
