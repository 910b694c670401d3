#!/usr/bin/env sh
# The system tools two tests drive: Debian's chromium + chromedriver (the dashboard browser
# test) and docker compose (the deployment test validates docker-compose.yml). `make test`
# runs this first: it installs what is missing with apt-get (as root or through sudo), or
# says in one line what to install.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || missing="$missing docker-compose"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="none"; fi
if [ "$sudo" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "make test needs:$missing (install them with your package manager, then run make test again)" >&2
  exit 1
fi
echo "installing test tools:$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
