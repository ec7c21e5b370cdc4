#!/bin/sh
# Minimal stand-in for the official image's entrypoint: when the command is nginx, run the
# executable scripts in /docker-entrypoint.d/ (none ship here), then exec the command as given.
set -e
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    for f in /docker-entrypoint.d/*.sh; do
        [ -x "$f" ] || continue
        "$f"
    done
fi
exec "$@"
