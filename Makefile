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

.PHONY: help setup lint test test-fast gui-check demo bench train deploy package clean

help:
	@echo "make demo     install what is missing, then run the full pipeline on built-in defaults"
	@echo "make test     install what is missing, then run the whole test suite"
	@echo "make lint     ruff (pyflakes, pycodestyle, naming, bugbear, numpydoc docstrings; pyproject.toml)"
	@echo "make bench    performance figures against named peers"
	@echo "make train    resume the model's training campaign for MINUTES=$(MINUTES) (MODEL_DIR=$(MODEL_DIR))"
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

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

# the real QGIS desktop under Xvfb: dialogs of extractdisplacement and trainmodel, a run from
# the okadadisplacement dialog; screenshots and result.json in build/gui-check (~30 s)
gui-check: setup
	@command -v xvfb-run >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb; \
		else echo "Install: sudo apt-get install -y xvfb"; exit 1; fi; }
	scripts/gui_check.sh $(BUILD)/gui-check

demo: setup
	$(PY) scripts/demo.py --output $(BUILD)/demo $(DEMO_ARGS)

# training campaign: resume from $(MODEL_DIR)/insar_gnss_3d.ckpt (or start from the model
# there), train for MINUTES of wall clock, write model, checkpoint and history.json there
MINUTES ?= 120
MODEL_DIR ?= resources/models
TRAIN_ARGS ?=
train: $(VENV)/.installed $(PLUGIN_LINK)
	$(PY) -m insar_gnss_3d.core.train --model-dir $(MODEL_DIR) --minutes $(MINUTES) \
		--validate-every-minutes 15 $(TRAIN_ARGS)
	@# the std head's calibration (a power law, core/calibrate.py) on held-out scenes, model and checkpoint
	$(PY) -m insar_gnss_3d.core.calibrate $(MODEL_DIR)/insar_gnss_3d.pt \
		--checkpoint $(MODEL_DIR)/insar_gnss_3d.ckpt --skip-without-std-head
	$(PY) scripts/model_card.py --history $(MODEL_DIR)/history.json

bench: setup
	@# peers timed beside our code (not plugin dependencies); a failed install only skips them
	$(PY) -m pip install -q --disable-pip-version-check pyrocko "numpy<2" \
		|| echo "pyrocko could not be installed: bench_okada will skip it"
	$(PY) bench/run_bench.py

deploy: setup
	@dest="$(QGIS_PROFILE)/python/plugins/insar_gnss_3d"; \
	if [ -e "$$dest" ] && [ ! -L "$$dest" ]; then \
		echo "$$dest exists and is not a link (a copy installed from a zip?): remove it, then rerun"; \
		exit 1; fi
	mkdir -p "$(QGIS_PROFILE)/python/plugins"
	ln -sfn $(ROOT) "$(QGIS_PROFILE)/python/plugins/insar_gnss_3d"
	@# QGIS runs the system Python: fill deps/ with its pip (plugin.py puts deps/ first on sys.path)
	/usr/bin/python3 -m pip install -q --disable-pip-version-check --upgrade \
		--target "$(ROOT)/deps" -r requirements-plugin.txt
	@# as QGIS will: system Python, deps/ put on sys.path by plugin.py, a lazily imported part
	/usr/bin/python3 -c "from insar_gnss_3d.plugin import add_dependency_dir; add_dependency_dir(); \
		import torch; torch.broadcast_shapes((2, 1), (1, 3)); \
		print('torch', torch.__version__, 'loads from', torch.__file__)" \
		|| { echo "torch in $(ROOT)/deps does not load with the sys.path order plugin.py gives it"; \
		     echo "(deps/ must come before the system site-packages, whose older sympy breaks torch)"; \
		     exit 1; }
	@echo "Linked into $(QGIS_PROFILE)/python/plugins; dependencies in $(ROOT)/deps."
	@echo "Restart QGIS and enable 'InSAR-GNSS 3D' in Plugins > Manage and Install Plugins."

ZIP := $(ROOT)/dist/insar_gnss_3d-$(VERSION).zip

package:
	@# committed files only (git archive HEAD) of the paths listed in scripts/package_files.txt
	rm -rf $(BUILD)/package && mkdir -p $(BUILD)/package/insar_gnss_3d $(ROOT)/dist
	git archive --format=tar HEAD $$(grep -v -e '^#' -e '^[[:space:]]*$$' scripts/package_files.txt) \
		| tar -x -C $(BUILD)/package/insar_gnss_3d
	rm -f $(ZIP) && cd $(BUILD)/package && zip -qrX $(ZIP) insar_gnss_3d
	unzip -tq $(ZIP)
	/usr/bin/python3 -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
		bad = [n for n in names if not n.startswith('insar_gnss_3d/') or '__pycache__' in n \
		       or n.endswith('.pyc') or n.startswith('insar_gnss_3d/tests/')]; \
		need = [n for n in ('LICENSE', 'metadata.txt', '__init__.py', 'plugin.py') \
		        if 'insar_gnss_3d/' + n not in names]; \
		sys.exit('bad entries %s, missing %s' % (bad, need) if bad or need else 0)" $(ZIP)
	@test $$(stat -c %s $(ZIP)) -lt 26214400 || { echo "$(ZIP) is over 25 MB"; exit 1; }
	@ls -l $(ZIP)

clean:
	rm -rf $(BUILD) dist .pytest_cache
