# Helpers shared by scripts/test, scripts/serve and the benchmarks: make sure a service or tool
# is there, installing it from Debian's packages or the language registries when it is not.

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install: $*" >&2
    return 1
  fi
  if [ -z "${IDVERDICT_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export IDVERDICT_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if have pg_isready && pg_up; then return; fi
  echo "== starting PostgreSQL =="
  if ! have pg_ctlcluster; then
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Tests connect as postgres over TCP without a password, as on these machines.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_up && return; sleep 1; done
  echo "PostgreSQL did not start" >&2
  return 1
}

ensure_nats() {
  if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then return; fi
  echo "== starting NATS =="
  have nats-server || apt_install nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && return; sleep 1; done
  echo "NATS did not start" >&2
  return 1
}

ensure_python_sdk() {
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    python3 -m venv "$ROOT/.venv" || { apt_install python3-venv && python3 -m venv "$ROOT/.venv"; }
  fi
  local stamp="$ROOT/.venv/.requirements"
  if ! cmp -s "$ROOT/tests/sdk/python/requirements.txt" "$stamp"; then
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/sdk/python/requirements.txt"
    cp "$ROOT/tests/sdk/python/requirements.txt" "$stamp"
  fi
}

ensure_node_sdk() {
  have node || apt_install nodejs npm
  local dir="$ROOT/tests/sdk/node"
  local stamp="$dir/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$dir/package.json" -nt "$stamp" ] || { [ -f "$dir/package-lock.json" ] && [ "$dir/package-lock.json" -nt "$stamp" ]; }; then
    if [ -f "$dir/package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    else
      (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    fi
  fi
}

# The console's browser test drives Debian's Chromium through chromedriver (WebDriver).
ensure_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  echo "== installing chromium and chromium-driver (browser tests) =="
  apt_install chromium chromium-driver
}
