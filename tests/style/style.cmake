# The source style check (tools/checksrc.sh, STYLE.md "Formatting and
# checks") over the whole tree, and its self-test: a tree with one of
# each finding must fail with exactly those findings.
add_test(NAME style/checksrc
  COMMAND ${CMAKE_SOURCE_DIR}/tools/checksrc.sh ${CMAKE_SOURCE_DIR})
add_test(NAME style/checksrc_selftest
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/checksrc_selftest.sh
          ${CMAKE_SOURCE_DIR}/tools/checksrc.sh)
set_tests_properties(style/checksrc style/checksrc_selftest
  PROPERTIES TIMEOUT 60)
