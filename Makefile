#  Bookstore on a ZeroMQ message bus - build, run and test.
#
#  make deps    install the Debian packages the build and tests need
#  make         build every program into bin/
#  make run     start a local cluster in the foreground (Ctrl-C stops it)
#  make test    install, build (plain, ASan/UBSan, clang) and run the suite
#  make unit    build and run the unit tests alone (about 15 s)
#  make asan    build the sanitizer variant into build/asan/bin
#  make bench   run the benchmark suite (bench/run.sh) into bench/results.md
#  make chaos   a chaos run: faults under load, then checks (DURATION=60 SEED=)
#  make docker-test  build the container image, run compose.yaml, test it (Podman or Docker)
#  make fuzz    build the libFuzzer targets and run each for FUZZ_SECONDS (600)
#  make soak    SOAK_SECONDS (600) of mixed load under LeakSanitizer: leaks, flat memory
#  make sim     SEEDS (200) seeds of the deterministic simulator (bin/bookstore-sim)
#  make sim-soak  SIM_SOAK_SEEDS (20000) seeds of it

DEBS = build-essential pkg-config libczmq-dev libzmq3-dev liblmdb-dev \
       lmdb-utils libmsgpack-dev clang jq procps iproute2 tmux

PKGS = libczmq libzmq lmdb msgpack

#  The control plane: etcd (the server, for the launcher and the tests, and
#  etcdctl for operators), spoken to through its JSON gateway with libcurl
#  and jansson (lib/bs_etcd)
DEBS += etcd-server etcd-client libcurl4-openssl-dev libjansson-dev
PKGS += libcurl jansson

#  The HTTP gateway's own libraries (linked by the gateway alone), and curl
#  for its tests
DEBS += libmicrohttpd-dev libjansson-dev curl
GATEWAY_PKGS = libmicrohttpd jansson
#  The bench's HTTP rows: wrk against the gateway and against nginx serving
#  the same JSON from a file
DEBS += wrk nginx-light

#  test_mdp's standard Majordomo client (tests/mdp) is Python
DEBS += python3-zmq python3-msgpack

#  One variant per output tree: release binaries land in bin/, others in
#  build/<variant>/bin.
VARIANT ?= release
ifeq ($(VARIANT),release)
    OUT := build/release
    BINDIR := bin
    VFLAGS := -O2 -g
else ifeq ($(VARIANT),asan)
    OUT := build/asan
    BINDIR := build/asan/bin
    VFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else ifeq ($(VARIANT),clang)
    CC := clang
    OUT := build/clang
    BINDIR := build/clang/bin
    VFLAGS := -O2 -g
else ifeq ($(VARIANT),fuzz)
    #  libFuzzer targets (tests/fuzz): every module instrumented for
    #  coverage, with AddressSanitizer and UndefinedBehaviorSanitizer
    CC := clang
    OUT := build/fuzz
    BINDIR := build/fuzz/bin
    VFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=undefined
endif

CC ?= cc
CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE $(VFLAGS) \
         $(shell pkg-config --cflags $(PKGS)) -Ischema -Ilib -MMD -MP
LDFLAGS = $(VFLAGS)
LDLIBS = $(shell pkg-config --libs $(PKGS)) -lm

#  The shared layer (schema, codec, client, settings) is one library linked
#  by every program; broker and node modules are libraries of their own so
#  that unit tests can link them too.
LIB_SRC := $(wildcard schema/*.c lib/*.c)
LIB := $(OUT)/libbookstore.a
BROKER_LIB := $(OUT)/libbroker.a
NODE_LIB := $(OUT)/libnode.a
BROKER_SRC := $(filter-out broker/main.c,$(wildcard broker/*.c))
NODE_SRC := $(filter-out nodes/main.c,$(wildcard nodes/*.c))

PROGRAMS := bookstore-broker bookstore-node bookstore bookstore-cluster bookstore-monitor
PROGRAMS += bookstore-gateway
PROGRAMS += bookstore-bench
PROGRAMS += bookstore-load

UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(wildcard tests/unit/test_*.c))
TEST_HELPERS := $(patsubst tests/helpers/%.c,$(OUT)/tests/%,$(wildcard tests/helpers/*.c))

obj = $(patsubst %.c,$(OUT)/obj/%.o,$(1))

.SECONDARY:
.PHONY: all deps run test asan clang unit clean bins
all: bins

bins: $(addprefix $(BINDIR)/,$(PROGRAMS)) $(UNIT_TESTS) $(TEST_HELPERS)

#  Unit tests reach into the broker's and nodes' modules
$(OUT)/obj/tests/%.o: CFLAGS += -Ibroker -Inodes
#  The CLI's unclean-election reads and writes the catalog's map as the
#  broker's election module defines it
$(OUT)/obj/tools/bookstore.o: CFLAGS += -Ibroker

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $(VARIANT) $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(call obj,$(LIB_SRC))
$(BROKER_LIB): $(call obj,$(BROKER_SRC))
$(NODE_LIB): $(call obj,$(NODE_SRC))
$(LIB) $(BROKER_LIB) $(NODE_LIB):
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(BINDIR)/bookstore-broker: $(call obj,broker/main.c) $(BROKER_LIB) $(LIB)
$(BINDIR)/bookstore-node: $(call obj,nodes/main.c) $(NODE_LIB) $(LIB)
$(BINDIR)/bookstore: $(call obj,tools/bookstore.c broker/election.c) $(LIB)
$(BINDIR)/bookstore-cluster: $(call obj,tools/cluster.c) $(LIB)
$(BINDIR)/bookstore-monitor: $(call obj,tools/monitor.c) $(LIB)
$(BINDIR)/bookstore-bench: $(call obj,tools/bench.c $(wildcard tools/bench/*.c)) $(LIB)
$(BINDIR)/bookstore-load: $(call obj,tools/load.c) $(LIB)

#  The gateway: its modules in tools/gateway, and its storefront
#  (tools/gateway/www) compiled in as C strings by embed.awk
GATEWAY_SRC := tools/gateway.c $(wildcard tools/gateway/*.c)
GATEWAY_WWW := $(sort $(wildcard tools/gateway/www/*))
$(call obj,$(GATEWAY_SRC)): CFLAGS += $(shell pkg-config --cflags $(GATEWAY_PKGS)) -Itools/gateway -I$(OUT)/gen
$(call obj,tools/gateway/gw_assets.c): $(OUT)/gen/gw_www.h
$(OUT)/gen/gw_www.h: tools/gateway/embed.awk $(GATEWAY_WWW)
	@mkdir -p $(dir $@)
	@echo "  GEN $(VARIANT) $@"
	@awk -f tools/gateway/embed.awk $(GATEWAY_WWW) > $@.tmp && mv $@.tmp $@
$(BINDIR)/bookstore-gateway: LDLIBS += $(shell pkg-config --libs $(GATEWAY_PKGS))
$(BINDIR)/bookstore-gateway: $(call obj,$(GATEWAY_SRC)) $(LIB)

$(addprefix $(BINDIR)/,$(PROGRAMS)):
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/%: $(OUT)/obj/tests/helpers/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/test_%: $(OUT)/obj/tests/unit/test_%.o $(NODE_LIB) $(BROKER_LIB) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

deps:
	@missing=""; for p in $(DEBS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

asan:
	$(MAKE) VARIANT=asan bins

clang:
	$(MAKE) VARIANT=clang bins

CATALOG ?= 2
ORDER ?= 2
PORT ?= 5555
DATA ?= data
run: deps
	$(MAKE) bins
	bin/bookstore-cluster --data $(DATA) --base-port $(PORT) --catalog $(CATALOG) --order $(ORDER)

#  The whole suite.  Its prerequisites, in the order they run: the Debian
#  packages (deps, then the browser's and the container engine's), the
#  fuzz targets (they install clang's fuzzer runtime first), the mutants;
#  then the three builds, then the runner on the sanitizer build.
test: deps deps-browser deps-docker fuzz-build mutants
	$(MAKE) bins
	$(MAKE) VARIANT=clang bins
	$(MAKE) VARIANT=asan bins
	BS_BIN=$(CURDIR)/build/asan/bin BS_UNIT=$(CURDIR)/build/asan/tests tests/run.sh

#  The fast loop: build this variant (release unless VARIANT says) and run
#  the unit tests alone, through the same runner (TESTS names each unit
#  test, so that no integration script runs)
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
unit: bins
	BS_BIN=$(CURDIR)/$(BINDIR) BS_UNIT=$(CURDIR)/$(OUT)/tests \
	    TESTS='^($(subst $(eval) ,|,$(strip $(UNIT_NAMES))))$$' tests/run.sh

#  The benchmark suite: a fresh local cluster, every workload, results in
#  bench/results.md (several minutes; BENCH_SECONDS changes each run's length)
.PHONY: bench
bench: deps
	$(MAKE) bins
	bench/run.sh

#  The gateway's browser test drives Chromium through chromedriver: `make
#  test` installs them too (it skips that part where they are absent), while
#  `make run` does without
BROWSER_DEBS = chromium chromium-driver
.PHONY: deps-browser
deps-browser: deps
	@$(MAKE) --no-print-directory deps DEBS="$(BROWSER_DEBS)"

#  A chaos run: a fresh cluster under load while nodes are killed, frozen
#  and flapped, then checked for lost, doubled or oversold buys and
#  diverging replicas (tools/chaos/run.sh; DURATION in seconds, SEED)
DURATION ?= 60
SEED ?=
.PHONY: chaos
chaos: deps
	$(MAKE) bins
	tools/chaos/run.sh --seconds $(DURATION) $(if $(SEED),--seed $(SEED))

#  Containers: `make docker-test` builds the image (Dockerfile) with Podman
#  or Docker, runs compose.yaml, drives it with the CLI, kills containers
#  and tears everything down (tests/deploy/docker-test.sh; `make test` runs
#  it too, as tests/integration/test_docker.sh, and reports it skipped, with
#  the reason, where no container can run).  deps-docker installs the
#  engine, its compose tool, iptables (netavark sets up container networks
#  with it), and debootstrap to make the Debian base images where none can
#  be pulled.
DOCKER_DEBS = podman podman-compose runc netavark aardvark-dns iptables debootstrap jq curl iproute2
.PHONY: deps-docker docker-test
deps-docker:
	@$(MAKE) --no-print-directory deps DEBS="$(DOCKER_DEBS)"
docker-test: deps-docker
	tests/deploy/docker-test.sh

#  Fuzzing with libFuzzer (clang): one target per tests/fuzz/fuzz_*.c, built
#  into build/fuzz/fuzz/ with the modules it drives (make VARIANT=fuzz
#  fuzz-targets).  `make fuzz` runs each for FUZZ_SECONDS (600) from its
#  seed corpus in tests/fuzz/corpus/<target> (tests/fuzz/run.sh); `make
#  fuzz-corpus` writes the seeds again.  deps-fuzz installs clang and its
#  fuzzer runtime.
FUZZ_DEBS = clang libclang-rt-14-dev libjansson-dev
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 600
FUZZ_GATEWAY_OBJ := $(call obj,$(filter-out tools/gateway.c,$(GATEWAY_SRC)))
$(OUT)/obj/tests/fuzz/%.o: CFLAGS += $(shell pkg-config --cflags jansson) -Itools/gateway -I$(OUT)/gen \
    -DFUZZ_SEED_FILE='"$(CURDIR)/etc/catalog.cfg"'
$(OUT)/obj/tests/fuzz/fuzz_gateway.o: $(OUT)/gen/gw_www.h
$(OUT)/fuzz/fuzz_gateway: $(FUZZ_GATEWAY_OBJ)
$(OUT)/fuzz/%: $(OUT)/obj/tests/fuzz/%.o $(NODE_LIB) $(BROKER_LIB) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) -fsanitize=fuzzer $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) \
	    $(shell pkg-config --libs jansson) -o $@
$(OUT)/tests/make_corpus: $(OUT)/obj/tests/fuzz/make_corpus.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
.PHONY: deps-fuzz fuzz-targets fuzz-build fuzz fuzz-corpus
deps-fuzz: deps
	@$(MAKE) --no-print-directory deps DEBS="$(FUZZ_DEBS)"
fuzz-targets: $(FUZZ_TARGETS) $(OUT)/tests/make_corpus
fuzz-build: deps-fuzz
	$(MAKE) VARIANT=fuzz fuzz-targets
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh
fuzz-corpus: fuzz-build
	build/fuzz/tests/make_corpus tests/fuzz/corpus tests/fuzz/crashes
#  The suite runs each target briefly (tests/integration/test_fuzz.sh):
#  `make test` builds them (fuzz-build)

#  The gateway's rate limiter has a unit test of its own
$(OUT)/obj/tests/unit/test_gw_limit.o: CFLAGS += -Itools/gateway
$(OUT)/tests/test_gw_limit: $(call obj,tools/gateway/gw_limit.c)
#  ...and so has its asynchronous broker link (failover between a pair),
#  linked before the library it calls
$(OUT)/obj/tests/unit/test_gw_link.o: CFLAGS += -Itools/gateway
$(OUT)/tests/test_gw_link: $(OUT)/obj/tests/unit/test_gw_link.o $(call obj,tools/gateway/gw_link.c) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

#  Mutation tests: each mutant is the node built with one deliberately broken
#  guarantee (a BS_MUTANT_<NAME> block in its sources, never defined
#  otherwise).  `make mutants` compiles only the mutated sources (release
#  flags), links bookstore-node (and bookstore-broker, which checks
#  requests with the shared codec) from them and the release objects into
#  build/mutant/<name>/bin/, and links the other programs there from bin/.
#  `make mutation` runs each guarantee's integration test against its mutant
#  and checks that the test fails on the check guarding that guarantee
#  (tests/mutation/run.sh; the suite runs it as test_mutation).
#  mutant name: the sources it changes
MUTANTS := oversell no_dedup forget_store follower_skips_prices no_invalidation refused_write_applied
MUTANT_SRC_oversell := nodes/catalog.c
MUTANT_SRC_no_dedup := nodes/catalog.c
MUTANT_SRC_forget_store := nodes/store.c
MUTANT_SRC_follower_skips_prices := nodes/journal.c
MUTANT_SRC_no_invalidation := nodes/invalidator.c
MUTANT_SRC_refused_write_applied := nodes/catalog.c schema/bs_msg.c
MUTANT_DIR := build/mutant
.PHONY: mutants mutant-bins mutation
ifeq ($(VARIANT),release)
define MUTANT_RULES
$(MUTANT_DIR)/$(1)/obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	@echo "  CC mutant $(1) $$<"
	@$$(CC) $$(CFLAGS) -DBS_MUTANT_$(shell echo $(1) | tr a-z A-Z) -c $$< -o $$@
$(MUTANT_DIR)/$(1)/bin/bookstore-node: $(patsubst %.c,$(MUTANT_DIR)/$(1)/obj/%.o,$(MUTANT_SRC_$(1))) \
        $(call obj,nodes/main.c) $(NODE_LIB) $(LIB) $(addprefix $(BINDIR)/,$(PROGRAMS))
	@mkdir -p $$(dir $$@)
	@echo "  LD mutant $(1) $$@"
	@$$(CC) $$(LDFLAGS) $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LDLIBS) -o $$@
	@for p in $(filter-out bookstore-node bookstore-broker,$(PROGRAMS)); do ln -sfn ../../../../$(BINDIR)/$$$$p $$(dir $$@)$$$$p; done
#  The broker checks requests with the same codec before any node sees
#  them: it is built with the mutant's shared-layer sources (schema/, lib/).
#  (A link to bin/ left by an older tree is replaced, never written through.)
$(MUTANT_DIR)/$(1)/bin/bookstore-broker: $(patsubst %.c,$(MUTANT_DIR)/$(1)/obj/%.o,$(filter schema/% lib/%,$(MUTANT_SRC_$(1)))) \
        $(call obj,broker/main.c) $(BROKER_LIB) $(LIB) \
        $(if $(shell test -L $(MUTANT_DIR)/$(1)/bin/bookstore-broker && echo link),FORCE)
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	@echo "  LD mutant $(1) $$@"
	@$$(CC) $$(LDFLAGS) $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LDLIBS) -o $$@
endef
$(foreach m,$(MUTANTS),$(eval $(call MUTANT_RULES,$(m))))
mutant-bins: $(foreach m,$(MUTANTS),$(MUTANT_DIR)/$(m)/bin/bookstore-node $(MUTANT_DIR)/$(m)/bin/bookstore-broker)
endif
.PHONY: FORCE
FORCE:
mutants:
	@$(MAKE) --no-print-directory VARIANT=release mutant-bins
mutation: bins mutants
	tests/mutation/run.sh

#  A soak: SOAK_SECONDS (600) of mixed load on a cluster of the sanitizer
#  build, each process's memory sampled every 10 s, then a clean stop so
#  LeakSanitizer checks every process (tests/soak/soak.sh); fails on a leak,
#  a crash or memory that grows after the warm-up
SOAK_SECONDS ?= 600
.PHONY: soak
soak: deps
	$(MAKE) VARIANT=asan bins
	SOAK_SECONDS=$(SOAK_SECONDS) tests/soak/soak.sh

#  The deterministic simulator (sim/, docs/ARCHITECTURE.md "Verification"):
#  the catalog's real replication core, journal, catalog, controller and
#  workers registry in one process, in virtual time, from a seed.  Its
#  sim_clock.o and sim_ctlplane.o are linked ahead of the libraries, so the
#  archives' bs_clock.o and ctlplane.o are never pulled in (link-time
#  substitution); neither is the replication core's ZeroMQ shell.
#  Self-test: bookstore-sim-<bug> is the simulator over a replication core
#  built with one old bug put back (REPL_BUG_<BUG>); the suite asserts the
#  simulator catches each (tests/integration/test_sim.sh).
SIM_SRC := $(wildcard sim/*.c)
SIM_OBJ := $(call obj,$(SIM_SRC))
$(SIM_OBJ): CFLAGS += -Ibroker -Inodes
REPL_CORE_SRC := $(filter-out %_zmq.c,$(wildcard nodes/repl*.c))
SIM_BUGS := early_ack late_reply snapshot_epoch_max resume_epoch
SIM_BINS := $(BINDIR)/bookstore-sim $(foreach b,$(SIM_BUGS),$(OUT)/tests/bookstore-sim-$(b))
$(BINDIR)/bookstore-sim: $(SIM_OBJ) $(NODE_LIB) $(BROKER_LIB) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $(VARIANT) $@"
	@$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
define SIM_BUG_RULES
$(OUT)/sim-bug/$(1)/%.o: %.c
	@mkdir -p $$(dir $$@)
	@echo "  CC $(VARIANT) sim-bug $(1) $$<"
	@$$(CC) $$(CFLAGS) -DREPL_BUG_$(shell echo $(1) | tr a-z A-Z) -c $$< -o $$@
$(OUT)/tests/bookstore-sim-$(1): $(SIM_OBJ) $(patsubst %.c,$(OUT)/sim-bug/$(1)/%.o,$(REPL_CORE_SRC)) \
        $(NODE_LIB) $(BROKER_LIB) $(LIB)
	@mkdir -p $$(dir $$@)
	@echo "  LD $(VARIANT) $$@"
	@$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach b,$(SIM_BUGS),$(eval $(call SIM_BUG_RULES,$(b))))
bins: $(SIM_BINS)
SEEDS ?= 200
SIM_JOBS ?= 2
SIM_SOAK_SEEDS ?= 20000
.PHONY: sim sim-soak
sim: $(BINDIR)/bookstore-sim
	$(BINDIR)/bookstore-sim --seeds $(SEEDS) --jobs $(SIM_JOBS)
sim-soak: $(BINDIR)/bookstore-sim
	$(BINDIR)/bookstore-sim --seeds $(SIM_SOAK_SEEDS) --first 100001 --jobs $(SIM_JOBS)

clean:
	rm -rf build bin

#  Header dependencies of this variant's objects (and, for release, of the
#  mutants' objects, built with release flags)
DEPFILES := $(shell find $(OUT) -name '*.d' 2>/dev/null)
ifeq ($(VARIANT),release)
DEPFILES += $(shell find $(MUTANT_DIR) -name '*.d' 2>/dev/null)
endif
-include $(DEPFILES)
