#!/bin/sh
# snmpsim serving recordings of real switches, for the snmp driver's tests (tests/integration/
# test_snmp_recordings.py): a venv of its own in .snmpsim (gitignored), from PyPI only. snmpsim-data-lextudio
# (the recordings) goes in with --no-deps: its own dependencies would replace snmpsim's modules with an
# older fork. Debian's python3 makes the venv: run as root, the responder drops to 'nobody', and must still
# import its dbm module then. The recordings the tests use are unpacked into .snmpsim/data.
set -eu
cd "$(dirname "$0")/.."
dir=.snmpsim
recordings="cisco-c3750 cisco-c3560 huawei-s5720 brocade-icx6430-24 dlink-des3200 h3c-e528-1 hpe-procurve-516733-b21"
[ -f "$dir/.installed" ] && exit 0
python=/usr/bin/python3
[ -x "$python" ] || python=python3
rm -rf "$dir"
"$python" -m venv "$dir"
# cryptography: snmpsim answers SNMPv3 with privacy (AES) only with it.
"$dir/bin/pip" install --quiet --disable-pip-version-check "snmpsim>=1.1,<2" "snmpsim-data>=1,<2" "pysmi>=1.4" "cryptography>=42"
"$dir/bin/pip" install --quiet --disable-pip-version-check --no-deps "snmpsim-data-lextudio>=1,<2"
"$dir/bin/python" - "$dir/data" $recordings <<'PY'
import bz2, os, sys, snmpsim_data
source = os.path.join(os.path.dirname(snmpsim_data.__file__), "data")
found = {name[: -len(".snmprec.bz2")]: os.path.join(root, name)
         for root, _dirs, names in os.walk(source) for name in names if name.endswith(".snmprec.bz2")}
os.makedirs(sys.argv[1], exist_ok=True)
for wanted in sys.argv[2:]:
    if wanted not in found:
        sys.exit(f"hezo: recording {wanted} not found in snmpsim-data-lextudio")
    with bz2.open(found[wanted]) as packed, open(os.path.join(sys.argv[1], wanted + ".snmprec"), "wb") as out:
        out.write(packed.read())
PY
chmod -R a+rX "$dir"
touch "$dir/.installed"
echo "hezo: snmpsim and $(echo $recordings | wc -w) switch recordings in $dir"
