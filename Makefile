# The two commands of the quick start:
#   make run   installs what is missing, builds, starts everything with a
#              demo repo (this checkout) and prints the dashboard URL.
#   make test  installs what is missing, builds with sanitizers, runs ctest.
BUILD ?= build
TEST_BUILD ?= build-test
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
REPOVIEW_LISTEN ?= 127.0.0.1:8080
export REPOVIEW_LISTEN

.PHONY: all build deps test-deps run test bench clean format

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --browser
	@scripts/install-node-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/repoview up --demo --listen $(REPOVIEW_LISTEN)

test: test-deps
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRV_SANITIZE=ON
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	bench/run-all.sh $(BUILD)

format:
	clang-format -i src/*/*.c src/*/*.h tests/*/*.c tests/*/*.h tools/*.c

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
