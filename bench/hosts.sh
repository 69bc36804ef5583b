#!/usr/bin/env bash
# bench/hosts.sh — cheap benchmark hosts for graphrun's benchmark harness.
#
#   bench/hosts.sh up N     ensure exactly hosts b1..bN run (idempotent)
#   bench/hosts.sh down     stop our sshd processes (and nothing else)
#   bench/hosts.sh status   list our running hosts
#
# Host bI is an sshd process of its own listening on 127.0.1.(I+1):22. All
# hosts share this machine's filesystem, so the harness checks results locally.
# GRAPHRUN_BENCH_NET=127.0.3 puts the hosts on 127.0.3.x instead, so a second set
# (with its own GRAPHRUN_BENCH_DIR) runs beside the first (bench/load does).
# Everything lives in the state dir ${GRAPHRUN_BENCH_DIR:-/var/tmp/graphrun-bench}:
# keys, sshd config, pid files, logs, known_hosts, ssh config and the inventories
# for every tool (ssh_config, ansible-inventory.ini, pyinfra-inventory.py,
# graphrun-inventory.toml).
set -euo pipefail

STATE=${GRAPHRUN_BENCH_DIR:-/var/tmp/graphrun-bench}
NET=${GRAPHRUN_BENCH_NET:-127.0.1}
[[ $NET =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "hosts.sh: GRAPHRUN_BENCH_NET must be 127.X.Y" >&2; exit 1; }
BENCH_USER=grbench
BENCH_HOME=/home/$BENCH_USER
SSHD=/usr/sbin/sshd
MAX_HOSTS=253                     # $NET.2 .. $NET.254
# Key exchange offered by the hosts. OpenSSH 9.x prefers the post-quantum
# sntrup761x25519 hybrid, which costs its client ~60 ms of CPU per connection
# here, against ~8 ms for curve25519. Other SSH stacks (paramiko, Rust crates)
# lack it and would get the cheap one. One KEX for everyone keeps the
# comparison about the tools, not about which crypto each one negotiates.
# GRAPHRUN_BENCH_KEX=default keeps OpenSSH's default list.
KEX=${GRAPHRUN_BENCH_KEX:-curve25519-sha256,curve25519-sha256@libssh.org}

log() { echo "hosts.sh: $*" >&2; }
die() { log "$*"; exit 1; }

host_name() { echo "b$1"; }
host_addr() { echo "$NET.$(( $1 + 1 ))"; }
pid_file()  { echo "$STATE/run/$(host_name "$1").pid"; }

# ---------------------------------------------------------------- packages

# Install openssh-server without letting its postinst start a system sshd on
# 0.0.0.0:22: a policy-rc.d that denies service starts is in place during the
# install (removed afterwards, unless one already existed).
install_openssh() {
    [ -x "$SSHD" ] && return 0
    log "installing openssh-server"
    mkdir -p /etc/ssh && touch /etc/ssh/sshd_not_to_be_run
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        openssh-server >&2 || rc=$?
    if [ "$rc" -ne 0 ]; then        # stale package lists: refresh once and retry
        apt-get update -q >&2 && rc=0
        [ "$rc" -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends openssh-server >&2 || rc=$?; }
    fi
    [ "$own_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || die "apt-get install openssh-server failed"
}

# The system sshd must never run: it would own 0.0.0.0:22 (clashing with our
# 127.0.1.x:22 listeners) and be a real login service. Debian's init script and
# systemd unit both honour /etc/ssh/sshd_not_to_be_run.
disable_system_sshd() {
    touch /etc/ssh/sshd_not_to_be_run
    if [ -d /run/systemd/system ]; then
        systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
    elif command -v systemctl >/dev/null; then   # works offline: drops the wants/ links
        systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
    fi
    update-rc.d ssh disable >/dev/null 2>&1 || true
    local pid
    pid=$(cat /run/sshd.pid 2>/dev/null || true)
    if [ -n "$pid" ] && is_sshd "$pid"; then
        log "stopping system sshd (pid $pid)"
        kill "$pid" || true
        rm -f /run/sshd.pid
    fi
}

# ---------------------------------------------------------------- user, keys

ensure_user() {
    if ! id "$BENCH_USER" >/dev/null 2>&1; then
        log "creating user $BENCH_USER"
        # -M: no /etc/skel copy, so no .profile/.bashrc to slow down sessions
        useradd -M -d "$BENCH_HOME" -s /bin/sh "$BENCH_USER"
    fi
    # '*' = no usable password but not "locked": sshd with UsePAM=no refuses
    # accounts whose password field starts with '!' (useradd's default).
    usermod -s /bin/sh -p '*' "$BENCH_USER"
    mkdir -p "$BENCH_HOME/.ssh"
    # A clean shell: rc files would add their run time to every ssh session.
    local f
    for f in .profile .bashrc .bash_profile .bash_login .bash_logout .shrc .kshrc; do
        [ -e "$BENCH_HOME/$f" ] && { log "removing $BENCH_HOME/$f"; rm -f "$BENCH_HOME/$f"; }
    done
    # Each state dir has its own client key; the user accepts every one of them.
    touch "$BENCH_HOME/.ssh/authorized_keys"
    grep -qxF -- "$(cat "$STATE/id_ed25519.pub")" "$BENCH_HOME/.ssh/authorized_keys" ||
        cat "$STATE/id_ed25519.pub" >> "$BENCH_HOME/.ssh/authorized_keys"
    chown -R "$BENCH_USER:" "$BENCH_HOME"
    chmod 755 "$BENCH_HOME"; chmod 700 "$BENCH_HOME/.ssh"
    chmod 600 "$BENCH_HOME/.ssh/authorized_keys"
}

# Keys are generated once and reused: regenerating host keys would invalidate
# every client's known_hosts between runs.
ensure_keys() {
    mkdir -p "$STATE/run" "$STATE/log"
    chmod 755 "$STATE"
    [ -f "$STATE/id_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C grbench-client -f "$STATE/id_ed25519"
    [ -f "$STATE/ssh_host_ed25519_key" ] ||
        ssh-keygen -q -t ed25519 -N '' -C grbench-host -f "$STATE/ssh_host_ed25519_key"
}

# ---------------------------------------------------------------- sshd

write_sshd_config() {
    cat > "$STATE/sshd_config.new" <<CFG
# generated by bench/hosts.sh; ListenAddress and PidFile are given per process
Port 22
HostKey $STATE/ssh_host_ed25519_key
AllowUsers $BENCH_USER
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
# no PAM, motd, lastlog or DNS: per-session overhead we don't want to measure
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
# many parallel sessions per connection and many concurrent handshakes
MaxSessions 100
MaxStartups 200:30:400
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel INFO
CFG
    if [ "$KEX" != default ]; then
        echo "KexAlgorithms $KEX" >> "$STATE/sshd_config.new"
    fi
    if ! cmp -s "$STATE/sshd_config.new" "$STATE/sshd_config" 2>/dev/null; then
        # config changed: running hosts must pick up the new one
        [ -f "$STATE/sshd_config" ] && stop_hosts_from 1
        mv "$STATE/sshd_config.new" "$STATE/sshd_config"
    else
        rm -f "$STATE/sshd_config.new"
    fi
    mkdir -p /run/sshd && chmod 755 /run/sshd    # sshd's privsep directory
    "$SSHD" -t -f "$STATE/sshd_config" || die "sshd config test failed"
}

is_sshd() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = sshd ]; }

host_running() {
    local pid
    pid=$(cat "$(pid_file "$1")" 2>/dev/null) || return 1
    is_sshd "$pid"
}

start_host() {
    "$SSHD" -f "$STATE/sshd_config" \
        -o "ListenAddress=$(host_addr "$1")" \
        -o "PidFile=$(pid_file "$1")" \
        -E "$STATE/log/$(host_name "$1").log"
}

# sshd daemonizes before it binds, and writes its pid file after binding: the
# pid file is the readiness signal.
wait_ready() {
    local n=$1 i deadline=$(( $(date +%s) + 10 ))
    for i in $(seq 1 "$n"); do
        until host_running "$i"; do
            [ "$(date +%s)" -lt "$deadline" ] || die "$(host_name "$i") did not come up, see $STATE/log/$(host_name "$i").log"
            sleep 0.02
        done
    done
}

# Stop our hosts with index >= $1, found through our own pid files only.
stop_hosts_from() {
    local f pid idx pids=()
    for f in "$STATE"/run/b*.pid; do
        [ -e "$f" ] || continue
        idx=$(basename "$f" .pid); idx=${idx#b}
        [ "$idx" -ge "$1" ] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        if [ -n "$pid" ] && is_sshd "$pid"; then kill "$pid" && pids+=("$pid"); fi
        rm -f "$f"
    done
    for pid in "${pids[@]}"; do          # wait so that a following 'up' can bind
        while [ -e "/proc/$pid" ]; do sleep 0.02; done
    done
}

# ---------------------------------------------------------------- client side files

write_client_files() {
    local n=$1 i hostkey
    hostkey=$(cut -d' ' -f1,2 "$STATE/ssh_host_ed25519_key.pub")

    : > "$STATE/known_hosts.new"
    for i in $(seq 1 "$n"); do
        echo "$(host_addr "$i"),$(host_name "$i") $hostkey" >> "$STATE/known_hosts.new"
    done
    mv "$STATE/known_hosts.new" "$STATE/known_hosts"

    # ssh config for `ssh -F`: host-key checking strict against our known_hosts
    {
        echo "# generated by bench/hosts.sh for $n hosts"
        for i in $(seq 1 "$n"); do
            printf 'Host %s\n    HostName %s\n' "$(host_name "$i")" "$(host_addr "$i")"
        done
        cat <<CFG
Host *
    User $BENCH_USER
    Port 22
    IdentityFile $STATE/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $STATE/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    LogLevel ERROR
CFG
    } > "$STATE/ssh_config"

    {
        echo "# generated by bench/hosts.sh for $n hosts"
        echo "[bench]"
        for i in $(seq 1 "$n"); do
            echo "$(host_name "$i") ansible_host=$(host_addr "$i")"
        done
        cat <<INV

[bench:vars]
ansible_user=$BENCH_USER
ansible_port=22
ansible_ssh_private_key_file=$STATE/id_ed25519
# same client config as the floor: strict host keys against our known_hosts
ansible_ssh_common_args='-F $STATE/ssh_config'
# skip interpreter discovery (an extra round trip per host on every run)
ansible_python_interpreter=/usr/bin/python3
INV
    } > "$STATE/ansible-inventory.ini"

    {
        echo "# generated by bench/hosts.sh for $n hosts"
        cat <<INV
_ssh = {
    "ssh_user": "$BENCH_USER",
    "ssh_port": 22,
    "ssh_key": "$STATE/id_ed25519",
    "ssh_known_hosts_file": "$STATE/known_hosts",
    "ssh_strict_host_key_checking": "yes",
    "ssh_allow_agent": False,
    "ssh_look_for_keys": False,
}
bench = [
INV
        for i in $(seq 1 "$n"); do
            echo "    (\"$(host_name "$i")\", dict(_ssh, ssh_hostname=\"$(host_addr "$i")\")),"
        done
        echo "]"
    } > "$STATE/pyinfra-inventory.py"

    {
        echo "# generated by bench/hosts.sh for $n hosts"
        cat <<INV
[defaults]
user = "$BENCH_USER"
port = 22
identity_file = "$STATE/id_ed25519"
known_hosts_file = "$STATE/known_hosts"
host_key_checking = "strict"
INV
        for i in $(seq 1 "$n"); do
            printf '\n[hosts.%s]\naddress = "%s"\n' "$(host_name "$i")" "$(host_addr "$i")"
        done
    } > "$STATE/graphrun-inventory.toml"

    echo "$n" > "$STATE/hosts.count"
}

# ---------------------------------------------------------------- commands

cmd_up() {
    local n=${1:-}
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ] ||
        die "usage: hosts.sh up N   (1 <= N <= $MAX_HOSTS)"
    install_openssh
    disable_system_sshd
    ensure_keys
    ensure_user
    write_sshd_config
    stop_hosts_from $(( n + 1 ))
    local i
    for i in $(seq 1 "$n"); do
        host_running "$i" || start_host "$i"
    done
    wait_ready "$n"
    write_client_files "$n"
    log "$n hosts up (b1=$(host_addr 1) .. b$n=$(host_addr "$n")), state in $STATE"
}

cmd_down() {
    stop_hosts_from 1
    rm -f "$STATE/hosts.count"
    log "all bench hosts down"
}

cmd_status() {
    local f n=0
    for f in "$STATE"/run/b*.pid; do
        [ -e "$f" ] || continue
        local pid; pid=$(cat "$f")
        if is_sshd "$pid"; then echo "$(basename "$f" .pid) pid $pid"; n=$((n + 1)); fi
    done
    echo "$n hosts running"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (starts sshd on port 22)"
case "${1:-}" in
    up)     cmd_up "${2:-}" ;;
    down)   cmd_down ;;
    status) cmd_status ;;
    *)      die "usage: hosts.sh up N | down | status" ;;
esac
