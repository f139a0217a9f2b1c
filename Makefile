# InSAR-GNSS 3D — set-up, tests, demo, packaging. Run `make help`.
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD := $(ROOT)/build
PLUGIN_LINK := $(BUILD)/plugins/insar_gnss_3d
QGIS_PROCESS := $(BUILD)/bin/qgis_process
APT_PACKAGES := qgis python3-qgis qgis-providers python3-gdal python3-venv python3-pip \
	python3-scipy python3-matplotlib python3-pyproj
VERSION := $(shell sed -n 's/^version=//p' metadata.txt)
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
export PYTHONPATH := $(BUILD)/plugins
export QT_QPA_PLATFORM := offscreen
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup test test-fast demo bench deploy package clean

help:
	@echo "make demo     install what is missing, then run the full pipeline on built-in defaults"
	@echo "make test     install what is missing, then run the whole test suite"
	@echo "make bench    performance figures against named peers"
	@echo "make deploy   link the plugin into your QGIS profile and fill its dependency folder"
	@echo "make package  build dist/insar_gnss_3d-$(VERSION).zip for the plugin repository"

setup: $(VENV)/.installed $(PLUGIN_LINK) $(QGIS_PROCESS)

/usr/bin/qgis_process.bin:
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	else \
		echo "QGIS is missing. Install it with:"; \
		echo "  sudo apt-get install -y $(APT_PACKAGES)"; \
		exit 1; \
	fi

$(VENV)/.installed: requirements.txt /usr/bin/qgis_process.bin
	@/usr/bin/python3 -c "import scipy, matplotlib, pyproj" 2>/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
		else echo "Install: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; fi; }
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(PLUGIN_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(ROOT) $@

$(QGIS_PROCESS): scripts/qgis_process.sh
	mkdir -p $(dir $@)
	cp scripts/qgis_process.sh $@
	chmod +x $@

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

demo: setup
	$(PY) scripts/demo.py --output $(BUILD)/demo $(DEMO_ARGS)

bench: setup
	$(PY) -m pip install -q --disable-pip-version-check pyrocko
	$(PY) bench/run_bench.py

deploy: setup
	mkdir -p "$(QGIS_PROFILE)/python/plugins"
	ln -sfn $(ROOT) "$(QGIS_PROFILE)/python/plugins/insar_gnss_3d"
	/usr/bin/python3 -m pip install -q --disable-pip-version-check \
		--target "$(ROOT)/deps" -r requirements-plugin.txt
	@echo "Linked into $(QGIS_PROFILE)/python/plugins; dependencies in $(ROOT)/deps."
	@echo "Restart QGIS and enable 'InSAR-GNSS 3D' in Plugins > Manage and Install Plugins."

package:
	rm -rf $(BUILD)/package && mkdir -p $(BUILD)/package/insar_gnss_3d dist
	git archive --format=tar HEAD $$(cat scripts/package_files.txt) | tar -x -C $(BUILD)/package/insar_gnss_3d
	cd $(BUILD)/package && rm -f $(ROOT)/dist/insar_gnss_3d-$(VERSION).zip && \
		zip -qr $(ROOT)/dist/insar_gnss_3d-$(VERSION).zip insar_gnss_3d
	@ls -l dist/insar_gnss_3d-$(VERSION).zip
	@test $$(stat -c %s dist/insar_gnss_3d-$(VERSION).zip) -lt 26214400 || { echo "zip over 25 MB"; exit 1; }

clean:
	rm -rf $(BUILD) dist .pytest_cache
