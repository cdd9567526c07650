# dbplane restore: load a backup written by backup.sh into ${DATABASE}. The
# backup's checksum is verified before anything is loaded, and a database
# that already has tables is refused unless RESTORE_FORCE=true. Credentials
# come from the environment (the credentials Secret), never the command line.
#
# Environment: BACKUP_DIR, DATABASE, DB_HOST, DB_PORT, DB_USER, the client's
# password variable (PGPASSWORD, MYSQL_PWD), RESTORE_FROM (latest, or the
# name of a backup in BACKUP_DIR) and optionally RESTORE_FORCE.
#
# With S3_BUCKET set, the backup is read from the bucket instead, under
# S3_PREFIX (the source Database's), with rclone (the remote dbplane: is
# configured by RCLONE_CONFIG_DBPLANE_* variables): a backup is listed only
# once its .sha256 object exists (backup.sh uploads it last); both are
# downloaded into RESTORE_SCRATCH and checked as on the volume.
#
# With RESTORE_MANIFEST=true the backup's .manifest is downloaded beside it
# (verify.sh compares it); with RESTORE_REPORT set, the name of the backup
# loaded is written to that file.
#
# While a backup run holds BACKUP_DIR's lock (lock.sh), the restore waits
# for it to finish, and says so.
#
# RESTORE_FORCE=true only skips the empty-database check; what happens to
# what exists is up to the dump. mysqldump drops each table it holds before
# creating it and keeps other tables. A PostgreSQL load runs in one
# transaction: one that fails, say on an object that exists, changes nothing.
set -euo pipefail

fail() {
  echo "restore: $*" >&2
  exit 1
}

: "${BACKUP_DIR:?must be set}" "${DATABASE:?must be set}" "${DB_HOST:?must be set}" "${DB_PORT:?must be set}" "${DB_USER:?must be set}"
: "${RESTORE_FROM:?must be set to latest or the name of a backup in BACKUP_DIR}"
if [[ ! "${DATABASE}" =~ ^[A-Za-z0-9_]+$ ]]; then
  fail "cannot restore database '${DATABASE}': only letters, digits and _ are supported"
fi

# A backup run holding the volume's lock may be about to publish a newer
# backup or prune the one this would load: wait for it to finish. From the
# bucket alone (a restore Job's emptyDir), there is no lock.
@LOCK@
lock_free restore

if [[ -n "${S3_BUCKET:-}" ]]; then
  : "${RESTORE_SCRATCH:?must be set with S3_BUCKET}"
  if [[ ! "${S3_PREFIX:-}" =~ ^([A-Za-z0-9._-]+/)+$ ]]; then
    fail "S3_PREFIX must be a path ending in /, not '${S3_PREFIX:-}'"
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
  listed="$("${rclone}" lsf --files-only --max-depth 1 --include "/${DATABASE}-*.@EXT@.gz.sha256" -- "${remote}")" ||
    fail "cannot list the backups in s3://${S3_BUCKET}/${S3_PREFIX}"
  if [[ "${RESTORE_FROM}" == latest ]]; then
    file="$(LC_ALL=C sort <<<"${listed}" | tail -n 1)"
    file="${file%.sha256}"
    [[ -n "${file}" ]] || fail "cannot find a backup of ${DATABASE} in s3://${S3_BUCKET}/${S3_PREFIX}"
  else
    file="${RESTORE_FROM}"
    if [[ "${file}" == */* || "${file}" != "${DATABASE}"-*.@EXT@.gz ]]; then
      fail "cannot restore '${file}': RESTORE_FROM must be latest or a backup name matching ${DATABASE}-*.@EXT@.gz"
    fi
    grep -qxF -- "${file}.sha256" <<<"${listed}" || fail "cannot find ${file} in s3://${S3_BUCKET}/${S3_PREFIX}"
  fi
  if ! "${rclone}" copyto --retries 3 -- "${remote}${file}.sha256" "${RESTORE_SCRATCH}/${file}.sha256" 2>"${RESTORE_SCRATCH}/.rclone.log"; then
    cat -- "${RESTORE_SCRATCH}/.rclone.log" >&2
    # The ciphertext downloads but does not decrypt: another key (or an
    # altered object; every chunk is authenticated).
    if [[ -n "${BACKUP_KEY:-}" ]] && "${rclone}" cat -- "dbplane:${S3_BUCKET}/${S3_PREFIX}${file}.sha256.bin" >/dev/null 2>&1; then
      fail "cannot decrypt ${file}.sha256: BACKUP_KEY is not the key it was encrypted with (or the object was altered); nothing was loaded"
    fi
    fail "cannot download ${file}.sha256 from s3://${S3_BUCKET}/${S3_PREFIX}"
  fi
  "${rclone}" copyto --retries 3 -- "${remote}${file}" "${RESTORE_SCRATCH}/${file}" ||
    fail "cannot download ${file} from s3://${S3_BUCKET}/${S3_PREFIX}"
  if [[ "${RESTORE_MANIFEST:-}" == true ]]; then
    "${rclone}" copyto --retries 3 -- "${remote}${file}.manifest" "${RESTORE_SCRATCH}/${file}.manifest" ||
      fail "cannot download ${file}.manifest from s3://${S3_BUCKET}/${S3_PREFIX}"
  fi
  echo "downloaded ${file} from s3://${S3_BUCKET}/${S3_PREFIX}"
  BACKUP_DIR="${RESTORE_SCRATCH}"
  RESTORE_FROM="${file}"
fi

# Backups are named ${DATABASE}-<UTC timestamp>.@EXT@.gz: in byte order, the
# last is the newest. Temporary files start with a dot and never match.
if [[ "${RESTORE_FROM}" == latest ]]; then
  file="$(find "${BACKUP_DIR}" -maxdepth 1 -type f -name "${DATABASE}-*.@EXT@.gz" -printf '%f\n' | LC_ALL=C sort | tail -n 1)"
  [[ -n "${file}" ]] || fail "cannot find a backup of ${DATABASE} in ${BACKUP_DIR}"
else
  file="${RESTORE_FROM}"
  if [[ "${file}" == */* || "${file}" != "${DATABASE}"-*.@EXT@.gz ]]; then
    fail "cannot restore '${file}': RESTORE_FROM must be latest or a file name matching ${DATABASE}-*.@EXT@.gz in ${BACKUP_DIR}"
  fi
  [[ -f "${BACKUP_DIR}/${file}" ]] || fail "cannot find ${file} in ${BACKUP_DIR}"
fi
backup="${BACKUP_DIR}/${file}"

# The checksum file must name exactly this backup, and match it.
[[ -f "${backup}.sha256" ]] || fail "cannot verify ${file}: ${file}.sha256 is missing; refusing to load an unverified backup"
line="$(cat -- "${backup}.sha256")"
re='^[0-9a-f]{64} [ *](.*)$'
if [[ ! "${line}" =~ ${re} || "${BASH_REMATCH[1]}" != "${file}" ]]; then
  fail "cannot verify ${file}: ${file}.sha256 is not a sha256sum line for ${file}"
fi
if ! (cd -- "${BACKUP_DIR}" && sha256sum --check --strict --quiet -- "${file}.sha256"); then
  fail "cannot verify ${file}: checksum mismatch; the backup is damaged, nothing was loaded"
fi
echo "verified ${file} (sha256 ${line%% *})"

tables="$(@TABLES@)" || fail "cannot count the tables of ${DATABASE} on ${DB_HOST}:${DB_PORT}"
tables="${tables//[[:space:]]/}"
[[ "${tables}" =~ ^[0-9]+$ ]] || fail "cannot count the tables of ${DATABASE}: got '${tables}'"
if ((10#${tables} > 0)); then
  if [[ "${RESTORE_FORCE:-}" != true ]]; then
    fail "refusing to restore into ${DATABASE}: it already has ${tables} table(s); set RESTORE_FORCE=true to load ${file} anyway"
  fi
  echo "RESTORE_FORCE=true: loading into ${DATABASE}, which has ${tables} tables"
fi

echo "restoring ${file} into ${DATABASE} on ${DB_HOST}:${DB_PORT}"
start="${SECONDS}"
gunzip -c -- "${backup}" | @RESTORE@
echo "restored ${file} into ${DATABASE} in $((SECONDS - start))s"
if [[ -n "${RESTORE_REPORT:-}" ]]; then
  printf '%s\n' "${file}" > "${RESTORE_REPORT}"
fi
