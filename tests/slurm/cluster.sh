#!/usr/bin/env bash
# A real single-node Slurm on localhost, for the launch tests (Debian's slurmctld, slurmd,
# slurm-client and munge; installed by launch/install.sh).
#
#   tests/slurm/cluster.sh start DIR    config, keys, state and logs under DIR; prints the
#                                       line to eval: export SLURM_CONF=DIR/slurm.conf
#   tests/slurm/cluster.sh stop DIR     cancels every job, stops the daemons
#
# Nothing outside DIR is touched: munged gets its own key and socket, Slurm its own config
# (no /etc/slurm/slurm.conf ships with Debian's packages), state and spool directories.
# Needs root (slurmd starts jobs as their user). One machine, no cgroups: proctrack/linuxproc,
# task/none; jobs may ask for more tasks than there are cores with --overcommit.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop DIR}
dir=${2:?usage: cluster.sh start|stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
ctld_port=${ETHOS_SLURMCTLD_PORT:-6817}
slurmd_port=${ETHOS_SLURMD_PORT:-6818}

need() { command -v "$1" >/dev/null || { echo "cluster.sh: $1 not found: install slurmctld slurmd slurm-client munge (launch/install.sh does)" >&2; exit 1; }; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "cluster.sh: $what did not come up within ${limit}s; logs in $dir/log" >&2
  tail -n 20 "$dir"/log/* >&2 || true
  return 1
}

start() {
  for c in munged slurmctld slurmd sbatch scontrol; do need "$c"; done
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (slurmd runs jobs as their user)" >&2; exit 1; }
  chmod 755 "$dir"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  chown munge: "$dir/munge"
  chmod 700 "$dir/munge"
  mkdir -p "$dir/munge-sock" && chown munge: "$dir/munge-sock" && chmod 755 "$dir/munge-sock"  # every ancestor: 755
  if [ ! -s "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chown munge: "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
  fi
  local sock="$dir/munge-sock/munge.socket"
  runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
  wait_for 10 munged test -S "$sock"

  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  cat > "$dir/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a single-node cluster for ethos's launch tests.
ClusterName=ethos-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
KillWait=30
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=60
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" -i
  wait_for 20 slurmctld scontrol ping
  slurmd -f "$SLURM_CONF" -N localhost
  wait_for 30 "slurmd (node localhost idle)" bash -c "sinfo -h -N -o '%T' | grep -Eq '^(idle|mixed|allocated)'"
  echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
  export SLURM_CONF="$dir/slurm.conf"
  if [ -f "$SLURM_CONF" ] && scontrol ping >/dev/null 2>&1; then
    local jobs; jobs=$(squeue -h -o %A 2>/dev/null | sort -u)  # jobs first, or they linger in state
    [ -n "$jobs" ] && scancel --quiet $jobs 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    scontrol shutdown >/dev/null 2>&1 || true
  fi
  for pidfile in "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop DIR" >&2; exit 64 ;;
esac
