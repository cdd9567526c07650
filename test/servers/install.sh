#!/usr/bin/env bash
# Installs the database servers and clients the integration tests in
# test/integration start throwaway instances of: PostgreSQL 15 and MariaDB
# 10.11, from Debian 12's archive, and rclone, the S3 client backups upload
# with. Idempotent: exits at once when every binary
# the tests use is present. Needs root (or password-less sudo) and never reads
# stdin, so it runs unattended in CI. With CI set, failing to install is an
# error; without, the integration tests skip.
#
# The packages' maintainer scripts would start the system-wide instances
# (5432, 3306). The tests never use them, so while installing we deny service
# starts with a policy-rc.d (unless the machine already has one, as Docker
# images do).
set -euo pipefail

pg_bin=/usr/lib/postgresql/15/bin

need=(
  "${pg_bin}/initdb" "${pg_bin}/postgres" "${pg_bin}/pg_basebackup" "${pg_bin}/pg_isready" "${pg_bin}/pgbench" psql pg_dump
  mariadbd mariadb-install-db mariadb mariadb-dump mysql mysqldump
  rclone
)

have() {
  local b
  for b in "${need[@]}"; do
    case "${b}" in
      /*) [[ -x "${b}" ]] || return 1 ;;
      *) PATH="${PATH}:/usr/sbin:/sbin" command -v "${b}" >/dev/null || return 1 ;;
    esac
  done
}

if have; then
  exit 0
fi

# Outside CI a machine that cannot install (no apt, no root) still runs the
# other tests: the integration tests skip. In CI they must run.
cannot() {
  echo "test/servers/install.sh: cannot install database servers: $*" >&2
  if [[ -n "${CI:-}" ]]; then
    exit 1
  fi
  echo "test/servers/install.sh: test/integration will skip" >&2
  exit 0
}

command -v apt-get >/dev/null || cannot "apt-get not found (the tests expect Debian 12's packages)"
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    cannot "run as root or with password-less sudo"
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# rclone: the S3 client the backup and restore scripts upload and download with.
packages=(postgresql mariadb-server mariadb-client rclone)
apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

policy=/usr/sbin/policy-rc.d
if [[ ! -e "${policy}" ]]; then
  trap '"${sudo[@]}" rm -f -- "${policy}"' EXIT
  printf '#!/bin/sh\n# test/servers/install.sh: no service starts while installing.\nexit 101\n' |
    "${sudo[@]}" tee "${policy}" >/dev/null
  "${sudo[@]}" chmod 0755 "${policy}"
fi

# Update the package lists once, and only when they are missing or too old
# to install from.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  "${sudo[@]}" apt-get update -q </dev/null
  "${sudo[@]}" apt-get install "${apt_opts[@]}" "${packages[@]}" </dev/null
elif ! "${sudo[@]}" apt-get install "${apt_opts[@]}" "${packages[@]}" </dev/null; then
  "${sudo[@]}" apt-get update -q </dev/null
  "${sudo[@]}" apt-get install "${apt_opts[@]}" "${packages[@]}" </dev/null
fi

if ! have; then
  echo "test/servers/install.sh: cannot find every server binary after installing ${packages[*]}" >&2
  exit 1
fi
