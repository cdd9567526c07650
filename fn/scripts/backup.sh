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
# The upload streams with the dump, under a temporary name that no restore
# lists, and is renamed once the dump is whole.
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

# Object storage, checked before anything is dumped.
rclone="${RCLONE:-rclone}"
remote=""
if [[ -n "${S3_BUCKET:-}" ]]; then
  if [[ ! "${S3_PREFIX:-}" =~ ^([A-Za-z0-9._-]+/)+$ ]]; then
    echo "backup: S3_PREFIX must be a path ending in /, not '${S3_PREFIX:-}'" >&2
    exit 1
  fi
  remote="dbplane:${S3_BUCKET}/${S3_PREFIX}"
  # With BACKUP_KEY (from the encryption key Secret), through the crypt
  # remote configured onto that prefix: encrypted in the pod, decrypted in
  # the pod. The key goes to rclone on stdin, never on a command line.
  if [[ -n "${BACKUP_KEY:-}" ]]; then
    RCLONE_CONFIG_DBPLANECRYPT_PASSWORD="$(printf '%s' "${BACKUP_KEY}" | "${rclone}" obscure -)"
    export RCLONE_CONFIG_DBPLANECRYPT_PASSWORD
    remote="dbplanecrypt:"
  fi
fi

@LOCK@

file=""
tmp=""
# partial is the object the upload streams into while it may exist in the
# bucket under that name; uploader is the rclone that writes it.
partial=""
uploader=""
# On any exit: end the streamed upload and delete what it wrote, remove the
# temporary files and a checksum published without its backup, then give
# the lock back.
cleanup() {
  if [[ -n "${uploader}" ]]; then
    # The dump's pipeline has ended, so the upload's input has too; opening
    # the FIFO read-write (which never blocks) ends it even had the
    # pipeline not opened it. The upload then completes what it has, under
    # the temporary name, which is deleted.
    : <>"${tmp}.upload"
    wait "${uploader}" || true
  fi
  if [[ -n "${partial}" ]]; then
    "${rclone}" delete --max-depth 1 --filter "+ /${partial}" --filter "- **" -- "${remote}" ||
      echo "backup: warning: cannot delete ${partial} from s3://${S3_BUCKET}/${S3_PREFIX}; a later run prunes it" >&2
  fi
  if [[ -n "${file}" ]]; then
    rm -f -- "${tmp}" "${tmp}.sha256" "${tmp}.manifest" "${tmp}.fifo" "${tmp}.upload"
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
# With object storage, the compressed stream is uploaded as it is written,
# through a second FIFO, to the temporary object .<name>.partial: S3
# completes a streamed upload at the end of its input, whole dump or not,
# and restore and retention never list that name. An upload that fails does
# not fail the dump (tee drops a reader that is gone): the backup is then
# uploaded from the volume once it is published there.
uploads=()
if [[ -n "${remote}" ]]; then
  mkfifo -- "${tmp}.upload"
  partial=".${file}.partial"
  # rcat streams in parts held in memory (4 at a time), at most 10,000 of
  # them: 16 MiB parts take a stream of up to 156 GiB.
  "${rclone}" rcat --s3-chunk-size 16M -- "${remote}${partial}" < "${tmp}.upload" &
  uploader=$!
  uploads=("${tmp}.upload")
fi
# gzip -1: on the benchmark's dump (README, Tests: bench-backup) 2.1 times
# as fast as gzip's default -6 for 2% more bytes. The same format, which
# restore.sh and verify.sh read whichever the level, older -6 backups too.
@DUMP@ | tee -- "${tmp}.fifo" | gzip -1 -c | tee --output-error=warn-nopipe -- "${uploads[@]}" > "${tmp}"
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

# Object storage: the streamed upload renamed to the backup's name once
# the dump is whole and it has the volume copy's size, then the manifest,
# then the checksum. A backup counts (restore.sh, retention) only once its
# .sha256 object exists, and the rename is a server-side copy, which makes
# the object whole or not at all, so an upload cut off leaves no listed
# backup, and the ones before it untouched.
if [[ -n "${remote}" ]]; then
  size="$(stat -c %s -- "${BACKUP_DIR}/${file}")"
  streamed=true
  wait "${uploader}" || streamed=false
  uploader=""
  if [[ "${streamed}" != true ]] ||
    [[ "$("${rclone}" lsf --files-only --max-depth 1 --format s --filter "+ /${partial}" --filter "- **" -- "${remote}")" != "${size}" ]]; then
    echo "backup: the upload streamed with the dump failed; uploading ${file} from the volume"
    "${rclone}" copyto --retries 3 -- "${BACKUP_DIR}/${file}" "${remote}${partial}"
  fi
  "${rclone}" moveto --retries 3 -- "${remote}${partial}" "${remote}${file}"
  partial=""
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
  # A run killed outright leaves its temporary object: as on the volume,
  # removed once far older than the job's deadline.
  "${rclone}" delete --max-depth 1 --min-age 12h -v --filter "+ /.${DATABASE}-*.@EXT@.gz.partial" --filter "- **" -- "${remote}" 2>&1 |
    sed 's|^.*INFO  *: \(.*\): Deleted$|removed stale s3 \1|'
fi
