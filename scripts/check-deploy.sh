#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a real certificate:
#   1. docker-compose.staging.yml and monitoring/docker-compose.monitoring.yml
#      render with `docker-compose config` (the client parses them offline);
#   2. nginx/ loads with `nginx -t`, rendered into a temp prefix with a throw-away
#      self-signed certificate, a throw-away htpasswd and loopback ports;
#   3. with --routing: that nginx runs on loopback in front of api-gateway and
#      webhook-worker and must route /v1/ (basic auth) and /webhook/ (none).
#
# Usage: scripts/check-deploy.sh [--routing] [--start-services]
#   --routing         also run nginx and check routing (or CHECK_ROUTING=1). The
#                     caller runs api-gateway on 127.0.0.1:3000 and webhook-worker
#                     on 127.0.0.1:3002 (CHECK_API_PORT / CHECK_WEBHOOK_PORT).
#   --start-services  start both from target/debug (CHECK_BIN_DIR) on free ports
#                     and stop them on exit; implies --routing. Their config comes
#                     from the caller's env, then .env or .env.example, then the
#                     dummy development values below.
# Other knobs: CHECK_HTTP_PORT (18080), CHECK_HTTPS_PORT (18443),
#              CHECK_WAIT_SECS (30).
# Installs docker-compose, nginx, apache2-utils, openssl, curl with apt when absent.
# Prints PASS/FAIL per check; exits non-zero if any check failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROUTING="${CHECK_ROUTING:-0}"
START_SERVICES="${CHECK_START_SERVICES:-0}"
for arg in "$@"; do
    case "$arg" in
        --routing) ROUTING=1 ;;
        --start-services) START_SERVICES=1; ROUTING=1 ;;
        -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

HTTP_PORT="${CHECK_HTTP_PORT:-18080}"
HTTPS_PORT="${CHECK_HTTPS_PORT:-18443}"
WAIT_SECS="${CHECK_WAIT_SECS:-30}"
API_HOST=api.staging.kloyst.com

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
info() { printf '      %s\n' "$*"; }
# Indent captured output under a FAIL line.
show() { sed 's/^/      | /' "$@" | tail -n 40; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/kloyst-check-deploy.XXXXXX")"
NGINX_PID_FILE="$TMP/nginx/nginx.pid"
SERVICE_PIDS=()

cleanup() {
    local pid
    if [[ -s "$NGINX_PID_FILE" ]]; then
        pid="$(cat "$NGINX_PID_FILE")"
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for pid in "${SERVICE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVICE_PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools -----------------------------------------------------------------------

# Debian's nginx lives in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

ensure_tools() {
    local -A pkg_for=([docker-compose]=docker-compose [nginx]=nginx [htpasswd]=apache2-utils
                      [openssl]=openssl [curl]=curl)
    local missing=() cmd sudo=()
    for cmd in docker-compose nginx htpasswd openssl curl; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
    done
    ((${#missing[@]} == 0)) && return 0
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            echo "missing packages: ${missing[*]} (run as root or install them)" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "installing with apt-get: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}
ensure_tools

# ---- 1. compose files ------------------------------------------------------------

# Every configuration name with a harmless value: the real file is written by
# Jenkins on the server and never exists in the repository.
DUMMY_ENV="$TMP/env.staging"
cat >"$DUMMY_ENV" <<'EOF'
POSTGRES_PASSWORD=check-deploy-dummy
JWT_SECRET=check-deploy-dummy-jwt-secret-0123456789abcdef
JWT_ACCESS_TTL=15m
JWT_REFRESH_TTL=7d
DATA_ENCRYPTION_KEY=0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
META_API_BASE=https://graph.facebook.com
META_API_VERSION=v21.0
META_ACCESS_TOKEN=dummy
META_WABA_ID=100000000000000
META_PHONE_NUMBER_ID=100000000000001
META_APP_SECRET=dummy-meta-app-secret
META_VERIFY_TOKEN=dummy-verify-token
META_SEND_RATE=80
RAZORPAY_API_BASE=https://api.razorpay.com
RAZORPAY_KEY_ID=rzp_test_dummy
RAZORPAY_KEY_SECRET=dummy-razorpay-secret
RAZORPAY_WEBHOOK_SECRET=dummy-razorpay-webhook
MAIL_FROM=Kloyst <no-reply@staging.kloyst.com>
RUST_LOG=info
GRAFANA_ADMIN_PASSWORD=check-deploy-dummy
EOF

compose_clients=(docker-compose)
# Also validate with Compose v2, which staging runs, when this machine has it.
if docker compose version >/dev/null 2>&1; then compose_clients+=("docker compose"); fi

check_compose() { # <label> <compose file> <env file> [grep patterns that must appear]
    local label="$1" file="$2" env="$3" client out="$TMP/compose.out"
    shift 3
    for client in "${compose_clients[@]}"; do
        if KLOYST_ENV_FILE="$env" $client --env-file "$env" -f "$file" config >"$out" 2>&1; then
            local want missing=()
            for want in "$@"; do grep -qF -- "$want" "$out" || missing+=("$want"); done
            if ((${#missing[@]} == 0)); then
                pass "$label: \`$client -f $file config\`"
            else
                fail "$label: \`$client config\` lacks: ${missing[*]}"
            fi
        else
            fail "$label: \`$client -f $file config\`"
            show "$out"
        fi
    done
}

check_compose "staging compose" docker-compose.staging.yml "$DUMMY_ENV" \
    "container_name: kloyst-staging-api-gateway" "container_name: kloyst-staging-webhook-worker" \
    "container_name: kloyst-staging-worker-pool" "container_name: kloyst-staging-outbox-relay" \
    "container_name: kloyst-staging-postgres" "container_name: kloyst-staging-redis" \
    "container_name: kloyst-staging-migrate" "127.0.0.1:3000:3000" "127.0.0.1:3002:3002" \
    "service_completed_successfully" "@kloyst-staging-postgres:5432/" \
    "redis://kloyst-staging-redis:6379"
check_compose "monitoring compose" monitoring/docker-compose.monitoring.yml "$DUMMY_ENV" \
    "127.0.0.1:3003:3000" "127.0.0.1:3100:3100" "127.0.0.1:8888:8080"

# The guard on the database password must hold: no env file value, no render.
grep -v '^POSTGRES_PASSWORD=' "$DUMMY_ENV" >"$TMP/env.nopassword"
if KLOYST_ENV_FILE="$TMP/env.nopassword" docker-compose --env-file "$TMP/env.nopassword" \
    -f docker-compose.staging.yml config -q >"$TMP/compose.out" 2>&1; then
    fail "staging compose renders without POSTGRES_PASSWORD (it must refuse)"
elif grep -q POSTGRES_PASSWORD "$TMP/compose.out"; then
    pass "staging compose refuses to render without POSTGRES_PASSWORD"
else
    fail "staging compose failed without POSTGRES_PASSWORD, but not naming it"
    show "$TMP/compose.out"
fi

# ---- 2. nginx -t on the rendered site config ------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # first free port from $1 upwards
    local p="$1"
    while port_in_use "$p"; do p=$((p + 1)); done
    echo "$p"
}

if [[ "$START_SERVICES" == 1 ]]; then
    API_PORT="$(free_port "${CHECK_API_PORT:-13000}")"
    WEBHOOK_PORT="$(free_port "${CHECK_WEBHOOK_PORT:-$((API_PORT + 2))}")"
    [[ "$WEBHOOK_PORT" != "$API_PORT" ]] || WEBHOOK_PORT="$(free_port $((API_PORT + 1)))"
else
    API_PORT="${CHECK_API_PORT:-3000}"
    WEBHOOK_PORT="${CHECK_WEBHOOK_PORT:-3002}"
fi

NGX="$TMP/nginx"
mkdir -p "$NGX/conf.d" "$NGX/snippets" "$NGX/logs" "$NGX/tmp" "$NGX/acme" "$NGX/tls"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$API_HOST" \
    -addext "subjectAltName=DNS:$API_HOST,DNS:logs.staging.kloyst.com,DNS:dozzle.staging.kloyst.com" \
    -keyout "$NGX/tls/privkey.pem" -out "$NGX/tls/fullchain.pem" >/dev/null 2>&1
GATE_USER=check-deploy
GATE_PASS="$(openssl rand -hex 16)"
htpasswd -bcB "$NGX/htpasswd" "$GATE_USER" "$GATE_PASS" >/dev/null 2>&1

# Swap every host path and port for its throw-away twin; then make sure nothing
# was missed (a new path in nginx/ must be taught to this function).
render() { # <src> <dst>
    sed -E \
        -e "s#/etc/letsencrypt/live/[^;]*/fullchain\.pem#$NGX/tls/fullchain.pem#g" \
        -e "s#/etc/letsencrypt/live/[^;]*/privkey\.pem#$NGX/tls/privkey.pem#g" \
        -e "s#/etc/nginx/snippets/#$NGX/snippets/#g" \
        -e "s#/etc/nginx/kloyst\.htpasswd#$NGX/htpasswd#g" \
        -e "s#/var/log/nginx/#$NGX/logs/#g" \
        -e "s#/var/www/letsencrypt#$NGX/acme#g" \
        -e "/listen[[:space:]]+\[::\]/d" \
        -e "s#listen[[:space:]]+80;#listen 127.0.0.1:$HTTP_PORT;#" \
        -e "s#listen[[:space:]]+443([[:space:]])#listen 127.0.0.1:$HTTPS_PORT\1#" \
        -e "s#server[[:space:]]+127\.0\.0\.1:3000;#server 127.0.0.1:$API_PORT;#" \
        -e "s#server[[:space:]]+127\.0\.0\.1:3002;#server 127.0.0.1:$WEBHOOK_PORT;#" \
        "$1" >"$2"
}
render nginx/kloyst.conf "$NGX/conf.d/kloyst.conf"
for f in nginx/snippets/*.conf; do render "$f" "$NGX/snippets/$(basename "$f")"; done

leftovers="$(grep -nE '(/etc/|/var/)|listen[[:space:]]+(80|443)\b' "$NGX/conf.d/kloyst.conf" "$NGX"/snippets/*.conf \
    | grep -v "$NGX" || true)"
if [[ -z "$leftovers" ]]; then
    pass "nginx config rendered for the temp prefix (paths and ports swapped)"
else
    fail "nginx config still names host paths or ports after rendering:"
    printf '%s\n' "$leftovers" | sed 's/^/      | /'
fi

# As root, nginx workers drop to nobody: let them read the temp prefix.
user_line=""
if ((EUID == 0)); then
    chmod -R a+rX "$TMP"
    user_line="user nobody $(getent group nogroup >/dev/null && echo nogroup || echo nobody);"
fi

# Shaped like a stock nginx.conf, so the site file is tested where it will live:
# inside http {}, next to the stock http-level directives.
cat >"$NGX/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $NGINX_PID_FILE;
error_log $NGX/logs/error.log warn;
events { worker_connections 256; }
http {
    sendfile on;
    types_hash_max_size 2048;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
    access_log $NGX/logs/access.log;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    include $NGX/conf.d/*.conf;
}
EOF
NGINX=(nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log")

if "${NGINX[@]}" -t >"$TMP/nginx-t.out" 2>&1; then
    pass "nginx -t on nginx/kloyst.conf + nginx/snippets (self-signed cert, temp prefix)"
    grep -E '\[(warn|emerg|alert)\]' "$TMP/nginx-t.out" | sed 's/^/      note: /' || true
else
    fail "nginx -t on nginx/kloyst.conf"
    show "$TMP/nginx-t.out"
fi

# ---- 3. routing through nginx on loopback ---------------------------------------

# Prints the status code (000 when nothing answered); the body lands in $TMP/body.
http_code() { curl -sS -o "$TMP/body" -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }
json_service() { sed -n 's/.*"service"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

wait_healthy() { # <name> <port>
    local deadline=$((SECONDS + WAIT_SECS))
    while ((SECONDS < deadline)); do
        [[ "$(http_code "http://127.0.0.1:$2/healthz")" == 200 ]] && return 0
        sleep 0.5
    done
    return 1
}

# KEY=VALUE lines from a dotenv file, exported only where not already set.
# Parsed, never sourced: the file is data, not shell.
load_dotenv() {
    local line key value
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        key="${BASH_REMATCH[2]}"
        value="${BASH_REMATCH[3]}"
        value="${value%$'\r'}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
        [[ -n "${!key+x}" ]] || export "$key=$value"
    done <"$1"
}

start_services() {
    local bin_dir="${CHECK_BIN_DIR:-$ROOT/target/debug}" name port var pid
    if [[ -f "$ROOT/.env" ]]; then load_dotenv "$ROOT/.env"
    elif [[ -f "$ROOT/.env.example" ]]; then load_dotenv "$ROOT/.env.example"; fi
    : "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/kloyst_dev}"
    : "${REDIS_URL:=redis://127.0.0.1:6379}"
    : "${JWT_SECRET:=dev-only-jwt-secret-change-me-0123456789}"
    : "${DATA_ENCRYPTION_KEY:=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f}"
    : "${META_ACCESS_TOKEN:=dev-meta-access-token}"
    : "${META_WABA_ID:=100000000000000}"
    : "${META_PHONE_NUMBER_ID:=100000000000001}"
    : "${META_APP_SECRET:=dev-meta-app-secret}"
    : "${META_VERIFY_TOKEN:=dev-verify-token}"
    : "${RAZORPAY_KEY_ID:=rzp_test_dev}"
    : "${RAZORPAY_KEY_SECRET:=dev-razorpay-key-secret}"
    : "${RAZORPAY_WEBHOOK_SECRET:=dev-razorpay-webhook-secret}"
    : "${LOG_FORMAT:=json}"
    : "${RUST_LOG:=info}"
    export DATABASE_URL REDIS_URL JWT_SECRET DATA_ENCRYPTION_KEY META_ACCESS_TOKEN META_WABA_ID \
        META_PHONE_NUMBER_ID META_APP_SECRET META_VERIFY_TOKEN RAZORPAY_KEY_ID RAZORPAY_KEY_SECRET \
        RAZORPAY_WEBHOOK_SECRET LOG_FORMAT RUST_LOG
    for name in api-gateway webhook-worker; do
        if [[ ! -x "$bin_dir/$name" ]]; then
            fail "no $bin_dir/$name (build it: cargo build -p api-gateway -p webhook-worker)"
            return 1
        fi
    done
    API_PORT="$API_PORT" "$bin_dir/api-gateway" >"$TMP/api-gateway.log" 2>&1 &
    SERVICE_PIDS+=("$!")
    WEBHOOK_PORT="$WEBHOOK_PORT" "$bin_dir/webhook-worker" >"$TMP/webhook-worker.log" 2>&1 &
    SERVICE_PIDS+=("$!")
    info "started api-gateway on :$API_PORT and webhook-worker on :$WEBHOOK_PORT (pids ${SERVICE_PIDS[*]})"
}

check_routing() {
    local name port
    if [[ "$START_SERVICES" == 1 ]]; then start_services || return 0; fi

    for name in api-gateway:$API_PORT webhook-worker:$WEBHOOK_PORT; do
        port="${name#*:}"; name="${name%%:*}"
        if wait_healthy "$name" "$port"; then
            pass "$name answers /healthz on 127.0.0.1:$port"
        else
            fail "$name did not answer /healthz on 127.0.0.1:$port within ${WAIT_SECS}s"
            [[ -f "$TMP/$name.log" ]] && show "$TMP/$name.log"
            return 0
        fi
    done

    for port in "$HTTP_PORT" "$HTTPS_PORT"; do
        if port_in_use "$port"; then
            fail "port $port is taken (set CHECK_HTTP_PORT / CHECK_HTTPS_PORT)"; return 0
        fi
    done
    if ! "${NGINX[@]}" >"$TMP/nginx-start.out" 2>&1; then
        fail "nginx did not start"; show "$TMP/nginx-start.out"; return 0
    fi
    for _ in $(seq 50); do [[ -s "$NGINX_PID_FILE" ]] && break; sleep 0.1; done
    info "nginx on 127.0.0.1:$HTTP_PORT (http) and 127.0.0.1:$HTTPS_PORT (https), pid $(cat "$NGINX_PID_FILE")"

    local base="https://$API_HOST:$HTTPS_PORT" body="$TMP/body" hdr="$TMP/headers" code svc
    local tls=(-k --resolve "$API_HOST:$HTTPS_PORT:127.0.0.1"
               --resolve "logs.staging.kloyst.com:$HTTPS_PORT:127.0.0.1"
               --resolve "dozzle.staging.kloyst.com:$HTTPS_PORT:127.0.0.1")
    # Credentials go to curl through a config on stdin, not the command line.
    local auth=(-K -)
    auth_cfg() { printf 'user = "%s:%s"\n' "$GATE_USER" "$GATE_PASS"; }

    code="$(http_code "${tls[@]}" -D "$hdr" "$base/v1/healthz")"
    if [[ "$code" == 401 ]] && grep -qi '^www-authenticate: basic realm="Kloyst staging"' "$hdr"; then
        pass "GET /v1/healthz without credentials -> 401 from nginx's basic auth"
    else
        fail "GET /v1/healthz without credentials -> $code (want 401 with WWW-Authenticate: Basic)"
    fi

    code="$(http_code "${tls[@]}" -u "$GATE_USER:wrong-password" "$base/v1/healthz")"
    [[ "$code" == 401 ]] && pass "GET /v1/healthz with a wrong password -> 401" \
        || fail "GET /v1/healthz with a wrong password -> $code (want 401)"

    code="$(auth_cfg | http_code "${tls[@]}" "${auth[@]}" -D "$hdr" "$base/v1/healthz")"
    svc="$(json_service "$body")"
    if [[ "$code" == 200 && "$svc" == api-gateway ]]; then
        pass "GET /v1/healthz with basic auth -> 200 from api-gateway"
    else
        fail "GET /v1/healthz with basic auth -> $code, service \"$svc\" (want 200, api-gateway)"
        show "$body"
    fi
    grep -qi '^strict-transport-security:' "$hdr" && grep -qi '^x-request-id:' "$hdr" \
        && pass "security headers and X-Request-Id on proxied responses" \
        || fail "HSTS or X-Request-Id missing on a proxied response"

    # A Bearer token passes the gate (the API checks it itself); see nginx/kloyst.conf.
    code="$(http_code "${tls[@]}" -H 'Authorization: Bearer check-deploy' "$base/v1/healthz")"
    svc="$(json_service "$body")"
    [[ "$code" == 200 && "$svc" == api-gateway ]] \
        && pass "GET /v1/healthz with a Bearer token -> passes the gate to api-gateway" \
        || fail "GET /v1/healthz with a Bearer token -> $code, service \"$svc\" (want 200, api-gateway)"

    code="$(http_code "${tls[@]}" "$base/webhook/healthz")"
    svc="$(json_service "$body")"
    if [[ "$code" == 200 && "$svc" == webhook-worker ]]; then
        pass "GET /webhook/healthz without credentials -> 200 from webhook-worker"
    else
        fail "GET /webhook/healthz without credentials -> $code, service \"$svc\" (want 200, webhook-worker)"
        show "$body"
    fi

    head -c $((5 * 1024 * 1024)) /dev/zero >"$TMP/5mb"
    code="$(http_code "${tls[@]}" -H 'Content-Type: application/json' --data-binary @"$TMP/5mb" \
        "$base/webhook/meta")"
    [[ "$code" == 413 ]] && pass "POST /webhook/meta with 5 MB -> 413 (body limit 4m)" \
        || fail "POST /webhook/meta with 5 MB -> $code (want 413)"

    code="$(http_code -D "$hdr" --resolve "$API_HOST:$HTTP_PORT:127.0.0.1" \
        "http://$API_HOST:$HTTP_PORT/v1/healthz")"
    if [[ "$code" == 301 ]] && grep -qi "^location: https://$API_HOST/v1/healthz" "$hdr"; then
        pass "http://$API_HOST/v1/healthz -> 301 to https://$API_HOST/v1/healthz"
    else
        fail "http://$API_HOST/v1/healthz -> $code (want 301 to https)"
    fi

    for host in logs.staging.kloyst.com dozzle.staging.kloyst.com; do
        code="$(http_code "${tls[@]}" "https://$host:$HTTPS_PORT/")"
        [[ "$code" == 401 ]] && pass "https://$host/ without credentials -> 401" \
            || fail "https://$host/ without credentials -> $code (want 401)"
    done

    # Readiness depends on the caller's Postgres and Redis: reported, not judged.
    code="$(auth_cfg | http_code "${tls[@]}" "${auth[@]}" "$base/v1/readyz")"
    info "GET /v1/readyz through nginx -> $code $(head -c 200 "$body" 2>/dev/null || true)"
}

if [[ "$ROUTING" == 1 ]]; then
    check_routing
else
    info "routing through nginx not checked (pass --routing or --start-services)"
fi

echo "check-deploy: $PASSED passed, $FAILED failed"
((FAILED == 0))
