# TA-socdefenders: `make demo` and `make test` are the two commands a newcomer needs.
# Build output goes to target/, build/ and dist/ (all git-ignored).

SHELL := /bin/bash
CARGO ?= cargo
TARGET := x86_64-unknown-linux-musl
BIN := target/$(TARGET)/release/socdefenders-iocs
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
SPL := dist/TA-socdefenders-$(VERSION).spl
VENV := .venv
BENCH_RUNS ?= 11
PY := $(VENV)/bin/python
# ring compiles C for the musl target with Debian's musl-gcc (package musl-tools).
export CC_x86_64_unknown_linux_musl ?= musl-gcc

.PHONY: all build package demo test lint unit hostile package-check splunkd-run knowledge-check taxii-interop stix-conformance appinspect venv bench clean

all: package

build:
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)
	@command -v musl-gcc >/dev/null || { echo "musl-gcc not found: apt-get install musl-tools"; exit 1; }
	$(CARGO) build --release --locked --target $(TARGET)

package: build
	@python3 tools/package.py . $(BIN) build dist

demo: package
	@python3 tools/demo.py $(BIN)
	@echo "package: $(SPL)"

test: lint unit hostile package-check splunkd-run knowledge-check taxii-interop stix-conformance appinspect
	@echo "make test: all checks passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	python3 tools/check_structure.py --self-test src

unit:
	$(CARGO) test --locked

# The package as an admin gets it: layout, modes, static binary, and byte-identical rebuilds.
package-check: package
	python3 tools/package.py --self-test
	python3 tools/check_package.py $(SPL) $(VERSION)
	@first=$$(sha256sum $(SPL) | cut -d' ' -f1); \
	 python3 tools/package.py . $(BIN) build dist >/dev/null; \
	 second=$$(sha256sum $(SPL) | cut -d' ' -f1); \
	 if [ "$$first" != "$$second" ]; then echo "package is not reproducible: $$first != $$second"; exit 1; fi; \
	 echo "package reproducible: sha256 $$first"

# Hostile pages of up to max_body_bytes, and TAXII pages of 100 to 10,000 objects, read by
# the release binary in bounded memory.
hostile: build
	$(CARGO) build --locked --example peak_rss
	SOCDEFENDERS_BIN=$(abspath $(BIN)) $(CARGO) test --locked --test it -- --ignored --exact \
	  hostile::hostile_pages_are_read_in_bounded_memory taxii_bounds::taxii_pages_are_read_in_flat_memory

# Extracts the .spl into a temporary $$SPLUNK_HOME and runs it the way splunkd does.
splunkd-run: package
	SOCDEFENDERS_SPL=$(abspath $(SPL)) $(CARGO) test --locked --test it -- --ignored --exact package_runs_like_splunkd

# Lookups, macros, collections, fields_list and event fields, checked statically against the
# events the built binary prints for the sample feed (there is no splunkd here).
knowledge-check: build
	@mkdir -p build
	@python3 tools/demo.py $(BIN) > build/sample-events.ndjson 2>/dev/null
	python3 tools/check_knowledge.py --self-test . README.md build/sample-events.ndjson

# The real TAXII 2.1 reference server (medallion) walked through many runs while it grows.
taxii-interop: build venv
	$(PY) tools/taxii_interop.py $(BIN)

venv: $(VENV)/.installed
$(VENV)/.installed: tools/requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-test.txt
	touch $@

# Our STIX pattern parser against the OASIS reference validator (stix2-patterns, in the venv)
# on its own tests, the OASIS matcher's tests (stix2-matcher's source, from PyPI) and 20,000
# seeded mutations: any disagreement outside the documented limits fails.
MATCHER := stix2-matcher-3.0.0
stix-conformance: venv
	$(CARGO) build --release --locked --example stix_verdicts
	@test -d build/$(MATCHER) || { mkdir -p build && \
	  $(VENV)/bin/pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
	    -d build stix2-matcher==3.0.0 && tar -xzf build/$(MATCHER).tar.gz -C build; }
	$(PY) tools/stix_conformance.py target/release/examples/stix_verdicts build/$(MATCHER) 20000

# Splunk AppInspect, precert and cloud; gated on the JSON summary (its exit code lies).
appinspect: package venv
	@for mode in precert cloud; do \
	  if [ $$mode = cloud ]; then extra="--included-tags cloud"; else extra=""; fi; \
	  $(VENV)/bin/splunk-appinspect inspect $(SPL) --mode precert $$extra --skip-trusted-libraries-update \
	    --data-format json --output-file build/appinspect-$$mode.json >/dev/null 2>build/appinspect-$$mode.log || true; \
	  $(PY) tools/appinspect_gate.py build/appinspect-$$mode.json $$mode || exit 1; \
	done

# Whole-process timings against curl | jq and the curl floor (needs curl and jq), then the
# micro-benchmarks of the pure parts. Results go in BENCHMARKS.md by hand, with the machine.
bench: build
	@mkdir -p build/bench
	$(CARGO) build --release --locked --example bench_server
	gcc -O2 -static -o build/bench/measure bench/measure.c
	gcc -O2 -static -o build/bench/iofloor bench/iofloor.c
	python3 bench/run.py $(BIN) target/release/examples/bench_server build/bench/measure $(BENCH_RUNS)
	$(CARGO) bench --locked --bench micro

clean:
	rm -rf build dist target $(VENV)
