#!/usr/bin/env bash
# check_demo.sh MODE DEMO SAME_WEIGHTS MPIEXEC NUMPROC_FLAG: the fashion_mnist demo's
# `train --distributed` against its plain runs (docs/distributed.md). Modes:
#   equal_fashion_cnn, equal_fashion_resnet  a plain `train --micro-batch 16` and the same run
#       under mpirun -np 2 --distributed write bit-identical parameters (fashion_cnn: the whole
#       model.safetensors; fashion_resnet: parameters only, its BatchNorm buffers being rank 0's);
#   resume       a distributed run interrupted (--interrupt-after) and resumed under mpirun, and
#       the same checkpoint resumed by one plain process, both end with the uninterrupted
#       distributed run's model.safetensors, byte for byte;
#   no_launcher  --distributed without mpirun: exit 2, one line saying how to start it;
#   bad_batch    a batch two processes cannot share: exit 2, the message once, from rank 0;
#   fault        an error on rank 0 alone (an output folder it cannot create) ends the whole job
#       non-zero with that rank's message, within 30 s.
# Exits 77 (CTest: skipped) when Fashion-MNIST is not installed.
set -uo pipefail
mode=$1 demo=$2 same_weights=$3 mpiexec=$4 numproc_flag=$5
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mpirun2=("$mpiexec" "$numproc_flag" 2 --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1)
small="--seed 0 --limit-train 256 --limit-test 100 --epochs 2 --batch-size 32 --test-batch-size 100 --threads 1"
fail=0
check() {  # check DESCRIPTION COMMAND...: runs the command, reports, remembers a failure
  local description=$1
  shift
  if "$@"; then echo "OK: $description"; else echo "FAIL: $description"; fail=1; fi
}
# run NAME COMMAND...: runs it with output in $scratch/NAME.{out,err}, sets $status.
run() {
  local name=$1
  shift
  "$@" >"$scratch/$name.out" 2>"$scratch/$name.err"
  status=$?
  echo "--- $name: exit $status: $*"
  grep -E '^(recipe|processes|epoch |interrupted|  (mpirun|fashion_mnist)|resumed|final)' "$scratch/$name.out"
  tail -n 12 "$scratch/$name.err"
}
need_data() {
  if grep -q "Fashion-MNIST .* not found" "$scratch/$1.err"; then
    echo "SKIPPED: Fashion-MNIST not installed"
    exit 77
  fi
}

case $mode in
  equal_fashion_cnn | equal_fashion_resnet)
    model=${mode#equal_}
    flags="--model $model --micro-batch 16 $small"
    run plain "$demo" train $flags --out "$scratch/plain"
    need_data plain
    check "the plain run succeeds" test "$status" -eq 0
    run distributed "${mpirun2[@]}" "$demo" train --distributed $flags --out "$scratch/distributed"
    check "the distributed run succeeds" test "$status" -eq 0
    check "it says how it trains" grep -q "processes: 2 processes (MPI, fixed_order reduction); each runs 1 micro-batch of 16 images per step" "$scratch/distributed.out"
    check "its progress shows the communication time" grep -q "img/s on 2 processes, communication .* ms/step" "$scratch/distributed.out"
    check "rank 0 alone printed" test "$(grep -c '^recipe ' "$scratch/distributed.out")" -eq 1
    if [ "$model" = fashion_cnn ]; then
      check "model.safetensors is byte-identical" cmp "$scratch/plain/model.safetensors" "$scratch/distributed/model.safetensors"
      check "every tensor is bit-identical" "$same_weights" "$scratch/plain/model.safetensors" "$scratch/distributed/model.safetensors"
    else
      check "every parameter is bit-identical" "$same_weights" "$scratch/plain/model.safetensors" "$scratch/distributed/model.safetensors" --parameters-only
    fi ;;
  resume)
    flags="--micro-batch 16 $small"
    run straight "${mpirun2[@]}" "$demo" train --distributed $flags --out "$scratch/straight"
    need_data straight
    check "the uninterrupted run succeeds" test "$status" -eq 0
    # 8 steps per epoch: stop inside epoch 1.
    run stopped "${mpirun2[@]}" "$demo" train --distributed $flags --out "$scratch/stopped" --interrupt-after 5
    check "the interrupted run exits 130" test "$status" -eq 130
    check "it says how to continue" grep -q "continue with" "$scratch/stopped.out"
    cp -r "$scratch/stopped" "$scratch/stopped_plain"
    run resumed "${mpirun2[@]}" "$demo" train --distributed --resume "$scratch/stopped/checkpoint.safetensors"
    check "the resumed run succeeds" test "$status" -eq 0
    check "resumed under mpirun: the uninterrupted run's model.safetensors" cmp "$scratch/straight/model.safetensors" "$scratch/stopped/model.safetensors"
    run resumed_plain "$demo" train --threads 1 --resume "$scratch/stopped_plain/checkpoint.safetensors"
    check "resumed by one process: the same file" cmp "$scratch/straight/model.safetensors" "$scratch/stopped_plain/model.safetensors" ;;
  no_launcher)
    run no_launcher env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK "$demo" train --distributed --limit-train 64 --out "$scratch/x"
    check "exit status 2" test "$status" -eq 2
    check "one line on stderr" test "$(wc -l <"$scratch/no_launcher.err")" -eq 1
    check "it says how to start it" grep -q "start it as \`mpirun -np 2" "$scratch/no_launcher.err" ;;
  bad_batch)
    run bad_batch "${mpirun2[@]}" "$demo" train --distributed --batch-size 33 --limit-train 64 --out "$scratch/x"
    check "exit status 2" test "$status" -eq 2
    check "the message, once" test "$(grep -c "error: --distributed with 2 processes: the batch size 33 is not a multiple of 2" "$scratch/bad_batch.err")" -eq 1 ;;
  fault)
    start=$SECONDS
    run fault timeout 50 "${mpirun2[@]}" "$demo" train --distributed $small --out /proc/forbidden/run
    check "a non-zero exit status (not the timeout's)" test "$status" -ne 0 -a "$status" -ne 124
    check "rank 0's message" grep -q "rank 0 of 2: --out '/proc/forbidden/run': cannot create the folder" "$scratch/fault.err"
    check "within 30 s" test $((SECONDS - start)) -le 30 ;;
  *) echo "check_demo.sh: unknown mode '$mode'"; exit 2 ;;
esac
exit "$fail"
