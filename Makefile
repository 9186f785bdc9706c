# The two entry points: `make demo` and `make test`. Each does all of its own set-up on a fresh
# machine: a project-local virtual environment, the project and its extras, the services it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/anatomy-vlm
NEO4JCTL := $(PY) services/neo4j/neo4jctl.py
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install e2e-deps demo test test-embedded test-viewer viewer-screenshots neo4j-start neo4j-stop benchmark clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,phantom]"
	touch $(INSTALLED)

install: $(INSTALLED)

# Debian's chromium (apt, as root) and playwright-core (npm ci in tests/e2e) for the web viewer's
# end-to-end test; installs only what is missing.
e2e-deps:
	bash scripts/install_chromium.sh

# Builds the ontology from its curated sources and the open data in packages (printing the build
# log and the coverage report), syncs it into the embedded graph (no server needed), and prints the
# knowledge neighbourhood of three regions: their PART_OF ancestors and the findings located there.
# Then the model: trains the tiny aligner on phantoms once (training/configs/demo.yaml; later runs
# reuse runs/demo/checkpoint.pt), predicts a phantom of the test split against the graph, writes
# the provenance to the embedded graph and prints the Cypher that explains the top finding with
# its rows; the overlay and the explanation subgraph are saved as PNGs under runs/demo/.
DEMO_OWL := .anatomy-vlm/anatomy-vlm.owl
DEMO_RUN := runs/demo
DEMO_IMAGE := .anatomy-vlm/phantoms-64/test/images/phantom_2000000_000000.png
demo: install
	$(CLI) ontology build --out $(DEMO_OWL)
	$(CLI) kg sync --owl $(DEMO_OWL)
	$(CLI) kg neighbourhood "right upper lung zone" "right costophrenic angle" "cardiac silhouette"
	$(CLI) kg query "MATCH (f:Finding {variant: 'canonical'})-[r:LOCATED_IN]->(a:Anatomy) WHERE r.source = 'padchest' RETURN f.name AS finding, a.name AS region, r.count AS reports, round(r.weight * 100) / 100 AS weight ORDER BY reports DESC LIMIT 8"
	$(CLI) data phantom --n 16 --seed 2000000 --out .anatomy-vlm/phantom --contact-sheet .anatomy-vlm/phantom/contact_sheet.png
	test -f $(DEMO_RUN)/checkpoint.pt || $(CLI) train training/configs/demo.yaml --out-dir $(DEMO_RUN)
	$(CLI) predict $(DEMO_RUN)/checkpoint.pt $(DEMO_IMAGE) --explain --overlay-dir $(DEMO_RUN) --explanation-dir $(DEMO_RUN)

# Resolves Neo4j Community 5.26 from Maven Central, starts it on loopback, runs the whole suite
# against it and against the embedded engine, and stops the server whatever the outcome (a server
# that was already running, e.g. from `make neo4j-start`, is reused and left running).
test: install e2e-deps
	$(NEO4JCTL) resolve
	set -e; if $(NEO4JCTL) status >/dev/null 2>&1; then ours=0; else ours=1; fi; \
	exports="$$($(NEO4JCTL) start --quiet)"; eval "$$exports"; \
	if [ $$ours = 1 ]; then trap '$(NEO4JCTL) stop >/dev/null' EXIT; fi; \
	$(PY) -m pytest $(PYTEST_ARGS)

# The suite without the Neo4j server (embedded engine and pure tests only).
test-embedded: install e2e-deps
	$(PY) -m pytest -m "not neo4j" $(PYTEST_ARGS)

# The web viewer end to end in headless chromium; `viewer-screenshots` also refreshes docs/images/viewer*.png.
test-viewer: install e2e-deps
	$(PY) -m pytest tests/api/test_viewer.py $(PYTEST_ARGS)

viewer-screenshots: install e2e-deps
	ANATOMY_VLM_SCREENSHOT_DIR=docs/images $(PY) -m pytest tests/api/test_viewer.py $(PYTEST_ARGS)

neo4j-start: install
	$(NEO4JCTL) start

neo4j-stop:
	$(NEO4JCTL) stop

# Sync throughput and neighbourhood latency on both backends, the service under load, phantom
# generation speed and box agreement, CPU inference against DenseNet-121, and the phantom training
# targets with the knowledge-variant study (the longest: about an hour on 2 cores); each writes its
# section of docs/benchmarks.md. benchmarks/gpu_train.py needs a CUDA device: run it there.
benchmark: install
	$(NEO4JCTL) resolve
	set -e; if $(NEO4JCTL) status >/dev/null 2>&1; then ours=0; else ours=1; fi; \
	exports="$$($(NEO4JCTL) start --quiet)"; eval "$$exports"; \
	if [ $$ours = 1 ]; then trap '$(NEO4JCTL) stop >/dev/null' EXIT; fi; \
	$(PY) benchmarks/graph_sync.py
	$(PY) benchmarks/api_load.py
	$(PY) benchmarks/phantom.py
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/train_phantom.py --study

clean:
	rm -rf .anatomy-vlm .pytest_cache benchmarks/out
