#!/usr/bin/env bash
# The load benchmark of the local server: builds `qchat-local` and `qchat-load` with the bench profile
# (opt-level 3; the release profile is sized for Lambda, opt-level "z"; both land in target/release), then runs
# `qchat-load` with the arguments given (see `target/release/qchat-load --help`), e.g.
#   ./infra/load.sh --connections 32 --seconds 20 --per-body 1
#   ./infra/load.sh --connections 32 --seconds 20 --mode replay
#   ./infra/load.sh --data-dir /tmp/qchat-big --seconds 60 --list   # runs add up in a kept folder
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile bench --quiet -p qchat-local --bins
exec target/release/qchat-load "$@"
