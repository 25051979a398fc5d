#!/usr/bin/env bash
# Regenerates the demo's sample output in README.md from a real run:
# `mpay demo` in release, its stdout (the narration and the summary)
# spliced between the README's `<!-- demo-sample:start -->` and
# `<!-- demo-sample:end -->` markers. Run from the repository's root:
#
#   scripts/readme-demo-sample.sh [--seed N]
#
# It exits non-zero (and leaves README.md alone) if the demo fails.
set -euo pipefail

readme=README.md
dir=/tmp/demo-rel
[[ -f $readme ]] || { echo "run it from the repository's root" >&2; exit 2; }
grep -q '^<!-- demo-sample:start -->$' "$readme" && grep -q '^<!-- demo-sample:end -->$' "$readme" \
  || { echo "$readme has no demo-sample markers" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out" "$out.readme"' EXIT
rm -rf "$dir"
cargo run --release --quiet -- demo --dir "$dir" "$@" >"$out"

awk -v sample="$out" '
  /^<!-- demo-sample:start -->$/ {
    print; print "```text"
    while ((getline line < sample) > 0) print line
    print "```"; skipping = 1; next
  }
  /^<!-- demo-sample:end -->$/ { skipping = 0 }
  !skipping { print }
' "$readme" >"$out.readme"
mv "$out.readme" "$readme"
echo "README.md: demo sample regenerated from a run in $dir"
