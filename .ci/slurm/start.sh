#!/usr/bin/env bash
# Start a single-node SLURM on this machine for the tests marked `slurm`:
# munged, MariaDB (127.0.0.1 only), slurmdbd (accounting: submitit reads job states from
# sacct), slurmctld and slurmd, all started by hand (no systemd) as root, with every
# file under $COLORBENCH_SLURM_DIR (default /tmp/colorbench-slurm).  Installs Debian's
# packages when they are missing.  Waits until the node is idle, then prints the line
# that points the client commands at this cluster:
#     export SLURM_CONF=$COLORBENCH_SLURM_DIR/etc/slurm.conf
# Running it again while the cluster is up does nothing.  .ci/slurm/stop.sh stops it.
set -euo pipefail

STATE=${COLORBENCH_SLURM_DIR:-/tmp/colorbench-slurm}
# Ports away from the standard ones, so an installed SLURM or MariaDB is left alone.
CTLD_PORT=${COLORBENCH_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${COLORBENCH_SLURMD_PORT:-16818}
DBD_PORT=${COLORBENCH_SLURMDBD_PORT:-16819}
DB_PORT=${COLORBENCH_MARIADB_PORT:-13306}
CLUSTER=colorbench
DB_PASS=colorbench-ci

ETC=$STATE/etc
RUN=$STATE/run
LOG=$STATE/log
MUNGE_SOCKET=$RUN/munge.socket
export SLURM_CONF=$ETC/slurm.conf

say() { echo ".ci/slurm/start.sh: $*" >&2; }
fail() { say "error: $*"; exit 1; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$((seconds * 2))"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    fail "$what did not come up within ${seconds}s (logs in $LOG)"
}

alive() {  # alive PIDFILE: the process named there runs and is not a zombie
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ -r /proc/$pid/stat ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat") != Z ]]
}

[[ $(id -u) == 0 ]] || fail "needs root (the daemons run as root; SlurmUser=root)"

install_packages() {
    local missing=()
    for tool in munged mungekey mariadbd mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [[ ${#missing[@]} == 0 ]] && return
    say "installing SLURM, munge and MariaDB (missing: ${missing[*]})"
    # Keep dpkg from starting the services during the install: there is no systemd, and
    # this script starts its own daemons.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local status=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge slurmdbd mariadb-server >"$STATE/apt.log" 2>&1; } || status=$?
    [[ $own_policy == 1 ]] && rm -f "$policy"
    [[ $status == 0 ]] || { tail -20 "$STATE/apt.log" >&2; fail "apt-get install failed (log: $STATE/apt.log)"; }
}

if alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" && sinfo -h >/dev/null 2>&1; then
    say "already running"
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
fi

mkdir -p "$STATE"
install_packages
mkdir -p "$ETC" "$RUN" "$LOG" "$STATE/munge" "$STATE/spool/ctld" "$STATE/spool/d"
chmod 700 "$STATE/munge"

HOST=$(hostname -s)
CPUS=$(nproc)
# Leave the node some memory of its own; DefMemPerCPU keeps one job from taking the whole node.
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
MEM_PER_CPU=$((MEM_MB / CPUS))

# --- munge -------------------------------------------------------------------------
if ! alive "$RUN/munged.pid"; then
    [[ -s $STATE/munge/munge.key ]] || mungekey --create --keyfile="$STATE/munge/munge.key"
    chmod 600 "$STATE/munge/munge.key"
    munged --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
        --pid-file="$RUN/munged.pid" --log-file="$LOG/munged.log" --seed-file="$STATE/munge/munged.seed"
    wait_for 20 munged munge --socket="$MUNGE_SOCKET" -n
fi

# --- MariaDB (accounting storage), bound to 127.0.0.1 ---------------------------------
MYSQL=(mariadb --no-defaults --socket="$RUN/mysqld.sock" --user=root)
if ! alive "$RUN/mysqld.pid"; then
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mariadb-install-db --no-defaults --datadir="$STATE/mysql" --user=root --skip-test-db \
            --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
            || { tail -20 "$LOG/mariadb-install.log" >&2; fail "mariadb-install-db failed"; }
    fi
    nohup mariadbd --no-defaults --datadir="$STATE/mysql" --user=root --bind-address=127.0.0.1 \
        --port="$DB_PORT" --socket="$RUN/mysqld.sock" --pid-file="$RUN/mysqld.pid" \
        --log-error="$LOG/mariadb.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB "${MYSQL[@]}" -e "SELECT 1"
fi
"${MYSQL[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

# --- configuration -------------------------------------------------------------------
cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf"  # slurmdbd refuses it otherwise

cat >"$ETC/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=5
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$MEM_PER_CPU
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons ---------------------------------------------------------------------------
if ! alive "$RUN/slurmdbd.pid"; then
    slurmdbd  # reads slurmdbd.conf from the folder of $SLURM_CONF
    wait_for 60 slurmdbd sacctmgr -n list cluster
fi
sacctmgr -i -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
alive "$RUN/slurmctld.pid" || slurmctld -f "$SLURM_CONF"
wait_for 60 slurmctld scontrol ping
alive "$RUN/slurmd.pid" || slurmd -f "$SLURM_CONF"

node_idle() { [[ $(sinfo -h -N -n "$HOST" -o %t) == idle ]]; }
for _ in $(seq 120); do
    node_idle && break
    case $(sinfo -h -N -n "$HOST" -o %t 2>/dev/null) in
        down*|drain*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
node_idle || fail "node $HOST is not idle after 60s: $(sinfo -h -N -o '%N %t %E' 2>&1) (logs in $LOG)"
say "SLURM is up: node $HOST idle, $CPUS CPUs, ${MEM_MB} MB, accounting in MariaDB on 127.0.0.1:$DB_PORT"
echo "export SLURM_CONF=$SLURM_CONF"
