# isab-vk: the README's two commands are `make demo` and `make test`.
# Each installs the Debian packages it needs (scripts/deps.sh) first and is
# quick when everything is present.

GO       ?= go
BIN      ?= bin/isab
# Tests run under the Khronos validation layer; any message fails them.
TESTENV  ?= ISAB_VALIDATION=1
TESTARGS ?= -count=1 -timeout 40m

.PHONY: all deps view-deps build demo test test-race vet shaders fuzz gen clean gpu-bundle

all: build

deps:
	@bash scripts/deps.sh

# The viewer (isab view, package view/window) builds GLFW, which needs the X11
# headers; its tests run the window under xvfb.
view-deps:
	@bash scripts/deps.sh --view

build: deps view-deps
	$(GO) build -o $(BIN) ./cmd/isab

demo: build
	./$(BIN) demo

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# On CPUs with AVX-512 the vk package asks lavapipe for 512-bit vectors
# (16 lanes); the second line keeps lavapipe's 8-lane default covered too.
test: deps view-deps vet
	$(TESTENV) $(GO) test $(TESTARGS) ./...
	$(TESTENV) LP_NATIVE_VECTOR_WIDTH=256 $(GO) test $(TESTARGS) ./ops/ ./vk/
	$(TESTENV) LP_NATIVE_VECTOR_WIDTH=256 $(GO) test $(TESTARGS) -run 'Golden|Chunked' ./isab/
	$(TESTENV) $(GO) test -race -count=1 -run 'Concurrent' ./isab/ ./vk/

# Recompiles every shader with glslc (the .spv files are committed).
shaders: deps
	bash shaders/build.sh
	cd vk/testdata && glslc --target-env=vulkan1.1 -O -o axpy.spv axpy.comp && glslc --target-env=vulkan1.1 -O -o wide.spv wide.comp && glslc --target-env=vulkan1.1 -O -o texel.spv texel.comp && glslc --target-env=vulkan1.1 -O -o texel_store.spv texel_store.comp
	cd view/shaders && glslc --target-env=vulkan1.1 -O -o frame.spv frame.comp

# Runs the safetensors fuzzer for FUZZTIME (default 3m).
FUZZTIME ?= 3m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./safetensors/

# Regenerates testdata/ with PyTorch (Debian's python3-torch).
gen:
	@bash scripts/deps.sh --gen
	/usr/bin/python3 testdata/gen.py

clean:
	rm -rf bin

# Binaries for scripts/gpu-check.sh on a machine without Go (the device
# machine): bin/isab without the viewer's cgo window and the vk, ops and isab
# test binaries, in .gpu/ (ignored by git).
gpu-bundle: deps
	mkdir -p .gpu
	$(GO) build -tags nowindow -o .gpu/isab ./cmd/isab
	for p in vk ops isab; do $(GO) test -c -o .gpu/$$p.test ./$$p || exit 1; done
