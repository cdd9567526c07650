# dbplane backup: dump, compress and checksum to temporary names, then
# publish by rename, so a failed run leaves no partial backup and a published
# backup always has its checksum. Credentials come from the environment (the
# credentials Secret), never the command line.
#
# Environment: BACKUP_DIR, DATABASE, DB_HOST, DB_PORT, DB_USER,
# RETENTION_DAYS and the client's password variable (PGPASSWORD, MYSQL_PWD).
# With S3_BUCKET set (and S3_PREFIX, ending in /), each backup is also
# uploaded with rclone to the remote dbplane: its RCLONE_CONFIG_DBPLANE_*
# variables (endpoint, region, keys from the credentials Secret) configure;
# with BACKUP_KEY also encrypted, through the crypt remote dbplanecrypt:.
# Writes ${DATABASE}-<UTC timestamp>.@EXT@.gz, its .manifest (each table
# and the rows the dump holds of it, counted from the dump stream as it is
# written: verify.sh restores the backup and compares) and, in sha256sum's
# format, its .sha256; restore.sh reads them. Then deletes backups older than
# RETENTION_DAYS days, never the one just written; a failed run deletes none.
# Runs on one volume take turns (the lock below, lock.sh's): one that
# waits says so.
#
# The dump tool is the server image's own (pg_dump; Oracle's mysqldump), and
# restore.sh loads with the same image's client. test/integration runs this
# script against Debian's MariaDB, whose mysqldump is mariadb-dump: flags
# only Oracle's knows (--set-gtid-purged, --column-statistics) need a
# --loose- prefix to work with both; see test/integration/doc.go.
set -euo pipefail
umask 077

: "${BACKUP_DIR:?must be set}" "${DATABASE:?must be set}" "${DB_HOST:?must be set}" "${DB_PORT:?must be set}" "${DB_USER:?must be set}"
if [[ ! "${DATABASE}" =~ ^[A-Za-z0-9_]+$ ]]; then
  echo "backup: cannot back up database '${DATABASE}': only letters, digits and _ are supported" >&2
  exit 1
fi
if [[ ! "${RETENTION_DAYS:-}" =~ ^[1-9][0-9]*$ ]]; then
  echo "backup: RETENTION_DAYS must be a positive number of days, not '${RETENTION_DAYS:-}'" >&2
  exit 1
fi

@LOCK@

file=""
tmp=""
# On any exit: remove the temporary files and a checksum published without
# its backup, then give the lock back.
cleanup() {
  if [[ -n "${file}" ]]; then
    rm -f -- "${tmp}" "${tmp}.sha256" "${tmp}.manifest" "${tmp}.fifo"
    if [[ ! -e "${BACKUP_DIR}/${file}" ]]; then
      rm -f -- "${BACKUP_DIR}/${file}.sha256" "${BACKUP_DIR}/${file}.manifest"
    fi
  fi
  lock_release
}
trap cleanup EXIT
lock_take backup

# The name is the UTC second, taken under the lock: a run that follows
# another within its second waits for the next, so that no backup is ever
# overwritten.
ts="$(date -u +%Y%m%dT%H%M%SZ)"
while [[ -e "${BACKUP_DIR}/${DATABASE}-${ts}.@EXT@.gz" ]]; do
  sleep 1
  ts="$(date -u +%Y%m%dT%H%M%SZ)"
done
file="${DATABASE}-${ts}.@EXT@.gz"
tmp="${BACKUP_DIR}/.${file}.partial"

# A run killed outright (deadline, eviction, OOM) cannot clean up. Its
# temporary files stop changing when it dies; remove them once they are
# far older than the job's 3 hour deadline.
find "${BACKUP_DIR}" -maxdepth 1 -type f -name ".${DATABASE}-*.partial*" -mmin +720 -print -delete |
  sed 's|^.*/|removed stale |'

# The rows are counted from the dump as it streams, through a FIFO: a
# counter that dies fails the dump's pipeline (tee gets SIGPIPE).
mkfifo -- "${tmp}.fifo"
@COUNT@ < "${tmp}.fifo" > "${tmp}.manifest" &
counter=$!
@DUMP@ | tee -- "${tmp}.fifo" | gzip -c > "${tmp}"
wait "${counter}"
gzip -t -- "${tmp}"
sum="$(sha256sum -- "${tmp}" | cut -d ' ' -f 1)"
printf '%s  %s\n' "${sum}" "${file}" > "${tmp}.sha256"
# Data first, then names: a crash leaves either no backup or a whole one.
sync -- "${tmp}" "${tmp}.sha256" "${tmp}.manifest"
mv -- "${tmp}.manifest" "${BACKUP_DIR}/${file}.manifest"
mv -- "${tmp}.sha256" "${BACKUP_DIR}/${file}.sha256"
mv -- "${tmp}" "${BACKUP_DIR}/${file}"
sync -- "${BACKUP_DIR}" || echo "backup: warning: cannot sync ${BACKUP_DIR}" >&2
echo "wrote ${file} ($(stat -c %s -- "${BACKUP_DIR}/${file}") bytes, sha256 ${sum})"

# Retention: delete backups last modified more than RETENTION_DAYS days ago,
# with their checksums, and checksums as old whose backup is gone. The backup
# just written, the newest good one, is never deleted, even if the clock is
# off.
age="+$((RETENTION_DAYS * 1440))"
find "${BACKUP_DIR}" -maxdepth 1 -type f -name "${DATABASE}-*.@EXT@.gz" -mmin "${age}" ! -name "${file}" -print |
  while IFS= read -r old; do
    rm -f -- "${old}" "${old}.sha256" "${old}.manifest"
    echo "pruned ${old##*/}"
  done
find "${BACKUP_DIR}" -maxdepth 1 -type f \( -name "${DATABASE}-*.@EXT@.gz.sha256" -o -name "${DATABASE}-*.@EXT@.gz.manifest" \) -mmin "${age}" ! -name "${file}.*" -print |
  while IFS= read -r old; do
    if [[ ! -e "${old%.*}" ]]; then
      rm -f -- "${old}"
      echo "pruned ${old##*/}"
    fi
  done

# Object storage: the backup, then its checksum. An S3 object becomes
# visible only once its upload completed, and a backup counts (restore.sh,
# retention) only once its .sha256 object exists, so an upload cut off
# leaves no listed backup, and the ones before it untouched. Uploads go to
# the final names: S3 has no rename, and a server-side copy would only add a
# window in which the temporary object is left behind.
if [[ -n "${S3_BUCKET:-}" ]]; then
  if [[ ! "${S3_PREFIX:-}" =~ ^([A-Za-z0-9._-]+/)+$ ]]; then
    echo "backup: S3_PREFIX must be a path ending in /, not '${S3_PREFIX:-}'" >&2
    exit 1
  fi
  rclone="${RCLONE:-rclone}"
  remote="dbplane:${S3_BUCKET}/${S3_PREFIX}"
  # With BACKUP_KEY (from the encryption key Secret), through the crypt
  # remote configured onto that prefix: encrypted in the pod, decrypted in
  # the pod. The key goes to rclone on stdin, never on a command line.
  if [[ -n "${BACKUP_KEY:-}" ]]; then
    RCLONE_CONFIG_DBPLANECRYPT_PASSWORD="$(printf '%s' "${BACKUP_KEY}" | "${rclone}" obscure -)"
    export RCLONE_CONFIG_DBPLANECRYPT_PASSWORD
    remote="dbplanecrypt:"
  fi
  "${rclone}" copyto --retries 3 -- "${BACKUP_DIR}/${file}" "${remote}${file}"
  "${rclone}" copyto --retries 3 -- "${BACKUP_DIR}/${file}.manifest" "${remote}${file}.manifest"
  "${rclone}" copyto --retries 3 -- "${BACKUP_DIR}/${file}.sha256" "${remote}${file}.sha256"
  echo "uploaded ${file} to s3://${S3_BUCKET}/${S3_PREFIX}"

  # Retention, as on the volume: checksums first, so that a backup stops
  # being listed before its data goes; then old data objects, with any an
  # earlier run uploaded without its checksum. Never the one just written.
  # Filter rules apply in order, the first that matches wins.
  for pattern in "${DATABASE}-*.@EXT@.gz.sha256" "${DATABASE}-*.@EXT@.gz" "${DATABASE}-*.@EXT@.gz.manifest"; do
    "${rclone}" delete --max-depth 1 --min-age "${RETENTION_DAYS}d" -v \
      --filter "- /${file}" --filter "- /${file}.sha256" --filter "- /${file}.manifest" --filter "+ /${pattern}" --filter "- **" \
      -- "${remote}" 2>&1 |
      sed 's|^.*INFO  *: \(.*\): Deleted$|pruned s3 \1|'
  done
fi
