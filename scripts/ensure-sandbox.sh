#!/usr/bin/env bash
# The hardened grader's sandbox is bubblewrap (bwrap). `make test` needs it; `make lab` never does.
# Installs it when missing on a Debian/Ubuntu machine where we are root; otherwise stops with one line.
# BWRAP (default: bwrap) names the command to look for.
set -uo pipefail
bwrap_cmd="${BWRAP:-bwrap}"
if command -v "$bwrap_cmd" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing bubblewrap, the grader's sandbox (apt-get install bubblewrap)"
    log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } >"$log" 2>&1; then
        cat "$log"
        echo "setup: apt-get could not install bubblewrap (output above)" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    command -v "$bwrap_cmd" >/dev/null 2>&1 && exit 0
fi
echo "make test needs bubblewrap, the hardened grader's sandbox: run 'sudo apt-get install bubblewrap', then 'make test' again" >&2
exit 1
