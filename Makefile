# TA-socdefenders: `make demo` and `make test` are the two commands a newcomer needs.
# Build output goes to target/, build/ and dist/ (all git-ignored).

SHELL := /bin/bash
CARGO ?= cargo
# Static binaries for every platform Splunk runs the input on, cross-built by Zig (from PyPI,
# driven by cargo-zigbuild): no musl-gcc, no apt, no root. BIN is this host's (x86_64) binary.
TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu
BIN := target/x86_64-unknown-linux-musl/release/socdefenders-iocs
BIN_ARM := target/aarch64-unknown-linux-musl/release/socdefenders-iocs
BIN_WIN := target/x86_64-pc-windows-gnu/release/socdefenders-iocs.exe
BINS := linux_x86_64=$(BIN) linux_aarch64=$(BIN_ARM) windows_x86_64=$(BIN_WIN)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
SPL := dist/TA-socdefenders-$(VERSION).spl
VENV := .venv
ZIG_VENV := build/zig-venv
BENCH_RUNS ?= 11
PY := $(VENV)/bin/python
# Linux binaries are static-pie (ASLR), as musl-gcc made them before. Build paths are mapped
# to fixed names (Rust and C alike): the Windows binary's code otherwise changes with the
# length of the folder it is built in, and a fresh clone must give the same bytes.
REPRO := --remap-path-prefix=$(CURDIR)=/src
C_REPRO := -ffile-prefix-map=$(CURDIR)=/src
ZIGBUILD := PATH="$(abspath $(ZIG_VENV))/bin:$$PATH" \
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C link-arg=-fPIE $(REPRO)" \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C link-arg=-fPIE $(REPRO)" \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="$(REPRO)" \
  CFLAGS_x86_64_unknown_linux_musl="$(C_REPRO)" CFLAGS_aarch64_unknown_linux_musl="$(C_REPRO)" \
  CFLAGS_x86_64_pc_windows_gnu="$(C_REPRO)" \
  $(CARGO) zigbuild

.PHONY: all build zig package demo test test-deps lint unit hostile package-check splunkd-run knowledge-check taxii-interop stix-conformance platforms fresh-demo web-check appinspect venv bench clean

all: package

# Zig and cargo-zigbuild, pinned, in a venv of their own (the test venv is not needed to build).
zig: $(ZIG_VENV)/.installed
$(ZIG_VENV)/.installed: tools/requirements-build.txt
	python3 -m venv $(ZIG_VENV)
	$(ZIG_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-build.txt
	touch $@

build: zig
	@for t in $(TARGETS); do rustup target list --installed 2>/dev/null | grep -qx $$t || rustup target add $$t; done
	$(ZIGBUILD) --release --locked $(addprefix --target ,$(TARGETS))

package: build
	@python3 tools/package.py . build dist $(BINS)

demo: package
	@python3 tools/demo.py build/TA-socdefenders/bin/socdefenders-iocs
	@echo "package: $(SPL)"

test: test-deps lint unit hostile package-check splunkd-run knowledge-check taxii-interop stix-conformance platforms web-check appinspect fresh-demo
	@echo "make test: all checks passed"

# Test-only system packages: installed with apt when running as root (as CI does), else named.
test-deps:
	@bash tools/test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	python3 tools/check_structure.py --self-test src

unit:
	$(CARGO) test --locked

package-check: package
	python3 tools/package.py --self-test
	python3 tools/check_package.py $(SPL) $(VERSION)
	@first=$$(sha256sum $(SPL) | cut -d' ' -f1); \
	 python3 tools/package.py . build dist $(BINS) >/dev/null; \
	 second=$$(sha256sum $(SPL) | cut -d' ' -f1); \
	 if [ "$$first" != "$$second" ]; then echo "package is not reproducible: $$first != $$second"; exit 1; fi; \
	 echo "package reproducible: sha256 $$first"

# Hostile pages of up to max_body_bytes, and TAXII pages of 100 to 10,000 objects, read by
# the release binary in bounded memory.
hostile: build
	$(CARGO) build --locked --example peak_rss
	SOCDEFENDERS_BIN=$(abspath $(BIN)) $(CARGO) test --locked --test it -- --ignored --exact \
	  hostile::hostile_pages_are_read_in_bounded_memory taxii_bounds::taxii_pages_are_read_in_flat_memory

# The aarch64 binary under QEMU user-mode emulation and the Windows binary under Wine, against
# the loopback API, and the launcher's choice of binary (tests/it/platforms.rs).
platforms: package
	@mkdir -p build/platforms
	PATH="$(abspath $(ZIG_VENV))/bin:$$PATH" python -m ziglang cc -target x86_64-windows-gnu -shared -O2 -s \
	  -o build/platforms/bcryptprimitives.dll tests/platform/processprng.c -ladvapi32
	SOCDEFENDERS_SPL=$(abspath $(SPL)) SOCDEFENDERS_PRNG_DLL=$(abspath build/platforms/bcryptprimitives.dll) \
	  SOCDEFENDERS_WINEPREFIX=$(abspath build/wine-prefix) \
	  $(CARGO) test --locked --test it -- --ignored --exact --test-threads 1 \
	  platforms::aarch64_binary_under_qemu platforms::windows_binary_under_wine platforms::the_launcher_picks_the_hosts_binary

# The setup page in headless Chromium (Debian's, driven by Playwright from the test venv)
# against a loopback Splunk Web + splunkd stand-in (tools/web_setup_test.py); the screenshot
# it takes is the README's docs/setup-page.png.
web-check: package venv
	$(PY) tools/web_setup_test.py build/TA-socdefenders build/setup-page.png

# `make demo` in a fresh clone, with musl-gcc and apt-get hidden from PATH: the README's first
# command needs neither (its own target folder, so nothing built here is reused).
fresh-demo:
	bash tools/fresh-demo.sh

# Extracts the .spl into a temporary $$SPLUNK_HOME and runs it the way splunkd does.
splunkd-run: package
	SOCDEFENDERS_SPL=$(abspath $(SPL)) $(CARGO) test --locked --test it -- --ignored --exact package_runs_like_splunkd

# Lookups, macros, collections, fields_list and event fields, checked statically against the
# events the built binary prints for the sample REST page and TAXII bundle (there is no splunkd
# here); and the hunting rules of tools/check_knowledge.py (case, maintenance, ES, exports).
knowledge-check: build
	@mkdir -p build
	@python3 tools/demo.py $(BIN) > build/sample-events.ndjson 2>/dev/null
	@python3 tools/demo.py --taxii $(BIN) >> build/sample-events.ndjson 2>/dev/null
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
bench: package
	@mkdir -p build/bench
	$(CARGO) build --release --locked --example bench_server
	gcc -O2 -static -o build/bench/measure bench/measure.c
	gcc -O2 -static -o build/bench/iofloor bench/iofloor.c
	python3 bench/run.py $(BIN) target/release/examples/bench_server build/bench/measure $(BENCH_RUNS) \
	  build/TA-socdefenders/bin/socdefenders-iocs
	$(CARGO) bench --locked --bench micro

clean:
	rm -rf build dist target $(VENV)
