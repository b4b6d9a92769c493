# Thin wrapper around CMake.
#   make          build everything (Release, -march=native)
#   make test     install missing dependencies, build, run the whole suite through ctest
#   make lessons  build the lesson programs (run one: ./build/lessons/01_autograd_tour)
#   make bench    build and run the benchmarks
#   make exercise TASK=1.2  check your solution of exercise task 1.2 (exercises/README.md)
#   make exercises          every task of the exercise track: done, not done or wrong
#   make deps     install missing Debian packages
#   make debug    an ASan/UBSan debug build in build-debug/ and its tests (without the lessons,
#                 whose training runs would take minutes each unoptimised)
#   make portable-check  the library and its tests built without -march=native (what a project
#                 that adds mmgrad gets: the AVX-512/AVX2 kernels picked at run time) in
#                 build-portable/, and the tests run: the same results as the native build
#   make cuda-check  compile the CUDA backend and its GPU tests for one architecture (sm_90) in
#                 build-cuda/, GPU or not (CI runs it: by default CUDA is built only where a GPU is)
#   make package-check  build tests/consumer/add_subdirectory in build-package/ (a project that adds
#                 mmgrad with add_subdirectory: the whole library is compiled again) and run it;
#                 `ctest -L package` covers the installed package and only configures this one
#   make format-check  every C++/CUDA source is clang-formatted (CI runs it; `make format` fixes)
#   make fuzz     build the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and run each for
#                 FUZZ_SECONDS (default 60) on its corpus; crashes land in fuzz/regressions/<t>/
#                 (docs/fuzzing.md). FUZZ_TARGETS picks targets: make fuzz FUZZ_TARGETS=image
BUILD ?= build
# Ninja when it is installed (scripts/deps.sh installs it): a first build spends ~40 CPU-s less
# outside the compiler than with Make, and compiles a program's files while the libraries it
# links are still being built. A build folder keeps the generator it was first configured with.
gen = $$( [ -f $(1)/CMakeCache.txt ] || ! command -v ninja >/dev/null 2>&1 || echo "-G Ninja" )
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= image idx checkpoint tokenizer wav

.PHONY: all build deps test lessons bench exercise exercises debug portable-check cuda-check \
  package-check fuzz format format-check clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	@scripts/deps.sh
	cmake -S . -B $(BUILD) $(call gen,$(BUILD)) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

lessons: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target lessons

exercise: $(BUILD)/CMakeCache.txt
	@JOBS=$(JOBS) scripts/exercise.sh $(BUILD) "$(TASK)"

exercises: $(BUILD)/CMakeCache.txt
	@JOBS=$(JOBS) scripts/exercise.sh $(BUILD) --all

bench: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target bench_all
	$(BUILD)/bench/bench_all

debug:
	@scripts/deps.sh
	cmake -S . -B build-debug $(call gen,build-debug) -DCMAKE_BUILD_TYPE=Debug -DMMGRAD_SANITIZE=ON -DMMGRAD_CUDA=OFF \
	  -DMMGRAD_BUILD_LESSONS=OFF -DMMGRAD_BUILD_BENCH=OFF
	cmake --build build-debug -j $(JOBS)
	cd build-debug && ctest --output-on-failure -j $(JOBS)

portable-check:
	@scripts/deps.sh
	cmake -S . -B build-portable $(call gen,build-portable) -DCMAKE_BUILD_TYPE=Release -DMMGRAD_NATIVE=OFF \
	  -DMMGRAD_CUDA=OFF -DMMGRAD_BUILD_LESSONS=OFF -DMMGRAD_BUILD_BENCH=OFF
	cmake --build build-portable -j $(JOBS)
	cd build-portable && ctest --output-on-failure -j $(JOBS)

cuda-check:
	@scripts/deps.sh
	cmake -S . -B build-cuda $(call gen,build-cuda) -DCMAKE_BUILD_TYPE=Release -DMMGRAD_CUDA=ON \
	  -DCMAKE_CUDA_ARCHITECTURES=90 -DMMGRAD_BUILD_LESSONS=OFF -DMMGRAD_BUILD_EXERCISES=OFF
	cmake --build build-cuda -j $(JOBS) --target mmgrad mmgrad_tests_gpu bench_cuda bench_all

package-check:
	@scripts/deps.sh
	cmake -S tests/consumer/add_subdirectory -B build-package $(call gen,build-package) -DCMAKE_BUILD_TYPE=Release \
	  -DMMGRAD_PATH=$(CURDIR) -DMMGRAD_EXPECT_BUILD_TYPE=Release \
	  -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON $(CMAKE_FLAGS)
	cmake --build build-package -j $(JOBS)
	OMP_NUM_THREADS=1 build-package/consumer build-package/consumer.ckpt

# Each target: new inputs go to build-fuzz/corpus/<t>/ (not committed), the committed seeds in
# fuzz/corpus/<t>/ are read; a crash input is written to fuzz/regressions/<t>/ (commit it: ctest
# replays it) and stops the run. -rss_limit_mb/-malloc_limit_mb: a single allocation over 2 GB is
# a finding (a reader must bound sizes before it allocates).
fuzz:
	cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DMMGRAD_FUZZ=ON -DMMGRAD_CUDA=OFF -DMMGRAD_BUILD_TESTS=OFF -DMMGRAD_BUILD_LESSONS=OFF \
	  -DMMGRAD_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t fuzz/regressions/$$t; \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  OMP_NUM_THREADS=1 build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=fuzz/regressions/$$t/ build-fuzz/corpus/$$t fuzz/corpus/$$t || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD) build-debug build-fuzz build-package
