#!/usr/bin/env bash
# What `make test` needs from the system, beyond Python: bubblewrap (bwrap), the hardened grader's
# sandbox, and Chromium, the browser the notebooks are tested in. `make lab` needs neither.
# Installs what is missing on a Debian/Ubuntu machine where we are root; otherwise stops with one line.
# BWRAP and CHROMIUM (default: bwrap, chromium) name the commands to look for.
set -uo pipefail
declare -A package_of=([${BWRAP:-bwrap}]=bubblewrap [${CHROMIUM:-chromium}]=chromium)
missing=()
for cmd in "${!package_of[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
IFS=$'\n' missing=($(sort <<<"${missing[*]}")); unset IFS
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} (apt-get), for the grader's sandbox and the browser tests"
    log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log"
        echo "setup: apt-get could not install ${missing[*]} (output above)" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    still=()
    for cmd in "${!package_of[@]}"; do command -v "$cmd" >/dev/null 2>&1 || still+=("$cmd"); done
    [ ${#still[@]} -eq 0 ] && exit 0
fi
echo "make test needs ${missing[*]} (the grader's sandbox and the browser tests): run 'sudo apt-get install ${missing[*]}', then 'make test' again" >&2
exit 1
