#!/bin/sh
# Debian packages hezo needs beyond Python 3.11: venv support always; with --broker, the Mosquitto
# broker and clients, net-snmp's snmpd, and iproute2 and ping, which the integration tests start or use on
# their own ports and namespaces. Installs what is missing when run as root (CI, a fresh machine); otherwise
# says exactly what to install.
set -eu

need=""
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need="$need python3-venv"
if [ "${1:-}" = "--broker" ]; then
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
  command -v mosquitto_sub >/dev/null 2>&1 || need="$need mosquitto-clients"
  # the icmp driver's tests: network namespaces and veth pairs, and the system ping it falls back to
  command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need="$need iproute2"
  command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
  # net-snmp's agent: the simulated PoE switch the snmp tests start on their own ports.
  command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need="$need snmpd"
  # The diagnostics page's buttons are tested in a real headless browser.
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need="$need chromium"
fi
[ -z "$need" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "hezo: missing Debian packages:$need" >&2
  echo "hezo: install them with: sudo apt-get install$need" >&2
  exit 1
fi
echo "hezo: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $need
# The Debian package starts a system broker on 1883; the tests never use it, and leaving it as it was
# (running or not) is the least surprise.
