# The JS client (clients/js): its types (tsc, from tests/node_modules), and
# node --test against a real stack (tests/client/client.test.mjs).
add_test(NAME client/types
  COMMAND sh ${CMAKE_SOURCE_DIR}/tests/client/types.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(client/types PROPERTIES TIMEOUT 120)
