# Shared helpers for the bench/ scripts (sourced, not run).
# Everything here talks to 127.0.0.0/8 only.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# A TCP port free on 127.0.0.1 right now (asks the kernel for one).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Wait until something accepts TCP connections on 127.0.0.1:$1 (at most ~10 s).
wait_tcp() {
    local port=$1 i
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "nothing listening on 127.0.0.1:$port"
    return 1
}

# user+sys CPU seconds of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks).
proc_cpu_s() {
    local hz
    hz=$(getconf CLK_TCK)
    # The command name (field 2) may contain spaces: cut at the last ')'.
    awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# VmHWM (peak RSS) of a process, KiB.
proc_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# VmRSS (current RSS) of a process, KiB.
proc_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Replace the current (sub)shell with "$@" pinned to CPU $1 when taskset is there and the CPU
# exists, unpinned otherwise. Meant to be started in the background so that $! is the
# process itself:  exec_pinned 0 some-server --flag &  pid=$!
exec_pinned() {
    local cpu=$1
    shift
    if command -v taskset >/dev/null && [ "$cpu" -lt "$(nproc --all)" ]; then
        exec taskset -c "$cpu" "$@"
    fi
    exec "$@"
}

machine_info() {
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc=$(nproc)"
    echo "cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel=$(uname -r)"
    echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git_head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    # The probe library is being worked on: say whether the build measured had local changes.
    echo "probes_src_uncommitted_changes=$(git -C "$ROOT" status --porcelain -- crates/probes/src 2>/dev/null | wc -l)"
}

# An nginx config for the benchmarks, on stdout: foreground, one worker, no access log, serving
# $1/www on 127.0.0.1:$2 (and, when $3 is given, with TLS on 127.0.0.1:$3 using $1/cert.pem and
# $1/key.pem, no session resumption: every handshake is a full one).
nginx_conf() {
    local work=$1 port=$2 tls_port=${3:-} tls=""
    if [ -n "$tls_port" ]; then
        tls="listen 127.0.0.1:$tls_port ssl backlog=4096;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_session_cache off;
        ssl_session_tickets off;"
    fi
    cat <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    default_type text/plain;
    server {
        listen 127.0.0.1:$port backlog=4096;
        $tls
        root $work/www;
    }
}
EOF
}
