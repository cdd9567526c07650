# One backup run at a time on the backup volume. The CronJob never starts
# two of its own, but an on-demand backup Job is another Job on the same
# volume (and bucket prefix). The lock is the directory ${BACKUP_DIR}/.lock,
# made with mkdir, which is atomic; .lock/owner says who holds it (the pod,
# the pid, since when). A backup run holds it from before it names its
# backup until after its upload and retention, so that runs never share a
# name or prune while another uploads. Readers (restore.sh, verify.sh;
# their mount is read-only) wait while it is held.
#
# A run killed outright (deadline, eviction, OOM) cannot remove its lock.
# No backup run lives longer than its Job's activeDeadlineSeconds and the
# pod's grace period, so a lock older than @STALE@ seconds is stale: its
# holder is gone. A writer removes it, under the guard .lock.break and only
# while it is still stale, so that two waiters never both remove one, nor a
# fresh one; a reader ignores it.
lock="${BACKUP_DIR}/.lock"
lock_stale=@STALE@
lock_owner="${HOSTNAME:-unknown} pid $$ since $(date -u +%Y-%m-%dT%H:%M:%SZ)"
lock_held=""

# lock_age is how long ago the lock was taken, in seconds; it fails when
# there is no lock.
lock_age() {
  local since
  since="$(stat -c %Y -- "${lock}" 2>/dev/null)" || return 1
  echo "$((EPOCHSECONDS - since))"
}

lock_holder() {
  cat -- "${lock}/owner" 2>/dev/null || echo "a run that has not written its owner yet"
}

# lock_wait announces, once per holder, that this run waits for it.
lock_waiting=""
lock_wait() {
  local holder
  holder="$(lock_holder)"
  if [[ "${holder}" != "${lock_waiting}" ]]; then
    echo "$1: waiting for ${lock}, held by ${holder} (stale after ${lock_stale}s)"
    lock_waiting="${holder}"
  fi
  sleep 2
}

# lock_break removes the lock if it is stale, holding .lock.break. A guard
# left by a run killed while it held it, for a moment, is gone after a
# minute.
lock_break() {
  local age
  if ! mkdir -- "${lock}.break" 2>/dev/null; then
    age="$(stat -c %Y -- "${lock}.break" 2>/dev/null)" || return 0
    if ((EPOCHSECONDS - age > 60)); then
      rmdir -- "${lock}.break" 2>/dev/null || true
    fi
    sleep 1
    return 0
  fi
  if age="$(lock_age)" && ((age > lock_stale)); then
    echo "$1: removing the stale lock ${lock} of ${age}s ago, held by $(lock_holder): that run is gone"
    rm -rf -- "${lock}"
  fi
  rmdir -- "${lock}.break"
}

# lock_take waits for the lock and takes it; lock_release (on exit) gives
# it back, only if it is still this run's.
lock_take() {
  local begin="${EPOCHSECONDS}" age err tries=0
  until err="$(mkdir -- "${lock}" 2>&1)"; do
    if ! age="$(lock_age)"; then
      # Released this moment; or mkdir cannot make it at all.
      if ((++tries >= 3)); then
        echo "$1: cannot take ${lock}: ${err}" >&2
        exit 1
      fi
      continue
    fi
    tries=0
    if ((age > lock_stale)); then
      lock_break "$1"
      continue
    fi
    lock_wait "$1"
  done
  lock_held=true
  printf '%s\n' "${lock_owner}" > "${lock}/owner"
  if [[ -n "${lock_waiting}" ]]; then
    echo "$1: took ${lock} after waiting $((EPOCHSECONDS - begin))s"
  fi
}

lock_release() {
  if [[ -n "${lock_held}" && "$(cat -- "${lock}/owner" 2>/dev/null)" == "${lock_owner}" ]]; then
    rm -rf -- "${lock}"
  fi
  lock_held=""
}

# lock_free waits until no live backup run holds the lock, without taking
# it.
lock_free() {
  local age
  while age="$(lock_age)"; do
    if ((age > lock_stale)); then
      echo "$1: ignoring the stale lock ${lock} of ${age}s ago, held by $(lock_holder): that run is gone"
      break
    fi
    lock_wait "$1"
  done
  if [[ -n "${lock_waiting}" ]]; then
    echo "$1: ${lock} is free"
  fi
}
