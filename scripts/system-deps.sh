#!/bin/sh
# Debian packages hezo needs beyond Python 3.11: venv support always; with --broker, the Mosquitto
# broker and clients, net-snmp's snmpd, and iproute2 and ping, which the integration tests start or use on
# their own ports and namespaces; with --postgres, a PostgreSQL server on 127.0.0.1:5432 (the store tests run
# against it too), started if it is installed but stopped; with --rt, Request Tracker 5 (its SQLite driver and
# standalone server), which the rt sink's tests set up and start on their own ports with their own databases;
# with --browser, Chromium, in which the console's pages are tested; with --promtool, Prometheus's promtool
# (Debian package prometheus), which checks /metrics, the alert rules and their tests (config/prometheus/).
# Installs what is missing when run as root (CI, a fresh machine); otherwise says exactly what to install.
set -eu

need=""
postgres=no
rt=no
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need="$need python3-venv"
for arg in "$@"; do
  case "$arg" in
    --broker)
      command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
      command -v mosquitto_sub >/dev/null 2>&1 || need="$need mosquitto-clients"
      # the icmp driver's tests: network namespaces and veth pairs, and the system ping it falls back to
      command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need="$need iproute2"
      command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
      # net-snmp's agent: the simulated PoE switch the snmp tests start on their own ports.
      command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need="$need snmpd"
      # net-snmp's tools: snmptrap sends the traps the agent's receiver is tested with.
      command -v snmptrap >/dev/null 2>&1 || need="$need snmp"
      ;;
    --browser)
      # The console's pages are driven in Debian's Chromium (tests/browser/, Playwright without its own
      # browser download).
      command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need="$need chromium"
      ;;
    --rt)
      # No system database (dbconfig-no-thanks: each test run makes its own); dma is the smallest of the
      # mail transports RT depends on (the tests send no mail). debconf is answered below: apt asks nothing.
      if [ ! -x /usr/share/request-tracker5/libexec/rt-server ] || [ ! -x /usr/sbin/rt-setup-database-5 ]; then
        rt=yes
        need="$need request-tracker5 rt5-db-sqlite rt5-standalone dma dbconfig-no-thanks"
      fi
      ;;
    --promtool)
      # Only its promtool is used; the tests neither start nor need the package's own server.
      command -v promtool >/dev/null 2>&1 || need="$need prometheus"
      # The units' exposure is checked with systemd-analyze security --offline.
      command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
      ;;
    --postgres)
      postgres=yes
      command -v pg_ctlcluster >/dev/null 2>&1 || need="$need postgresql"
      ;;
  esac
done

if [ -n "$need" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "hezo: missing Debian packages:$need" >&2
    echo "hezo: install them with: sudo apt-get install$need" >&2
    exit 1
  fi
  echo "hezo: installing$need"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$rt" = yes ]; then
    debconf-set-selections <<'EOF'
request-tracker5 request-tracker5/rtname string rt.localhost
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/dbconfig-install boolean false
EOF
  fi
  apt-get update -qq
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  apt-get install -y -qq --no-install-recommends $need
fi
# The Debian package starts a system broker on 1883; the tests never use it, and leaving it as it was
# (running or not) is the least surprise.

[ "$postgres" = yes ] || exit 0
# The tests need a server on 127.0.0.1:5432 that trusts local connections as user postgres, with a
# database 'test'. A running one is left alone; an installed but stopped cluster is started.
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
  :
elif [ "$(id -u)" -eq 0 ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  echo "hezo: starting PostgreSQL $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
else
  echo "hezo: PostgreSQL is not answering on 127.0.0.1:5432; start it (pg_ctlcluster VERSION main start)" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1; then
  # A fresh cluster: trust loopback for the tests, and create the database they use.
  if ! runuser -u postgres -- psql -h 127.0.0.1 -U postgres -tAc "select 1" >/dev/null 2>&1; then
    hba=$(runuser -u postgres -- psql -tAc "show hba_file")
    printf 'host all postgres 127.0.0.1/32 trust\n' | cat - "$hba" >"$hba.hezo" && mv "$hba.hezo" "$hba"
    chown postgres: "$hba"
    runuser -u postgres -- psql -qc "select pg_reload_conf()" >/dev/null
  fi
  runuser -u postgres -- psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname = 'test'" \
    | grep -q 1 || runuser -u postgres -- createdb -h 127.0.0.1 -U postgres test
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "hezo: PostgreSQL did not start" >&2; exit 1; }
