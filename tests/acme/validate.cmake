# acme/validate.c against real servers on loopback: HTTP and TLS servers are
# threads of the test; dnsmasq is started (and stopped) by validate.sh.
find_package(Threads REQUIRED)
add_executable(test_validate ${CMAKE_CURRENT_LIST_DIR}/test_validate.c)
target_link_libraries(test_validate PRIVATE iotca_validate PkgConfig::OPENSSL
	PkgConfig::CMOCKA Threads::Threads)
set_target_properties(test_validate PROPERTIES
	RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_test(NAME acme-validate
	COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/validate.sh
		${CMAKE_BINARY_DIR}/tests/test_validate)
set_tests_properties(acme-validate PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77)
