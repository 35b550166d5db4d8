# Thin wrapper over CMake and ctest. Every target works on a fresh Debian 12
# machine: `deps` installs whatever Debian packages are missing.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

# Debian packages the build, the tests and the tools need.
DEB_PACKAGES = build-essential cmake pkg-config python3 \
  libconfig-dev libcjson-dev libcurl4-openssl-dev libssl-dev libcmocka-dev \
  libyaml-dev libmicrohttpd-dev libxxhash-dev openssl \
  abigail-tools valgrind clang libclang-rt-14-dev \
  liblua5.4-dev lua5.4 lua-check libxml2-dev libinih-dev python3-boto3 curl

.PHONY: all deps build test demo bench fuzz sanitize abi-baseline config-docs clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# The main job on the embedded default: the API test server, ccm-host with
# the lab provider, kubectl, a hot-swap under load, and a summary.
demo: build
	@bash examples/demo.sh $(BUILD)

# Reduced sizes, a few minutes in all; `make bench BENCH_FULL=1` for the
# sizes of DESIGN.md section 8 (docs/performance.md has the figures).
bench: build
	@for b in $(BUILD)/bench_*; do [ -x "$$b" ] && \
	  BENCH_FULL=$${BENCH_FULL:-0} "$$b"; done; true
	@for s in bench/bench_*.sh; do \
	  BENCH_FULL=$${BENCH_FULL:-0} sh "$$s" $(BUILD); done

# Opt-in long fuzz runs (the suite runs each target briefly).
FUZZ_SECONDS ?= 3600
fuzz: build
	sh tests/fuzz/run_fuzz.sh . $(BUILD)/fuzz -max_total_time=$(FUZZ_SECONDS)

# The unit, ABI, conformance, CLI, Kubernetes-client, hosts and e2e layers
# again under ASan and UBSan (the load-sized e2e tests at 0.3 of their size:
# the sanitizers make them several times slower).
sanitize: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCCM_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	CCM_E2E_SCALE=$${CCM_E2E_SCALE:-0.3} \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) \
	  -L 'unit|abi|conformance|cli|kube|hosts|e2e' $(CTEST_ARGS)

# After a deliberate, reviewed ABI change (with a CCM_ABI_MINOR bump).
abi-baseline:
	/usr/bin/python3 tests/abi/abi_check.py dump --src .

config-docs: build
	$(BUILD)/ccm-host --print-config-docs > docs/configuration.md

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
