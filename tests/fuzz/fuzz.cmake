# Fuzz targets (tests/fuzz/fuzz_<target>.c), two ways:
#  - in every build, fuzz/replay_<target> runs the target over its seed
#    corpus and its regression inputs with this build's compiler and
#    sanitizers (replay.c);
#  - fuzz/libfuzzer builds the targets with clang and libFuzzer in a build
#    directory of its own (run.sh configures it with -DRV_FUZZ=ON) and runs
#    each for RV_FUZZ_RUNS inputs with a fixed seed (FUZZ_SEED), so that a
#    fresh build tries the same inputs on any machine and CI is not red by
#    the luck of the draw or the speed of the machine; a crash, leak,
#    timeout or violated property fails the test and names the reproducer.
#    bench/fuzz.sh runs for a time, unseeded, to find new bugs.
set(RV_FUZZ_TARGETS job webhook github http)
set(RV_FUZZ_RUNS 200000 CACHE STRING
  "Inputs each libFuzzer target tries in the fuzz/libfuzzer test")
set(RV_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

foreach(t ${RV_FUZZ_TARGETS})
  if(RV_FUZZ)
    add_executable(fuzz_${t} ${RV_FUZZ_DIR}/fuzz_${t}.c)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${t} PRIVATE rvapi rvworker)
  else()
    add_executable(fuzz_replay_${t} ${RV_FUZZ_DIR}/replay.c
                   ${RV_FUZZ_DIR}/fuzz_${t}.c)
    target_link_libraries(fuzz_replay_${t} PRIVATE rvapi rvworker)
    add_test(NAME fuzz/replay_${t}
      COMMAND fuzz_replay_${t} ${RV_FUZZ_DIR}/corpus/${t}
              ${RV_FUZZ_DIR}/regressions/${t})
    set_tests_properties(fuzz/replay_${t} PROPERTIES TIMEOUT 120
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1")
  endif()
endforeach()

if(NOT RV_FUZZ)
  # Needs clang and libclang-rt-14-dev (scripts/install-deps.sh --browser).
  add_test(NAME fuzz/libfuzzer
    COMMAND ${RV_FUZZ_DIR}/run.sh ${CMAKE_SOURCE_DIR}
            ${CMAKE_BINARY_DIR}/fuzz-libfuzzer)
  set_tests_properties(fuzz/libfuzzer PROPERTIES TIMEOUT 900
    ENVIRONMENT "FUZZ_SEED=1;FUZZ_RUNS=${RV_FUZZ_RUNS}")
endif()
