#!/usr/bin/env bash
# qgis_process.bin with this plugin enabled, in an isolated profile (installed by make as
# build/bin/qgis_process). Usage: build/bin/qgis_process run insargnss3d:okadadisplacement -- ...
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)     # build/
root=$(cd "$here/.." && pwd)
export QT_QPA_PLATFORM=offscreen
export XDG_RUNTIME_DIR="$here/runtime"
export QGIS_CUSTOM_CONFIG_PATH="$here/qgis-profile"
export QGIS_PLUGINPATH="$here/plugins"
export PYTHONPATH="$(echo "$root"/.venv/lib/python3*/site-packages):$here/plugins${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$XDG_RUNTIME_DIR" "$QGIS_CUSTOM_CONFIG_PATH" && chmod 700 "$XDG_RUNTIME_DIR"
if [ ! -f "$QGIS_CUSTOM_CONFIG_PATH/.enabled" ]; then
    /usr/bin/qgis_process.bin plugins enable insar_gnss_3d >/dev/null 2>&1 || true
    touch "$QGIS_CUSTOM_CONFIG_PATH/.enabled"
fi
exec /usr/bin/qgis_process.bin "$@"
