# The dashboard in Debian's chromium (playwright-core from tests/node_modules),
# against a private redis-server, the API, one worker and the CLI from this
# build. Needs `scripts/install-deps.sh --browser` and
# `scripts/install-node-deps.sh` (both run by `make test`).
add_test(NAME browser/dashboard
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/dashboard.test.mjs)
set_tests_properties(browser/dashboard PROPERTIES TIMEOUT 90
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")

# Sign-in, live updates through the session cookie, and pages on other
# origins that try to create repos (tests/browser/access.test.mjs).
add_test(NAME browser/access
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/access.test.mjs)
set_tests_properties(browser/access PROPERTIES TIMEOUT 120
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")

# The repo list grouped by org, live (tests/browser/orgs.test.mjs).
add_test(NAME browser/orgs
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/orgs.test.mjs)
set_tests_properties(browser/orgs PROPERTIES TIMEOUT 90
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")

# The operations pages with three workers and a refresh storm; screenshots
# under <build>/artifacts/ops (tests/browser/ops.test.mjs).
add_test(NAME browser/ops
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/ops.test.mjs)
set_tests_properties(browser/ops PROPERTIES TIMEOUT 150
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")

# The dashboard with 10,000 repos: paged drawing, the filter, live removal
# (tests/browser/scale.test.mjs).
add_test(NAME browser/scale
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/scale.test.mjs)
set_tests_properties(browser/scale PROPERTIES TIMEOUT 300
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")

# The dashboard on the JS client: Refresh shows queued → refreshing →
# fresh, and a Redis restart under the open page recovers
# (tests/browser/client.test.mjs).
add_test(NAME browser/client
  COMMAND node ${CMAKE_SOURCE_DIR}/tests/browser/client.test.mjs)
set_tests_properties(browser/client PROPERTIES TIMEOUT 150
  ENVIRONMENT "RV_BIN_DIR=${CMAKE_BINARY_DIR}")
