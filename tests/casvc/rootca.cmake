# Root certificate and CRL tests: once with the PEM file store, once with a
# fresh software TPM (tests/lib/swtpm-run; skipped, exit 77, without swtpm).
add_executable(test_rootca ${CMAKE_CURRENT_LIST_DIR}/test_rootca.c)
target_link_libraries(test_rootca PRIVATE iotca_ca PkgConfig::CMOCKA)
set_target_properties(test_rootca PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_test(NAME rootca_file COMMAND test_rootca file)
add_test(NAME rootca_tpm2
  COMMAND ${PROJECT_SOURCE_DIR}/tests/lib/swtpm-run $<TARGET_FILE:test_rootca> tpm2)
set_tests_properties(rootca_file rootca_tpm2 PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 120)
