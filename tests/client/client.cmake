# The JS client (clients/js): its types (tsc, from tests/node_modules), and
# node --test against a real stack (tests/client/client.test.mjs).
add_test(NAME client/types
  COMMAND sh ${CMAKE_SOURCE_DIR}/tests/client/types.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(client/types PROPERTIES TIMEOUT 120)

add_test(NAME client/node
  COMMAND node --test --test-concurrency=1
    ${CMAKE_SOURCE_DIR}/tests/client/client.test.mjs)
set_tests_properties(client/node PROPERTIES TIMEOUT 180
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")
