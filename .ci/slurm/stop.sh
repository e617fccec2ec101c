#!/usr/bin/env bash
# Stop the daemons .ci/slurm/start.sh started, by the PIDs in their pid files, in reverse
# order of starting.  Files (configuration, accounting database, logs) stay in
# $COLORBENCH_SLURM_DIR; pass --purge to delete that folder too.
set -uo pipefail

STATE=${COLORBENCH_SLURM_DIR:-/tmp/colorbench-slurm}
RUN=$STATE/run

running() {  # a PID that exists and is not a zombie (PID 1 may reap a dead daemon seconds late)
    [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

stop() {  # stop NAME PIDFILE
    local name=$1 pidfile=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if running "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 40); do
            running "$pid" || break
            sleep 0.25
        done
        if running "$pid"; then
            echo ".ci/slurm/stop.sh: $name ($pid) ignored SIGTERM for 10s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

stop slurmd "$RUN/slurmd.pid"
stop slurmctld "$RUN/slurmctld.pid"
stop slurmdbd "$RUN/slurmdbd.pid"
stop mariadbd "$RUN/mysqld.pid"
stop munged "$RUN/munged.pid"

if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
fi
echo ".ci/slurm/stop.sh: stopped" >&2
