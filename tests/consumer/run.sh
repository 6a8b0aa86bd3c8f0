#!/usr/bin/env bash
# Builds the README's first program as an outside project would, and runs it.
#   run.sh find_package     SOURCE WORKDIR   install minicnn to a prefix, then find_package()
#   run.sh add_subdirectory SOURCE WORKDIR   add_subdirectory() the source tree
#   run.sh pkg_config       SOURCE WORKDIR   install minicnn to a prefix, then plain g++ with
#                                            $(pkg-config --cflags --libs minicnn)
# Unoptimised builds: what is tested is that the package is found and links, and -O0 compiles
# faster than -O2.
set -euo pipefail
mode=$1 source=$2 work=$3
example=$source/examples/readme/first_program.cpp
rm -rf "$work" && mkdir -p "$work"
install_minicnn() {
  cmake -S "$source" -B "$work/minicnn-build" -DMINICNN_BUILD_TESTS=OFF -DMINICNN_BUILD_EXAMPLES=OFF \
        -DMINICNN_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --install "$work/minicnn-build" --prefix "$work/prefix" >/dev/null
}
case $mode in
  find_package)
    install_minicnn
    cmake -S "$source/tests/consumer/find_package" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
          -DREADME_EXAMPLE="$example" -DCMAKE_BUILD_TYPE= >/dev/null
    cmake --build "$work/build" >/dev/null ;;
  add_subdirectory)
    cmake -S "$source/tests/consumer/add_subdirectory" -B "$work/build" -DMINICNN_SOURCE="$source" \
          -DREADME_EXAMPLE="$example" -DCMAKE_BUILD_TYPE= >/dev/null
    cmake --build "$work/build" >/dev/null ;;
  pkg_config)
    install_minicnn
    flags=$(PKG_CONFIG_PATH="$work/prefix/share/pkgconfig" pkg-config --cflags --libs minicnn)
    echo "pkg-config --cflags --libs minicnn: $flags"
    mkdir -p "$work/build"
    # shellcheck disable=SC2086  # the flags are a word list
    g++ -std=c++17 -O0 "$example" $flags -o "$work/build/first_program" ;;
  *) echo "usage: run.sh find_package|add_subdirectory|pkg_config SOURCE WORKDIR" >&2; exit 2 ;;
esac
output=$("$work/build/first_program")
echo "first_program printed: $output"
# The program prints the first loss and the parameter count.
read -r loss count <<<"$output"
[ "$count" = 74602 ] || { echo "expected 74602 parameters, got $count" >&2; exit 1; }
awk -v l="$loss" 'BEGIN { exit !(l > 2.0 && l < 2.7) }' || { echo "loss $loss is not near ln(10)" >&2; exit 1; }
