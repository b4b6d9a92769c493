# Thin wrapper around CMake.
#   make          build everything (Release, -march=native)
#   make test     install missing dependencies, build, run the whole suite through ctest
#   make lessons  build the lesson programs (run one: ./build/lessons/01_autograd_tour)
#   make bench    build and run the benchmarks
#   make deps     install missing Debian packages
#   make debug    an ASan/UBSan debug build in build-debug/ and its tests (without the lessons,
#                 whose training runs would take minutes each unoptimised)
#   make format-check  every C++/CUDA source is clang-formatted (CI runs it; `make format` fixes)
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build deps test lessons bench debug format format-check clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	@scripts/deps.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

lessons: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target lessons

bench: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target bench_all
	$(BUILD)/bench/bench_all

debug:
	@scripts/deps.sh
	cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DMMGRAD_SANITIZE=ON -DMMGRAD_CUDA=OFF \
	  -DMMGRAD_BUILD_LESSONS=OFF -DMMGRAD_BUILD_BENCH=OFF
	cmake --build build-debug -j $(JOBS)
	cd build-debug && ctest --output-on-failure -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD) build-debug
