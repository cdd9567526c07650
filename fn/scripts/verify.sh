# dbplane verify: restore the newest backup into a scratch server in this
# pod and check it holds what was dumped. The scratch server (the server
# image's own binary) runs on loopback with its data in a temporary
# directory under SCRATCH, and is stopped and deleted on exit. restore.sh
# does the load, with every check it makes (checksum, decryption), after
# waiting for a backup run that holds the volume's lock; then the
# scratch server is dumped again and its rows counted as backup.sh counted
# them at dump time: the two manifests (every table and its rows) must be
# equal.
#
# Environment: restore.sh's (BACKUP_DIR, DATABASE, the S3 and key
# variables), SCRATCH (an emptyDir) and DB_USER. The source server is
# never connected to.
#
# Exits 0 when the backup verified, 2 when it does not restore, 3 when it
# restores but differs from its manifest (or has none); the Job's
# podFailurePolicy ends the Job at once on 2 and 3, which its Failed
# condition's message names. Prints the restore time (RTO) in seconds.
set -euo pipefail
umask 077

: "${BACKUP_DIR:?must be set}" "${DATABASE:?must be set}" "${SCRATCH:?must be set}" "${DB_USER:?must be set}"
scratch="$(mktemp -d "${SCRATCH}/verify.XXXXXX")"
scratch_stop() { :; }
cleanup() {
  scratch_stop || true
  rm -rf -- "${scratch}"
}
trap cleanup EXIT

# The scratch server trusts loopback: no password of the source is needed
# or used. It has no certificate: its clients connect without TLS, over
# loopback inside this pod (the MySQL commands say so themselves).
unset PGPASSWORD MYSQL_PWD PGSSLROOTCERT
export PGSSLMODE=disable
DB_HOST=127.0.0.1
export DB_HOST DB_PORT
@SCRATCH@

cat > "${scratch}/restore.sh" <<'DBPLANE_RESTORE'
@RESTORE_SCRIPT@
DBPLANE_RESTORE
mkdir -- "${scratch}/download"
begin="${EPOCHREALTIME}"
if ! RESTORE_FROM=latest RESTORE_SCRATCH="${scratch}/download" RESTORE_MANIFEST=true RESTORE_REPORT="${scratch}/restored" \
  bash "${scratch}/restore.sh"; then
  echo "verify: FAILED: the newest backup does not restore into a scratch server" >&2
  exit 2
fi
rto="$(awk -v b="${begin}" -v e="${EPOCHREALTIME}" 'BEGIN { printf "%.1f", e - b }')"
file="$(cat -- "${scratch}/restored")"
dir="${BACKUP_DIR}"
if [[ -n "${S3_BUCKET:-}" ]]; then
  dir="${scratch}/download"
fi
if [[ ! -f "${dir}/${file}.manifest" ]]; then
  echo "verify: FAILED: ${file} has no .manifest: cannot check what it restored (a backup from before manifests)" >&2
  exit 3
fi
@DUMP@ | @COUNT@ > "${scratch}/restored.manifest"
if ! diff -u --label "dumped ${file}" --label restored -- "${dir}/${file}.manifest" "${scratch}/restored.manifest" >&2; then
  echo "verify: FAILED: ${file} restored, but its tables or row counts differ from those recorded at dump time (above)" >&2
  exit 3
fi
tables="$(wc -l < "${scratch}/restored.manifest")"
rows="$(awk '{ n += $2 } END { print n + 0 }' "${scratch}/restored.manifest")"
echo "verified ${file}: ${tables//[[:space:]]/} tables, ${rows} rows, restored in ${rto}s"
if [[ -w /dev/termination-log ]]; then
  printf 'verified %s rto=%ss tables=%s rows=%s\n' "${file}" "${rto}" "${tables//[[:space:]]/}" "${rows}" > /dev/termination-log
fi
