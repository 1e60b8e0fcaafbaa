# trustpool — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test demo deps build lint fmt bench fixtures fuzz clean

## test: install what is missing, then run every check and every test (swtpm included)
test: deps
	@TESTS=1 ./scripts/install-deps.sh
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings
	$(CARGO) build --workspace --bins --all-features --locked
	TRUSTPOOL_REQUIRE_POSTGRES=1 TRUSTPOOL_REQUIRE_BROWSER=1 ./scripts/with-postgres.sh $(CARGO) test --workspace --all-features --locked
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps --document-private-items --locked

## demo: install what is missing, build, start a local trusted pool and tell the seed's story
demo: deps
	$(CARGO) build --workspace --locked
	./scripts/demo.sh

deps:
	@./scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --locked

lint:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: the criterion benchmarks recorded in BENCHMARKS.md
bench:
	$(CARGO) bench -p trustpool-evidence --bench verify
	$(CARGO) bench -p trustpool-scheduler --bench placement

## fixtures: regenerate testdata/ with swtpm, tpm2-tools and qemu+OVMF (review the diff)
fixtures:
	@FIXTURES=1 ./scripts/install-deps.sh
	./testdata/scripts/make-quotes.sh
	./testdata/scripts/make-ovmf-boot.sh

## fuzz: run every cargo-fuzz target for FUZZ_SECONDS (needs the nightly toolchain)
FUZZ_SECONDS ?= 60
fuzz:
	cd fuzz && for t in $$($(CARGO) +nightly fuzz list); do mkdir -p corpus/$$t; \
	  $(CARGO) +nightly fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done

clean:
	$(CARGO) clean
