# Tests for acme/jws.c (included from tests/acme/CMakeLists.txt).
# The signer in jws_testutil is shared with the other ACME tests.
add_library(iotca_jws_testutil STATIC ${CMAKE_CURRENT_LIST_DIR}/jws_testutil.c)
target_include_directories(iotca_jws_testutil PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(iotca_jws_testutil PUBLIC PkgConfig::OPENSSL PkgConfig::JANSSON)

add_executable(test_jws ${CMAKE_CURRENT_LIST_DIR}/test_jws.c)
target_link_libraries(test_jws PRIVATE iotca_jws iotca_jws_testutil PkgConfig::CMOCKA)
set_target_properties(test_jws PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME acme-jws COMMAND test_jws)
