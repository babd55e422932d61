# The OpenAPI document (src/api/openapi.json): it passes Redocly's linter
# (recommended rules, warnings included), every answer the contract tests
# received matches it, and live.test.mjs asks the routes they do not.
# Needs tests/node_modules (scripts/install-node-deps.sh).
add_test(NAME openapi/lint
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/node_modules/@redocly/cli/bin/cli.js
    lint --config ${CMAKE_SOURCE_DIR}/tests/openapi/redocly.yaml
    --max-problems 50 ${CMAKE_SOURCE_DIR}/src/api/openapi.json)
set_tests_properties(openapi/lint PROPERTIES TIMEOUT 60
  ENVIRONMENT "REDOCLY_TELEMETRY=off;REDOCLY_SUPPRESS_UPDATE_NOTICE=true")

# At least 300 answers: the contract tests send well over a thousand.
add_test(NAME openapi/recorded
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/openapi/recorded.test.mjs 300
    ${RV_RECORD_FILES})
set_tests_properties(openapi/recorded PROPERTIES TIMEOUT 60
  FIXTURES_REQUIRED openapi_answers)

add_test(NAME openapi/live
  COMMAND node --test ${CMAKE_SOURCE_DIR}/tests/openapi/live.test.mjs)
set_tests_properties(openapi/live PROPERTIES TIMEOUT 120
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")
