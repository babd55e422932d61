# test_cli runs the built `repoview` binary: build it first.
if(TARGET test_cli AND TARGET repoview)
  add_dependencies(test_cli repoview)
endif()
