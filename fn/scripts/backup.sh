# dbplane backup: dump, compress and checksum to a temporary name, then
# publish by rename, so a failed run leaves no partial backup. Credentials
# come from the environment (the credentials Secret), never the command line.
set -euo pipefail
umask 077

ts="$(date -u +%Y%m%dT%H%M%SZ)"
file="${DATABASE}-${ts}.@EXT@.gz"
tmp="${BACKUP_DIR}/.${file}.partial"
trap 'rm -f -- "${tmp}" "${tmp}.sha256"' EXIT

@DUMP@ | gzip -c > "${tmp}"
gzip -t "${tmp}"
sum="$(sha256sum "${tmp}" | cut -d ' ' -f 1)"
printf '%s  %s\n' "${sum}" "${file}" > "${tmp}.sha256"
mv -- "${tmp}" "${BACKUP_DIR}/${file}"
mv -- "${tmp}.sha256" "${BACKUP_DIR}/${file}.sha256"
echo "wrote ${file} ($(stat -c %s "${BACKUP_DIR}/${file}") bytes, sha256 ${sum})"

# Retention: delete backups older than RETENTION_DAYS, never the one just
# written.
find "${BACKUP_DIR}" -maxdepth 1 -type f -name "${DATABASE}-*.@EXT@.gz" \
  -mmin "+$((RETENTION_DAYS * 1440))" ! -name "${file}" -print |
  while IFS= read -r old; do
    rm -f -- "${old}" "${old}.sha256"
    echo "pruned $(basename "${old}")"
  done
