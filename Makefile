# mercato — top-level entry points. Every target installs what it needs (scripts/setup.sh,
# idempotent) and builds first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: setup configure build test test-quick demo bench fuzz format clean

setup:
	@./scripts/setup.sh

configure: setup
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS); fi

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# The whole suite, including the labelled host tests (root, runc, netns, chain, browser).
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 900

# Everything except the slow property/crash tests.
test-quick: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -LE 'slow|crash'

demo: build
	@./scripts/demo.sh

bench: build
	@./bench/run.sh

# libFuzzer targets (clang, ASan+UBSan) in their own build dir; FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: setup
	@CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DMERCATO_FUZZ=ON -DMERCATO_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target envelope_fuzz tx_decode_fuzz image_manifest_fuzz image_layer_fuzz host_runc_state_fuzz manifest_fuzz bundle_open_fuzz gateway_auth_fuzz p2p_wire_fuzz route_body_fuzz
	@for t in envelope_fuzz tx_decode_fuzz image_manifest_fuzz image_layer_fuzz host_runc_state_fuzz manifest_fuzz bundle_open_fuzz gateway_auth_fuzz p2p_wire_fuzz route_body_fuzz; do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  ./build-fuzz/bin/$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

format:
	@find src apps tests bench -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) build-fuzz
