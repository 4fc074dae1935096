# Shared by the bench scripts (sourced; expects $tmp, $repeats and $port to be set):
# wait_listening, pair_run, median, measure and make_test_certs; and perf_tools_prepare for
# the scripts that build other libraries' perf tools.

wait_listening() { # url
  local url=$1 i
  for i in $(seq 1 500); do
    case $url in
      # Look for the listening socket without connecting: a raw baseline server would take a
      # probe connection for its one client.
      tcp://*|tls+tcp://*|ws://*|wss://*)
               local hostport=${url#*://}; hostport=${hostport%%/*}
               local port_hex; port_hex=$(printf ':%04X' "${hostport##*:}")
               awk -v p="$port_hex" '$2 ~ p"$" && $4 == "0A" {found=1} END {exit !found}' \
                 /proc/net/tcp && return 0 ;;
      # The socket file appears at bind(), before listen(): look for it listening
      # (flags 00010000 in /proc/net/unix), or a dial that comes first is refused.
      ipc://*) awk -v p="${url#ipc://}" '$NF == p && $4 == "00010000" {found=1} END {exit !found}' \
                 /proc/net/unix && return 0 ;;
    esac
    sleep 0.01
  done
  echo "listener at $url did not come up" >&2; return 1
}

# pair_run <server cmd...> -- <client cmd...>: starts the server, waits for it, runs the client;
# prints the combined output of both.
pair_run() {
  local server=() client=() url
  while [ "$1" != "--" ]; do server+=("$1"); shift; done; shift
  client=("$@")
  # The URL is the first argument that looks like one.
  for url in "${server[@]}"; do case $url in *://*) break ;; esac; done
  "${server[@]}" >"$tmp/server.out" 2>&1 &
  local spid=$!
  wait_listening "$url"
  "${client[@]}" >"$tmp/client.out" 2>&1 || true
  wait $spid || true
  cat "$tmp/server.out" "$tmp/client.out"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # label field-regex then command (as pair_run args or a single command)
  local label=$1 regex=$2; shift 2
  local vals=() i v
  for i in $(seq 1 "$repeats"); do
    port=$((port + 1))
    local args=("${@//PORT/$port}")
    if printf '%s\n' "${args[@]}" | grep -qx -- '--'; then
      v=$(pair_run "${args[@]}" | grep -E "$regex" | head -1 | sed -E 's/.*: ?([0-9.]+).*/\1/')
    else
      v=$("${args[@]}" 2>&1 | grep -E "$regex" | head -1 | sed -E 's/.*: ([0-9.]+).*/\1/')
    fi
    vals+=("${v:-nan}")
  done
  printf '%s\n' "${vals[@]}" | median > "$tmp/m"
  echo "$label|$(cat "$tmp/m")|${vals[*]}"
}


# make_test_certs: a CA and a server certificate for 127.0.0.1 in $tmp, made for this run
# only (needs openssl); sets srv (sp-perf's server flags) and cli (the client's).
make_test_certs() {
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 \
    -subj "/CN=bench ca" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$tmp/srv.key" -out "$tmp/srv.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/ext"
  openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -out "$tmp/srv.crt" -days 2 -extfile "$tmp/ext" 2>/dev/null
  srv=(--cert "$tmp/srv.crt" --key "$tmp/srv.key")
  cli=(--cacert "$tmp/ca.pem")
}

# perf_tools_prepare <out> <label>: ends the calling build script if <out>/bin already has the
# perf tools; otherwise makes <out> and makes sure cmake and ninja are there (from pip).
perf_tools_prepare() {
  if [ -x "$1/bin/local_thr" ] && [ -x "$1/bin/inproc_lat" ]; then
    echo "$2 perf tools already built in $1/bin"
    exit 0
  fi
  mkdir -p "$1"
  command -v cmake >/dev/null && command -v ninja >/dev/null || pip install -q cmake ninja
}
