#!/usr/bin/env bash
# A private one-node SLURM cluster on this machine, for tests and for trying job scripts.
#
#   scripts/slurm-local.sh install      apt-get install slurm-wlm and munge when absent (root)
#   scripts/slurm-local.sh start [DIR]  write DIR/slurm.conf, start munged, slurmctld, slurmd; wait for the node
#   scripts/slurm-local.sh stop [DIR]   stop the daemons started from DIR (and only those)
#   scripts/slurm-local.sh env [DIR]    print `export SLURM_CONF=...` for sbatch/srun/squeue
#
# DIR (default $MLSCALE_SLURM_DIR or /tmp/mlscale-slurm) holds every file the cluster uses: config,
# munge key and socket, state, spool, logs and pid files. Nothing in /etc is touched, so a system
# SLURM or munge, if any, keeps running undisturbed. Ports are the first free ones from 6817 up.
# Needs root: SlurmUser=root, and slurmd must start jobs as the submitting user.
set -euo pipefail

cmd=${1:-}
dir=${2:-${MLSCALE_SLURM_DIR:-/tmp/mlscale-slurm}}

die() { echo "slurm-local: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (SlurmUser=root; slurmd starts jobs as their user)"; }

have_slurm() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; }

install() {
    have_slurm && return 0
    need_root
    command -v apt-get >/dev/null || die "slurm-wlm/munge absent and no apt-get to install them"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run may hold the lock: wait for it rather than fail.
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends slurm-wlm munge
    have_slurm || die "apt-get finished but slurmctld/slurmd/munged are still missing"
}

free_port() {
    python3 - "$1" <<'EOF'
import socket, sys
port = int(sys.argv[1])
while True:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            break
        except OSError:
            port += 1
print(port)
EOF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    local host cpus mem ctld_port d_port
    host=$(hostname -s)
    # At least 4 CPUs, oversubscribing a small machine (config_overrides lets slurmd accept it), so
    # that a 1-rank and a 2-rank job of 2 cores each run side by side.
    cpus=$(nproc)
    [ "$cpus" -ge 4 ] || cpus=4
    mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
    ctld_port=$(free_port 6817)
    d_port=$(free_port $((ctld_port + 1)))
    mkdir -p "$dir"/{state,spool,log,run,munge}
    chmod 700 "$dir" "$dir/munge"
    cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster whose files all live in $dir.
ClusterName=mlscale-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long before it runs again (default 120 s; its old credential must expire first).
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=30
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start() {
    need_root
    have_slurm || die "slurm-wlm/munge are not installed (run: $0 install)"
    mkdir -p "$dir"
    if alive "$dir/run/slurmctld.pid" && alive "$dir/run/slurmd.pid"; then
        echo "slurm-local: already running from $dir"
        return 0
    fi
    write_conf
    if ! [ -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$dir/munge/munge.key"
    alive "$dir/munge/munged.pid" || munged --force \
        --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
    export SLURM_CONF=$dir/slurm.conf
    # -c: start from a clean state, forgetting jobs of an earlier run of this directory.
    slurmctld -c -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    local state=""
    for _ in $(seq 1 60); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
        case $state in idle | mixed | allocated) echo "slurm-local: node $state; export SLURM_CONF=$SLURM_CONF"; return 0 ;; esac
        # A node that came back after a restart may need resuming.
        case $state in down* | drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;; esac
        sleep 0.5
    done
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    die "node did not become idle (state: ${state:-unknown}); logs above"
}

stop_pid() {
    local pidfile=$1
    alive "$pidfile" || return 0
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    # Cancel our jobs first so that slurmd does not leave their processes behind.
    if [ -f "$dir/slurm.conf" ] && alive "$dir/run/slurmctld.pid"; then
        SLURM_CONF=$dir/slurm.conf scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    fi
    stop_pid "$dir/run/slurmd.pid"
    stop_pid "$dir/run/slurmctld.pid"
    stop_pid "$dir/munge/munged.pid"
    echo "slurm-local: stopped daemons of $dir"
}

case $cmd in
    install) install ;;
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$dir/slurm.conf" ;;
    *) die "usage: $0 install|start|stop|env [DIR]" ;;
esac
