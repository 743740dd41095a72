#!/usr/bin/env bash
# Compiles every BPF program in $1 into $2/<name>.o and generates the Java view
# of veer_abi.h into $3. Called by Maven (generate-sources) and usable by hand.
set -euo pipefail
src=$1 out=$2 gen=$3
command -v clang >/dev/null || { echo "build-bpf.sh: clang not found; install Debian packages clang libbpf-dev (./veer setup does)" >&2; exit 1; }
[ -f /usr/include/bpf/bpf_helpers.h ] || { echo "build-bpf.sh: libbpf headers missing; install libbpf-dev" >&2; exit 1; }
mkdir -p "$out" "$gen/dev/veer/bpf/abi"
for c in "$src"/*.c; do
  name=$(basename "$c" .c)
  clang -O2 -g -Wall -Werror -target bpf -I/usr/include/x86_64-linux-gnu -I"$src" \
    -c "$c" -o "$out/$name.o"
done
# The preprocessor expands the X-macro lists of veer_abi.h into Java source.
clang -E -P -x c -I"$src" "$src/../abi/VeerAbi.java.in" \
  | sed -e 's/^ *//' -e '/^$/d' > "$gen/dev/veer/bpf/abi/VeerAbi.java"
