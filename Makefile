# A thin front over CMake and the scripts; see README.md.
.PHONY: run test build clean format

run:
	scripts/run.sh

test:
	scripts/test.sh

build:
	cmake -S . -B build -G Ninja >/dev/null && cmake --build build

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-test build-test-gcc build-test-static
