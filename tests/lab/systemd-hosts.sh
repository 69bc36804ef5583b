# Sourced by lab.sh: hosts that boot systemd as PID 1 (so services such as dockerd really
# run), one per Debian release, beside the fast sshd-only hosts h1..hN; and the air gap.
#
#   s1 = Debian 12 (bookworm)   address NET.101
#   s2 = Debian 13 (trixie)     address NET.102
#
# Each boots its own root fs (debootstrap of that release with systemd, cached) on an overlay,
# in its own network namespace on the lab bridge, in cgroups of its own (nspawn with
# --keep-unit splits the caller's cgroup: two booting systemds in one cgroup would take each
# other's processes).  Their inventory is STATE/systemd-inventory.toml.  Downloaded .deb files
# persist across runs in CACHE/apt[-K]-RELEASE (bound to /var/cache/apt/archives): one folder
# per lab, since apt locks it and labs install side by side.

SYSTEMD_RELEASES=(bookworm trixie)
# Bump when the recipe changes: a cached base with another stamp is rebuilt.
SYSTEMD_BASE_VERSION=1
# kmod: modprobe; libpam-systemd: logind sessions for SSH logins.
SYSTEMD_BASE_PACKAGES=$BASE_PACKAGES,systemd,systemd-sysv,dbus,libpam-systemd,kmod
SYSTEMD_BOOT_SECONDS=90

sys_release() { echo "${SYSTEMD_RELEASES[$(($1 - 1))]}"; }
sys_base()    { echo "$CACHE/systemd-$1"; }
sys_apt()     { echo "$CACHE/apt$SUFFIX-$1"; }
sys_dir()     { echo "$STATE/systemd/s$1"; }
sys_ip()      { echo "$NET.$((100 + $1))"; }
sys_machine() { echo "${PREFIX}s$1"; }
sys_veth()    { echo "v${PREFIX}s$1"; }

# "s2" or "2" -> 2
sys_num() {
    local i=${1#s}
    [[ $i =~ ^[0-9]+$ ]] && (( i >= 1 && i <= ${#SYSTEMD_RELEASES[@]} )) ||
        die "bad host '$1' (want s1..s${#SYSTEMD_RELEASES[@]})"
    echo $((10#$i))
}

sys_nspawn_pid() {
    pgrep -f -- "^[^ ]*systemd-nspawn .* -M $(sys_machine "$1") " | head -n1 || true
}

# Root fs of RELEASE with systemd, built once (into a temp dir, then renamed) like the base.
ensure_systemd_base() {
    local release=$1 base tmp mirror sources
    base=$(sys_base "$release")
    mkdir -p "$CACHE"
    exec 7>"$CACHE/.lock-systemd-$release"
    flock 7
    if [[ -f $base/.graphrun-lab-base && $(cat "$base/.graphrun-lab-base") == "$SYSTEMD_BASE_VERSION" ]]; then
        exec 7>&-; return 0
    fi
    grep -q "lowerdir=${base}[,:]" /proc/self/mountinfo &&
        die "cached base $base is outdated but in use: run 'lab.sh down' first"
    tmp=$base.tmp.$$
    rm -rf "$base".tmp.* "$base".old.*
    mirror=$(debian_mirror)
    log "building the $release root fs with systemd from $mirror (one-time, a few minutes)"
    if ! debootstrap --variant=minbase --include="$SYSTEMD_BASE_PACKAGES" "$release" "$tmp" "$mirror" \
            >"$CACHE/debootstrap-systemd-$release.log" 2>&1; then
        tail -n 30 "$CACHE/debootstrap-systemd-$release.log" >&2
        rm -rf "$tmp"
        die "debootstrap of $release failed (full log: $CACHE/debootstrap-systemd-$release.log)"
    fi
    customize_base "$tmp"
    # customize_base copies the machine's (bookworm) sources: point them at this release.
    sources=$tmp/etc/apt/sources.list.d/debian.sources
    [[ -f $sources ]] && sed -i "s/\bbookworm\b/$release/g" "$sources"
    # nspawn mounts the cgroup v1 controllers read-only; dockerd and containerd need them
    # writable (a plain "remount,rw" fails "busy": bind-remount each one).
    cat >"$tmp/etc/systemd/system/graphrun-lab-cgroup-rw.service" <<'EOF'
[Unit]
Description=Make the cgroup v1 controller mounts writable (systemd-nspawn mounts them read-only)
DefaultDependencies=no
After=local-fs.target
Before=containerd.service docker.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for c in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$c" || true; done'
[Install]
WantedBy=multi-user.target
EOF
    mkdir -p "$tmp/etc/systemd/system/multi-user.target.wants"
    ln -sf ../graphrun-lab-cgroup-rw.service "$tmp/etc/systemd/system/multi-user.target.wants/"
    # No consoles to log in on: the hosts are reached over SSH only.
    ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
    ln -sf /dev/null "$tmp/etc/systemd/system/getty@.service"
    echo "$SYSTEMD_BASE_VERSION" >"$tmp/.graphrun-lab-base"
    [[ -d $base ]] && mv "$base" "$base.old.$$"
    mv "$tmp" "$base"
    rm -rf "$base.old.$$"
    exec 7>&-
}

ensure_systemd_host() {
    local i=$1 d root
    d=$(sys_dir "$i"); root=$d/root
    mkdir -p "$d/upper" "$d/work" "$root" "$(sys_apt "$(sys_release "$i")")"
    mountpoint -q "$root" ||
        mount -t overlay "graphrun-lab$SUFFIX-s$i" \
            -o "lowerdir=$(sys_base "$(sys_release "$i")"),upperdir=$d/upper,workdir=$d/work" "$root"
    [[ -e $d/provisioned ]] && return 1
    log "creating s$i ($(sys_release "$i"))"
    provision_root "$root" "s$i"
    touch "$d/provisioned"
    return 0
}

# The machine's DNS and the names of every lab host, refreshed at each start.
refresh_systemd_host_files() {
    local i=$1 root n
    root=$(sys_dir "$i")/root
    rm -f "$root/etc/resolv.conf"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    {
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
        echo "127.0.1.1 s$i"
        for n in "${!SYSTEMD_RELEASES[@]}"; do
            (( n + 1 == i )) || echo "$(sys_ip $((n + 1))) s$((n + 1))"
        done
        for n in $(existing_hosts); do echo "$(host_ip "$n") h$n"; done
    } >"$root/etc/hosts"
}

# Moves the calling (sub)shell into a child cgroup NAME of its own cgroup, in every hierarchy.
enter_own_cgroup() {
    local name=$1 id ctrl path mnt dir
    while IFS=: read -r id ctrl path; do
        if [[ -z $ctrl ]]; then mnt=/sys/fs/cgroup/unified; else mnt=/sys/fs/cgroup/${ctrl#name=}; fi
        [[ -d $mnt ]] || continue
        dir=$mnt${path%/}/$name
        mkdir -p "$dir" 2>/dev/null || continue
        if [[ $ctrl == cpuset ]]; then
            cat "$mnt$path/cpuset.cpus" >"$dir/cpuset.cpus"
            cat "$mnt$path/cpuset.mems" >"$dir/cpuset.mems"
        fi
        echo "$BASHPID" >"$dir/cgroup.procs" || log "warning: cannot enter $dir"
    done </proc/self/cgroup
    : "$id"
}

start_systemd_host() {
    local i=$1 d
    d=$(sys_dir "$i")
    [[ -n $(sys_nspawn_pid "$i") ]] && return 0
    wire_host "$(sys_machine "$i")" "$(sys_veth "$i")" "$(sys_ip "$i")" $((100 + i))
    refresh_systemd_host_files "$i"
    printf '\n--- lab: boot s%s at %s\n' "$i" "$(date -Is)" >>"$d/nspawn.log"
    # As start_host, plus: -b (systemd as PID 1), its own cgroups, @keyring (dockerd joins a
    # session keyring), writable /proc/sys/net only.
    (
        close_extra_fds
        enter_own_cgroup "$(sys_machine "$i")"
        exec setsid env -i PATH="$INNER_PATH" SYSTEMD_NSPAWN_API_VFS_WRITABLE=network \
            nohup systemd-nspawn -q -D "$d/root" --register=no --keep-unit \
                --network-namespace-path="/run/netns/$(sys_machine "$i")" \
                -M "$(sys_machine "$i")" --hostname="s$i" -b --console=read-only \
                --resolv-conf=off --timezone=off \
                --capability=CAP_NET_ADMIN,CAP_SYS_ADMIN,CAP_SYS_MODULE \
                --system-call-filter=@keyring \
                --bind="$(sys_apt "$(sys_release "$i")"):/var/cache/apt/archives" \
            </dev/null >>"$d/nspawn.log" 2>&1
    ) &
    echo $! >"$d/nspawn.pid"
}

# Until the host's systemd has booted ("degraded" counts: one unit failed, the host is up).
wait_systemd_host() {
    local i=$1 deadline=$((SECONDS + SYSTEMD_BOOT_SECONDS)) state
    while :; do
        # shellcheck disable=SC2046
        state=$(ssh $(ssh_opts) "root@$(sys_ip "$i")" systemctl is-system-running </dev/null 2>/dev/null) || true
        [[ $state == running || $state == degraded ]] && return 0
        if (( SECONDS >= deadline )) || [[ -z $(sys_nspawn_pid "$i") ]]; then
            log "s$i ($(sys_ip "$i")) did not boot within ${SYSTEMD_BOOT_SECONDS}s (state: ${state:-no answer}); last lines of $(sys_dir "$i")/nspawn.log:"
            tail -n 20 "$(sys_dir "$i")/nspawn.log" >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

stop_systemd_host() {
    local i=$1 pid dir
    pid=$(sys_nspawn_pid "$i")
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true   # nspawn halts the host's systemd
        for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    kill_netns_pids "$(sys_machine "$i")"
    for dir in $(find /sys/fs/cgroup/*/ -depth -type d -name "$(sys_machine "$i")" 2>/dev/null); do
        find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    # nspawn (--keep-unit, no systemd on the machine) also leaves a plain folder named after the
    # machine on the tmpfs that holds the hierarchies.
    dir=/sys/fs/cgroup/$(sys_machine "$i")
    if [[ -d $dir ]] && ! mountpoint -q "$dir"; then
        rm -f "$dir/cgroup.procs"
        rmdir "$dir" 2>/dev/null || true
    fi
    rm -f "$(sys_dir "$i")/nspawn.pid"
}

write_systemd_inventory() {
    local tmp=$STATE/systemd-inventory.toml.tmp i
    {
        inventory_defaults
        for i in $(seq ${#SYSTEMD_RELEASES[@]}); do
            echo
            echo "[hosts.s$i]"
            echo "address = \"$(sys_ip "$i")\""
            echo "groups = [\"systemd\", \"$(sys_release "$i")\"]"
            echo "vars = { release = \"$(sys_release "$i")\" }"
        done
    } >"$tmp"
    mv "$tmp" "$STATE/systemd-inventory.toml"
}

cmd_systemd_up() {
    local i created=0 failed=0 release
    ensure_packages
    for release in "${SYSTEMD_RELEASES[@]}"; do ensure_systemd_base "$release"; done
    ensure_state
    ensure_bridge
    ensure_nat
    for i in $(seq ${#SYSTEMD_RELEASES[@]}); do
        if ensure_systemd_host "$i"; then created=1; fi
    done
    (( created )) && reset_known_hosts
    write_systemd_inventory
    for i in $(seq ${#SYSTEMD_RELEASES[@]}); do start_systemd_host "$i"; done
    for i in $(seq ${#SYSTEMD_RELEASES[@]}); do wait_systemd_host "$i" || failed=1; done
    (( failed )) && die "systemd-up failed (fix, then re-run 'lab.sh systemd-up' or 'lab.sh down')"
    log "systemd-up: $(for i in $(seq ${#SYSTEMD_RELEASES[@]}); do printf 's%s=%s ' "$i" "$(sys_release "$i")"; done)ready ($STATE/systemd-inventory.toml)"
}

# Stops and removes the systemd hosts (part of `down`).
systemd_hosts_down() {
    local i mp
    for i in $(seq ${#SYSTEMD_RELEASES[@]}); do
        stop_systemd_host "$i"
        [[ -e /run/netns/$(sys_machine "$i") ]] && ip netns del "$(sys_machine "$i")"
        ip link del "$(sys_veth "$i")" 2>/dev/null || true
    done
    for mp in $(awk -v dir="$STATE/systemd/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount "$mp" 2>/dev/null || umount -l "$mp"
    done
    rm -rf "$STATE/systemd" "$STATE/systemd-inventory.toml"
    airgap_table_down
}

# ------------------------------------------------------------- air gap --
# An air-gapped host reaches nothing outside the lab subnet (no mirror, no DNS, nothing on the
# machine), while the machine still reaches it over SSH (replies to the machine's connections
# are let through).  Its own nft table, so it composes with the NAT rules.
AIRGAP_TABLE="inet graphrun_lab_airgap${SUFFIX/-/_}"

host_address() {
    case $1 in
        s*) sys_ip "$(sys_num "$1")" ;;
        *)  host_ip "$(host_num "$1")" ;;
    esac
}

ensure_airgap_table() {
    nft list table $AIRGAP_TABLE >/dev/null 2>&1 && return 0
    nft -f - <<EOF
table $AIRGAP_TABLE {
    set hosts { type ipv4_addr; }
    chain forward {
        type filter hook forward priority filter - 1; policy accept;
        ip saddr @hosts ip daddr != $SUBNET drop
        ip daddr @hosts ip saddr != $SUBNET drop
    }
    chain input {
        type filter hook input priority filter - 1; policy accept;
        ip saddr @hosts ct state new drop
    }
}
EOF
}

airgap_table_down() {
    # shellcheck disable=SC2086  # "inet NAME" is two words
    nft delete table $AIRGAP_TABLE 2>/dev/null || true
}

cmd_airgap() {
    local address
    address=$(host_address "${1:-}")
    ensure_airgap_table
    # shellcheck disable=SC2086
    nft add element $AIRGAP_TABLE hosts "{ $address }"
    log "$1 air-gapped ($address reaches only the lab subnet; SSH from the machine still works)"
}

cmd_reconnect() {
    local address
    address=$(host_address "${1:-}")
    # shellcheck disable=SC2086
    nft delete element $AIRGAP_TABLE hosts "{ $address }" 2>/dev/null || true
    log "$1 reconnected"
}
