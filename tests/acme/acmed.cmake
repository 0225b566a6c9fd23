# iotca-acmed end to end (included from tests/acme/CMakeLists.txt): real
# daemons through devstack, on loopback only.
foreach(part protocol lego tls config expiry)
  add_test(NAME acmed-${part}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/acmed.sh ${part})
  set_tests_properties(acmed-${part} PROPERTIES
    ENVIRONMENT "IOTCA_BIN=${CMAKE_BINARY_DIR}/bin;IOTCA_SRC=${CMAKE_SOURCE_DIR}"
    TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endforeach()

# The account-key cache on its own (cmocka).
add_executable(test_keycache ${CMAKE_CURRENT_LIST_DIR}/test_keycache.c)
target_link_libraries(test_keycache PRIVATE iotca_acmed PkgConfig::CMOCKA)
set_target_properties(test_keycache PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME acme-keycache COMMAND test_keycache)
