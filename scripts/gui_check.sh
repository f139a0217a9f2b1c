#!/usr/bin/env bash
# GUI smoke test: the real QGIS desktop under Xvfb, with this plugin, opens the
# extractdisplacement and trainmodel dialogs and runs okadadisplacement from its dialog.
# Screenshots and result.json go to ${1:-build/gui-check}. Exit status 0 when all held.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/build/gui-check}" && cd "${1:-$root/build/gui-check}" && pwd)
command -v xvfb-run >/dev/null || { echo "xvfb-run is missing: sudo apt-get install -y xvfb"; exit 1; }
rm -rf "$out/profiles" "$out/runtime" "$out"/*.png "$out/result.json" "$out/qgis.log" "$out"/okada_from_dialog.*
mkdir -p "$out/profiles/default/QGIS" "$out/runtime" && chmod 700 "$out/runtime"
cat > "$out/profiles/default/QGIS/QGIS3.ini" <<INI
[PythonPlugins]
insar_gnss_3d=true
[insar_gnss_3d]
dependencies_offered=true
INI
export GUI_CHECK_OUT="$out" XDG_RUNTIME_DIR="$out/runtime" QGIS_PLUGINPATH="$root/build/plugins"
export PYTHONPATH="$(echo "$root"/.venv/lib/python3*/site-packages)${PYTHONPATH:+:$PYTHONPATH}"
unset QT_QPA_PLATFORM
timeout 300 xvfb-run -a -s "-screen 0 1600x1200x24" /usr/bin/qgis.bin --nologo --noversioncheck \
    --profiles-path "$out" --code "$root/scripts/gui_check_in_qgis.py" > "$out/qgis.log" 2>&1 || true
test -f "$out/result.json" || { echo "QGIS wrote no result (see $out/qgis.log)"; tail -20 "$out/qgis.log"; exit 1; }
/usr/bin/python3 - "$out/result.json" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
ok = (not r["errors"] and r.get("plugin_loaded") and r["run"].get("executed") and r["run"].get("output_exists")
      and r.get("failed_run", {}).get("failed") and not r["failed_run"]["claims_html"]
      and all(os.path.getsize(d["screenshot"]) > 10000 for d in r["dialogs"].values()) and len(r["dialogs"]) == 2)
print(json.dumps(r, indent=1)[:3000])
print("GUI check", "passed" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
