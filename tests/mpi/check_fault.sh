#!/usr/bin/env bash
# check_fault.sh MODE FAULT_BINARY MPIEXEC NUMPROC_FLAG: runs tests/mpi/fault.cpp's MODE and
# checks that the job ends non-zero, within 30 s, with the message that names the failure.
set -uo pipefail
mode=$1 binary=$2 mpiexec=$3 numproc_flag=$4
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
case $mode in
  throw | hang)
    timeout 50 "$mpiexec" "$numproc_flag" 2 --allow-run-as-root --oversubscribe "$binary" "$mode" >"$log" 2>&1
    status=$? ;;
  no_launcher)
    env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK "$binary" >"$log" 2>&1
    status=$? ;;
  *) echo "check_fault.sh: unknown mode '$mode', expected throw, hang or no_launcher"; exit 2 ;;
esac
elapsed=$((SECONDS - start))
cat "$log"
case $mode in
  throw) expected="rank 1 of 2: images 'train-images-idx3-ubyte.gz': unexpected end of file" ;;
  hang) expected="rank 0: MPI_Alltoallv (gradients) has waited 2 s" ;;
  no_launcher) expected="start it as \`mpirun -np 2" ;;
esac
fail=0
if [ "$status" -eq 0 ]; then echo "FAIL: exit status 0, expected non-zero"; fail=1; fi
if [ "$status" -eq 124 ]; then echo "FAIL: the job hung (killed by timeout after 50 s)"; fail=1; fi
if ! grep -qF -- "$expected" "$log"; then echo "FAIL: the output lacks: $expected"; fail=1; fi
if [ "$elapsed" -gt 30 ]; then echo "FAIL: took $elapsed s, expected at most 30"; fail=1; fi
[ "$fail" -eq 0 ] && echo "OK: exit status $status after $elapsed s with the expected message"
exit "$fail"
