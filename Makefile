# isab-vk: the README's two commands are `make demo` and `make test`.
# Each installs the Debian packages it needs (scripts/deps.sh) first and is
# quick when everything is present.

GO       ?= go
BIN      ?= bin/isab
# Tests run under the Khronos validation layer; any message fails them.
TESTENV  ?= ISAB_VALIDATION=1
TESTARGS ?= -count=1 -timeout 40m
# The binaries carry the commit they were built from (isab version, bench
# records) even where GOFLAGS says -buildvcs=false; "auto" stamps it when
# git is there.
BUILDFLAGS ?= -buildvcs=auto

.PHONY: all deps view-deps build demo test test-coop test-swiftshader test-subgroup4 trixie swiftshader vet shaders fuzz fuzz-quick gen clean gpu-bundle help

all: build

# Lists the targets, one line each.
help:
	@echo "make all         the same as build (the default)"
	@echo "make build       build bin/isab (headless) and bin/isab-view (installs the Debian packages it needs first)"
	@echo "make demo        build, then run the isab-pytorch README example and check it"
	@echo "make test        vet, then all tests (validation layer, 3 lavapipe widths, spec-minimum limits, SwiftShader, race, fuzz-quick, test-coop)"
	@echo "make test-coop   the cooperative-matrix kernels' tests on Debian 13's lavapipe"
	@echo "make test-swiftshader  vk, ops, every golden file and the two-device pool on SwiftShader"
	@echo "make test-subgroup4    the subgroup kernels' tests and the golden files on lavapipe with 4 lanes (128 bits)"
	@echo "make vet         check gofmt and run go vet"
	@echo "make fuzz        run each fuzzer for FUZZTIME (default 3m)"
	@echo "make fuzz-quick  run each fuzzer briefly, by count (FUZZQUICK, FUZZQUICKLOAD)"
	@echo "make shaders     recompile every shader with glslc (go generate ./shaders; the .spv files are committed)"
	@echo "make gen         regenerate testdata/ with PyTorch (Debian's python3-torch)"
	@echo "make gpu-bundle  build the binaries for scripts/gpu-check.sh into .gpu/"
	@echo "make deps        install the Debian packages that build and test need"
	@echo "make view-deps   install the X11 headers and xvfb that the viewer needs"
	@echo "make trixie      fetch Debian 13's glslc, spirv-val and lavapipe"
	@echo "make swiftshader fetch SwiftShader, a second Vulkan implementation (about 70 MB, 6 MB kept)"
	@echo "make clean       remove bin/"
	@echo "make help        list these targets"

deps:
	@bash scripts/deps.sh

# The viewer (isab view, package view/window) builds GLFW, which needs the X11
# headers; its tests run the window under xvfb.
view-deps:
	@bash scripts/deps.sh --view

build: deps view-deps
	$(GO) build $(BUILDFLAGS) -o $(BIN) ./cmd/isab
	$(GO) build $(BUILDFLAGS) -tags window -o $(dir $(BIN))isab-view ./cmd/isab

demo: build
	./$(BIN) demo

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags window ./cmd/isab

# On CPUs with AVX-512 the tests ask lavapipe for 512-bit vectors (16 lanes,
# vk.UseLavapipeDefaults); the runs alongside keep 8 and 4 lanes covered.
#
# The 256-bit runs, then test-subgroup4 and test-swiftshader, go alongside
# the main one: lavapipe compiles each pipeline on one core at its first
# dispatch, so the long ops tests leave a core idle much of the time. Their
# output follows the main run's. A cold make test in a fresh clone with
# empty Go, module and shader caches, downloads included (Go modules 31 MB,
# Debian 13's tools 73 MB, SwiftShader 70 MB), took 11.8 and 12.0 min on 2 cores
# (2026-12-05).
#
# The 256-bit run leaves out the largest products (-short: the main run has
# them) and clamps the device's limits to the Vulkan spec's minimums
# (ISAB_SPEC_MINIMUM=1: 16 KiB shared memory, 128 invocations per workgroup,
# a 128 MiB binding range, 256-byte offset alignments), so the kernels'
# choices are shown to fit every conforming device.
test: deps view-deps vet trixie swiftshader
	@log=$$(mktemp); \
	( $(TESTENV) ISAB_SPEC_MINIMUM=1 LP_NATIVE_VECTOR_WIDTH=256 $(GO) test $(TESTARGS) -short ./ops/ ./vk/ && \
	  $(TESTENV) LP_NATIVE_VECTOR_WIDTH=256 $(GO) test $(TESTARGS) -run 'Golden|Chunked' ./isab/ ./cmd/isab/ && \
	  $(MAKE) --no-print-directory test-subgroup4 && \
	  $(MAKE) --no-print-directory test-swiftshader ) > $$log 2>&1 & \
	pid=$$!; \
	echo "$(TESTENV) $(GO) test $(TESTARGS) ./..."; \
	$(TESTENV) $(GO) test $(TESTARGS) ./...; main=$$?; \
	wait $$pid; w256=$$?; \
	echo "alongside: at 256 bits (LP_NATIVE_VECTOR_WIDTH=256) -short ./ops/ ./vk/ with the spec's minimum limits, then -run 'Golden|Chunked' ./isab/ ./cmd/isab/; test-subgroup4; test-swiftshader"; \
	cat $$log; rm -f $$log; \
	test $$main -eq 0 && test $$w256 -eq 0
	$(TESTENV) $(GO) test -race -count=1 -run 'Concurrent' ./isab/ ./vk/
	$(MAKE) --no-print-directory fuzz-quick
	$(MAKE) --no-print-directory test-coop

# A second Vulkan implementation: Google's SwiftShader (scripts/swiftshader.sh
# fetches it on first use), whose JIT is not Mesa's and whose subgroups are 4
# lanes, with no fp16 and no 16-bit storage (those tests say why they skip).
# It runs the vk tests, the ops tests (-short: the big products take minutes
# there, at about 0.2 GFLOP/s), every golden file through isab run, and the
# model on lavapipe and SwiftShader together (isab.Pool). Without the driver
# it says so and skips.
# TestLinearCPUChunking records about 1800 dispatches for its 1000-wide rows
# in 4 KiB bindings: 2 minutes on SwiftShader, where TestChunking and
# TestLinearTexChunking cover the pieces.
SWIFTSHADERSKIP ?= TestLinearCPUChunking
SWIFTSHADERTESTS ?= TestRunGolden$$|TestRunDeviceAll|TestBenchDeviceAll|Pool|LoadOn|TestAutoPrecision
test-swiftshader: swiftshader
	@if ! scripts/swiftshader.sh --offline icd >/dev/null 2>&1; then \
	  echo "test-swiftshader: SKIPPED: could not fetch SwiftShader (above); the second implementation is not tested" >&2; \
	else \
	  echo "on SwiftShader: -short -skip '$(SWIFTSHADERSKIP)' ./vk/ ./ops/, then lavapipe + SwiftShader: -run '$(SWIFTSHADERTESTS)' ./isab/ ./cmd/isab/" && \
	  $(TESTENV) scripts/swiftshader.sh run $(GO) test $(TESTARGS) -short -skip '$(SWIFTSHADERSKIP)' ./vk/ ./ops/ && \
	  $(TESTENV) ISAB_DEVICE=SwiftShader scripts/swiftshader.sh both $(GO) test $(TESTARGS) -run '$(SWIFTSHADERTESTS)' ./isab/ ./cmd/isab/ ; \
	fi

# The kernels that use subgroup operations (attention_cpu, attention_tex and
# matmul_tex, with workgroups of two 4-lane subgroups), on lavapipe with 4
# lanes (128-bit vectors): the main run has 16 (512 bits, on CPUs with
# AVX-512) and the 256-bit run 8; then every golden file through isab run
# with 4 lanes. About a minute and a half with a cold shader cache.
SUBGROUPTESTS ?= TestAttentionCPU$$|TestAttentionTex$$|TestAttentionTexQT|TestLinearTexSizes|TestLinearTexChunking|TestAttention$$|TestAttentionSplits
test-subgroup4:
	LP_NATIVE_VECTOR_WIDTH=128 $(TESTENV) $(GO) test $(TESTARGS) -short -run '$(SUBGROUPTESTS)' ./ops/
	LP_NATIVE_VECTOR_WIDTH=128 $(TESTENV) $(GO) test $(TESTARGS) -run 'TestRunGolden$$' ./cmd/isab/

# The cooperative-matrix kernels (shaders/matmul_coop.comp, attention_coop.comp)
# need a device with VK_KHR_cooperative_matrix, which Debian 12's lavapipe
# lacks: this runs their tests, the fp16 ops tests, the fp16 golden files and
# the cooperative-matrix peak (internal/benchkit) with them forced on (ISAB_COOPMAT=on), on lavapipe from Debian 13's
# backports with 8 lanes (scripts/trixie.sh fetches it on first use: about
# 73 MB to download, 262 MB kept in the user cache). Without network access
# it says so and skips.
COOPTESTS ?= Coop|Half|Convert|Chunking
test-coop: deps trixie
	@if ! scripts/trixie.sh --offline dir >/dev/null 2>&1; then \
	  echo "test-coop: SKIPPED: could not fetch Debian 13's lavapipe (above); the cooperative-matrix kernels are not tested" >&2; \
	else \
	  mkdir -p bin/coop && \
	  $(GO) test -c -o bin/coop/ops.test ./ops && $(GO) test -c -o bin/coop/isab.test ./isab && \
	  (cd ops && $(TESTENV) ISAB_COOPMAT=on LP_NATIVE_VECTOR_WIDTH=256 ../scripts/trixie.sh run ../bin/coop/ops.test -test.count=1 -test.run '$(COOPTESTS)') && \
	  (cd isab && $(TESTENV) ISAB_COOPMAT=on LP_NATIVE_VECTOR_WIDTH=256 ../scripts/trixie.sh run ../bin/coop/isab.test -test.count=1 -test.run 'Golden') && \
	  $(GO) test -c -o bin/coop/benchkit.test ./internal/benchkit && \
	  (cd internal/benchkit && $(TESTENV) ISAB_COOPMAT=on LP_NATIVE_VECTOR_WIDTH=256 ../../scripts/trixie.sh run ../../bin/coop/benchkit.test -test.count=1 -test.run 'CoopPeak') ; \
	fi

# Fetches Debian 13's glslc, spirv-val and lavapipe (scripts/trixie.sh), which
# the shader tests use for the cooperative-matrix shaders and test-coop runs
# on; quick once fetched. A failed fetch does not stop the tests: they say
# what they skip.
trixie:
	@scripts/trixie.sh dir >/dev/null || echo "trixie: could not fetch Debian 13's tools; the cooperative-matrix shaders will not be checked" >&2

# Fetches SwiftShader (scripts/swiftshader.sh, with curl and brotli from
# scripts/deps.sh --swiftshader); quick once fetched. A failed fetch does not
# stop the tests: test-swiftshader says what it skips.
swiftshader:
	@bash scripts/deps.sh --swiftshader
	@scripts/swiftshader.sh icd >/dev/null || echo "swiftshader: could not fetch SwiftShader; the second implementation will not be tested" >&2

# Recompiles every shader (shaders/, vk/testdata/, view/shaders/) with glslc
# and writes shaders/kernels.go: go generate runs shaders/internal/gen, which
# reads the variants each source declares (the .spv files are committed).
shaders: deps
	$(GO) generate ./shaders

# Runs the fuzzers for FUZZTIME each (default 3m): the two readers
# (safetensors and PyTorch .pt), and the whole load path of both models
# (parse, configuration, upload, a small forward pass) on arbitrary bytes.
# make test runs them by count instead (fuzz-quick: FUZZQUICK executions of
# the readers, FUZZQUICKLOAD of the load paths, a few seconds in all): a
# load-path execution can compile pipelines for seconds, and Go's fuzzer
# fails with "context deadline exceeded" when a time limit ends during one
# (seen with -fuzztime 5s); a count has no deadline. A long make fuzz run
# can end that way too; the failure then names no input.
FUZZTIME ?= 3m
LOADFUZZTIME ?= $(FUZZTIME)
FUZZQUICK ?= 100000x
FUZZQUICKLOAD ?= 300x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./safetensors/
	$(GO) test -run '^$$' -fuzz '^FuzzTorch$$' -fuzztime $(FUZZTIME) ./safetensors/
	$(TESTENV) $(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(LOADFUZZTIME) ./isab/
	$(TESTENV) $(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(LOADFUZZTIME) ./settransformer/

fuzz-quick:
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZQUICK) LOADFUZZTIME=$(FUZZQUICKLOAD)

# Regenerates testdata/ with PyTorch (Debian's python3-torch).
gen:
	@bash scripts/deps.sh --gen
	/usr/bin/python3 testdata/gen.py

clean:
	rm -rf bin .gpu

# Binaries for scripts/gpu-check.sh on a machine without Go (the device
# machine): bin/isab without the viewer's cgo window, the vk, ops, isab and
# cmd/isab test binaries, and the golden files from ../shared when present
# (the device machine does not get ../shared; they are copied, never
# committed), in .gpu/ (ignored by git). Stripped, and without the golden
# case of the README's shape (25 MB; the benchmarks run that shape), they
# stay within the device tool's 64 MiB carry limit.
GPUGOLDENSKIP ?= isab_readme_small
gpu-bundle: deps
	rm -rf .gpu
	mkdir -p .gpu
	$(GO) build $(BUILDFLAGS) -ldflags='-s -w' -o .gpu/isab ./cmd/isab
	for p in vk ops isab; do $(GO) test -c -ldflags='-s -w' -o .gpu/$$p.test ./$$p || exit 1; done
	$(GO) test -c -ldflags='-s -w' -o .gpu/cmd_isab.test ./cmd/isab
	if [ -d ../shared/golden ]; then rm -rf .gpu/golden && $(GO) run ./scripts/goldensubset -skip '$(GPUGOLDENSKIP)' ../shared/golden .gpu/golden; fi
	du -sh .gpu
