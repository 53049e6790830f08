#!/usr/bin/env bash
# Installs axion-agent as a systemd service on this host, as the Infrastructure Service does over
# SSH: the system user `axion` in group `docker` (sysusers.d), the binary, the unit, the
# tmpfiles.d/sysusers.d snippets and /etc/axion/agent.toml with the token; enables and starts
# the service. Idempotent: a second run with the same inputs changes nothing and restarts
# nothing. See docs/OPERATIONS.md.
#
#   install.sh [--binary PATH] [--token-file PATH|-] [--local | --grpc-url URL ...] [--restrict-ip]
#   install.sh --upgrade [--binary PATH]          new binary (and unit), restart; store kept
#   install.sh --uninstall [--purge]              everything but the state dir (--purge: it too)
#
# The token is read from a file or standard input (--token-file -), never from the command line
# (argv is visible to every user of the host).
set -euo pipefail
umask 022
export LC_ALL=C

prog=install.sh
here=$(cd "$(dirname "$0")" && pwd)

# Where things go (fixed: the unit and the docs name these paths).
BIN=/usr/local/bin/axion-agent
UNIT=/etc/systemd/system/axion-agent.service
DROPIN_DIR=/etc/systemd/system/axion-agent.service.d
DROPIN=$DROPIN_DIR/ip-restrict.conf
SYSUSERS=/usr/lib/sysusers.d/axion-agent.conf
TMPFILES=/usr/lib/tmpfiles.d/axion-agent.conf
CONF_DIR=/etc/axion
CONF=$CONF_DIR/agent.toml
STATE_DIR=/var/lib/axion
TOKEN_MAX=4096

usage() {
    cat <<EOF
Usage: $prog [MODE] [OPTIONS]

Modes:
  (none)                install, or bring an installation up to date (idempotent)
  --upgrade             replace the binary (and unit, snippets) and restart; config and store kept
  --uninstall           stop, disable and remove everything but the state dir $STATE_DIR
      --purge           with --uninstall: remove the state dir too (the store: desired state!)

Options (install):
  --binary PATH         the axion-agent to install (default: axion-agent beside this script,
                        else build/axion-agent of this repository)
  --token-file PATH     the agent's token, first line of PATH; "-" reads standard input.
                        Never given as an argument.
  --local               local mode: no Control Plane, no Kafka (local.enabled = true)
  --grpc-url URL        control_plane.grpc_url (https://host[:port])
  --ca-file PATH        control_plane.ca_file
  --kafka-brokers LIST  kafka.brokers, comma-separated host:port
  --kafka-security MODE kafka.security: ssl (default) or plaintext
  --agent-id ID         agent.id (default: the host name)
  --restrict-ip         add a drop-in that lets the service reach only the Control Plane, the
                        Kafka brokers and the name servers (IPAddressDeny=any, IPAddressAllow=
                        their addresses, resolved now); re-run to refresh it
  --ip-allow PREFIX     with --restrict-ip: one more address or prefix to allow (repeatable)
  --no-restrict-ip      remove that drop-in
  --no-start            install and enable, but do not start or restart
  -h, --help            this help

The config is written when the token or any config option is given, or when there is none;
otherwise the installed one is kept (its mode and owner are set again: 0640 root:axion).
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 1
}
say() { echo "$prog: $*"; }

mode=install purge=false binary="" token_file="" start=true restrict="" ip_allow=()
local_mode="" grpc_url="" ca_file="" brokers="" kafka_security="" agent_id=""
config_opts=false
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --upgrade) mode=upgrade ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=true ;;
    --binary) need "$@"; binary=$2; shift ;;
    --token-file) need "$@"; token_file=$2; shift ;;
    --token | --token=*) die "the token is never given on the command line: use --token-file PATH (or - for standard input)" ;;
    --local) local_mode=true config_opts=true ;;
    --grpc-url) need "$@"; grpc_url=$2 config_opts=true; shift ;;
    --ca-file) need "$@"; ca_file=$2 config_opts=true; shift ;;
    --kafka-brokers) need "$@"; brokers=$2 config_opts=true; shift ;;
    --kafka-security) need "$@"; kafka_security=$2 config_opts=true; shift ;;
    --agent-id) need "$@"; agent_id=$2 config_opts=true; shift ;;
    --restrict-ip) restrict=on ;;
    --no-restrict-ip) restrict=off ;;
    --ip-allow) need "$@"; ip_allow+=("$2"); shift ;;
    --no-start) start=false ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v systemctl >/dev/null || die "systemctl not found: this host does not run systemd"
if $purge && [ "$mode" != uninstall ]; then die "--purge goes with --uninstall"; fi
if [ "$mode" != install ] && { $config_opts || [ -n "$token_file" ]; }; then
    die "config options and --token-file go with an install, not --$mode"
fi

# --- the files to install: beside this script (a bundle) or in this repository --------------
find_file() { # name-in-bundle path-in-repo
    if [ -f "$here/$1" ]; then echo "$here/$1"; elif [ -f "$here/../$2" ]; then echo "$here/../$2"; else return 1; fi
}
sources() {
    src_unit=$(find_file axion-agent.service systemd/axion-agent.service) || die "axion-agent.service not found beside $prog or in ../systemd"
    src_sysusers=$(find_file axion-agent.sysusers systemd/axion-agent.sysusers) || die "axion-agent.sysusers not found"
    src_tmpfiles=$(find_file axion-agent.tmpfiles systemd/axion-agent.tmpfiles) || die "axion-agent.tmpfiles not found"
    if [ -z "$binary" ]; then
        binary=$(find_file axion-agent build/axion-agent) || die "no axion-agent beside $prog or in ../build: give --binary PATH"
    fi
    [ -f "$binary" ] && [ -x "$binary" ] || die "--binary $binary: not an executable file"
    new_version=$("$binary" version 2>&1) || die "$binary does not run here: $new_version"
}

changed=false  # something the running service uses changed: restart
reload=false   # a unit file or drop-in changed: daemon-reload

# Installs src as dst (mode, owner) when it differs; atomic (a temp file in dst's dir, renamed).
put() { # src dst mode owner:group
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        chmod "$3" "$2"
        chown "$4" "$2"
        return 1
    fi
    local tmp
    tmp=$(mktemp "$(dirname "$2")/.$(basename "$2").XXXXXX")
    cat "$1" >"$tmp"
    chmod "$3" "$tmp"
    chown "$4" "$tmp"
    mv -f "$tmp" "$2"
    say "installed $2"
}

install_files() {
    mkdir -p "$(dirname "$SYSUSERS")" "$(dirname "$TMPFILES")" "$(dirname "$UNIT")"
    # The user first: the config is group axion.
    put "$src_sysusers" "$SYSUSERS" 0644 root:root || true
    systemd-sysusers "$SYSUSERS"
    put "$src_tmpfiles" "$TMPFILES" 0644 root:root || true
    systemd-tmpfiles --create "$TMPFILES"
    if put "$binary" "$BIN" 0755 root:root; then changed=true; fi
    if put "$src_unit" "$UNIT" 0644 root:root; then changed=true reload=true; fi
}

# --- the config --------------------------------------------------------------------------
read_token() {
    local t=""
    # read -n: at most TOKEN_MAX+1 characters, up to the first newline (a pipe is never
    # cut short under the reader, whatever follows the first line)
    if [ "$token_file" = - ]; then
        IFS= read -r -n $((TOKEN_MAX + 1)) t || true
    else
        [ -r "$token_file" ] || die "--token-file $token_file: cannot read it"
        IFS= read -r -n $((TOKEN_MAX + 1)) t <"$token_file" || true
    fi
    t=${t%$'\r'}
    [ -n "$t" ] || die "--token-file $token_file: no token in it (the first line is the token)"
    [ ${#t} -le $TOKEN_MAX ] || die "--token-file $token_file: the token is longer than $TOKEN_MAX bytes"
    # TOML basic string: printable ASCII without " and \ needs no escaping, and a token is that.
    case "$t" in *[!\ -~]* | *\"* | *\\*) die "--token-file $token_file: the token holds characters other than printable ASCII (or \" or \\)" ;; esac
    token=$t
}

toml_str() { # a value for a TOML basic string: refuse what would need escaping
    case "$2" in *[!\ -~]* | *\"* | *\\*) die "$1: only printable ASCII without \" or \\" ;; esac
    printf '"%s"' "$2"
}

# The agent's own reading of a config file (the new binary, no AXION_AGENT__ variables).
config_check() { env -i PATH="$PATH" "${binary:-$BIN}" --config "$1" config check; }

# The values the installed config file sets, as "section<TAB>key = value" (secrets masked).
file_values() {
    config_check "$CONF" | awk '/^\[/ { sec = substr($0, 2, length($0) - 2); next }
        / # file / { sub(/ # file .*$/, ""); print sec "\t" $0 }'
}

write_config() {
    local -A val=()
    local order=() sec line key b list="" tmp out
    setv() { # section key value
        [[ -v val[$1.$2] ]] || order+=("$1.$2")
        val[$1.$2]="$2 = $3"
    }
    # What the installed config sets stays, unless an option changes it.
    if [ -f "$CONF" ]; then
        out=$(file_values) || die "the installed $CONF is not valid; fix or remove it: $(config_check "$CONF" 2>&1 | tail -1)"
        while IFS=$'\t' read -r sec line; do
            key=${line%% = *}
            [ "$sec.$key" != agent.token ] && [ -n "$key" ] && setv "$sec" "$key" "${line#* = }"
        done <<<"$out"
    fi
    [ -z "$agent_id" ] || setv agent id "$(toml_str --agent-id "$agent_id")"
    [ -z "$grpc_url" ] || setv control_plane grpc_url "$(toml_str --grpc-url "$grpc_url")"
    [ -z "$ca_file" ] || setv control_plane ca_file "$(toml_str --ca-file "$ca_file")"
    if [ -n "$brokers" ]; then
        IFS=, read -r -a bl <<<"$brokers"
        for b in "${bl[@]}"; do list+="${list:+, }$(toml_str --kafka-brokers "$b")"; done
        setv kafka brokers "[$list]"
    fi
    [ -z "$kafka_security" ] || setv kafka security "$(toml_str --kafka-security "$kafka_security")"
    if [ -n "$local_mode" ]; then
        setv local enabled true
    elif [ -n "$grpc_url$brokers" ]; then
        setv local enabled false # a Control Plane or brokers given: not local mode
    fi

    tmp=$(mktemp "$CONF_DIR/.agent.toml.XXXXXX")
    chmod 0640 "$tmp"
    chown root:axion "$tmp"
    {
        echo "# $CONF, written by install.sh (keys: docs/CONFIG.md); mode 0640 root:axion:"
        echo "# it holds the agent's token, and the agent refuses it readable by all."
        echo "[agent]"
        [ -z "$token" ] || echo "token = \"$token\""
        local printed=agent s k
        for k in "${order[@]}"; do
            [ "${k%%.*}" = agent ] && echo "${val[$k]}"
        done
        for k in "${order[@]}"; do
            s=${k%%.*}
            case " $printed " in *" $s "*) continue ;; esac
            printed+=" $s"
            echo "[$s]"
            for key in "${order[@]}"; do
                [ "${key%%.*}" = "$s" ] && echo "${val[$key]}"
            done
        done
    } >"$tmp"
    # The new binary judges the config before it replaces the old one.
    if ! out=$(config_check "$tmp" 2>&1); then
        rm -f "$tmp"
        die "the config is not valid: $out"
    fi
    if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$CONF"
        say "wrote $CONF"
        changed=true
    fi
}

# The token of the installed config (kept when the config is written again).
installed_token() {
    [ -f "$CONF" ] || return 0
    sed -n 's/^[[:space:]]*token[[:space:]]*=[[:space:]]*"\(.*\)"[[:space:]]*$/\1/p' "$CONF" | head -n 1
}

# Before anything is changed: the token, and whether the config can be written.
preflight() {
    token=""
    write_conf=false
    if [ -f "$CONF" ]; then
        # The owner and mode first: the agent refuses a token readable by all.
        chmod 0640 "$CONF"
        chown root:axion "$CONF" 2>/dev/null || true # no group axion yet: install_files makes it
    fi
    if [ -n "$token_file" ]; then read_token; else token=$(installed_token); fi
    if $config_opts || [ -n "$token_file" ] || [ ! -f "$CONF" ]; then
        write_conf=true
        if [ -z "$token" ] && [ "$local_mode" != true ] &&
            ! { [ -f "$CONF" ] && [ "$(effective local enabled)" = true ]; }; then
            die "a token is needed (--token-file PATH, or - for standard input), unless --local"
        fi
    fi
}

configure() {
    if $write_conf; then write_config; fi
    chmod 0640 "$CONF"
    chown root:axion "$CONF"
}

# --- the IPAddressDeny drop-in, generated from the effective config --------------------------
effective() { # section key: the value as `config check` prints it (its comment gone)
    config_check "$CONF" |
        awk -v s="[$1]" -v k="$2" '/^\[/ { in_s = ($0 == s); next }
            in_s && $1 == k && $2 == "=" { sub(/^[^=]*= /, ""); sub(/ # .*$/, ""); print; exit }'
}

allow_host() { # host (name or address literal): its addresses join the allow list
    local out
    out=$(addresses_of "$1") || exit 1
    mapfile -t -O "${#allow[@]}" allow <<<"$out"
}

addresses_of() { # host (name or address literal) -> its addresses, one a line
    local h=$1
    h=${h#[}
    h=${h%]}
    if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then
        echo "$h"
        return
    fi
    getent ahosts "$h" | awk '{ print $1 }' | sort -u | grep . ||
        die "--restrict-ip: cannot resolve $h (from the config) to an address"
}

host_of_url() { # https://host[:port][/path] -> host
    local u=${1#*://}
    u=${u%%/*}
    if [[ $u == \[* ]]; then echo "${u%%]*}]"; else echo "${u%:*}"; fi
}

write_dropin() {
    local allow=() url list b h tmp
    url=$(effective control_plane grpc_url | tr -d '"')
    if [ -n "$url" ]; then
        h=$(host_of_url "$url")
        allow_host "$h"
    fi
    list=$(effective kafka brokers | tr -d '[]" ')
    IFS=, read -r -a bl <<<"$list"
    for b in "${bl[@]}"; do
        [ -n "$b" ] || continue
        allow_host "${b%:*}"
    done
    # Names are resolved through the name servers: they must stay reachable.
    mapfile -t -O "${#allow[@]}" allow < <(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null)
    allow+=("${ip_allow[@]}")
    mapfile -t allow < <(printf '%s\n' "${allow[@]}" | grep . | sort -u)
    mkdir -p "$DROPIN_DIR"
    tmp=$(mktemp)
    {
        echo "# Generated by install.sh --restrict-ip from $CONF: the agent reaches only its Control"
        echo "# Plane, its Kafka brokers and the name servers of /etc/resolv.conf (addresses resolved"
        echo "# at install time: run install.sh --restrict-ip again when they change). The Docker"
        echo "# socket is a unix socket and is not concerned. Removed by install.sh --no-restrict-ip."
        echo "[Service]"
        echo "IPAddressDeny=any"
        echo "IPAddressAllow=${allow[*]}"
    } >"$tmp"
    if put "$tmp" "$DROPIN" 0644 root:root; then changed=true reload=true; fi
    rm -f "$tmp"
}

restrict_ip() {
    if [ "$restrict" = off ]; then
        if [ -e "$DROPIN" ]; then
            rm -f "$DROPIN"
            rmdir "$DROPIN_DIR" 2>/dev/null || true
            say "removed $DROPIN"
            changed=true reload=true
        fi
    elif [ "$restrict" = on ] || [ -e "$DROPIN" ]; then
        write_dropin # an existing drop-in follows the config
    fi
}

# --- the service -------------------------------------------------------------------------
service() {
    if $reload; then systemctl daemon-reload; fi
    systemctl enable --quiet axion-agent.service
    $start || { say "installed, enabled, not started (--no-start)"; return 0; }
    if systemctl is-active --quiet axion-agent.service; then
        if $changed; then
            say "restarting axion-agent"
            systemctl restart axion-agent.service || true
        fi
    else
        say "starting axion-agent"
        systemctl start axion-agent.service || true
    fi
    if ! systemctl is-active --quiet axion-agent.service; then
        systemctl status --no-pager --lines=20 axion-agent.service >&2 || true
        die "axion-agent did not start (journalctl -u axion-agent says why)"
    fi
    say "axion-agent is active ($("$BIN" version))"
}

do_install() {
    sources
    preflight
    install_files
    configure
    restrict_ip
    service
}

do_upgrade() {
    [ -f "$BIN" ] && [ -f "$UNIT" ] || die "--upgrade: axion-agent is not installed here (run $prog without --upgrade)"
    sources
    local old
    old=$("$BIN" version 2>&1 || echo "unknown")
    install_files
    restrict_ip
    service
    if $changed; then
        say "upgraded: $old -> $new_version; store in $STATE_DIR kept"
    else
        say "already up to date ($old)"
    fi
}

do_uninstall() {
    if systemctl list-unit-files axion-agent.service >/dev/null 2>&1; then
        systemctl disable --now --quiet axion-agent.service 2>/dev/null || true
    fi
    local f
    for f in "$DROPIN" "$UNIT" "$BIN" "$SYSUSERS" "$TMPFILES"; do
        if [ -e "$f" ]; then rm -f "$f" && say "removed $f"; fi
    done
    rmdir "$DROPIN_DIR" 2>/dev/null || true
    if [ -d "$CONF_DIR" ]; then rm -rf "$CONF_DIR" && say "removed $CONF_DIR (config and token)"; fi
    rm -rf /run/axion
    systemctl daemon-reload
    systemctl reset-failed axion-agent.service 2>/dev/null || true
    if getent passwd axion >/dev/null; then userdel axion && say "removed user axion"; fi
    if getent group axion >/dev/null; then groupdel axion; fi
    if $purge; then
        rm -rf "$STATE_DIR" && say "removed $STATE_DIR (--purge)"
    elif [ -d "$STATE_DIR" ]; then
        say "kept $STATE_DIR (the store; a new install takes it up; --purge removes it)"
    fi
}

case "$mode" in
install) do_install ;;
upgrade) do_upgrade ;;
uninstall) do_uninstall ;;
esac
